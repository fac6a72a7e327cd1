"""`--review OUT.mp4`: input | output side by side, written in the same pass.

The review is checked against the files themselves: its frames have the
output's pts, and its halves match this test's own scaling of the decoded
input and output frames everywhere but the drawn boxes.
"""

from __future__ import annotations

import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from face_fixtures import line_path, write_actor_clip
from test_cli_errors import assert_one_line_error

from clipswap_video.config import load_settings
from clipswap_video.demo import astronaut_actor
from clipswap_video.errors import ExitCode
from clipswap_video.media import Frame, probe
from clipswap_video.media.review_picture import Box, ReviewLayout, plan_layout, timecode
from clipswap_video.media.segments import Span
from clipswap_video.pipeline import run_video
from media_fixtures import write_clip

PASSTHROUGH = load_settings(overrides=["swap.swapper=none"])
MIN_PSNR_DB = 36.0
"""Each half against this test's scaling, measured (the review's crf 18
encode is the loss): 38.8-44.0 dB for 640 px halves; the same half shifted
by one pixel measures 27.4-34.9 dB, nearest-neighbour scaling 31.1-37.7."""
SMALL_MIN_PSNR_DB = 28.0
"""The same for 64 px halves, 31.2-34.3 dB: the sharp edges of so small a
picture lose more to 4:2:0 (one pixel shifted: 22.2-22.4 dB)."""


def decoded(path: Path) -> tuple[list[np.ndarray], list[int]]:
    """Every frame of `path` as stored (RGB), and its pts."""
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return [frame.to_ndarray(format="rgb24") for frame in frames], [f.pts for f in frames]


def scaled(picture: np.ndarray, layout: ReviewLayout) -> np.ndarray:
    """This test's own scaling: upright as the layout says, then OpenCV's area resize."""
    upright = np.ascontiguousarray(np.rot90(picture, layout.quarter_turns))
    return cv2.resize(upright, (layout.half_width, layout.height), interpolation=cv2.INTER_AREA)


def outside(boxes: list[Box], layout: ReviewLayout) -> np.ndarray:
    """A mask of the review picture without the drawn boxes."""
    mask = np.ones((layout.height, layout.width), bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(y0, 0) : y1, max(x0, 0) : x1] = False
    return mask


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / max(error, 1e-10)))


def assert_review_shows(
    review: Path, original: Path, output: Path, min_psnr_db: float = MIN_PSNR_DB
) -> ReviewLayout:
    """The review has the output's frames and pts, the planned size, the input
    scaled on the left, the output on the right and the timecode box drawn."""
    layout = plan_layout(probe(original).video)
    reviews, review_pts = decoded(review)
    inputs, input_pts = decoded(original)
    outputs, output_pts = decoded(output)
    assert review_pts == output_pts and len(reviews) == len(outputs) > 0
    inputs = [inputs[input_pts.index(pts)] for pts in output_pts]  # the output's frames
    assert reviews[0].shape == (layout.height, layout.width, 3)
    mask = outside([layout.timecode_box, *layout.label_boxes], layout)
    left, right = mask[:, : layout.half_width], mask[:, layout.half_width :]
    x0, y0, x1, y1 = layout.timecode_box
    for picture, before, after in zip(reviews, inputs, outputs, strict=True):
        plain_input, plain_output = scaled(before, layout), scaled(after, layout)
        assert psnr(picture[:, : layout.half_width][left], plain_input[left]) > min_psnr_db
        assert psnr(picture[:, layout.half_width :][right], plain_output[right]) > min_psnr_db
        box = picture[y0:y1, x0 : layout.half_width]
        plain = plain_input[y0:y1, x0 : layout.half_width]
        assert np.abs(box.astype(int) - plain).mean() > 20  # the dark box and its digits
    return layout


