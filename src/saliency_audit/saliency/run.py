"""One shard of maps: load a model (and its randomization state), compute each method, return maps.

Used by ``workflow_scripts/saliency_maps.py`` for both job shapes (``saliency.job_per``: one
method per job, or every method of a (model, state, shard) in one job). Seeds: the noise of
method ``m`` on shard ``k`` is seeded by :func:`saliency_audit.saliency.jobs.noise_seed` (per
model and state under ``saliency.noise: independent``, shared by every model and state under
``common``) and image ``i`` of the shard draws from ``default_rng([that, i])``.
"""

from __future__ import annotations

import logging

import numpy as np

from .base import engine_for, find_gradcam_layer
from .jobs import noise_seed  # noqa: F401  (the one noise-seed function; tests import it from here)
from .registry import get_method, gradient_count, spec

log = logging.getLogger(__name__)


def load_model_state(model_path, arch: str, state: str, randomization: dict | None):
    """The trained model, with randomization ``state`` applied unless it is ``original``.

    ``randomization``: None for ``original``, else ``{'seed', 'initializer'}`` from
    :func:`saliency_audit.saliency.jobs.job_params`."""
    from ..models import load_model
    from ..models.randomize import apply_state

    model = load_model(model_path)
    if state == "original":
        return model
    return apply_state(model, arch, state, randomization["seed"], initializer=randomization["initializer"])


def shard_maps(model, x: np.ndarray, methods: dict, *, arch: str, seeds: dict, batch_size=None,
               channel_reduction="abs_sum", gradcam_layer=None, target="positive", cam_normalization="minmax",
               chunk=None, progress=None, desc="maps"):
    """Raw maps of every method for the model inputs ``x`` (N, S, S, 3) of one shard.

    Parameters
    ----------
    methods : dict
        method id -> parameters (resolved or partial; defaults are filled in).
    seeds : dict
        method id -> noise seed (:func:`noise_seed`); methods without noise need none.
    target : {'positive', 'predicted'}
        The explained output (``saliency.target``, :class:`.base.GradientEngine`).
    cam_normalization : {'minmax', 'released'}
        ``saliency.cam_normalization``: how GGCAM combines its parts (:class:`.methods.GuidedGradCam`).
    chunk : int or None
        Images per call (bounds memory; the noise does not depend on it). Default: the batch size.
    progress : callable or None
        ``progress(total=..., desc=...)`` -> a tqdm-like bar. It counts input-gradient
        evaluations (:func:`.registry.gradient_count`, at least 1 per image and method), so its
        rate and time left hold across cheap and costly methods; its postfix names the method and
        the images done.
    desc : str
        The bar's label (the job's model, state and shard).

    Returns
    -------
    dict
        method id -> float32 (N, S, S).
    """
    out = {}
    n = len(x)
    if any(spec(m).kind == "cam" or m == "GGCAM" for m in methods):
        # one compiled function for input and Grad-CAM-layer gradients: a single trace per job
        engine_for(model, batch_size, target).default_layer = find_gradcam_layer(model, arch, gradcam_layer)
    cost = {name: max(1, gradient_count(name, params)) for name, params in methods.items()}
    bar = progress(total=n * sum(cost.values()), desc=desc, unit="grad") if progress else None
    for name, params in methods.items():
        m = get_method(name, params, batch_size=batch_size, channel_reduction=channel_reduction, arch=arch,
                       gradcam_layer=gradcam_layer, seed=seeds.get(name, 0), target=target,
                       cam_normalization=cam_normalization)
        step = int(chunk or m.engine(model).batch_size)
        parts = []
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            parts.append(m.compute(model, x[lo:hi], index=np.arange(lo, hi)))
            if bar is not None:
                bar.set_postfix_str(f"{name} {hi}/{n} images", refresh=False)
                bar.update((hi - lo) * cost[name])
        size = x.shape[1:3]
        out[name] = np.concatenate(parts) if parts else np.zeros((0,) + tuple(size), np.float32)
        log.info("%s: %d maps", name, n)
    if bar is not None:
        bar.close()
    return out
