"""Cost model of the maps jobs (no TensorFlow: the rules call it at parse time).

Seconds of one maps job = images in its shard x sum over its methods of

    (gradient evaluations + FORWARD_COST x forward evaluations) x seconds per gradient evaluation
    + XRAI's segmentation seconds when the job segments (``algorithm: fast``),

with the evaluation counts from the method registry (:func:`.registry.gradient_count`,
:func:`.registry.forward_count`) and the seconds from a calibration table: per architecture, image
size and batch size, the seconds of one input-gradient evaluation, and per image size the seconds
of segmenting one image (rule ``calibrate``, :mod:`.calibrate`; without it the table shipped in
``resources/calibration_cpu.csv``, measured on the development machine's CPU).

A job's requested ``runtime`` (minutes) is ``STARTUP_MINUTES + SAFETY x expected minutes``. The same
model sizes the data stage's shard jobs (:func:`shard_runtime_minutes`, :func:`shard_mem_mb`: the
``ingest`` rows and benchmarks/bench_ingest.py's memory), training (:func:`training_seconds`: epochs x
images x one gradient evaluation) and the maps jobs' memory (:func:`maps_mem_mb`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from .. import plan
from ..errors import InputError
from .registry import forward_count, gradient_count, resolve_params, spec

#: columns of a calibration table (CSV): ``kind`` is ``gradient`` (seconds per input-gradient
#: evaluation of ``arch`` at ``image_size`` in calls of ``batch_size``) or ``xrai_segments`` (seconds
#: per image of XRAI's segmentation at ``image_size``) or ``ingest`` (CPU seconds per image of the data
#: stage's shard jobs, ``arch`` = the file format); ``n``: evaluations (images) timed.
CALIBRATION_COLUMNS = ("kind", "arch", "image_size", "batch_size", "seconds", "evals_per_s", "n", "device")
#: the table shipped with the repository (measured on the development machine's CPU by
#: workflow_scripts/calibrate.py; README, Slurm section)
SHIPPED_CALIBRATION = Path(__file__).resolve().parents[3] / "resources" / "calibration_cpu.csv"
#: a forward-only evaluation costs about a third of a forward + backward one
FORWARD_COST = 1 / 3
#: requested runtime = STARTUP_MINUTES + SAFETY x expected: the calibration is measured on random
#: inputs of one machine, a shared node or a slower GPU can be a few times slower, and a job killed
#: at its time limit costs more than queueing for unused time
SAFETY = 3
#: minutes for a job's start-up (environment, TensorFlow import, model load, tracing the gradient)
STARTUP_MINUTES = 10


def read_calibration(path) -> list[dict]:
    """Rows of a calibration table, typed; a missing column or bad value names the file and row."""
    path = Path(path)
    rows = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CALIBRATION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: calibration table lacks column(s) {missing}; expected {list(CALIBRATION_COLUMNS)}")
        for i, row in enumerate(reader, start=2):
            try:
                row.update(image_size=int(row["image_size"]), batch_size=int(row["batch_size"]),
                           seconds=float(row["seconds"]), evals_per_s=float(row["evals_per_s"]), n=int(row["n"]))
            except ValueError as e:
                raise InputError(f"{path}, row {i}: expected integer image_size/batch_size/n and numeric seconds ({e})") from None
            if row["seconds"] <= 0:
                raise InputError(f"{path}, row {i}: seconds must be > 0, got {row['seconds']}")
            rows.append(row)
    return rows


def _nearest(rows: list[dict], image_size: int, batch_size: int | None) -> float:
    """Seconds of the row closest in image size (then batch size), scaled by the pixel count."""
    def key(r):
        return (abs(math.log(r["image_size"] / image_size)),
                0 if batch_size is None else abs(math.log(r["batch_size"] / batch_size)))
    row = min(rows, key=key)
    return row["seconds"] * (image_size / row["image_size"]) ** 2


def seconds_per_eval(table: list[dict], arch: str, image_size: int, batch_size: int | None = None) -> float:
    """Seconds of one input-gradient evaluation of ``arch`` at ``image_size`` px.

    The row of ``arch`` nearest in image size (then batch size), scaled by ``(image_size / its size)^2``
    (compute grows with the pixels); an architecture the table lacks takes the slowest one's."""
    rows = [r for r in table if r["kind"] == "gradient"]
    if not rows:
        raise InputError("calibration table has no 'gradient' rows")
    mine = [r for r in rows if r["arch"] == arch]
    if mine:
        return _nearest(mine, image_size, batch_size)
    return max(_nearest([r for r in rows if r["arch"] == a], image_size, batch_size) for a in {r["arch"] for r in rows})


