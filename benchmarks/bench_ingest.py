"""How fast is the data stage on Kaggle-sized radiographs? Images/s per core, peak memory per shard job,
and the projected data-stage time of SIIM (12,047 DICOMs) and RSNA (26,684).

    .venv/bin/python benchmarks/bench_ingest.py [--jpeg 32] [--dicom16 16] [--shard-size 16] [--keep DIR]
        [--calibration resources/calibration_cpu.csv]

Writes SIIM-style data (``<ImageId>.dcm`` + ``train-rle.csv``, a quarter of the images with a
finding) of 1024 x 1024 DICOMs: JPEG Baseline 8-bit MONOCHROME2, as the Kaggle files are (stored
with Pillow's encoder at quality 95 from a smooth field plus film-grain noise, so a file is about the
size of a Kaggle one), and 16-bit MONOCHROME1 (12 bits stored, uncompressed). Then runs the data
stage's own code (``build_manifest``, and ``build_shard`` of every shard, each in a forked child
like a shard job) and reports, per format, images per CPU-second of the shard jobs (= per core:
a shard job is single-threaded), wall images/s and the children's peak RSS. The projection is
images / (images/s per core) as CPU-hours, and the wall time with the shards run on ``--cores``.
``--calibration`` replaces the ``ingest`` rows of that cost-model table (saliency_audit.saliency.cost)
with these figures (CPU seconds per image per format), which ``snakemake estimate`` then uses.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

#: DICOMs of the Kaggle releases (SIIM-ACR train; RSNA stage 2 train, before the class filter)
KAGGLE = {"SIIM": 12047, "RSNA": 26684}
SIDE = 1024
SHARD_SIZE = 256  # shards.size default


def radiograph(seed: int, side: int = SIDE) -> np.ndarray:
    """A smooth chest-like field plus grain in [0, 1] (JPEG of it is about a Kaggle file's size)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    body = np.exp(-(((xx - 0.5) / 0.35) ** 2 + ((yy - 0.55) / 0.45) ** 2))
    lungs = np.exp(-(((np.abs(xx - 0.5) - 0.18) / 0.11) ** 2 + ((yy - 0.5) / 0.28) ** 2))
    field = 0.2 + 0.6 * body - 0.35 * lungs + 0.05 * ndimage.gaussian_filter(rng.normal(size=(side, side)), 8)
    return np.clip(field + 0.02 * rng.normal(size=(side, side)), 0, 1)


def write_data(root: Path, n: int, fmt: str) -> dict:
    """SIIM-style dataset of ``n`` DICOMs of format ``jpeg`` or ``dicom16``; returns its config entry."""
    from fixtures_data import write_dicom

    from saliency_audit.data.rle import rle_encode

    rows = []
    for i in range(n):
        iid = f"1.2.276.0.7230010.3.1.4.{fmt}.{i}"
        x = radiograph(i)
        path = root / "dicom-images-train" / f"{iid}.dcm"
        if fmt == "jpeg":
            write_dicom(path, (x * 255).astype(np.uint8), jpeg=True)
        else:  # MONOCHROME1: high values are dark
            write_dicom(path, ((1 - x) * 4095).astype(np.uint16), photometric="MONOCHROME1", bits_stored=12)
        if i % 4 == 0:
            yy, xx = np.mgrid[0:SIDE, 0:SIDE]
            mask = (yy - 300) ** 2 + (xx - 300 - i) ** 2 <= 80**2
            rows.append((iid, " " + rle_encode(mask)))
        else:
            rows.append((iid, " -1"))
    csv = root / "train-rle.csv"
    pd.DataFrame(rows, columns=["ImageId", " EncodedPixels"]).to_csv(csv, index=False)
    return {"kind": "siim", "images_dir": str(root / "dicom-images-train"), "rle_csv": str(csv)}


def _shard_child(name, config, manifest, split, shard, queue):
    from saliency_audit.data.prepare import build_shard

    t0 = time.perf_counter()
    c0 = time.process_time()
    arrays = build_shard(name, config, manifest, split, shard)
    queue.put(dict(images=len(arrays["ids"]), wall=time.perf_counter() - t0, cpu=time.process_time() - c0,
                   peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def measure(name: str, ds_cfg: dict, shard_size: int) -> dict:
    """Run the data stage of one dataset: manifest, then every shard in a forked child."""
    from saliency_audit.data.prepare import build_manifest

    config = {"seed": 1, "image_size": 320, "datasets": {name: ds_cfg},
              "split": {"fractions": [0.5, 0.25, 0.25]}, "shards": {"size": shard_size}}
    t0 = time.perf_counter()
    manifest = build_manifest(name, config)
    manifest_s = time.perf_counter() - t0
    ctx = mp.get_context("fork")
    runs = []
    for (split, shard), _ in manifest.groupby(["split", "shard"]):
        queue = ctx.Queue()
        proc = ctx.Process(target=_shard_child, args=(name, config, manifest, split, int(shard), queue))
        proc.start()
        runs.append(queue.get())
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"shard {split}_{shard} failed (exit {proc.exitcode})")
    images = sum(r["images"] for r in runs)
    return dict(images=images, manifest_s=manifest_s, per_core=images / sum(r["cpu"] for r in runs),
                wall_rate=images / sum(r["wall"] for r in runs), peak_mb=max(r["peak_mb"] for r in runs),
                file_kb=np.mean([p.stat().st_size for p in Path(ds_cfg["images_dir"]).glob("*.dcm")]) / 1024)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jpeg", type=int, default=32, help="JPEG Baseline 8-bit DICOMs")
    ap.add_argument("--dicom16", type=int, default=16, help="16-bit MONOCHROME1 DICOMs")
    ap.add_argument("--shard-size", type=int, default=16)
    ap.add_argument("--cores", type=int, default=16, help="cores the projection runs the shard jobs on")
    ap.add_argument("--keep", type=Path)
    ap.add_argument("--calibration", type=Path, help="cost-model table whose ingest rows to replace")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = a.keep or Path(tmp)
        res = {}
        for fmt, n in (("jpeg", a.jpeg), ("dicom16", a.dicom16)):
            if n:
                t0 = time.perf_counter()
                ds = write_data(root / fmt, n, fmt)
                print(f"{fmt}: wrote {n} DICOMs of {SIDE}x{SIDE} in {time.perf_counter() - t0:.1f} s", flush=True)
                res[fmt] = measure(fmt, ds, a.shard_size)
    print(f"\nformat   images  file KB  images/s per core  wall images/s  peak RSS per shard job (MB, {a.shard_size} images)")
    for fmt, r in res.items():
        print(f"{fmt:8s} {r['images']:6d} {r['file_kb']:8.0f} {r['per_core']:18.2f} {r['wall_rate']:14.2f}  {r['peak_mb']:.0f}")
    print(f"\nprojected data stage (shards of {SHARD_SIZE}; CPU-hours = images / images/s per core; wall on {a.cores} cores)")
    for fmt, r in res.items():
        for ds, n in KAGGLE.items():
            cpu_h = n / r["per_core"] / 3600
            jobs = math.ceil(n / SHARD_SIZE)
            job_min = SHARD_SIZE / r["per_core"] / 60
            wall_h = math.ceil(jobs / a.cores) * job_min / 60
            print(f"{ds} {n} {fmt}: {cpu_h:.2f} CPU-hours, {jobs} shard jobs of {job_min:.1f} min, {wall_h:.2f} h on {a.cores} cores")
    if a.calibration:
        write_calibration(a.calibration, res)


def write_calibration(path: Path, res: dict) -> None:
    """Replace the ``ingest`` rows of the cost-model table at ``path`` by this run's figures."""
    import platform

    from saliency_audit.saliency.cost import CALIBRATION_COLUMNS

    old = pd.read_csv(path, dtype={"arch": str}, keep_default_na=False) if path.exists() else pd.DataFrame(columns=CALIBRATION_COLUMNS)
    new = pd.DataFrame([dict(kind="ingest", arch=fmt, image_size=320, batch_size=1, seconds=1 / r["per_core"],
                             evals_per_s=r["per_core"], n=r["images"], device="cpu:" + platform.machine())
                        for fmt, r in res.items()])
    out = pd.concat([old[old["kind"] != "ingest"], new], ignore_index=True)[list(CALIBRATION_COLUMNS)]
    out.to_csv(path, index=False)
    print(f"ingest rows written to {path}")


if __name__ == "__main__":
    main()
