"""Training ClipSwap (Yee et al., FG 2024): a FaceDancer generator trained with
FaceDancer's losses plus CLIP-contrastive and attribute-preservation losses.

    config = load_train_config("tiny", ["data.paths=['faces/']"])
    trainer = Trainer(config)
    trainer.prepare_data()
    trainer.resume()
    trainer.fit()

Layout: `config` (TOML settings), `data` (aligned-face datasets and batches),
`prefetch` (the next batches, drawn in a thread during the step), `losses`
(the loss functions), `networks` (the frozen networks they look through),
`trainer` (the loop), `metrics` (metrics.csv or TensorBoard), `checkpoint`
(resumable state), `export` (the generator as a file the `clipswap` swap
backend loads); the CLI is cli/train.py.
"""

from clipswap_video.train.config import TrainConfig, load_train_config
from clipswap_video.train.export import export_checkpoint, export_generator
from clipswap_video.train.trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "export_checkpoint", "export_generator", "load_train_config"]
