"""Times a user types: `12.5` seconds, `1:02.5` or `01:02:03.250` (H:MM:SS.mmm),
and the same clock written back (`0:01:02.500`)."""

from __future__ import annotations

import math
import re

from clipswap_video.errors import ConfigValueError

_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")


def parse_time(text: str, what: str) -> float:
    """Seconds from `text`; `what` names the option in the error (`--start`).

    Raises:
        ConfigValueError: not a time, or negative.
    """
    value = text.strip()
    match = _CLOCK.fullmatch(value)
    if match is not None:
        hours, minutes, seconds = match.groups()
        if float(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
            raise ConfigValueError(f"{what} {text!r}: minutes and seconds run from 0 to 59")
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigValueError(
            f"{what} {text!r} is not a time: give seconds (12.5) or H:MM:SS.mmm (0:01:02.5)"
        ) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigValueError(f"{what} {text!r}: a time is a number of seconds from 0")
    return seconds


def format_time(seconds: float) -> str:
    """`seconds` as H:MM:SS.mmm, the form `parse_time` reads back."""
    millis = round(seconds * 1000)
    minutes, millis = divmod(millis, 60_000)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{millis / 1000:06.3f}"


__all__ = ["format_time", "parse_time"]
