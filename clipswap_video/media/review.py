"""The review video of a job (`--review`): input | output side by side, written
in the same pass as the output, from the same decoded frames.

`ReviewingWriter` is the output's VideoWriter; given a review path it hands
every frame it encodes to a thread of its own that scales, draws
(media/review_picture.py) and encodes the review, so the review gets exactly
the output's frames and overlaps the swap instead of adding to it. The review
is a VideoWriter too, at the review's size: the same pts and time base, the
same disclosure tag (it shows synthetic media), and the input's audio and
subtitles, so a supervisor can judge lip sync. Both files are completed
before either is renamed into place, so a job that fails or is interrupted
leaves neither.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path

from clipswap_video._threads import Consumer
from clipswap_video.config_sections import VideoSettings
from clipswap_video.errors import OutputPathError
from clipswap_video.media.frame import Frame, frame_from_rgb
from clipswap_video.media.output_file import OutputOptions, check_output_path, same_file
from clipswap_video.media.probe import MediaInfo
from clipswap_video.media.writer import VideoWriter

log = logging.getLogger(__name__)

REVIEW_PRESET = "veryfast"
"""The review's encoder preset (x264's names; NVENC's p2). The review takes the
output's encoder, quality and pixel format, but it is a check copy: at
1280x360, libx264's veryfast costs a third of medium's (the default) CPU time
per frame at the same crf (docs/benchmarks.md, "The review video")."""


class ReviewingWriter(VideoWriter):
    """A VideoWriter for `output` that, given a `review` path, also writes the
    review of the frames it is given (up to `queue_size` of them wait for it)."""

    def __init__(
        self,
        output: Path,
        *,
        review: Path | None,
        queue_size: int,
        source: MediaInfo,
        settings: VideoSettings,
        options: OutputOptions,
    ) -> None:
        self._review: _ReviewThread | None = None  # abort() may run inside super().__init__
        super().__init__(output, source=source, settings=settings, options=options)
        if review is None:
            return
        try:
            if same_file(review, output):
                raise OutputPathError(f"review {review} is the output file; give it its own name")
            check_output_path(source.path, review, what="review")
            self._review = _ReviewThread(
                review, queue_size, source=source, settings=settings, options=options
            )
        except BaseException:
            self.abort()
            raise

    def write(self, frame: Frame) -> None:
        if self._review is not None:
            self._review.put(frame)
        super().write(frame)

    def complete(self) -> None:
        if self._review is not None:
            self._review.complete()
        super().complete()

    def publish(self) -> Path:
        published = super().publish()
        if self._review is not None:  # a rename: all that is left once the output is in place
            self._review.writer.publish()
        return published

    def abort(self) -> None:
        super().abort()
        if self._review is not None:
            self._review.abort()


class _ReviewThread:
    """The review's own VideoWriter, fed through a queue by a thread of its own."""

    def __init__(
        self,
        review: Path,
        queue_size: int,
        *,
        source: MediaInfo,
        settings: VideoSettings,
        options: OutputOptions,
    ) -> None:
        # OpenCV takes 0.4 s to import: only a job with a review loads it.
        from clipswap_video.media.review_picture import plan_layout

        self._layout = plan_layout(source.video)
        self.writer = VideoWriter(
            review,
            source=replace(source, video=self._layout.video(source.video)),
            # its own container's encoder: a ProRes master's review is still an .mp4
            settings=replace(settings, codec="auto", preset=REVIEW_PRESET),
            options=replace(options, announce=False),  # the output's copy said it
        )
        log.info("review %dx%d -> %s", self._layout.width, self._layout.height, review)
        self._stop = threading.Event()
        self._encoder = Consumer(self._write, maxsize=queue_size, stop=self._stop, name="review")

    def put(self, frame: Frame) -> None:
        self._encoder.put(frame)  # raises the review thread's error, if it failed

    def _write(self, frame: Frame) -> None:
        picture = self._layout.picture(frame)
        self.writer.write(Frame(frame.index, frame_from_rgb(picture, frame.decoded)))

    def complete(self) -> None:
        self._encoder.close()  # every frame encoded
        self.writer.complete()

    def abort(self) -> None:
        self._stop.set()  # the thread ends within a poll
        self._encoder.join()
        self.writer.abort()


__all__ = ["REVIEW_PRESET", "ReviewingWriter"]
