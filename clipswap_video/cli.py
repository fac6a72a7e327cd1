"""Command line: argument parsing, the rich console, and exit codes.

    clipswap-video SRC IN OUT [--config FILE] [--set key=value ...]
    clipswap-video faces IMAGE_OR_VIDEO [--json] [--preview OUT.png]
    clipswap-video doctor | probe FILE | demo-media DIR | bench

Only `main()` turns a ClipswapError into one printed line and its exit code
(see errors.ExitCode); everything below it raises.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, get_args

import av
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from clipswap_video import __version__
from clipswap_video._commands import (
    run_batch,
    run_bench,
    run_demo_media,
    run_doctor,
    run_evaluate,
    run_probe,
    run_train,
    run_weights,
)
from clipswap_video._console import configure_logging, progress
from clipswap_video.batch import ExecutorName
from clipswap_video.config import (
    DetectorName,
    PrecisionName,
    SwapperName,
    load_settings,
    to_toml,
)
from clipswap_video.errors import ClipswapError, ExitCode

_COMMANDS = (
    "swap", "batch", "faces", "evaluate", "weights", "doctor", "probe", "demo-media", "bench",
    "train",
)  # fmt: skip
Handler = Callable[[argparse.Namespace, Console], int]


def build_parser() -> argparse.ArgumentParser:
    """The whole command-line grammar (tests drive it in-process through `main`)."""
    parser = argparse.ArgumentParser(
        prog="clipswap-video",
        description="Swap faces in videos. Default command: clipswap-video SRC IN OUT",
    )
    parser.add_argument("--version", action="version", version=f"clipswap-video {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_swap(commands)
    _add_batch(commands)
    _add_faces(commands)
    _add_evaluate(commands)
    _add_weights(commands)
    _add_doctor(commands)
    _add_probe(commands)
    _add_demo_media(commands)
    _add_bench(commands)
    _add_train(commands)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    loudness.add_argument("-v", "--verbose", action="store_true", help="print details")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    """--config, --set, the face flags and --tolerate-errors, shared by the commands
    that decode and analyse faces (swap, faces)."""
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. video.crf=20",
    )  # fmt: skip
    parser.add_argument("--faces", metavar="WHICH",
                        help="faces to swap: all, largest, reference:IMG[,IMG]")  # fmt: skip
    parser.add_argument("--detector", choices=get_args(DetectorName), help="face detector")
    parser.add_argument("--source-face", type=int, metavar="N",
                        help="face of a source photo with several: N-th from the left")  # fmt: skip
    parser.add_argument("--tolerate-errors", action="store_true",
                        help="skip undecodable packets and accept a truncated input")  # fmt: skip


def _add_swap_flags(parser: argparse.ArgumentParser) -> None:
    """The swapper and encoder flags shared by swap and batch (see _flag_overrides)."""
    parser.add_argument("--swapper", choices=get_args(SwapperName), help="swap backend")
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    parser.add_argument("--precision", choices=get_args(PrecisionName), help="fp32, fp16, bf16")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="face crops per generator call, across frames")  # fmt: skip
    parser.add_argument("--codec", help="video encoder, e.g. libx264, libx265, h264_nvenc")
    parser.add_argument("--crf", type=int, help="quality: lower is better (x264 default 18)")
    parser.add_argument("--preset", help="encoder speed preset, e.g. veryfast, medium, slow")


def _add_swap(commands: Any) -> None:
    parser = commands.add_parser("swap", help="swap faces in one video (the default command)")
    parser.add_argument("source", type=Path, metavar="SRC",
                        help="photo of the face to put in (several: a.jpg,b.jpg)")  # fmt: skip
    parser.add_argument("input", type=Path, metavar="IN", help="input video (never modified)")
    parser.add_argument("output", type=Path, metavar="OUT", help="output video (.mp4, .mov, .mkv)")
    _add_settings(parser)
    _add_swap_flags(parser)
    parser.add_argument("--device", help="neural swapper device: auto, cpu, cuda[:N]")
    parser.add_argument("--preview", type=Path, metavar="OUT.png",
                        help="also write source | input | output at the middle frame")  # fmt: skip
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective settings as TOML and exit")  # fmt: skip
    _add_common(parser)
    parser.set_defaults(handler=_run_swap)


def _add_batch(commands: Any) -> None:
    parser = commands.add_parser(
        "batch", help="swap every video of a folder, or the jobs of a jobs file; resumable",
        usage="%(prog)s SRC IN_DIR OUT_DIR [options]\n       %(prog)s JOBS.toml [options]",
    )  # fmt: skip
    parser.add_argument("targets", nargs="+", metavar="TARGET",
                        help="a source photo, an input folder and an output folder "
                             "(tree mirrored), or a TOML jobs file")  # fmt: skip
    _add_settings(parser)
    _add_swap_flags(parser)
    parser.add_argument("--container", metavar="EXT",
                        help="folder mode: output container (default: the input's)")  # fmt: skip
    parser.add_argument("--manifest", type=Path, metavar="FILE",
                        help="job manifest (default: OUT_DIR/clipswap-batch.sqlite)")  # fmt: skip
    placement = parser.add_mutually_exclusive_group()
    placement.add_argument("--workers", type=int, metavar="N",
                           help="worker processes (default: 1 per GPU, else per core)")  # fmt: skip
    placement.add_argument("--devices", metavar="LIST",
                           help="one worker per entry, e.g. cuda:0,cuda:1 or cpu*2")  # fmt: skip
    parser.add_argument("--executor", choices=get_args(ExecutorName), default="local",
                        help="local worker processes, or Ray actors")  # fmt: skip
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="Ray cluster (auto: the running one; default: local)")  # fmt: skip
    parser.add_argument("--ray", metavar="ADDR", dest="ray_shortcut",
                        help="short for --executor ray --ray-address ADDR "
                             "(local: a Ray started for this batch)")  # fmt: skip
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")
    parser.add_argument("--force", action="store_true", help="run every job again")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_common(parser)
    parser.set_defaults(handler=_run_batch, usage_error=parser.error)


def _add_faces(commands: Any) -> None:
    parser = commands.add_parser(
        "faces", help="show the faces found in a photo or video, and which would be swapped"
    )
    parser.add_argument("input", type=Path, metavar="IMAGE_OR_VIDEO")
    parser.add_argument("--json", action="store_true", help="per-frame faces as one JSON object")
    parser.add_argument("--preview", type=Path, metavar="OUT.png",
                        help="annotated picture (video: a contact sheet)")  # fmt: skip
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    _add_settings(parser)
    _add_common(parser)
    parser.set_defaults(handler=_run_faces)


def _add_evaluate(commands: Any) -> None:
    parser = commands.add_parser(
        "evaluate", help="identity transfer, flicker and background damage of a swap"
    )
    parser.add_argument("source", type=Path, metavar="SRC")
    parser.add_argument("input", type=Path, metavar="IN")
    parser.add_argument("output", type=Path, metavar="OUT")
    parser.add_argument("--samples", type=int, default=30, help="frames sampled for identity")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    _add_common(parser)
    parser.set_defaults(handler=run_evaluate)


def _add_weights(commands: Any) -> None:
    parser = commands.add_parser(
        "weights", help="list, verify, fetch or convert model weight files"
    )
    parser.add_argument("action", choices=["list", "verify", "fetch", "convert"])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="manifest names; convert: SRC.h5 DST.safetensors")  # fmt: skip
    parser.add_argument("--model-json", type=Path, metavar="FILE",
                        help="convert: the JSON config of a weights-only .h5")  # fmt: skip
    parser.add_argument("--weights", type=Path, metavar="DIR", help="weights folder")
    parser.add_argument("--manifest", type=Path, metavar="FILE", help="another manifest.toml")
    parser.add_argument("--url", help="fetch: download address (overrides the manifest)")
    parser.add_argument("--sha256", help="fetch: expected hash when the manifest has none")
    parser.add_argument("--json", action="store_true", help="list/verify: one JSON object")
    _add_common(parser)
    parser.set_defaults(handler=run_weights)


def _add_doctor(commands: Any) -> None:
    parser = commands.add_parser("doctor", help="versions, devices, encoders, weights")
    parser.add_argument("--weights", type=Path, metavar="DIR", help="extra weights folder")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    _add_common(parser)
    parser.set_defaults(handler=run_doctor)


def _add_probe(commands: Any) -> None:
    parser = commands.add_parser("probe", help="what is in a media file")
    parser.add_argument("input", type=Path, metavar="FILE")
    parser.add_argument(
        "--count-frames", action="store_true", help="count frames exactly, detect VFR"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object")
    _add_common(parser)
    parser.set_defaults(handler=run_probe)


def _add_demo_media(commands: Any) -> None:
    parser = commands.add_parser("demo-media", help="write the demo source image and clip")
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    _add_common(parser)
    parser.set_defaults(handler=run_demo_media)


def _add_bench(commands: Any) -> None:
    parser = commands.add_parser("bench", help="measure speed and memory")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--work-dir", type=Path, help="keep the clips here (default: a temp dir)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the short clip")
    parser.add_argument("--long-seconds", type=float, default=60.0, help="length of the long clip")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument(
        "--neural-only",
        action="store_true",
        help="only the generator and the clipswap job (for GPU runs)",
    )
    parser.add_argument(
        "--neural-seconds", type=float, default=2.0, help="length of the clipswap job's clip"
    )
    parser.add_argument("--device", default="auto", help="generator device: auto, cpu, cuda[:N]")
    parser.add_argument("--precision", choices=get_args(PrecisionName), default="fp32")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="crops per generator call (0: the engine's choice for the device)",
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="the clipswap job in the channels-last layout",
    )
    parser.add_argument("--codec", help="the clipswap job's encoder, e.g. h264_nvenc")
    parser.add_argument("--batch-clips", type=int, default=8, metavar="N",
                        help="clips in the batch command's figures")  # fmt: skip
    parser.add_argument("--batch-seconds", type=float, default=2.0, metavar="S",
                        help="length of each of those clips (640x360)")  # fmt: skip
    _add_common(parser)
    parser.set_defaults(handler=run_bench)  # fmt: skip


def _add_train(commands: Any) -> None:
    parser = commands.add_parser(
        "train", help="train a ClipSwap generator (resumes from its checkpoint)"
    )
    parser.add_argument(
        "config", metavar="CONFIG",
        help="training TOML file, or a name in configs/train (tiny, default)",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting, e.g. run.steps=1000",
    )  # fmt: skip
    parser.add_argument("--data", type=Path, action="append", default=[], metavar="PATH",
                        help="images, videos or folders of them (replaces data.paths)")  # fmt: skip
    parser.add_argument("--out", type=Path, metavar="DIR", help="run folder (run.out_dir)")
    parser.add_argument("--steps", type=int, metavar="N", help="train until step N (run.steps)")
    parser.add_argument("--device", help="auto, cpu, cuda[:N] (run.device)")
    parser.add_argument("--weights", type=Path, metavar="DIR",
                        help="weights folder of a non-dlib face detector")  # fmt: skip
    parser.add_argument(
        "--export-only", action="store_true",
        help="write ClipSwap.safetensors from the run's checkpoint and exit",
    )  # fmt: skip
    _add_common(parser)
    parser.set_defaults(handler=run_train)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (the console script exits with it)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] not in (*_COMMANDS, "-h", "--help", "--version"):
        arguments.insert(0, "swap")  # `clipswap-video SRC IN OUT` is the swap command
    args = build_parser().parse_args(arguments)
    if args.command is None:
        build_parser().print_help()
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


def _run_swap(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.faces import parse_selection
    from clipswap_video.pipeline import run_video

    settings = load_settings(args.config, [*args.overrides, *_flag_overrides(args)])
    parse_selection(settings.faces.select)  # a bad --faces fails before any work
    if args.preview is not None:  # imported only when asked for: OpenCV is large
        from clipswap_video.preview import check_preview_path, write_side_by_side

        check_preview_path(args.preview)
    if args.print_config:
        print(to_toml(settings), end="")
        return ExitCode.OK
    with progress(console, enabled=not args.quiet) as (on_start, on_progress):
        result = run_video(
            _sources(args.source), args.input, args.output, settings, weights_dir=args.weights,
            on_start=on_start, on_progress=on_progress,
        )  # fmt: skip
    for note in result.input_problems:
        logging.getLogger("clipswap_video").warning(note)
    if args.preview is not None:
        write_side_by_side(_sources(args.source)[0], args.input, result.output, args.preview)
    if not args.quiet:
        console.print(
            f"wrote {escape(str(result.output))}: {result.frames} frames in "
            f"{result.elapsed_s:.1f} s ({result.fps:.1f} fps)",
            soft_wrap=True,
        )
    return ExitCode.OK


def _sources(source: Path) -> list[Path]:
    """SRC, or several photos of one person as `a.jpg,b.jpg` (a path that exists
    with a comma in its name stays one path)."""
    if source.exists() or "," not in str(source):
        return [source]
    return [Path(part) for part in str(source).split(",") if part]


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    """The convenience flags, as `--set` overrides (they win over the config file)."""
    flags = {
        "swap.swapper": getattr(args, "swapper", None),
        "swap.device": getattr(args, "device", None),
        "swap.precision": getattr(args, "precision", None),
        "swap.batch_size": getattr(args, "batch_size", None),
        "video.codec": getattr(args, "codec", None),
        "video.crf": getattr(args, "crf", None),
        "video.preset": getattr(args, "preset", None),
        "input.tolerate_errors": "true" if args.tolerate_errors else None,
        "faces.select": args.faces,
        "faces.detector": args.detector,
        "faces.source_face": args.source_face,
    }
    return [f"{key}={_quoted(value)}" for key, value in flags.items() if value is not None]


def _quoted(value: object) -> str:
    return (
        json.dumps(value)
        if isinstance(value, str) and value not in ("true", "false")
        else str(value)
    )


def _run_batch(args: argparse.Namespace, console: Console) -> int:
    return run_batch(args, console, [*args.overrides, *_flag_overrides(args)])


def _run_faces(args: argparse.Namespace, console: Console) -> int:
    from clipswap_video.face_report import analyse_input, write_preview
    from clipswap_video.preview import check_preview_path

    settings = load_settings(args.config, [*args.overrides, *_flag_overrides(args)])
    if args.preview is not None:
        check_preview_path(args.preview)  # before a long analysis, not after
    with progress(console, enabled=not (args.quiet or args.json), label="analysing") as (
        on_start, on_progress,
    ):  # fmt: skip
        report = analyse_input(
            args.input, settings, weights_dir=args.weights,
            on_start=on_start, on_frame=lambda: on_progress(1),
        )  # fmt: skip
    if args.preview is not None:
        write_preview(report.previews, args.preview)
    if args.json:
        print(json.dumps(report.as_json()))
    elif not args.quiet:
        console.print(_faces_table(report))
    return ExitCode.OK


def _faces_table(report: Any) -> Table:
    table = Table(title=f"{report.input}: {report.width}x{report.height}, {report.kind}")
    if report.kind == "image":
        for column in ("face", "box", "score", "size", "swapped"):
            table.add_column(column)
        for face in report.frames[0]["faces"]:
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            swapped = "yes" if face["selected"] else "no"
            table.add_row(
                str(face["index"]), box, f"{face['score']:.2f}", f"{face['size']:.0f}", swapped
            )
        return table
    for column in ("track", "first frame", "last frame", "frames seen", "mean size", "swapped in"):
        table.add_column(column)
    for track in report.tracks():
        table.add_row(*(str(track[key]) for key in (
            "track_id", "first", "last", "frames", "mean_size", "selected_frames"
        )))  # fmt: skip
    empty = sum(1 for frame in report.frames if not frame["faces"])
    table.caption = f"{len(report.frames)} frames, {empty} without a face"
    return table


__all__ = ["build_parser", "main"]
