"""Parity, torch side (project venv): writes the FaceDancer graph JSONs, and
after tools/parity_keras.py has run, converts each Keras .h5 with the project's
h5py-only converter, runs it in torch fp32 and reports max |diff| against the
Keras outputs. Figures go to docs/parity.md by hand.

    python tools/parity_torch.py write DIR
    python tools/parity_torch.py compare DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from clipswap_video.models import load
from clipswap_video.models.facedancer_spec import (
    GeneratorSpec,
    attribute_encoder_config,
    discriminator_config,
    generator_config,
)
from clipswap_video.models.retinaface import load_retinaface

GRAPHS = {
    "facedancer_s256": GeneratorSpec(mapping_size=256),
    "facedancer_s512": GeneratorSpec(mapping_size=512),
    "mixed_up_types": GeneratorSpec(
        up_types=("affa", "d_affa", "do_affa", "add", "no_skip", "concat")
    ),
}


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in GRAPHS.items():
        config, _ = generator_config(spec)
        config["config"]["name"] = name
        (folder / f"{name}.json").write_text(json.dumps(config))
    for name, build in (("discriminator", discriminator_config),
                        ("attribute_encoder", attribute_encoder_config)):  # fmt: skip
        config, _ = build()
        (folder / f"{name}.json").write_text(json.dumps(config))


def compare(folder: Path) -> int:
    worst = 0.0
    for h5 in sorted(folder.glob("*.h5")):
        arrays = np.load(h5.with_suffix(".npz"))
        inputs = [torch.from_numpy(arrays[k]) for k in sorted(arrays.files) if k.startswith("arr_")]
        inputs = [x.permute(0, 3, 1, 2) if x.dim() == 4 else x for x in inputs]
        # RetinaFace's custom FPN / SSH layers are not interpreted: the hand-written
        # module's raw head outputs (before priors / decode / NMS) are compared.
        model = load_retinaface(h5) if h5.stem.startswith("retinaface") else load(h5)
        with torch.no_grad():
            result = model(*inputs)
        outputs = result if isinstance(result, tuple) else (result,)
        for index, out in enumerate(outputs):
            expected = arrays[f"output_{index}"]
            got = (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).numpy()
            diff = np.abs(got - expected)
            worst = max(worst, float(diff.max()))
            label = h5.stem if len(outputs) == 1 else f"{h5.stem}[{index}]"
            print(f"{label}: max |diff| {diff.max():.3g}, mean {diff.mean():.3g}, "
                  f"output range ±{np.abs(expected).max():.2f}")  # fmt: skip
    print(f"worst max |diff| {worst:.3g} (target <= 1e-4)")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    sys.exit(write(folder) if action == "write" else compare(folder))
