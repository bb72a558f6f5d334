"""Per-state saliency time: one process per state (job_per: model_state) against every state in one
process that traces once (job_per: model, :func:`saliency_audit.saliency.run.model_maps`).

"Before" runs, for each state, a fresh Python process that does what a model_state job does
(import TensorFlow, load the model, apply the state, trace, compute every method); "after" runs
one process over all states. Both use an untrained InceptionV3 (time does not depend on the
weights) on ``--images`` random inputs of ``--size`` px with the demo's method parameters.
Prints seconds per state (wall, including process start-up) and the ratio.

    .venv/bin/python benchmarks/bench_trace_once.py [--size 176] [--images 13] [--states 4]   (the demo's)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

#: the demo's method parameters (config.yaml)
DEMO = {"GRAD": {}, "SG": {"samples": 10}, "IG": {"steps": 10}, "SIG": {"samples": 4, "steps": 4},
        "GCAM": {}, "XRAI": {"steps": 10}, "GBP": {}, "GGCAM": {}}  # fmt: skip
RANDOMIZATION = {"seed": 1, "initializer": "truncated_normal"}


def _inputs(size, images):
    import numpy as np

    return np.random.default_rng(0).uniform(-1, 1, (images, size, size, 3)).astype(np.float32)


def _run(model_path, regions, states, size, images):
    """Maps of ``states`` in this process, as a maps job (XRAI regions preloaded from the shard's
    file); returns the wall seconds from before the imports."""
    t0 = time.perf_counter()
    from saliency_audit.resources import set_tf_threads
    from saliency_audit.saliency.run import model_maps
    from saliency_audit.saliency.xrai import preload_regions

    set_tf_threads(os.cpu_count())
    x = _inputs(size, images)
    preload_regions(regions)
    seeds = {s: {"SG": 1, "SIG": 2} for s in states}
    for _ in model_maps(model_path, "inceptionv3", states, x, DEMO, seeds=seeds, randomization=RANDOMIZATION):
        pass
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--images", type=int, default=13)
    ap.add_argument("--states", type=int, default=4)
    ap.add_argument("--child", nargs=3, metavar=("MODEL", "REGIONS", "STATES"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(_run(a.child[0], a.child[1], a.child[2].split(","), a.size, a.images)))
        return
    from saliency_audit.models.classifiers import build_classifier
    from saliency_audit.plan import INCEPTION_CASCADE
    from saliency_audit.saliency.xrai import write_regions

    states = ["original"] + [f"cascade-{b}" for b in INCEPTION_CASCADE[: a.states - 1]]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        build_classifier("inceptionv3", a.size, "none", seed=0).save(path)
        regions = os.path.join(tmp, "regions.npz")
        write_regions(regions, [f"i{k}" for k in range(a.images)], _inputs(a.size, a.images))

        def child(sts):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--size", str(a.size), "--images", str(a.images),
                                  "--child", path, regions, ",".join(sts)], check=True, capture_output=True, text=True)
            return time.perf_counter() - t, json.loads(out.stdout.strip().splitlines()[-1])

        before = [child([s])[0] for s in states]
        after, _ = child(states)
    per_before = sum(before) / len(states)
    per_after = after / len(states)
    print(f"InceptionV3 {a.size} px, {a.images} images, {len(states)} states, demo parameters, {os.cpu_count()} cores")
    print(f"one process per state: {per_before:.1f} s/state ({', '.join(f'{b:.1f}' for b in before)})")
    print(f"one process, traced once: {per_after:.1f} s/state ({after:.1f} s in all)")
    print(f"ratio: {per_before / per_after:.2f}x")


if __name__ == "__main__":
    main()
