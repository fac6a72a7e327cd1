"""Joining a split job's segment files into the output, without re-encoding.

Each segment file holds the encoded video of one span (media.segments) as a
closed GOP, with the input's own timestamps. The joiner remuxes their packets
in order into one output and copies every other stream of the input once,
interleaved, exactly as the writer does for a job run whole, so the output
has the input's audio (transcoded where the container cannot hold it, as a
whole job's), subtitles, data, attachments, chapters and tags.

PyAV, not FFmpeg's concat demuxer: the concat demuxer would need a second
pass to add the input's other streams (a third input to map), rewrites the
timestamps of each file from its own start (the input's own pts would have to
be restored with options per file) and reports a mismatched segment only as
a warning; remuxing packet by packet keeps the pts and dts as encoded and lets
every segment be checked as it is added.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.container
from av.video.stream import VideoStream

from clipswap_video.errors import CorruptInputError
from clipswap_video.media._open import FILE_DATA_ERRORS, ffmpeg_reason, open_input
from clipswap_video.media.output_file import OutputFile, OutputOptions
from clipswap_video.media.probe import MediaInfo, VideoInfo
from clipswap_video.media.tags import stream_tags


class SegmentJoiner(OutputFile):
    """The output of a split job: `add` each segment file in order, then `finish`."""

    def __init__(
        self,
        output: Path,
        *,
        source: MediaInfo,
        first_segment: Path,
        options: OutputOptions,
    ) -> None:
        self._first_segment = first_segment
        self._end: Fraction | None = None  # the latest frame time muxed so far
        super().__init__(output, source=source, options=options)

    def _add_video(self, container: av.container.OutputContainer, video: VideoInfo) -> VideoStream:
        with open_input(self._first_segment, what="segment") as segment:
            if not segment.streams.video:
                raise CorruptInputError(f"segment {self._first_segment} holds no video stream")
            stream = container.add_stream_from_template(segment.streams.video[0])
        assert isinstance(stream, VideoStream)
        stream.time_base = video.time_base  # the input's clock, as a whole job keeps it
        if video.display_matrix is not None:
            stream.set_display_matrix(video.display_matrix)
        stream.metadata.update(stream_tags(video.tags))
        self._extradata = stream.codec_context.extradata
        return stream

    def add(self, segment: Path) -> int:
        """Muxes every video packet of `segment`; returns how many.

        Raises:
            CorruptInputError: the file is unreadable, was encoded with other
                parameters than the first, or overlaps the one before in time.
        """
        count = 0
        end_before = self._end
        try:
            with open_input(segment, what="segment") as container:
                stream = container.streams.video[0]
                if stream.codec_context.extradata != self._extradata:
                    raise CorruptInputError(
                        f"segment {segment} was encoded with other parameters than the first "
                        "(workers with different encoders?); it cannot be joined without "
                        "re-encoding: set batch.segment_seconds = 0 or one video.codec"
                    )
                for packet in container.demux(stream):
                    if packet.size:
                        at = self._time(packet, segment)
                        if count == 0 and end_before is not None and at <= end_before:
                            raise CorruptInputError(
                                f"segment {segment} starts at or before the end of the one "
                                "before it"
                            )
                        self._end = at if self._end is None else max(self._end, at)
                        self._mux_video([packet], float(at))
                        count += 1
        except FILE_DATA_ERRORS as error:
            raise CorruptInputError(
                f"segment {segment} cannot be read ({ffmpeg_reason(error)})"
            ) from None
        return count

    @staticmethod
    def _time(packet: av.Packet, segment: Path) -> Fraction:
        if packet.pts is None or packet.time_base is None:
            raise CorruptInputError(f"segment {segment} has a video packet without a timestamp")
        return packet.pts * packet.time_base


__all__ = ["SegmentJoiner"]
