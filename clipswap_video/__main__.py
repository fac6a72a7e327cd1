"""`python -m clipswap_video` runs the command-line interface."""

from clipswap_video.cli import main

raise SystemExit(main())
