"""Start-up fix for the LMMs-Eval venv (`make bench-env` installs it with a .pth line): make PyPI's CUDA
build of torchvision importable beside the CPU torch wheel.

Beside a CPU torch, torchvision's compiled ops fail to load and its import dies in
`_meta_registrations` ("operator torchvision::nms does not exist"); transformers' video processors need
torchvision. Declaring the two op schemas torchvision registers unconditionally lets its pure-Python
transforms import (the same cure as videosavi/compat.py, which this venv does not have).

It must run before anything imports torchvision, without slowing every Python start in the venv: a
meta-path hook waits for the first `import torchvision`, and applies the schemas only when the installed
torchvision is a CUDA build (`+cu` in its version.py; the distribution metadata says plain 0.28.0) and
torch is not (`cuda = None` in torch/version.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

_LIBRARY: Any = None  # the schemas live as long as this object


def _cuda_build(package: str) -> bool:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return False
    version = Path(spec.origin).parent / "version.py"
    try:
        text = version.read_text(encoding="utf-8")
    except OSError:
        return False
    if package == "torch":
        return "cuda = None" not in text and "cuda: Optional[str] = None" not in text
    return "+cu" in text


class _Hook:
    """A finder that finds nothing: it only runs the fix when torchvision is first looked up."""

    done = False

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        global _LIBRARY
        if name != "torchvision" or _Hook.done:
            return None
        _Hook.done = True
        sys.meta_path.remove(self)
        if _cuda_build("torchvision") and not _cuda_build("torch"):
            import torch

            _LIBRARY = torch.library.Library("torchvision", "DEF")
            _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        return None


if not any(isinstance(f, _Hook) for f in sys.meta_path):
    sys.meta_path.insert(0, _Hook())
