"""What the GPU check reports about the machine, and the GPU's utilisation
sampled while a job runs (nvidia-smi; nothing where there is none)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import threading
from typing import Any

import av
import torch
from av.codec.hwaccel import hwdevices_available

from clipswap_video.media.encoder import encoder_opens
from clipswap_video.media.reader import nvdec_opens

_ENCODERS = ("libx264", "libx265", "h264_nvenc", "hevc_nvenc", "av1_nvenc", "libsvtav1")
_NVIDIA_SMI_S = 10.0


def environment(device: torch.device) -> dict[str, Any]:
    """Python, torch, CUDA, the GPU and its driver, PyAV/FFmpeg, and which video
    encoders and hardware decoders open here."""
    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "cpu_cores": len(os.sched_getaffinity(0)),
        "device": str(device),
        "pyav": av.__version__,
        "ffmpeg": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        figures |= {
            "gpu": properties.name,
            "gpu_memory_gib": round(properties.total_memory / 2**30, 1),
            "compute_capability": f"{properties.major}.{properties.minor}",
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "driver": _smi_query("driver_version", device),
        }
    figures["encoders_open"] = {name: encoder_opens(name) for name in _ENCODERS}
    figures["hw_devices"] = sorted(hwdevices_available())
    figures["nvdec_opens"] = nvdec_opens()
    return figures


def _smi_query(field: str, device: torch.device) -> str | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    done = subprocess.run(
        [smi, f"--query-gpu={field}", "--format=csv,noheader", "-i", str(device.index or 0)],
        capture_output=True,
        text=True,
        timeout=_NVIDIA_SMI_S,
        check=False,
    )
    return done.stdout.strip() or None


class UtilisationSampler:
    """GPU busy percentages sampled every 100 ms while in use (`with`), by
    nvidia-smi in the background; `mean` is None where it cannot run."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.samples: list[float] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> UtilisationSampler:
        smi = shutil.which("nvidia-smi")
        if smi is None or self.device.type != "cuda":
            return self
        self._process = subprocess.Popen(
            [
                smi,
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-lms",
                "100",
                "-i",
                str(self.device.index or 0),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=_NVIDIA_SMI_S)
        if self._reader is not None:
            self._reader.join(timeout=_NVIDIA_SMI_S)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                continue  # a header or a "[N/A]"

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


__all__ = ["UtilisationSampler", "environment"]
