# Cost model of the jobs (saliency_audit.saliency.cost): the calibration table in use and the
# functions that size the shard, train_model and maps rules' `runtime`/`mem_mb` and feed the `estimate` target (rules/estimate.smk).

from saliency_audit.saliency import cost  # noqa: E402
from saliency_audit.saliency.jobs import MAPS_MEM_MB  # noqa: E402

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
def _map_image_counts(path, mtime_ns, images, max_images):
    m = _read_manifest(path, mtime_ns)
    m = m[m["split"] == "test"]
    return {
        int(k): len(io.map_image_index(rows, images, max_images))
        for k, rows in m.groupby("shard")
    }


def map_images(dataset, shard):
    """Images of a test shard that get maps, from the manifest (the shard size before it exists)."""
    path = paths.path(paths.MANIFEST, RESULTS, dataset=dataset)
    if not os.path.exists(path):
        return config["shards"]["size"]
    counts = _map_image_counts(
        path,
        os.stat(path).st_mtime_ns,
        config["saliency"]["images"],
        config["saliency"]["max_images"],
    )
    return counts.get(int(shard), 0)


@functools.lru_cache(maxsize=None)
def _maps_seconds_per_image(arch, image_size, methods):
    params = {m: (config["saliency"]["params"] or {}).get(m) for m in methods}
    return cost.maps_job_seconds(
        CALIBRATION, params, arch, image_size, 1, config["saliency"]["batch_size"]
    )


def maps_runtime(wildcards, methods, model=None, states=1):
    """`runtime` (minutes) of a maps job: cost model x images in its shard x states, x cost.SAFETY
    + start-up (``model``: for a rule without a model wildcard)."""
    per_image = _maps_seconds_per_image(
        plan.arch_of(model or wildcards.model),
        model_image_size(wildcards.dataset),
        tuple(methods),
    )
    return cost.runtime_minutes(
        per_image * states * map_images(wildcards.dataset, wildcards.shard)
    )


def segments_runtime(wildcards):
    """`runtime` (minutes) of an xrai_segments job: segmentation seconds x images in its shard."""
    sec = cost.segmentation_seconds(CALIBRATION, model_image_size(wildcards.dataset))
    return cost.runtime_minutes(sec * map_images(wildcards.dataset, wildcards.shard))


@functools.lru_cache(maxsize=None)
def _split_shard_counts(path, mtime_ns):
    m = _read_manifest(path, mtime_ns)
    return {
        (str(sp), int(sh)): int(n)
        for (sp, sh), n in m.groupby(["split", "shard"]).size().items()
    }


def shard_images(dataset, split, shard):
    """Images of one shard of a split, from the manifest (shards.size before it exists)."""
    path = paths.path(paths.MANIFEST, RESULTS, dataset=dataset)
    if not os.path.exists(path):
        return config["shards"]["size"]
    counts = _split_shard_counts(path, os.stat(path).st_mtime_ns)
    return counts.get((split, int(shard)), config["shards"]["size"])


def shard_runtime(wildcards):
    """`runtime` (minutes) of a shard job: the calibration's ingest seconds x its images."""
    return cost.shard_runtime_minutes(
        CALIBRATION, shard_images(wildcards.dataset, wildcards.split, wildcards.shard)
    )


def shard_mem(wildcards):
    """`mem_mb` of a shard job: bench_ingest's per-image memory x its images + base."""
    return cost.shard_mem_mb(
        shard_images(wildcards.dataset, wildcards.split, wildcards.shard),
        config["image_size"],
    )


def split_images(dataset):
    """split -> images of a dataset: the manifest's, else the split file's or n_images x fractions."""
    path = paths.path(paths.MANIFEST, RESULTS, dataset=dataset)
    if os.path.exists(path):
        counts = _split_shard_counts(path, os.stat(path).st_mtime_ns)
        return {
            s: sum(n for (sp, _), n in counts.items() if sp == s)
            for s in ("train", "val", "test")
        }
    return cost.fallback_split_images(
        config, dataset, Path(workflow.basedir) / "resources" / "splits"
    )


def train_runtime(wildcards):
    """`runtime` (minutes) of a train_model job from the cost model (cost.training_seconds)."""
    return cost.runtime_minutes(
        cost.model_training_seconds(
            config,
            CALIBRATION,
            wildcards.dataset,
            wildcards.model,
            split_images(wildcards.dataset),
        )
    )


def maps_mem(wildcards):
    """`mem_mb` of a maps job: measured per-item memory x the gradient batch, floor MAPS_MEM_MB."""
    return cost.maps_mem_mb(
        model_image_size(wildcards.dataset),
        config["saliency"]["batch_size"],
        MAPS_MEM_MB,
    )


def estimate_test_images():
    """dataset -> {test shard: images that get maps}: from the manifest when it exists, else the
    published split file's test size (siim, rsna) or n_images x the test fraction, every test image
    counted (an upper bound under saliency.images: with_finding), in shards of shards.size.
    """
    from saliency_audit.saliency.cost import fallback_test_images

    out = {}
    for ds in plan.trained_datasets(config):
        path = paths.path(paths.MANIFEST, RESULTS, dataset=ds)
        if os.path.exists(path):
            out[ds] = dict(
                _map_image_counts(
                    path,
                    os.stat(path).st_mtime_ns,
                    config["saliency"]["images"],
                    config["saliency"]["max_images"],
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
        path = paths.path(paths.MANIFEST, RESULTS, dataset=ds)
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


def slurm_grouping():
    prof = yaml.safe_load(
        (Path(workflow.basedir) / "profiles/slurm/config.yaml").read_text()
    )
    return prof.get("groups", {}), prof.get("group-components", {})
