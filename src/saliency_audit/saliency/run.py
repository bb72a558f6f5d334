"""One shard of maps: load a model (and its randomization state), compute each method, return maps.

Used by ``workflow_scripts/saliency_maps.py`` for both job shapes (``saliency.job_per``: one
method per job, or every method of a (model, state, shard) in one job). Seeds: the noise of
method ``m`` on shard ``k`` of dataset ``d`` is seeded by ``plan.derive_seed(seed, d, 'saliency',
m, k)`` and image ``i`` of the shard draws from ``default_rng([that, i])`` -- the same noise for
every model and state, so that differences between maps come from the models (common random
numbers for the randomization, repeatability and reproducibility comparisons).
"""

from __future__ import annotations

import logging

import numpy as np

from .. import plan
from .base import engine_for, find_gradcam_layer
from .registry import get_method, spec

log = logging.getLogger(__name__)


def noise_seed(seed: int, dataset: str, method: str, shard) -> int:
    """The noise seed of ``method`` on test shard ``shard`` (same for every model and state)."""
    return plan.derive_seed(seed, dataset, "saliency", method, int(shard))


def load_model_state(model_path, arch: str, state: str, seed_base: int):
    """The trained model, with randomization ``state`` applied unless it is ``original``."""
    from ..models import load_model
    from ..models.randomize import apply_state

    return apply_state(load_model(model_path), arch, state, seed_base=seed_base)


def shard_maps(model, x: np.ndarray, methods: dict, *, arch: str, seeds: dict, batch_size=None,
               channel_reduction="abs_sum", gradcam_layer=None, chunk=None, progress=None):
    """Raw maps of every method for the model inputs ``x`` (N, S, S, 3) of one shard.

    Parameters
    ----------
    methods : dict
        method id -> parameters (resolved or partial; defaults are filled in).
    seeds : dict
        method id -> noise seed (:func:`noise_seed`).
    chunk : int or None
        Images per call (bounds memory; the noise does not depend on it). Default: the batch size.
    progress : callable or None
        ``progress(total=..., desc=...)`` -> a tqdm-like bar.

    Returns
    -------
    dict
        method id -> float32 (N, S, S).
    """
    out = {}
    n = len(x)
    if any(spec(m).kind == "cam" or m == "GGCAM" for m in methods):
        # one compiled function for input and Grad-CAM-layer gradients: a single trace per job
        engine_for(model, batch_size).default_layer = find_gradcam_layer(model, arch, gradcam_layer)
    bar = progress(total=n * len(methods), desc="maps", unit="map") if progress else None
    for name, params in methods.items():
        m = get_method(name, params, batch_size=batch_size, channel_reduction=channel_reduction, arch=arch,
                       gradcam_layer=gradcam_layer, seed=seeds.get(name, 0))
        step = int(chunk or m.engine(model).batch_size)
        parts = []
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            parts.append(m.compute(model, x[lo:hi], index=np.arange(lo, hi)))
            if bar is not None:
                bar.set_postfix_str(name)
                bar.update(hi - lo)
        size = x.shape[1:3]
        out[name] = np.concatenate(parts) if parts else np.zeros((0,) + tuple(size), np.float32)
        log.info("%s: %d maps", name, n)
    if bar is not None:
        bar.close()
    return out
