"""Parity, torch side (project venv): writes the FaceDancer graph JSONs, and
after tools/parity_keras.py has run, converts each Keras .h5 with the project's
h5py-only converter, runs it in torch fp32 and reports max |diff| against the
Keras outputs (for the narrow graphs in DIR/fixture also the hand-written
modules, `create_model(..., impl="modules")`). `pack` copies that fixture into the tests: each .h5
gzipped, as Keras wrote it, and its .npz. Figures go to docs/parity.md by hand.

    python tools/parity_torch.py write DIR
    python tools/parity_torch.py compare DIR
    python tools/parity_torch.py pack DIR/fixture tests/data/keras_parity
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from clipswap_video.models import create_model
from clipswap_video.models.facedancer_spec import GeneratorSpec, generator_config
from clipswap_video.models.retinaface import load_retinaface
from clipswap_video.models.training_specs import attribute_encoder_config, discriminator_config

GRAPHS = {
    "facedancer_s256": GeneratorSpec(mapping_size=256),
    "facedancer_s512": GeneratorSpec(mapping_size=512),
    "mixed_up_types": GeneratorSpec(
        up_types=("affa", "d_affa", "do_affa", "add", "no_skip", "concat")
    ),
}
FIXTURE_GENERATOR = GeneratorSpec(
    image_size=64,
    z_dim=16,
    channels=(4, 4, 8, 8, 8, 8),
    mapping_depth=1,
    mapping_size=8,
    up_types=("affa", "d_affa", "do_affa", "add", "no_skip", "concat"),
)
"""The committed fixture's generator: every up_type (and so every layer class of
the default graph), 11,249 parameters; 64 px keeps the bottleneck at 2x2."""


def write(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in GRAPHS.items():
        config, _ = generator_config(spec)
        config["config"]["name"] = name
        (folder / f"{name}.json").write_text(json.dumps(config))
    for name, build in (
        ("discriminator", discriminator_config),
        ("attribute_encoder", attribute_encoder_config),
    ):
        config, _ = build()
        (folder / f"{name}.json").write_text(json.dumps(config))
    (folder / "fixture").mkdir()
    config, _ = generator_config(FIXTURE_GENERATOR)
    (folder / "fixture" / "generator.json").write_text(json.dumps(config))


def compare(folder: Path) -> int:
    worst = 0.0
    for h5 in sorted(folder.glob("*.h5")):
        # RetinaFace's custom FPN / SSH layers are not interpreted: the hand-written
        # module's raw head outputs (before priors / decode / NMS) are compared.
        model = load_retinaface(h5) if h5.stem.startswith("retinaface") else create_model(h5)
        worst = max(worst, _report(h5.stem, model, h5.with_suffix(".npz")))
    for h5 in sorted((folder / "fixture").glob("*.h5")):
        npz = h5.with_suffix(".npz")
        built = {"interpreter": create_model(h5), "hand-written": create_model(h5, impl="modules")}
        for how, model in built.items():
            worst = max(worst, _report(f"fixture/{h5.stem} {how}", model, npz))
    print(f"worst max |diff| {worst:.3g} (target <= 1e-4)")
    return 0 if worst <= 1e-4 else 1


def _report(name: str, model: torch.nn.Module, npz: Path) -> float:
    """Prints max / mean |diff| of each output against Keras; returns the largest."""
    arrays = np.load(npz)
    inputs = [torch.from_numpy(arrays[k]) for k in sorted(arrays.files) if k.startswith("arr_")]
    inputs = [x.permute(0, 3, 1, 2) if x.dim() == 4 else x for x in inputs]
    with torch.no_grad():
        result = model(*inputs)
    outputs = result if isinstance(result, tuple) else (result,)
    worst = 0.0
    for index, out in enumerate(outputs):
        expected = arrays[f"output_{index}"]
        got = (out.permute(0, 2, 3, 1) if out.dim() == 4 else out).numpy()
        diff = np.abs(got - expected)
        worst = max(worst, float(diff.max()))
        label = name if len(outputs) == 1 else f"{name}[{index}]"
        print(
            f"{label}: max |diff| {diff.max():.3g}, mean {diff.mean():.3g}, "
            f"output range ±{np.abs(expected).max():.2f}"
        )
    return worst


def pack(fixture: Path, target: Path) -> int:
    """The fixture into the tests: each .h5 gzipped (mtime 0: a rerun writes the
    same bytes) and its .npz; what was there before is replaced."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for h5 in sorted(fixture.glob("*.h5")):
        packed = gzip.compress(h5.read_bytes(), compresslevel=9, mtime=0)
        (target / f"{h5.name}.gz").write_bytes(packed)
        shutil.copy(h5.with_suffix(".npz"), target)
    sizes = sum(path.stat().st_size for path in target.iterdir())
    print(f"{target}: {sizes / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    action, folder = sys.argv[1], Path(sys.argv[2])
    if action == "pack":
        sys.exit(pack(folder, Path(sys.argv[3])))
    sys.exit(write(folder) if action == "write" else compare(folder))
