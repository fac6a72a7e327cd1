"""Media I/O with PyAV: probe, streaming reader, writer, stream passthrough.

Knows nothing of faces. Frames keep their pts and time base from decode to
encode; every stream but the processed video is copied packet for packet,
except audio the output container cannot hold, which is transcoded once.
"""

from clipswap_video.media.frame import Frame
from clipswap_video.media.image import IMAGE_SUFFIXES, read_image
from clipswap_video.media.output_file import check_output_path
from clipswap_video.media.probe import VIDEO_SUFFIXES, MediaInfo, StreamInfo, VideoInfo, probe
from clipswap_video.media.reader import VideoReader
from clipswap_video.media.writer import VideoWriter

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "MediaInfo",
    "StreamInfo",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "check_output_path",
    "probe",
    "read_image",
]
