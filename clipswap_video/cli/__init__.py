"""The command line: one module per command (its parser and its handler), the
shared flags, the console (log lines, progress bars) and `main`.

The console script `clipswap-video` is `clipswap_video.cli:main`.
"""

from clipswap_video.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
