"""``falldown_image_train``: LAVIS's ``blip_image_train`` with an autocontrast that works.

LAVIS 1.0.2's ``randaugment.autocontrast_func`` computes ``offset = -low * scale``
with ``low`` a uint8 scalar: ``-3`` wraps to ``253`` and the lookup table turns
the whole channel white (numpy 2 warns "overflow encountered in scalar
negative"; numpy 1.26 is silent). ``blip_image_train`` picks AutoContrast in
about one image of ten, so training images are silently corrupted. This
processor is LAVIS's own, with the RandomAugment step replaced by one whose
AutoContrast computes in integers; every other augmentation is LAVIS's.
Imports LAVIS (and torch): import it through ``curation.training.plugin``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from lavis.processors import randaugment
from lavis.processors.blip_processors import BlipImageTrainProcessor
from lavis.processors.randaugment import RandomAugment
from numpy.typing import NDArray

from curation.errors import UsageError

PROCESSOR_NAME = "falldown_image_train"


def autocontrast(img: NDArray[np.uint8], cutoff: int = 0) -> NDArray[np.uint8]:
    """``PIL.ImageOps.autocontrast`` on an HxWxC uint8 array (LAVIS's, without the wrap)."""
    n_bins = 256

    def tune_channel(ch: NDArray[np.uint8]) -> NDArray[np.uint8]:
        cut = cutoff * ch.size // 100
        if cut == 0:
            high, low = int(ch.max()), int(ch.min())  # Python ints: no uint8 arithmetic
        else:
            hist = np.bincount(ch.ravel(), minlength=n_bins)
            low = int(np.argmax(np.cumsum(hist) > cut))
            high = n_bins - 1 - int(np.argmax(np.cumsum(hist[::-1]) > cut))
        if high <= low:
            return ch
        scale = (n_bins - 1) / (high - low)
        table = np.arange(n_bins) * scale - low * scale
        return table.clip(0, n_bins - 1).astype(np.uint8)[ch]

    if img.ndim == 2:
        return tune_channel(img)
    return np.stack([tune_channel(img[..., c]) for c in range(img.shape[-1])], axis=-1)


class FixedRandomAugment(RandomAugment):
    """LAVIS's ``RandomAugment`` (same random draws), AutoContrast computed correctly."""

    def __call__(self, img: Any) -> NDArray[np.uint8]:
        if self.isPIL:
            img = np.array(img)
        for name, prob, level in self.get_random_ops():
            if np.random.random() > prob:
                continue
            args = randaugment.arg_dict[name](level)
            func = autocontrast if name == "AutoContrast" else randaugment.func_dict[name]
            img = func(img, *args)
        return img


class FalldownImageTrainProcessor(BlipImageTrainProcessor):
    """``blip_image_train`` with ``FixedRandomAugment`` in place of LAVIS's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        steps = self.transform.transforms
        for i, step in enumerate(steps):
            if type(step) is RandomAugment:
                fixed = FixedRandomAugment(step.N, step.M, isPIL=step.isPIL, augs=step.augs)
                steps[i] = fixed
                return
        raise UsageError(
            "LAVIS's blip_image_train has no RandomAugment step to replace; this LAVIS "
            "is not the supported 1.0.2 (see curation/training/_lavis_catalogue.py)"
        )