def names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_a_passthrough_review_is_input_beside_output_scaled(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mp4", width=800, height=450, frames=8, audio=["aac"])
    output, review = tmp_path / "out.mp4", tmp_path / "review.mp4"
    code, err = cli(source_image, clip, output, "--swapper", "none", "--review", review)
    assert code == ExitCode.OK, err
    assert f"wrote the review {review}" in err
    layout = assert_review_shows(review, clip, output)
    assert (layout.width, layout.height) == (1280, 360)  # 640 px halves, even heights
    info = probe(review)
    assert [stream.kind for stream in info.streams] == ["video", "audio"]  # for lip sync
    assert info.metadata["comment"].startswith("processed by clipswap-video")
    assert names(tmp_path) == ["in.mp4", "out.mp4", "review.mp4"]


def test_a_dropped_stream_is_said_once_with_a_review(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mkv", frames=30, audio=["aac"], subtitles=True)
    output, review = tmp_path / "out.mp4", tmp_path / "review.mp4"
    code, err = cli(source_image, clip, output, "--swapper", "none", "--review", review)
    assert code == ExitCode.OK, err
    assert err.count("dropped subtitle stream #2") == 1, err  # the review drops it too
    assert [stream.kind for stream in probe(review).streams] == ["video", "audio"]


def test_a_sideways_phone_clip_is_reviewed_upright(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", width=96, height=64, frames=4, rotation=90)
    output, review = tmp_path / "out.mp4", tmp_path / "review.mp4"
    run_video(source_image, clip, output, PASSTHROUGH, review=review)
    layout = assert_review_shows(review, clip, output, SMALL_MIN_PSNR_DB)
    assert (layout.width, layout.height, layout.quarter_turns) == (128, 96, 1)
    assert probe(review).video.rotation == 0  # turned already: no display matrix


def test_a_face_swap_review_shows_the_swap_on_the_right(
    cli, source_image: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    clip = tmp_path / "in.mp4"
    walk = line_path((260, 180), (340, 180), 1, 1.25)
    write_actor_clip(clip, [astronaut_actor(walk)], seconds=0.2)
    output, review = tmp_path / "out.mp4", tmp_path / "review.mp4"
    code, err = cli(source_image, clip, output, "--swapper", "classic", "--review", review)
    assert code == ExitCode.OK, err
    layout = assert_review_shows(review, clip, output)
    first = decoded(review)[0][0].astype(int)
    assert layout.half_width == 640  # a 640 px input keeps its size
    left, right = first[:, :640], first[:, 640:]
    face = (slice(130, 230), slice(250, 330))  # where the clip's face starts
    assert np.abs(left[face] - right[face]).mean() > 5  # the swapped face, not the input
    corner = (slice(250, 290), slice(560, 600))  # far from the face and the boxes
    assert np.abs(left[corner] - right[corner]).mean() < 2
    assert probe(review).metadata["comment"].startswith("synthetic: face swapped")


def test_the_review_gets_only_the_frames_the_output_gets(
    source_image: Path, tmp_path: Path
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=12, fps=10)
    pts = decoded(clip)[1]
    span = Span(start_pts=pts[5], end_pts=None, seek_pts=None, frames=7)  # 5 warm-up frames
    output, review = tmp_path / "part.mp4", tmp_path / "review.mp4"
    run_video(source_image, clip, output, PASSTHROUGH, span=span, review=review)
    assert decoded(review)[1] == decoded(output)[1] == pts[5:]
    assert [stream.kind for stream in probe(review).streams] == ["video"]  # as the segment


@pytest.mark.parametrize(
    ("make_review", "expected", "words"),
    [
        (lambda d, c: d / "out.mp4", ExitCode.BAD_OUTPUT_PATH, "review"),
        (lambda d, c: c, ExitCode.BAD_OUTPUT_PATH, "is the input file"),
        (lambda d, c: d / "missing" / "r.mp4", ExitCode.OUTPUT_UNWRITABLE, "does not exist"),
        (lambda d, c: d / "review", ExitCode.BAD_OUTPUT_PATH, "needs a file extension"),
        (lambda d, c: d / "review.xyzzy", ExitCode.BAD_OUTPUT_PATH, "extension"),
    ],
)
def test_a_bad_review_path_writes_nothing(
    cli, source_image: Path, tmp_path: Path, make_review, expected, words
) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mp4", frames=4)
    review = make_review(tmp_path, clip)
    code, err = cli(source_image, clip, tmp_path / "out.mp4", "--review", review)
    assert_one_line_error(code, err, expected, words)
    assert names(tmp_path) == ["in.mp4"]


def test_the_review_path_must_not_be_the_output(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mp4", frames=4)
    output = tmp_path / "out.mp4"
    code, err = cli(source_image, clip, output, "--review", tmp_path / "." / "out.mp4")
    assert_one_line_error(code, err, ExitCode.BAD_OUTPUT_PATH, f"review {tmp_path}")
    assert "is the output file" in err and names(tmp_path) == ["in.mp4"]


def test_an_interrupted_run_leaves_neither_file(source_image: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=20)

    def interrupt_at_ten(frame: Frame) -> None:
        if frame.index == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_video(
            source_image,
            clip,
            tmp_path / "out.mp4",
            PASSTHROUGH,
            stages=[interrupt_at_ten],
            review=tmp_path / "review.mp4",
        )
    assert names(tmp_path) == ["in.mp4"]
    assert not [t for t in threading.enumerate() if t.name in ("decode", "encode", "review")]


def test_a_failing_review_stops_the_job_and_leaves_neither_file(
    source_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_clip(tmp_path / "in.mp4", frames=20)
    picture = ReviewLayout.picture

    def fail_at_five(layout: ReviewLayout, frame: Frame) -> np.ndarray:
        if frame.index == 5:
            raise OSError("disk full")
        return picture(layout, frame)

    monkeypatch.setattr(ReviewLayout, "picture", fail_at_five)
    with pytest.raises(OSError, match="disk full"):  # raised in the review thread
        run_video(source_image, clip, tmp_path / "out.mp4", PASSTHROUGH, review=tmp_path / "r.mp4")
    assert names(tmp_path) == ["in.mp4"]
    assert not [t for t in threading.enumerate() if t.name in ("decode", "encode", "review")]


def test_a_failed_job_leaves_neither_file(cli, source_image: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clip = write_clip(tmp_path / "in.mp4", frames=4)  # no face in it
    code, err = cli(
        source_image,
        clip,
        tmp_path / "out.mp4",
        "--swapper",
        "classic",
        "--strict-faces",
        "--review",
        tmp_path / "review.mp4",
    )
    assert_one_line_error(code, err, ExitCode.NOTHING_SWAPPED, "no face was swapped")
    assert names(tmp_path) == ["in.mp4"]


def test_timecodes() -> None:
    assert timecode(0) == "00:00:00.000"
    assert timecode(float(Fraction(1001, 30000))) == "00:00:00.033"
    assert timecode(3725.5) == "01:02:05.500"
    assert timecode(-0.04) == "-00:00:00.040"
