"""Make torchvision importable beside the CPU torch wheel.

PyPI only ships CUDA builds of torchvision. Beside a CPU torch its compiled ops fail to load and the
import dies in `_meta_registrations` ("operator torchvision::nms does not exist"). transformers needs
torchvision for every video processor and even to construct the Qwen-VL / LLaVA-OneVision / InternVL
processors. Declaring the two op schemas torchvision registers unconditionally lets the pure-Python
transforms (all transformers uses) import. This runs only where the normal import fails.
"""

from __future__ import annotations

import sys

_STUB_LIBRARY = None  # keep a reference alive: the schemas vanish with the Library object
STATUS = "unchecked"


def ensure_torchvision_importable() -> str:
    """Import torchvision, applying the op-schema shim only if the plain import fails.

    Returns "native", "shimmed" or "absent". Safe to call many times.
    """
    global _STUB_LIBRARY, STATUS
    if STATUS != "unchecked":
        return STATUS
    try:
        import torchvision

        STATUS = "native"
        return STATUS
    except ImportError:
        STATUS = "absent"
        return STATUS
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _STUB_LIBRARY = torch.library.Library("torchvision", "DEF")
    _STUB_LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _STUB_LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision  # noqa: F401

    STATUS = "shimmed"
    return STATUS