def segmentation_seconds(table: list[dict], image_size: int) -> float:
    """Seconds of XRAI's segmentation of one image of side ``image_size``.

    The segments are computed on the image resized to 224 px; the dilation and the region matrix
    grow with the pixels, so the nearest measured size is scaled by the pixel count (an upper bound)."""
    rows = [r for r in table if r["kind"] == "xrai_segments"]
    if not rows:
        raise InputError("calibration table has no 'xrai_segments' rows")
    return _nearest(rows, image_size, None)


def ingest_seconds(table: list[dict]) -> float | None:
    """Seconds of the data stage per image (rows ``kind: ingest``, benchmarks/bench_ingest.py; the
    slowest format), or None when the table has none."""
    rows = [r["seconds"] for r in table if r["kind"] == "ingest"]
    return max(rows) if rows else None


#: memory of a data-stage shard job (benchmarks/bench_ingest.py, 1024 x 1024 JPEG DICOMs resized to
#: 320 px: peak RSS 176 MB for a 32-image shard job, ~230 MB projected at 256 images): a base of the
#: interpreter, pydicom and numpy plus the shard's arrays (image float32 + mask, ~0.25 MB each at
#: 320 px, growing with the pixels); requested = SHARD_MEM_MARGIN x that, at least SHARD_MEM_FLOOR_MB
SHARD_BASE_MB = 170
SHARD_MB_PER_IMAGE_320 = 0.25
SHARD_MEM_MARGIN = 2
SHARD_MEM_FLOOR_MB = 1000
#: memory of a maps job on CPU (benchmarks/mem_saliency.py, InceptionV3 at 320 px): ~0.8 GB after
#: the model is built plus ~63 MB per item of the gradient batch, growing with the pixels;
#: requested = MAPS_MEM_MARGIN x that, at least jobs.MAPS_MEM_MB (8 GB: on a GPU the activations are in
#: device memory and the host holds the CUDA/XLA runtime, which that floor covers)
MAPS_BASE_MB = 800
MAPS_MB_PER_ITEM_320 = 63
MAPS_MEM_MARGIN = 2
#: ``saliency.batch_size: null`` on a CPU (base.default_batch_size); on a GPU it is 256, but then the
#: per-item memory is on the device, so the CPU batch bounds the host memory either way
CPU_BATCH_SIZE = 32


def shard_runtime_minutes(table: list[dict], n_images: int) -> int:
    """Requested ``runtime`` (minutes) of a shard job of ``n_images``: STARTUP_MINUTES + SAFETY x
    images x the calibration's ingest seconds per image (:func:`ingest_seconds`)."""
    sec = ingest_seconds(table)
    if sec is None:
        raise InputError("calibration table has no 'ingest' rows (benchmarks/bench_ingest.py)")
    return runtime_minutes(n_images * sec)


def shard_mem_mb(n_images: int, image_size: int) -> int:
    """Requested ``mem_mb`` of a shard job of ``n_images`` images of side ``image_size``."""
    mb = SHARD_BASE_MB + SHARD_MB_PER_IMAGE_320 * n_images * (image_size / 320) ** 2
    return max(SHARD_MEM_FLOOR_MB, int(math.ceil(SHARD_MEM_MARGIN * mb)))


def maps_mem_mb(image_size: int, batch_size: int | None, floor: int) -> int:
    """Requested ``mem_mb`` of a maps job: MAPS_MEM_MARGIN x (base + per-item memory x batch), the
    per-item figure scaled by ``(image_size / 320)^2``, at least ``floor``."""
    batch = CPU_BATCH_SIZE if batch_size is None else batch_size
    mb = MAPS_BASE_MB + MAPS_MB_PER_ITEM_320 * batch * (image_size / 320) ** 2
    return max(floor, int(math.ceil(MAPS_MEM_MARGIN * mb)))


def training_seconds(table: list[dict], arch: str, image_size: int, epochs: int, images: dict,
                     batch_size: int | None = None) -> float:
    """Expected seconds of training ``arch`` for ``epochs`` on ``images`` (split -> images).

    One training step of an image (forward + backward to the weights) is counted as one input-gradient
    evaluation of the calibration (forward + backward to the input: the same passes, without the
    optimizer update, which is small next to them); each epoch's validation and the final test
    evaluation are forward passes (FORWARD_COST each). Every train image is counted each of the
    ``epochs`` (an upper bound: early stopping may end sooner, a sampler may draw fewer). An architecture without a calibration row (the
    localizers U-Net and RetinaNet) takes the slowest calibrated classifier's seconds
    (:func:`seconds_per_eval`)."""
    per_epoch = images.get("train", 0) + FORWARD_COST * images.get("val", 0)
    evals = epochs * per_epoch + FORWARD_COST * images.get("test", 0)
    return evals * seconds_per_eval(table, arch, image_size, batch_size)


