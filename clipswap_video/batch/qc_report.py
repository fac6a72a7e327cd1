"""`batch --report report.html`: one self-contained page a supervisor opens in any
browser (no external assets, no script, no server): a row per video with its
state, the source photo, the face at the worst moment (input | output), a plot
of identity distance and flicker over time with the flagged ranges shaded, the
flagged ranges as timestamps, and the error line of a failed job.

Every name, path and error comes from files and is written as escaped text:
a video named `<img src=x onerror=alert(1)>.mp4` shows as that text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clipswap_video.atomic import write_text_atomic
from clipswap_video.batch.run import BatchReport

_PLOT_WIDTH, _PLOT_HEIGHT = 360, 112
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"  # nothing runs
_PICTURE_HEIGHT = 80
_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
td, th { border-bottom: 1px solid #ccc; padding: 6px 10px; vertical-align: top; text-align: left; }
.done { color: #1a7f37; } .failed { color: #c62828; } .other { color: #9a6700; }
.name { max-width: 22em; overflow-wrap: anywhere; }
.error { color: #c62828; max-width: 30em; overflow-wrap: anywhere; }
.flags { color: #9a6700; }
.muted { color: #888; }
img { display: inline-block; border: 1px solid #ddd; margin-right: 2px; }
.pictures { white-space: nowrap; }
"""


def write_html_report(report: BatchReport, path: Path) -> None:
    """Writes the page for `report` to `path` atomically (a reader never sees half)."""
    write_text_atomic(path, render_html(report))


def render_html(report: BatchReport) -> str:
    """The page, as text."""
    counts = ", ".join(f"{n} {state}" for state, n in report.counts().items() if n)
    sources: dict[str, str] = {}
    rows = "\n".join(_row(job, sources) for job in report.jobs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_POLICY}">
<title>clipswap-video batch report</title><style>{_STYLE}</style></head>
<body>
<h1>Batch report</h1>
<p>{_text(counts)}; manifest {_text(str(report.manifest))}. Outputs are synthetic media:
faces swapped by clipswap-video.</p>
<table>
<tr><th>state</th><th>video</th><th>source | input | output</th>
<th>identity distance and flicker</th><th>flagged</th></tr>
{rows}
</table>
</body></html>
"""


def _row(job: dict[str, Any], sources: dict[str, str]) -> str:
    state = str(job.get("state", ""))
    style = state if state in ("done", "failed") else "other"
    quality = job.get("quality") or {}
    name = Path(str(job.get("input", ""))).name
    details = [f'<div class="muted">{_text(str(job.get("output", "")))}</div>']
    if job.get("frames"):
        swapped = job.get("frames_swapped")
        faces = f", faces swapped in {swapped}" if swapped is not None else ""
        details.append(f'<div class="muted">{_text(str(job["frames"]))} frames{_text(faces)}</div>')
    if job.get("error"):
        details.append(f'<div class="error">{_text(str(job["error"]))}</div>')
    return (
        f'<tr><td class="{style}">{_text(state)}</td>'
        f'<td class="name">{_text(name)}{"".join(details)}</td>'
        f'<td class="pictures">{_pictures(job, quality, sources)}</td>'
        f"<td>{_plot(quality)}</td>"
        f'<td class="flags">{_flags(quality)}</td></tr>'
    )


def _pictures(job: dict[str, Any], quality: dict[str, Any], sources: dict[str, str]) -> str:
    photos = job.get("sources") or []
    pictures = [_source_picture(str(photos[0]), sources)] if photos else []
    worst = quality.get("worst")
    if worst:
        for key in ("input", "output"):
            if worst.get(key):
                pictures.append(_image(worst[key], f"{key} at {_clock(worst['at_s'])}"))
        pictures.append(f'<div class="muted">worst {_text(str(worst["why"]))} at '
                        f"{_clock(worst['at_s'])}</div>")  # fmt: skip
    return "".join(pictures)


def _source_picture(path: str, cache: dict[str, str]) -> str:
    """The source photo, small (read once per batch; nothing if unreadable)."""
    if path not in cache:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        cache[path] = ""
        if image is not None and image.size:
            height, width = image.shape[:2]
            side = (max(1, round(width * _PICTURE_HEIGHT / height)), _PICTURE_HEIGHT)
            ok, encoded = cv2.imencode(
                ".png", cv2.resize(image, side, interpolation=cv2.INTER_AREA)
            )
            if ok:
                cache[path] = _image(base64.b64encode(encoded.tobytes()).decode("ascii"), "source")
    return cache[path]


def _image(png_base64: str, title: str) -> str:
    # base64 text has no character that needs escaping in an attribute
    return (
        f'<img src="data:image/png;base64,{png_base64}" height="{_PICTURE_HEIGHT}" '
        f'alt="{_text(title)}" title="{_text(title)}">'
    )


def _plot(quality: dict[str, Any]) -> str:
    """An inline SVG: identity distance (blue) and flicker ratio (orange, scaled to
    its own maximum) per second, flagged seconds shaded."""
    identity = quality.get("identity") or []
    flicker = quality.get("flicker") or []
    seconds = max(len(identity), len(flicker))
    if seconds == 0:
        return '<span class="muted">no faces looked for</span>'
    step = _PLOT_WIDTH / max(seconds, 1)
    shaded = "".join(
        f'<rect x="{flag["start_s"] * step:.1f}" y="0" '
        f'width="{(flag["end_s"] - flag["start_s"]) * step:.1f}" height="{_PLOT_HEIGHT}" '
        f'fill="{"#f8d7da" if flag["why"] == "identity drift" else "#fff3cd"}"/>'
        for flag in quality.get("flags", [])
    )
    top = max([value for value in flicker if value is not None] or [1.0])
    lines = _polyline(identity, step, 2.0, "#1f77b4") + _polyline(flicker, step, top, "#ff7f0e")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_PLOT_WIDTH}" height="{_PLOT_HEIGHT}" '
        f'role="img" aria-label="identity distance and flicker per second">'
        f'<rect width="100%" height="100%" fill="#fafafa" stroke="#ddd"/>{shaded}{lines}</svg>'
        f'<div class="muted"><span style="color:#1f77b4">identity distance</span> (0-2), '
        f'<span style="color:#ff7f0e">flicker</span> (0-{top:.3g}) over {seconds} s</div>'
    )


def _polyline(values: Sequence[float | None], step: float, top: float, colour: str) -> str:
    """One line per run of measured seconds (a gap where nothing was measured)."""
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
            continue
        y = _PLOT_HEIGHT - 4 - (_PLOT_HEIGHT - 8) * min(max(value / top, 0.0), 1.0)
        runs[-1].append(f"{(index + 0.5) * step:.1f},{y:.1f}")
    return "".join(
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(run)}"/>'
        if len(run) > 1
        else f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" r="2" '
        f'fill="{colour}"/>'
        for run in runs
        if run
    )


def _flags(quality: dict[str, Any]) -> str:
    flags = quality.get("flags") or []
    if not flags:
        return '<span class="muted">none</span>' if quality else ""
    return "<br>".join(
        f"{_clock(flag['start_s'])}-{_clock(flag['end_s'])} {_text(str(flag['why']))}"
        for flag in flags
    )


def _clock(seconds: float) -> str:
    whole = int(np.floor(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _text(value: str) -> str:
    return html.escape(value, quote=True)


__all__ = ["render_html", "write_html_report"]
