"""The command line's front door: the parser built from the command modules,
and `main`, which turns every failure into one printed line and an exit code.

    clipswap-video SRC IN OUT [--config FILE] [--set key=value ...]
    clipswap-video COMMAND ...   (swap, batch, preview, faces, evaluate, weights, ...)

Only `main()` catches ClipswapError (see errors.ExitCode); everything below it raises.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import av
from rich.console import Console
from rich.markup import escape

from clipswap_video import __version__
from clipswap_video.cli import (
    batch,
    bench,
    demo_media,
    doctor,
    evaluate,
    faces,
    gpu_check,
    preview,
    probe,
    swap,
    train,
    weights,
)
from clipswap_video.cli.console import configure_logging
from clipswap_video.errors import ClipswapError, ExitCode

_COMMAND_MODULES = (
    swap,
    batch,
    preview,
    faces,
    evaluate,
    weights,
    doctor,
    probe,
    demo_media,
    bench,
    gpu_check,
    train,
)
"""In the order `--help` lists them; each adds its subparser, with its handler."""


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line grammar (tests drive it in-process through `main`)."""
    return _parser_and_commands()[0]


def _parser_and_commands() -> tuple[argparse.ArgumentParser, list[str]]:
    parser = argparse.ArgumentParser(
        prog="clipswap-video",
        description="Swap faces in videos. Default command: clipswap-video SRC IN OUT",
    )
    parser.add_argument("--version", action="version", version=f"clipswap-video {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.add_parser(commands)
    return parser, list(commands.choices)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser, commands = _parser_and_commands()
    if arguments and arguments[0] not in (*commands, "-h", "--help", "--version"):
        arguments.insert(0, "swap")  # `clipswap-video SRC IN OUT` is the swap command
    args = parser.parse_args(arguments)
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    console = Console(stderr=True, highlight=False)
    configure_logging(console, quiet=args.quiet, verbose=args.verbose)
    interrupted = threading.Event()
    try:
        with _signals_as_interrupt(interrupted):
            return int(args.handler(args, console))
    except ClipswapError as error:
        _print_error(console, str(error))
        return int(error.exit_code)
    except KeyboardInterrupt:
        _print_error(console, "interrupted; nothing was written")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # stdout's reader left (`weights list --json | head`): no error to report, and
        # stdout must not be flushed again at exit (Python's documented recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.INTERNAL)
    except av.FFmpegError as error:  # one the media layer did not expect: still one line
        _print_error(console, f"FFmpeg failed: {error}")
        return int(ExitCode.INTERNAL)
    except Exception as error:
        # An interrupt that lands while a C extension initialises surfaces as that
        # import's error (scipy: "ImportError: initialization failed"), not as
        # KeyboardInterrupt: after a signal, any failure is the interruption.
        if interrupted.is_set():
            _print_error(console, "interrupted; nothing was written")
            return int(ExitCode.INTERRUPTED)
        log = _write_crash_log(arguments)  # a bug: its traceback goes to a file, not the screen
        where = f"full log: {log}" if log is not None else "no log could be written"
        message = " ".join(str(error).split())  # one line, whatever the exception says
        _print_error(console, f"unexpected {type(error).__name__}: {message}; {where}")
        return int(ExitCode.INTERNAL)


def _print_error(console: Console, message: str) -> None:
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def _write_crash_log(arguments: Sequence[str]) -> Path | None:
    """Writes the version, the command line and the traceback of the exception
    being handled to a new file in the temporary folder; returns its path, or
    None when it cannot be written."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(tempfile.gettempdir()) / f"clipswap-video-{stamp}-{os.getpid()}.log"
    text = f"clipswap-video {__version__}\ncommand: {shlex.join(arguments)}\n\n"
    try:
        path.write_text(text + traceback.format_exc())
    except OSError:
        return None
    return path


@contextmanager
def _signals_as_interrupt(interrupted: threading.Event) -> Iterator[None]:
    """Ctrl-C, and SIGTERM (how a render farm stops a job), raise KeyboardInterrupt
    (clean up, exit 130) and set `interrupted`."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        interrupted.set()
        raise KeyboardInterrupt

    try:
        previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (a test harness): leave signals alone
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["build_parser", "main"]
