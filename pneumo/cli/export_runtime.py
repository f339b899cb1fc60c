"""`python -m pneumo export-runtime [--model DIR]`: write a bundle's LiteRT inference graph
(pneumo.models.runtime_export), for a bundle made before `train` and `ensemble` wrote it."""
from __future__ import annotations

import argparse

from pneumo import config
from pneumo.inference.native_stderr import native_stderr_silenced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pneumo export-runtime",
                                     description="Export a bundle's inference graph to LiteRT (no TensorFlow at run time).")
    parser.add_argument("--model", help="bundle folder (default: the shipped model)")
    args = parser.parse_args(argv)
    with native_stderr_silenced():        # TensorFlow's native start-up lines and the converter's
        from pneumo.models.runtime_export import export_runtime   # TensorFlow: only this command needs it
        info = export_runtime(args.model or config.default_model_dir(), log=lambda _: None)
    print(f"exported {info['encoder']} + {info['head']} + {info['cam']} (probe max |diff| "
          f"{info['probe_max_abs_diff']:.1e}, Grad-CAM {info['cam_probe_max_abs_diff']:.1e})")
    return 0
