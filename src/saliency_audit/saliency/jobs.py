"""Parameters of a maps job, from the config (no TensorFlow: the rules call this at parse time)."""

from __future__ import annotations

from .. import plan
from .registry import resolve_params

#: ``mem_mb`` of the saliency rules (MB). The peak is one compiled gradient call of a batch: measured
#: by benchmarks/mem_saliency.py (asserted in tests/test_resources.py) on CPU for InceptionV3 at 320 px,
#: SIG 25 x 25, the CPU batch of 32: peak RSS ~2.8 GB (0.8 GB of it before the first map). On a GPU
#: the activations live in device memory and the host holds the CUDA/XLA runtime. A larger
#: ``saliency.batch_size`` on CPU grows the peak by ~63 MB per item at 320 px: raise mem_mb with
#: ``--set-resources saliency_maps:mem_mb=...``.
MAPS_MEM_MB = 8000


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
