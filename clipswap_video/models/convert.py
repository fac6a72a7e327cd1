"""Converting Keras .h5 models to safetensors, and reading either form as a graph.

The .safetensors file holds every Keras array under `<layer>|<index>|<name>`
(index = its place in the layer's `weight_names`, which AdaIN's positional
weights need) and the graph as `model_config` metadata, so loading it needs
neither TensorFlow nor h5py and rebuilds exactly the module the .h5 gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clipswap_video.atomic import atomic_output
from clipswap_video.errors import CorruptWeightsError, InputNotFoundError, OutputPathError
from clipswap_video.models.keras_h5 import KerasGraph, LayerWeights, load_h5_graph, read_keras_h5

FORMAT = "clipswap-keras-graph/1"


def convert(source: Path, target: Path, config_json: Path | None = None) -> KerasGraph:
    """Writes `target` (.safetensors) from the Keras `source`; returns the loaded model."""
    if target.suffix != ".safetensors":
        raise OutputPathError(f"{target}: the converted file must end in .safetensors")
    keras = read_keras_h5(source, config_json)
    model = KerasGraph(keras.config, keras.weights).eval()  # refuses what it cannot run
    save_converted(keras.config, keras.weights, target, keras.keras_version, source.name)
    return model


def save_converted(
    config: dict[str, object],
    weights: LayerWeights,
    target: Path,
    keras_version: str = "",
    source: str = "",
) -> None:
    """Writes a graph config and its Keras-layout arrays as a converted file, atomically."""
    from safetensors.numpy import save_file

    tensors = {
        f"{layer}|{index}|{name}": np.ascontiguousarray(array)
        for layer, arrays in weights.items()
        for index, (name, array) in enumerate(arrays)
    }
    metadata = {
        "format": FORMAT,
        "model_config": json.dumps(config),
        "keras_version": keras_version,
        "source": source,
    }
    with atomic_output(target) as partial:
        save_file(tensors, str(partial), metadata=metadata)


def load_graph(path: Path | str) -> KerasGraph:
    """The KerasGraph of a converted .safetensors file or of a Keras .h5, in eval mode."""
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5", ".keras"):  # CLIPSWAP.H5 is found too
        return load_h5_graph(path)
    config, weights = read_converted(path)
    return KerasGraph(config, weights).eval()


def read_converted(path: Path) -> tuple[dict[str, object], LayerWeights]:
    """The graph config and Keras-layout arrays of a converted .safetensors file."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InputNotFoundError(f"model file {path} does not exist")
    try:
        with safe_open(str(path), framework="numpy") as file:
            metadata = file.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise CorruptWeightsError(
                    f"{path} is not a converted clipswap-video model; "
                    "make one with `clipswap-video weights convert SRC.h5 DST.safetensors`"
                )
            entries = sorted((_split(key), key) for key in file.keys())
            weights: LayerWeights = {}
            for (layer, _, name), key in entries:
                weights.setdefault(layer, []).append((name, file.get_tensor(key)))
    except (SafetensorError, OSError) as error:
        raise CorruptWeightsError(f"{path} cannot be read as safetensors ({error})") from None
    return json.loads(metadata["model_config"]), weights


def _split(key: str) -> tuple[str, int, str]:
    layer, index, name = key.split("|", 2)
    return layer, int(index), name


__all__ = ["FORMAT", "convert", "load_graph", "read_converted", "save_converted"]
