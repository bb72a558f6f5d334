# Cost model of the maps jobs (saliency_audit.saliency.cost): the calibration table in use and the
# functions that size the maps rules' `runtime` and feed the `estimate` target (rules/estimate.smk).

from types import SimpleNamespace

from saliency_audit.saliency import cost  # noqa: E402

CALIBRATION_FILE = f"{RESULTS}/calibration.csv"
CALIBRATION_USED = (
    CALIBRATION_FILE
    if os.path.exists(CALIBRATION_FILE)
    else str(cost.SHIPPED_CALIBRATION)
)
CALIBRATION = cost.read_calibration(CALIBRATION_USED)
if cost.ingest_seconds(CALIBRATION) is None:  # `calibrate` measures the GPU work only
    CALIBRATION += [
        r
        for r in cost.read_calibration(cost.SHIPPED_CALIBRATION)
        if r["kind"] == "ingest"
    ]


@functools.lru_cache(maxsize=None)
def _map_image_counts(path, mtime_ns, images):
    m = _read_manifest(path, mtime_ns)
    m = m[m["split"] == "test"]
    if images != "all":
        m = m[m["has_finding"].astype(bool)]
    return {int(k): int(v) for k, v in m.groupby("shard").size().items()}


def map_images(dataset, shard):
    """Images of a test shard that get maps, from the manifest (the shard size before it exists)."""
    path = f"{RESULTS}/{dataset}/data/manifest.csv"
    if not os.path.exists(path):
        return config["shards"]["size"]
    counts = _map_image_counts(
        path, os.stat(path).st_mtime_ns, config["saliency"]["images"]
    )
    return counts.get(int(shard), 0)


@functools.lru_cache(maxsize=None)
def _maps_seconds_per_image(arch, image_size, methods):
    params = {m: (config["saliency"]["params"] or {}).get(m) for m in methods}
    return cost.maps_job_seconds(
        CALIBRATION, params, arch, image_size, 1, config["saliency"]["batch_size"]
    )


def maps_runtime(wildcards, methods):
    """`runtime` (minutes) of a maps job: cost model x images in its shard, x cost.SAFETY + start-up."""
    per_image = _maps_seconds_per_image(
        plan.arch_of(wildcards.model),
        model_image_size(wildcards.dataset),
        tuple(methods),
    )
    return cost.runtime_minutes(
        per_image * map_images(wildcards.dataset, wildcards.shard)
    )


def segments_runtime(wildcards):
    """`runtime` (minutes) of an xrai_segments job: segmentation seconds x images in its shard."""
    sec = cost.segmentation_seconds(CALIBRATION, model_image_size(wildcards.dataset))
    return cost.runtime_minutes(sec * map_images(wildcards.dataset, wildcards.shard))


def estimate_test_images():
    """dataset -> {test shard: images that get maps}: from the manifest when it exists, else the
    published split file's test size (siim, rsna) or n_images x the test fraction, every test image
    counted (an upper bound under saliency.images: with_finding), in shards of shards.size.
    """
    from saliency_audit.saliency.cost import fallback_test_images

    out = {}
    for ds in plan.trained_datasets(config):
        path = f"{RESULTS}/{ds}/data/manifest.csv"
        if os.path.exists(path):
            out[ds] = dict(
                _map_image_counts(
                    path, os.stat(path).st_mtime_ns, config["saliency"]["images"]
                )
            )
        else:
            out[ds] = fallback_test_images(
                config, ds, Path(workflow.basedir) / "resources" / "splits"
            )
    return out


def estimate_shard_images():
    """dataset -> images per shard of every split (the data stage): the manifest's, else the split
    sizes (cost.fallback_split_images) in shards of shards.size."""
    out = {}
    for ds in plan.trained_datasets(config):
        path = f"{RESULTS}/{ds}/data/manifest.csv"
        if os.path.exists(path):
            m = _read_manifest(path, os.stat(path).st_mtime_ns)
            out[ds] = [int(n) for n in m.groupby(["split", "shard"]).size()]
        else:
            sizes = cost.fallback_split_images(
                config, ds, Path(workflow.basedir) / "resources" / "splits"
            )
            out[ds] = [
                n
                for split in sizes
                for n in cost.in_shards(sizes[split], config["shards"]["size"]).values()
            ]
    return out


def requested_runtime(rule, wildcards):
    """The `runtime` (minutes) a rule requests for a job with these wildcards."""
    res = rule.rule.resources["runtime"]
    if callable(res):
        return res(wildcards)
    if getattr(
        res, "is_evaluable", lambda: False
    )():  # Snakemake 9 wraps it in a Resource
        return res.evaluate(wildcards).value
    return getattr(res, "value", res)


def slurm_grouping():
    prof = yaml.safe_load(
        (Path(workflow.basedir) / "profiles/slurm/config.yaml").read_text()
    )
    return prof.get("groups", {}), prof.get("group-components", {})
