"""Media I/O with PyAV: probe, streaming reader, writer, stream passthrough.

Knows nothing of faces. Frames keep their pts and time base from decode to
encode; every stream but the processed video is copied packet for packet.
"""

from clipswap_video.media.frame import Frame, RgbImage
from clipswap_video.media.image import read_image
from clipswap_video.media.probe import MediaInfo, StreamInfo, VideoInfo, probe
from clipswap_video.media.reader import VideoReader
from clipswap_video.media.writer import VideoWriter, check_output_path, partial_path

__all__ = [
    "Frame",
    "MediaInfo",
    "RgbImage",
    "StreamInfo",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_output_path",
    "partial_path",
    "probe",
    "read_image",
]
