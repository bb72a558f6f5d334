"""Binary chest-radiograph classifiers: Keras InceptionV3 / DenseNet121 with a one-logit head.

Arun et al. (Radiology: AI 2021), Methods: ImageNet-pretrained Keras InceptionV3 and DenseNet121,
top replaced by global average pooling and a dense binary output, BCE loss, Adam. Here the head is
``GlobalAveragePooling2D(name="avg_pool") -> Dense(1, name="logits")`` so the model outputs the
positive-class logit (pre-sigmoid), the quantity the saliency methods explain.

The backbone is built on the model's own input tensor, so its layers (``mixed0`` ... ``mixed10``
for InceptionV3) are layers of the returned model itself (not a nested sub-model): Grad-CAM and
the randomization test address them by name.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from pathlib import Path

from ..architectures import CLASSIFIERS, get_arch
from ..errors import InputError

log = logging.getLogger(__name__)

#: arch id -> keras.applications constructor name (from the architecture registry)
BACKBONES = {a: get_arch(a).backbone for a in CLASSIFIERS}
#: the smallest input side each backbone accepts (from the architecture registry)
MIN_SIZE = {a: get_arch(a).min_size for a in CLASSIFIERS}
#: timeout (s) of the ImageNet download, so an offline machine fails instead of hanging
DOWNLOAD_TIMEOUT = 60


@contextlib.contextmanager
def _socket_timeout(seconds):
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def weights_source(weights: str | None) -> str:
    """Normalise the ``weights`` config value: ``imagenet``, ``none`` or a file path."""
    if weights is None or str(weights).lower() in ("none", "null", "random", ""):
        return "none"
    if str(weights).lower() == "imagenet":
        return "imagenet"
    return str(weights)


def build_classifier(arch: str, image_size: int, weights: str | None = "none", seed: int | None = None):
    """Build a classifier that maps (N, S, S, 3) images in [-1, 1] to the positive-class logit (N, 1).

    Parameters
    ----------
    arch : ``inceptionv3`` or ``densenet121``.
    image_size : input side S.
    weights : ``imagenet`` (keras.applications download; fails with :class:`InputError` when it
        cannot be fetched), ``none`` (random initialisation) or the path of a ``.weights.h5`` file
        of this same model (or a ``.keras`` model whose weights are copied).
    seed : seeds the random initialisation (``keras.utils.set_random_seed``).
    """
    import keras

    if arch not in BACKBONES:
        raise InputError(f"unknown classifier architecture {arch!r}; expected one of {sorted(BACKBONES)}")
    if image_size < MIN_SIZE[arch]:
        raise InputError(f"image_size {image_size} is too small for {arch} (minimum {MIN_SIZE[arch]})")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    src = weights_source(weights)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    ctor = getattr(keras.applications, BACKBONES[arch])
    if src == "imagenet":
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT):
                backbone = ctor(include_top=False, weights="imagenet", input_tensor=inputs)
        except Exception as exc:  # keras raises a bare Exception on URL failures
            raise InputError(
                f"models.{arch}.weights: ImageNet weights for {arch} could not be fetched ({exc}). "
                f"Put them in the Keras cache (~/.keras/models or $KERAS_HOME/models), give a file path, "
                f"or set models.{arch}.weights: none to train from random initialisation."
            ) from exc
    else:
        backbone = ctor(include_top=False, weights=None, input_tensor=inputs)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    out = keras.layers.Dense(1, name="logits", dtype="float32")(x)
    model = keras.Model(inputs, out, name=arch)
    if src not in ("imagenet", "none"):
        path = Path(src)
        if not path.exists():
            raise InputError(f"models.{arch}.weights: {path} does not exist (expected imagenet, none or a weights file)")
        try:
            if path.name.endswith(".keras"):
                other = keras.models.load_model(path, compile=False)
                model.set_weights(other.get_weights())
            else:
                model.load_weights(path)
        except (ValueError, OSError) as exc:
            raise InputError(f"models.{arch}.weights: {path} does not fit a {arch} at {image_size} px ({exc})") from exc
    return model
