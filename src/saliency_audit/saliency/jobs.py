"""Parameters of a maps job, from the config (no TensorFlow: the rules call this at parse time)."""

from __future__ import annotations

from .. import plan
from .registry import resolve_params


def job_params(config: dict, dataset: str, model: str, shard, methods) -> dict:
    """Every result-changing setting of the maps job of (dataset, model, shard) for ``methods``.

    Returns ``methods`` (id -> resolved parameters), ``seeds`` (id -> noise seed, see
    :func:`saliency_audit.saliency.run.noise_seed`), ``arch``, ``randomization_seed`` (the
    ``seed_base`` of :func:`saliency_audit.models.randomize.apply_state`) and ``gradcam_layer``.
    """
    sal = config["saliency"]
    arch = plan.arch_of(model)
    return dict(
        methods={m: resolve_params(m, (sal.get("params") or {}).get(m)) for m in methods},
        seeds={m: plan.derive_seed(config["seed"], dataset, "saliency", m, int(shard)) for m in methods},
        arch=arch,
        randomization_seed=plan.derive_seed(config["seed"], dataset, model, "randomization"),
        gradcam_layer=(sal.get("gradcam_layer") or {}).get(arch),
    )
