"""The GPU check's training figure: steps per second of `train default` with
full-size networks (random frozen ArcFace, VGG16 and an open_clip ViT-B-32 of
the released shape: none of their files can travel to the GPU machine) at the
default batch of 10; `small`: the tiny config. Faces are found with the bundled
RetinaFace-MobileNet before the clock starts."""

from __future__ import annotations

import json
import time

from clipswap_video.bench.gpu_setup import PartOptions
from clipswap_video.demo import write_demo_media
from clipswap_video.swap.device import resolve_device
from clipswap_video.train import Trainer, load_train_config

VIT_B_32 = (
    "{embed_dim=512, vision_cfg={image_size=224, layers=12, width=768, patch_size=32}, "
    "text_cfg={context_length=77, vocab_size=49408, width=512, heads=8, layers=12}}"
)
"""open_clip's ViT-B-32 configuration (its model_configs/ViT-B-32.json)."""


def training_steps_per_s(options: PartOptions, precision: str) -> float:
    folder = options.folder / "train"
    media = write_demo_media(folder / "data", seconds=1.0, width=640, height=360, audio=False)
    steps = 3 if options.small else 30
    overrides = [
        # Photos only: videos are sampled with decord, 13 MiB more to carry.
        f"data.paths={json.dumps([str(media.source_image)])}",
        f"data.cache_dir={json.dumps(str(folder / 'face_cache'))}",
        'data.detector="retinaface_mobile"',
        f"run.out_dir={json.dumps(str(folder / f'run-{precision}'))}",
        f"run.device={json.dumps(str(resolve_device(options.device)))}",
        f'run.precision="{precision}"',
        f"run.steps={steps}",
        f"run.checkpoint_every={steps}",
        f"run.sample_every={steps}",
    ]
    if not options.small:
        overrides += [
            'identity.weights=""',
            'perceptual.weights=""',
            'clip.weights=""',
            f"clip.model_config={VIT_B_32}",
        ]
    trainer = Trainer(load_train_config("tiny" if options.small else "default", overrides))
    ends: list[float] = []  # when each step ended
    try:
        trainer.prepare_data()
        trainer.fit(on_step=lambda step, metrics: ends.append(time.perf_counter()))
    finally:
        trainer.close()
    # From the end of the first step (its kernels' first launches are set-up) to
    # the end of the one before last (the last saves and exports the networks).
    return round((len(ends) - 2) / (ends[-2] - ends[0]), 2)


__all__ = ["VIT_B_32", "training_steps_per_s"]
