"""Models: classifiers (InceptionV3, DenseNet121), localizers (U-Net, RetinaNet), training, the AVG
baseline and model randomization.

Public interface used by other stages:

- :func:`build_classifier` (arch, image_size, weights, seed) -> Keras model with a ``logits`` output
- :func:`load_model` (path) -> Keras model (uncompiled)
- :func:`localizer_maps` (model, arch, images_uint8) -> (N,S,S) float32 maps in [0,1]
- :func:`saliency_audit.models.randomize.apply_state` (model, arch, state, seed_base) -> model
- :func:`arch_function` (arch, field) -> the function the architecture registry
  (:mod:`saliency_audit.architectures`) names for ``setup``, ``score`` or ``maps``
"""

from __future__ import annotations

import importlib

import numpy as np

from ..architectures import LOCALIZER_FOR_TASK, get_arch
from ..errors import InputError
from .classifiers import build_classifier

__all__ = ["arch_function", "build_classifier", "load_model", "localizer_maps"]


def arch_function(arch: str, field: str):
    """The function the registry's ``field`` (``setup``, ``score`` or ``maps``) names for ``arch``,
    imported on first use (the registry holds ``"module:function"`` names, no TensorFlow)."""
    spec = get_arch(arch)
    name = getattr(spec, field)
    if name is None:
        raise InputError(f"architecture {arch!r} ({spec.role}) has no {field} function")
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_model(path):
    """Load a ``model.keras`` written by the training rule (uncompiled: maps and inference only)."""
    from pathlib import Path

    import keras

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: model file not found")
    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot load Keras model ({exc})") from exc


def localizer_maps(model, arch: str, images_uint8, score_threshold: float = 0.01, batch_size: int = 16) -> np.ndarray:
    """Pixel maps (N,S,S) float32 in [0,1] of a localizer for uint8 images (N,S,S).

    U-Net: the per-pixel sigmoid. RetinaNet: for every pixel the highest score of the detected
    boxes with score > ``score_threshold`` covering it (Arun et al. 2021, Methods).
    """
    from .data import predict_images

    images_uint8 = np.asarray(images_uint8)
    if images_uint8.ndim != 3:
        raise InputError(f"localizer_maps: expected uint8 images (N,S,S), got shape {images_uint8.shape}")
    if not len(images_uint8):
        return np.zeros((0,) + images_uint8.shape[1:], np.float32)
    if arch not in LOCALIZER_FOR_TASK.values():
        raise InputError(f"localizer_maps: {arch!r} is not a localizer ({' or '.join(LOCALIZER_FOR_TASK.values())})")
    out = predict_images(model, images_uint8, batch_size)
    maps = arch_function(arch, "maps")(out, images_uint8.shape[1], score_threshold)
    return np.clip(maps, 0.0, 1.0).astype(np.float32)


def _unet_maps(outputs, image_size: int, score_threshold: float) -> np.ndarray:
    """The registry's ``maps`` of U-Net: the per-pixel sigmoid."""
    from .unet import unet_maps

    return unet_maps(outputs)


def _retinanet_maps(outputs, image_size: int, score_threshold: float) -> np.ndarray:
    """The registry's ``maps`` of RetinaNet: per pixel the best covering box's score above the threshold."""
    from .retinanet import retinanet_maps

    return retinanet_maps(outputs, image_size, score_threshold)
