"""Times a user types: `12.5` seconds, `1:02.5` or `01:02:03.250` (H:MM:SS.mmm)."""

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


__all__ = ["parse_time"]
