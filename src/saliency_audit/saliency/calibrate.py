"""Calibration of the cost model: gradient evaluations per second per architecture and image size,
and XRAI segmentation seconds per image, measured on the machine that runs this (imports TensorFlow).

The table it writes is read by :mod:`saliency_audit.saliency.cost` (TensorFlow-free) to size the
maps jobs and to estimate a run before submitting it (rules ``calibrate`` and ``estimate``).
A measurement is short: one traced warm-up call and ``batches`` timed calls of the vanilla
gradient (:class:`.methods.Gradient`, the engine every gradient method runs on) on random inputs
of an untrained model, so it costs about ``batches + 1`` batches per architecture and size.
"""

from __future__ import annotations

import platform
import time

import numpy as np

from .cost import CALIBRATION_COLUMNS


def device_name() -> str:
    """``gpu:<name>`` when TensorFlow sees a GPU, else ``cpu:<machine>`` (the table's ``device``)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return "gpu:" + str(details.get("device_name", gpus[0].name)).replace(",", " ")
    return "cpu:" + (platform.processor() or platform.machine() or "unknown").replace(",", " ")


def measure_gradients(arch: str, image_size: int, batch_size: int, batches: int = 2, seed: int = 0) -> dict:
    """Seconds per input-gradient evaluation of ``arch`` at ``image_size`` in calls of ``batch_size``.

    Returns a row of the calibration table (:data:`.cost.CALIBRATION_COLUMNS`)."""
    from ..models.classifiers import build_classifier
    from .registry import get_method

    model = build_classifier(arch, image_size, weights="none", seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(batch_size, image_size, image_size, 3)).astype(np.float32)
    method = get_method("GRAD", batch_size=batch_size, arch=arch)
    method.compute(model, x)  # traces and compiles the gradient function
    t0 = time.perf_counter()
    for _ in range(batches):
        method.compute(model, x)
    seconds = (time.perf_counter() - t0) / (batches * batch_size)
    return dict(kind="gradient", arch=arch, image_size=image_size, batch_size=batch_size,
                seconds=seconds, evals_per_s=1.0 / seconds, n=batches * batch_size, device=device_name())


def measure_segmentation(image_size: int, images: int = 3, seed: int = 0) -> dict:
    """Seconds per image of XRAI's segmentation (:func:`.xrai.region_matrix`) at ``image_size``, on
    smooth random images (a blurred noise field in the model's [-1, 1] input range, 3 channels)."""
    from scipy import ndimage

    from .xrai import region_matrix

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for _ in range(images):
        field = ndimage.gaussian_filter(rng.normal(size=(image_size, image_size)), image_size / 32)
        field = (field - field.min()) / (np.ptp(field) or 1.0) * 2 - 1
        region_matrix(np.repeat(field[..., None], 3, axis=-1).astype(np.float32))
    seconds = (time.perf_counter() - t0) / images
    return dict(kind="xrai_segments", arch="", image_size=image_size, batch_size=1,
                seconds=seconds, evals_per_s=1.0 / seconds, n=images, device="cpu:" + platform.machine())


def calibrate(archs, image_sizes, batch_size: int, batches: int = 2) -> list[dict]:
    """Rows of the calibration table: every (arch, image size), then the segmentation per size."""
    rows = [measure_gradients(a, s, batch_size, batches) for a in archs for s in image_sizes]
    rows += [measure_segmentation(s) for s in image_sizes]
    return [{k: r[k] for k in CALIBRATION_COLUMNS} for r in rows]
