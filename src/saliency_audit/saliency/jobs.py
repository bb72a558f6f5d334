"""Parameters of a maps job, from the config (no TensorFlow: the rules call this at parse time)."""

from __future__ import annotations

from .. import plan
from .registry import resolve_params, spec

#: ``mem_mb`` of the saliency rules (MB). The peak is one compiled gradient call of a batch: measured
#: by benchmarks/mem_saliency.py (asserted in tests/test_resources.py) on CPU for InceptionV3 at 320 px,
#: SIG 25 x 25, the CPU batch of 32: peak RSS ~2.8 GB (0.8 GB of it before the first map). On a GPU
#: the activations live in device memory and the host holds the CUDA/XLA runtime. A larger
#: ``saliency.batch_size`` or image size on CPU grows the peak by ~63 MB per item at 320 px: the
#: maps rules request :func:`.cost.maps_mem_mb` (that figure x the batch, with a margin), this
#: constant being its floor.
MAPS_MEM_MB = 8000
#: ``saliency.noise`` values
NOISE_MODES = ("independent", "common")


def noise_seed(seed: int, dataset: str, method: str, shard, model: str | None = None, state: str | None = None) -> int:
    """The noise seed of ``method`` on test shard ``shard``; image ``i`` of the shard draws its
    noise from ``numpy.random.default_rng([noise_seed, i])``.

    Without ``model`` (``saliency.noise: common``) the seed is the same for every model and state:
    the maps being compared share one noise pattern (common random numbers, a variance-reduction
    choice that inflates SmoothGrad similarity between models). With ``model`` and ``state``
    (``independent``, the default, as the released code's fresh noise per map) every (model, state,
    method, image) draws its own noise, still seeded.
    """
    keys = (dataset, "saliency", method, int(shard)) + (() if model is None else (model, state))
    return plan.derive_seed(seed, *keys)


def has_noise(method: str) -> bool:
    """The method draws random noise (SmoothGrad, SmoothGrad-IG): it gets a noise seed."""
    return "noise" in spec(method).defaults


def job_params(config: dict, dataset: str, model: str, state: str, shard, methods) -> dict:
    """The result-changing settings of the maps job of (dataset, model, state, shard) for ``methods``
    that differ between jobs (the rules pass the shared ones, e.g. ``saliency.target``, directly).

    Each value depends only on what it changes, so a config change reruns exactly those jobs:

    ``methods``
        id -> resolved parameters;
    ``seeds``
        id -> noise seed (:func:`noise_seed`), for methods with noise only;
    ``arch``, ``gradcam_layer``
        the architecture and its Grad-CAM layer override (or None);
    ``randomization``
        None for ``original`` (so ``randomization.*`` never reruns the trained model's maps), else
        ``{'seed': seed_base, 'initializer': ...}`` for :func:`saliency_audit.models.randomize.apply_state`
        (the cascade repeat is in the state's name);
    ``cam_normalization``
        ``saliency.cam_normalization`` when GGCAM is among ``methods`` (its ``released`` form is made
        at map time), else None.
    """
    sal = config["saliency"]
    arch = plan.arch_of(model)
    common = sal["noise"] == "common"
    rnd = None
    if state != "original":
        rnd = {
            "seed": plan.derive_seed(config["seed"], dataset, model, "randomization"),
            "initializer": config["randomization"]["initializer"],
        }
    return dict(
        methods={m: resolve_params(m, (sal.get("params") or {}).get(m)) for m in methods},
        seeds={
            m: noise_seed(config["seed"], dataset, m, shard, *(() if common else (model, state)))
            for m in methods
            if has_noise(m)
        },
        arch=arch,
        randomization=rnd,
        gradcam_layer=(sal.get("gradcam_layer") or {}).get(arch),
        cam_normalization=sal["cam_normalization"] if "GGCAM" in methods else None,
    )


def states_params(config: dict, dataset: str, model: str, states, shard, methods) -> dict:
    """The params of a maps job computing ``methods`` for every state of ``states`` (one state for
    ``saliency.job_per: method | model_state``; every state of the model for ``model``), built from
    :func:`job_params` of each state, so each value still depends only on what it changes:
    ``model``, ``states``, ``methods``, ``seeds`` (state -> {method -> seed}), ``arch``, ``gradcam_layer``,
    ``cam_normalization``, and ``randomization`` (None when every state is ``original``)."""
    per = {s: job_params(config, dataset, model, s, shard, methods) for s in states}
    first = per[states[0]]
    return dict(
        model=model,
        states=list(states),
        methods=first["methods"],
        seeds={s: p["seeds"] for s, p in per.items()},
        arch=first["arch"],
        randomization=next((p["randomization"] for p in per.values() if p["randomization"]), None),
        gradcam_layer=first["gradcam_layer"],
        cam_normalization=first["cam_normalization"],
    )