def model_training_seconds(config: dict, table: list[dict], dataset: str, model: str, images: dict) -> float:
    """Expected seconds of training model ``model`` of ``dataset`` (:func:`training_seconds` with its
    architecture's ``epochs`` and ``batch_size`` and the dataset's image size)."""
    from .. import plan

    arch = plan.arch_of(model)
    m = config["models"][arch]
    size = plan.image_size(config, dataset)
    return training_seconds(table, arch, size, m["epochs"], images, m["batch_size"])


def evaluations(name: str, image_size: int, params: dict | None = None) -> float:
    """Gradient-evaluation equivalents per image: gradients + FORWARD_COST x forwards."""
    return gradient_count(name, params) + FORWARD_COST * forward_count(name, image_size, params)


def method_seconds(table, name: str, params: dict | None, arch: str, image_size: int, batch_size=None,
                   segment: bool = False) -> float:
    """Expected seconds per image of method ``name`` (+ segmentation when ``segment`` and it segments)."""
    sec = max(1.0, evaluations(name, image_size, params)) * seconds_per_eval(table, arch, image_size, batch_size)
    if segment and spec(name).segments:
        sec += segmentation_seconds(table, image_size)
    return sec


def segments_in_job(name: str, params: dict | None) -> bool:
    """XRAI ``fast`` segments inside the maps job; ``full`` reads the rule ``xrai_segments`` output."""
    return spec(name).segments and resolve_params(name, params).get("algorithm") == "fast"


def maps_job_seconds(table, methods: dict, arch: str, image_size: int, n_images: int, batch_size=None) -> float:
    """Expected seconds of a maps job computing ``methods`` (id -> params) on ``n_images`` images."""
    return n_images * sum(
        method_seconds(table, m, p, arch, image_size, batch_size, segment=segments_in_job(m, p))
        for m, p in methods.items()
    )


def runtime_minutes(seconds: float) -> int:
    """Requested ``runtime`` (minutes) of a job expected to take ``seconds``."""
    return int(math.ceil(STARTUP_MINUTES + SAFETY * seconds / 60))


def group_jobs(jobs: int, rule: str, groups: dict, components: dict) -> int:
    """Slurm jobs of ``jobs`` jobs of ``rule`` after the profile's grouping (``groups``: rule -> group,
    ``components``: group -> jobs per Slurm job); an ungrouped rule submits each job."""
    group = (groups or {}).get(rule)
    return math.ceil(jobs / int((components or {}).get(group, 1))) if group else jobs


