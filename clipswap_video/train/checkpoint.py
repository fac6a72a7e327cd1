"""Training checkpoints: one safetensors file with the step, both networks, both
optimizers' state, the loss scalers and the random generators, written
atomically (clipswap_video.atomic), so a run killed at any moment resumes
from its last checkpoint and continues exactly as if it had not stopped.

Tensors: `<module>.<state key>`, `optim.<name>.<param index>.<key>` and
`rng.<name>`. Metadata (strings): format, step, version, the effective config
as TOML, each optimizer's param_groups and each scaler's state as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from clipswap_video import __version__
from clipswap_video.atomic import atomic_output
from clipswap_video.errors import CorruptWeightsError

FORMAT = "clipswap-train-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class TrainState:
    """What a checkpoint holds, by name: the things the trainer owns."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    scalers: dict[str, torch.amp.GradScaler]
    generators: dict[str, torch.Generator]


def save_checkpoint(path: Path, state: TrainState, step: int, config_toml: str) -> None:
    """Writes the checkpoint of `state` at `step`, atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    metadata = {"format": FORMAT, "step": str(step), "version": __version__, "config": config_toml}
    for name, module in state.modules.items():
        tensors.update({f"{name}.{key}": value for key, value in module.state_dict().items()})
    for name, optimizer in state.optimizers.items():
        saved = optimizer.state_dict()
        for index, entries in saved["state"].items():
            tensors.update(
                {
                    f"optim.{name}.{index}.{key}": torch.as_tensor(value)
                    for key, value in entries.items()
                }
            )
        metadata[f"optim.{name}"] = json.dumps(saved["param_groups"])
    for name, scaler in state.scalers.items():
        metadata[f"scaler.{name}"] = json.dumps(scaler.state_dict())
    for name, generator in state.generators.items():
        tensors[f"rng.{name}"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    cpu = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as partial:
        save_file(cpu, str(partial), metadata=metadata)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and metadata of a checkpoint file."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as file:
            metadata = file.metadata() or {}
            tensors = {key: file.get_tensor(key) for key in file.keys()}
    except (SafetensorError, OSError) as error:
        raise CorruptWeightsError(f"checkpoint {path} cannot be read ({error})") from None
    if metadata.get("format") != FORMAT:
        raise CorruptWeightsError(f"{path} is not a clipswap-video training checkpoint")
    return tensors, metadata


def restore(path: Path, state: TrainState) -> int:
    """Loads the checkpoint at `path` into `state`; returns its step.

    Raises:
        CorruptWeightsError: an unreadable file, or one whose networks do not fit.
    """
    tensors, metadata = read_checkpoint(path)
    try:
        for name, module in state.modules.items():
            module.load_state_dict(section(tensors, f"{name}."))
        for name, optimizer in state.optimizers.items():
            optimizer.load_state_dict(_optimizer_state(tensors, metadata, name))
    except (RuntimeError, KeyError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [""])[0]
        raise CorruptWeightsError(f"checkpoint {path} does not fit this model ({reason})") from None
    for name, scaler in state.scalers.items():
        scaler.load_state_dict(json.loads(metadata[f"scaler.{name}"]))
    for name, generator in state.generators.items():
        generator.set_state(tensors[f"rng.{name}"])
    torch.set_rng_state(tensors["rng.torch"])
    return int(metadata["step"])


def section(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under `prefix` (e.g. "generator."), with the prefix removed."""
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


def _optimizer_state(
    tensors: dict[str, torch.Tensor], metadata: dict[str, str], name: str
) -> dict[str, Any]:
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in section(tensors, f"optim.{name}.").items():
        index, _, entry = key.partition(".")
        per_param.setdefault(int(index), {})[entry] = value
    return {"state": per_param, "param_groups": json.loads(metadata[f"optim.{name}"])}


__all__ = [
    "CHECKPOINT_NAME",
    "FORMAT",
    "TrainState",
    "read_checkpoint",
    "restore",
    "save_checkpoint",
    "section",
]
