"""One shard of maps: load a model, put it in each randomization state, compute each method.

Used by ``workflow_scripts/saliency_maps.py`` for every job shape (``saliency.job_per``: one
method of one state per job, every method of one state, or every state and method of a model).
:func:`model_maps` loads the model once and traces each compiled gradient function once: every
further state is made by assigning the trained weights back into the same variables and
re-initialising that state's blocks (:func:`saliency_audit.models.randomize.apply_state`), so a
state costs its gradient evaluations only, not a TensorFlow start-up, a model load and new traces. Seeds: the noise of
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


def model_maps(model_path, arch: str, states, x: np.ndarray, methods: dict, *, seeds: dict, randomization,
               batch_size=None, target="positive", progress=None, desc="maps", todo=None, **kwargs):
    """Yield ``(state, maps)`` for every state of ``states`` in order, from one loaded model.

    Parameters
    ----------
    states : list of str
        ``original`` and/or randomization states (:func:`saliency_audit.plan.parse_state`).
    seeds : dict
        state -> {method id -> noise seed} (:func:`saliency_audit.saliency.jobs.job_params`).
    randomization : dict or None
        ``{'seed', 'initializer'}`` for :func:`~saliency_audit.models.randomize.apply_state`
        (None when every state is ``original``).
    progress, desc
        One bar over every state, method and image (``desc`` labels it; the postfix names the state).
    batch_size, target, kwargs
        As :func:`shard_maps` (``channel_reduction``, ``gradcam_layer``, ``cam_normalization``, ``chunk``).
    todo : dict or None
        state -> the method ids to compute in it (default: every method of every state); a state
        with none is neither made nor yielded, and the model is not loaded when nothing is to do
        (:meth:`.store.MapStore.fetch`: the others' maps came from the map store).

    Each state's weights are exactly those of a fresh load followed by ``apply_state`` (the trained
    values are restored before every state; the randomized blocks' seeds do not depend on the order),
    so the maps equal those of one job per state.
    """
    from ..models import load_model
    from ..models.randomize import apply_state

    todo = {s: list(methods) for s in states} if todo is None else todo
    states = [s for s in states if todo[s]]
    if not states:
        return
    model = load_model(model_path)
    trained = [w.numpy() for w in model.weights] if any(s != "original" for s in states) else None
    cost = sum(max(1, gradient_count(m, methods[m])) for s in states for m in todo[s])
    bar = progress(total=len(x) * cost, desc=desc, unit="grad") if progress else None
    for k, state in enumerate(states):
        if k and trained is not None:
            for w, value in zip(model.weights, trained):
                w.assign(value)
        if state != "original":
            apply_state(model, arch, state, randomization["seed"], initializer=randomization["initializer"])
        engine_for(model, batch_size, target).sync_guided()  # the guided-backprop clone takes the new weights
        yield state, shard_maps(model, x, {m: methods[m] for m in todo[state]}, arch=arch, seeds=seeds[state],
                                batch_size=batch_size, target=target, bar=bar, label=state, **kwargs)
    if bar is not None:
        bar.close()


def shard_maps(model, x: np.ndarray, methods: dict, *, arch: str, seeds: dict, batch_size=None,
               channel_reduction="abs_sum", gradcam_layer=None, target="positive", cam_normalization="minmax",
               chunk=None, progress=None, desc="maps", bar=None, label=""):
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
    bar, label
        An open bar to advance instead (:func:`model_maps`: one bar over every state; it is not
        closed here) and the state named in its postfix.

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
    own = bar is None and progress is not None
    if own:
        bar = progress(total=n * sum(cost.values()), desc=desc, unit="grad")
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
                bar.set_postfix_str(f"{label} {name} {hi}/{n} images".lstrip(), refresh=False)
                bar.update((hi - lo) * cost[name])
        size = x.shape[1:3]
        out[name] = np.concatenate(parts) if parts else np.zeros((0,) + tuple(size), np.float32)
        log.info("%s%s: %d maps", f"{label} " if label else "", name, n)
    if own:
        bar.close()
    return out
