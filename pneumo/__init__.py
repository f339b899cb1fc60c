"""pneumo: a multimodal (chest X-ray + admission labs) second opinion on pneumonia.

    from pneumo import Predictor, Case, read_image, parse_labs
    predictor = Predictor.load()                      # the shipped bundle on LiteRT (no TensorFlow)
    result = predictor.predict(Case(read_image("film.png"), parse_labs("labs.csv", predictor.panel)))

Subpackages, lowest layer first: data, models, inference / explain / evaluation,
service / experiments / training, cli / present / qa (README, Architecture).
"""
from importlib import import_module

__version__ = "0.1.0"

# public name -> the module that defines it; imported on first use, so `import pneumo` stays light
_PUBLIC = {
    "Predictor": "pneumo.inference.predictor",
    "Case": "pneumo.inference.case",
    "Result": "pneumo.inference.case",
    "Explanation": "pneumo.inference.case",
    "read_image": "pneumo.data.imaging",
    "parse_labs": "pneumo.data.labs",
    "LabPanel": "pneumo.data.labs",
    "load_bundle": "pneumo.models.bundle",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'pneumo' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
