"""One exception family for every failure a user can cause.

Each class also subclasses the matching builtin (as PyAV's
``av.FileNotFoundError(FFmpegError, FileNotFoundError)`` does), so callers may
catch either. Library code raises; only ``cli.main`` turns an error into one
printed line and the exit code below.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes: one per kind of failure, documented in docs/cli.md."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    UNKNOWN_CONFIG_KEY = 3
    BAD_CONFIG_VALUE = 4
    INPUT_MISSING = 5
    INPUT_UNREADABLE = 6
    NO_VIDEO_STREAM = 7
    CORRUPT_INPUT = 8
    BAD_OUTPUT_PATH = 9
    OUTPUT_UNWRITABLE = 10
    ENCODER_UNAVAILABLE = 11
    NO_FACE = 12
    MISSING_WEIGHTS = 13
    CORRUPT_WEIGHTS = 14
    DOWNLOAD_FAILED = 15
    JOBS_FAILED = 16
    NOTHING_SWAPPED = 17
    AMBIGUOUS_WEIGHTS = 18
    INTERRUPTED = 130


class ClipswapError(Exception):
    """Base of every user-facing error; the message is one complete line."""

    exit_code: ExitCode = ExitCode.INTERNAL


class UnknownConfigKeyError(ClipswapError, KeyError):
    exit_code = ExitCode.UNKNOWN_CONFIG_KEY

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class ConfigValueError(ClipswapError, ValueError):
    exit_code = ExitCode.BAD_CONFIG_VALUE


class InputNotFoundError(ClipswapError, FileNotFoundError):
    exit_code = ExitCode.INPUT_MISSING


class UnreadableInputError(ClipswapError, ValueError):
    exit_code = ExitCode.INPUT_UNREADABLE


class NoVideoStreamError(ClipswapError, ValueError):
    exit_code = ExitCode.NO_VIDEO_STREAM


class CorruptInputError(ClipswapError, ValueError):
    exit_code = ExitCode.CORRUPT_INPUT


class OutputPathError(ClipswapError, ValueError):
    exit_code = ExitCode.BAD_OUTPUT_PATH


class OutputUnwritableError(ClipswapError, PermissionError):
    exit_code = ExitCode.OUTPUT_UNWRITABLE


class EncoderUnavailableError(ClipswapError, RuntimeError):
    exit_code = ExitCode.ENCODER_UNAVAILABLE


class NoFaceError(ClipswapError, ValueError):
    """A source or reference image in which no face is found."""

    exit_code = ExitCode.NO_FACE


class MissingWeightsError(ClipswapError, FileNotFoundError):
    """A model file the chosen backend needs is not in any weights folder."""

    exit_code = ExitCode.MISSING_WEIGHTS


class CorruptWeightsError(ClipswapError, ValueError):
    """A model file exists but cannot be loaded (truncated, wrong format)."""

    exit_code = ExitCode.CORRUPT_WEIGHTS


class AmbiguousWeightsError(ClipswapError, ValueError):
    """One weights folder holds two files for one model (say the flat name and
    the official repository's sub-folder): picking one silently could load the
    other checkpoint than the one the user meant."""

    exit_code = ExitCode.AMBIGUOUS_WEIGHTS


class MissingExtraError(ClipswapError, ImportError):
    """A command needs a package from an optional extra this install lacks
    (`pip install 'clipswap-video[demo]'`). Exit 2: the command line asks for
    something this installation cannot run, which is a usage error, not bad input."""

    exit_code = ExitCode.USAGE


class DownloadError(ClipswapError, ConnectionError):
    """A weight download that did not complete (its partial file is kept for a resume)."""

    exit_code = ExitCode.DOWNLOAD_FAILED


class NothingSwappedError(ClipswapError, ValueError):
    """With faces.strict (`--strict-faces`): no frame got a swapped face, so the
    job fails and writes no output."""

    exit_code = ExitCode.NOTHING_SWAPPED


class BatchInterruptedError(ClipswapError, InterruptedError):
    """A batch stopped by Ctrl-C or SIGTERM: its finished jobs are kept for a rerun."""

    exit_code = ExitCode.INTERRUPTED


__all__ = [
    "AmbiguousWeightsError",
    "BatchInterruptedError",
    "ClipswapError",
    "ConfigValueError",
    "CorruptInputError",
    "CorruptWeightsError",
    "DownloadError",
    "EncoderUnavailableError",
    "ExitCode",
    "InputNotFoundError",
    "MissingExtraError",
    "MissingWeightsError",
    "NoFaceError",
    "NoVideoStreamError",
    "NothingSwappedError",
    "OutputPathError",
    "OutputUnwritableError",
    "UnknownConfigKeyError",
    "UnreadableInputError",
]
