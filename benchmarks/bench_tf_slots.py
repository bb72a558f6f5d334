"""TensorFlow jobs on a CPU-only machine: one at a time on every core, or two at once on half each.

Runs two from-scratch InceptionV3 trainings (the demo's size and batch, random images) as separate
processes, as the workflow's training jobs are: first one after the other with ``--cores`` threads
each (``--resources gpu=1``), then both at once with ``cores / 2`` threads each (``gpu=2``), and
prints both wall times and their ratio. Tracing, Python and data loading are single-threaded, so
two jobs at once keep the cores busier.

    .venv/bin/python benchmarks/bench_tf_slots.py [--cores 2] [--size 176] [--images 96] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def _train(threads: int, size: int, images: int, epochs: int) -> None:
    """One training process: ``epochs`` epochs of InceptionV3 on ``images`` random images."""
    from saliency_audit.models.train import configure_runtime

    configure_runtime(1, threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from saliency_audit.models.classifiers import build_classifier

    model = build_classifier("inceptionv3", size, "none", 1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.random((images, size, size, 3), np.float32)
    y = (rng.random((images, 1)) > 0.5).astype(np.float32)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=epochs, verbose=0)


def _spawn(threads, a):
    cmd = [sys.executable, __file__, "--child", str(threads), "--size", str(a.size), "--images", str(a.images),
           "--epochs", str(a.epochs)]
    return subprocess.Popen(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--size", type=int, default=176)
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _train(a.child, a.size, a.images, a.epochs)
        return
    t0 = time.perf_counter()
    for _ in range(2):
        if _spawn(a.cores, a).wait():
            sys.exit("a training process failed")
    one_at_a_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    procs = [_spawn(max(1, a.cores // 2), a) for _ in range(2)]
    if any(p.wait() for p in procs):
        sys.exit("a training process failed")
    two_at_once = time.perf_counter() - t0
    print(json.dumps({"cores": a.cores, "size": a.size, "images": a.images, "epochs": a.epochs,
                      "one_at_a_time_s": round(one_at_a_time, 1), "two_at_once_s": round(two_at_once, 1),
                      "speed-up": round(one_at_a_time / two_at_once, 2)}))


if __name__ == "__main__":
    main()
