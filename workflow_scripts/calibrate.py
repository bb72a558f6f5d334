"""Calibration of the cost model (rule calibrate, or standalone to refresh the shipped table):

    .venv/bin/python workflow_scripts/calibrate.py --out resources/calibration_cpu.csv \
        --arch inceptionv3 densenet121 --size 128 320 --batch-size 32
"""

import argparse
import csv


def write(path, rows):
    from saliency_audit.saliency.cost import CALIBRATION_COLUMNS

    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CALIBRATION_COLUMNS)
        w.writeheader()
        w.writerows(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--arch", nargs="+", default=["inceptionv3", "densenet121"])
    ap.add_argument("--size", nargs="+", type=int, default=[320])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--batches", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow threads (0: its default)")
    a = ap.parse_args(argv)
    if a.threads:
        from saliency_audit.resources import set_tf_threads

        set_tf_threads(a.threads)
    from saliency_audit.saliency.calibrate import calibrate

    rows = calibrate(a.arch, a.size, a.batch_size, a.batches)
    write(a.out, rows)
    for r in rows:
        print(r)


if "snakemake" in globals():
    from saliency_audit.resources import set_tf_threads
    from saliency_audit.saliency.base import default_batch_size
    from saliency_audit.saliency.calibrate import calibrate
    from saliency_audit.smk import rule_logging

    with rule_logging(snakemake) as log:  # noqa: F821
        p = snakemake.params  # noqa: F821
        set_tf_threads(snakemake.threads)  # noqa: F821
        rows = calibrate(p.archs, p.image_sizes, p.batch_size or default_batch_size(), p.batches)
        write(snakemake.output[0], rows)  # noqa: F821
        for r in rows:
            log.info("%s", r)
elif __name__ == "__main__":
    main()
