"""The baseline every job is measured against: a plain decode + encode of a
clip in one loop with the job's encoder settings, the other streams copied."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import av
from av.video.stream import VideoStream

from clipswap_video.config_sections import VideoSettings
from clipswap_video.media import probe
from clipswap_video.media.containers import resolve_encoder
from clipswap_video.media.encoder import plan_encoder


def plain_transcode(source: Path, output: Path, settings: VideoSettings) -> None:
    """The baseline: one loop, decode video -> encode with the same settings, copy the rest."""
    video = probe(source).video
    plan = plan_encoder(video, settings, resolve_encoder(output, settings))
    with av.open(str(source)) as inp, av.open(str(output), "w") as out:
        in_video = inp.streams.video[0]
        in_video.thread_type = "AUTO"
        rate = in_video.average_rate
        out_video = cast(VideoStream, out.add_stream(plan.codec, rate=rate, options=plan.options))
        out_video.width, out_video.height, out_video.pix_fmt = (
            video.width,
            video.height,
            plan.pix_fmt,
        )
        out_video.time_base = out_video.codec_context.time_base = video.time_base
        copies = {
            s.index: out.add_stream_from_template(s) for s in inp.streams if s is not in_video
        }
        for packet in inp.demux():
            if packet.stream is in_video:
                for frame in cast(list[av.VideoFrame], packet.decode()):
                    frame.pict_type = av.video.frame.PictureType.NONE
                    out.mux(out_video.encode(frame))
            elif packet.size:
                packet.stream = copies[packet.stream_index]
                out.mux(packet)
        out.mux(out_video.encode(None))


__all__ = ["plain_transcode"]