def estimate_rows(config: dict, test_images: dict, table: list[dict], *, groups=None, components=None,
                  shard_images: dict | None = None, split_images: dict) -> list[dict]:
    """Per stage of the saliency run: jobs, Slurm jobs after grouping, GPU- and CPU-hours.

    Parameters
    ----------
    config : dict
        The validated configuration (schema defaults filled in).
    test_images : dict
        dataset -> {test shard (int): images that get maps}.
    table : list of dict
        The calibration table (:func:`read_calibration`).
    groups, components : dict
        The Slurm profile's ``groups`` and ``group-components``.
    shard_images : dict or None
        dataset -> list of images per shard of every split (the data stage; None leaves it out).
    split_images : dict
        dataset -> {split: images}: the training stage (:func:`model_training_seconds`).

    Returns
    -------
    list of dict
        ``stage, rule, jobs, slurm_jobs, gpu_hours, cpu_hours, requested_hours, basis`` per stage.
    """
    from .. import plan

    sal = config["saliency"]
    methods = list(sal["methods"])
    per_job = [[m] for m in methods] if sal["job_per"] == "method" else [methods]
    # job_per: model: one job per (model, shard) computes all of the model's states
    one_job_per_model = sal["job_per"] == "model"
    acc = {}

    rule_jobs = {}  # stage -> {rule: jobs}: a stage may run two rules (job_per: model)

    def add(stage, rule, hours, req_hours, gpu, basis):
        row = acc.setdefault(stage, dict(stage=stage, rule=rule, jobs=0, gpu_hours=0.0, cpu_hours=0.0,
                                         requested_hours=0.0, basis=basis))
        counts = rule_jobs.setdefault(stage, {})
        counts[rule] = counts.get(rule, 0) + 1
        row["rule"] = ", ".join(counts)
        row["jobs"] += 1
        row["gpu_hours" if gpu else "cpu_hours"] += hours
        row["requested_hours"] += req_hours

    for ds, counts in (shard_images or {}).items():
        for n in counts:
            add("data", "shard", n * (ingest_seconds(table) or 0) / 3600, shard_runtime_minutes(table, n) / 60,
                False, "cost model")
    for ds in plan.trained_datasets(config):
        size = plan.image_size(config, ds)
        shards = test_images[ds]
        for model in plan.model_ids(config, ds):
            sec = model_training_seconds(config, table, ds, model, split_images[ds])
            add("training", "train_model", sec / 3600, runtime_minutes(sec) / 60, True, "cost model")
        xrai_full = "XRAI" in methods and not segments_in_job("XRAI", (sal.get("params") or {}).get("XRAI"))
        for shard, n in shards.items():
            if xrai_full:
                sec = n * segmentation_seconds(table, size)
                add("xrai_segments", "xrai_segments", sec / 3600, runtime_minutes(sec) / 60, False, "cost model")
        states = {}
        for model, state in plan.map_models(config, ds):
            states.setdefault(model, []).append(state)
        jobs = [(m, len(ss)) for m, ss in states.items()] if one_job_per_model else [
            (m, 1) for m, ss in states.items() for _ in ss]
        for model, n_states in jobs:
            arch = plan.arch_of(model)
            rule = "saliency_maps_states" if one_job_per_model and n_states > 1 else "saliency_maps"
            for job_methods in per_job:
                params = {m: (sal.get("params") or {}).get(m) for m in job_methods}
                for shard, n in shards.items():
                    sec = n_states * maps_job_seconds(table, params, arch, size, n, sal["batch_size"])
                    add("maps", rule, sec / 3600, runtime_minutes(sec) / 60, True, "cost model")
    rows = list(acc.values())
    for row in rows:
        row["slurm_jobs"] = sum(group_jobs(n, rule, groups, components) for rule, n in rule_jobs[row["stage"]].items())
    total = dict(stage="total", rule="", jobs=sum(r["jobs"] for r in rows),
                 slurm_jobs=sum(r["slurm_jobs"] for r in rows), gpu_hours=sum(r["gpu_hours"] for r in rows),
                 cpu_hours=sum(r["cpu_hours"] for r in rows),
                 requested_hours=sum(r["requested_hours"] for r in rows), basis="")
    return rows + [total]


#: the paper's published split file of each dataset kind (data.splits.read_split_file)
PUBLISHED_SPLITS = {"siim": "pneumothorax_splits.csv", "rsna": "pneumonia_splits.csv"}


def fallback_split_images(config: dict, dataset: str, splits_dir) -> dict:
    """split -> images, before the manifest exists: the dataset's split file (``split_file``, else the
    published one of its kind), else ``n_images`` x the split fractions."""
    ds = config["datasets"][dataset]
    path = ds.get("split_file") or (Path(splits_dir) / PUBLISHED_SPLITS[ds["kind"]] if ds["kind"] in PUBLISHED_SPLITS else None)
    if path is not None and Path(path).exists():
        with open(path, newline="") as f:
            splits = [row.get("Split") for row in csv.DictReader(f)]
        return {s: splits.count(s) for s in ("train", "val", "test")}
    if ds.get("n_images"):
        return {s: int(round(ds["n_images"] * f)) for s, f in zip(("train", "val", "test"), config["split"]["fractions"])}
    raise InputError(f"datasets.{dataset}: no manifest yet, no split file and no n_images to estimate its images from")


def in_shards(n: int, size: int) -> dict:
    """shard -> images of ``n`` images in shards of ``size``."""
    return {k: min(size, n - k * size) for k in range(math.ceil(n / size))}


def fallback_test_images(config: dict, dataset: str, splits_dir) -> dict:
    """test shard -> images, before the manifest exists (:func:`fallback_split_images`); every test
    image counted (an upper bound when only images with a finding get maps), in shards of
    ``shards.size``, at most ``saliency.max_images`` per shard."""
    cap = config["saliency"]["max_images"]
    shards = in_shards(fallback_split_images(config, dataset, splits_dir)["test"], config["shards"]["size"])
    return {k: n if cap is None else min(n, cap) for k, n in shards.items()}
