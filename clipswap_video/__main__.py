"""`python -m clipswap_video` runs the command-line interface."""

from clipswap_video.cli import main

exit_code = main()
# A Ctrl-C that main() caught after it passed through a library's string `exec` (dataclasses
# and scipy run one while importing) leaves CPython's "unhandled interrupt" flag set, and a
# `-m` run then ends by killing itself with SIGINT instead of exiting with main()'s code.
# Every string `exec` clears that flag when it starts.
exec("", {})
raise SystemExit(exit_code)
