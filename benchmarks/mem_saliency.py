"""Peak memory (RSS) of one saliency maps job on CPU, against the memory its rule declares.

Runs what workflow_scripts/saliency_maps.py runs (model state, ``shard_maps`` with the method's
default parameters and the engine's CPU batch size) on ``--images`` test images of ``--size`` px,
in this process, and reports the peak resident set size (``VmHWM``, see :func:`rss_mb`) next to
``MAPS_MEM_MB``, the ``mem_mb`` of the saliency rules. The weights are untrained (memory does not
depend on them); the peak is set by one compiled gradient call of ``batch_size`` items, so one
image whose method needs more items than a batch (SIG: 25 x 25) already reaches it.

    .venv/bin/python benchmarks/mem_saliency.py [--size 320] [--method SIG] [--images 1] [--json]

tests/test_resources.py calls it at the paper's size (320 px, InceptionV3, SIG defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the measurement is of the CPU path


def rss_mb() -> float:
    """Peak RSS of this process so far, MB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process image. Not
    ``getrusage``'s ``ru_maxrss``: Linux carries that across ``fork`` + ``exec``, so a script started
    from a large parent (a pytest process that has loaded TensorFlow) would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def measure(size: int, method: str, images: int, arch: str = "inceptionv3", batch_size: int | None = None) -> dict:
    import numpy as np

    from saliency_audit.models import build_classifier
    from saliency_audit.saliency.jobs import MAPS_MEM_MB
    from saliency_audit.saliency.registry import resolve_params
    from saliency_audit.saliency.run import shard_maps

    model = build_classifier(arch, size, weights="none", seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (images, size, size, 3)).astype(np.float32)
    before = rss_mb()
    params = resolve_params(method, None)
    t = time.perf_counter()
    maps = shard_maps(model, x, {method: params}, arch=arch, seeds={method: 0}, batch_size=batch_size)
    seconds = time.perf_counter() - t
    assert maps[method].shape == (images, size, size) and np.isfinite(maps[method]).all()
    peak = rss_mb()
    return {
        "arch": arch, "size": size, "method": method, "params": params, "images": images,
        "batch_size": batch_size, "rss_before_maps_mb": round(before), "peak_rss_mb": round(peak),
        "declared_mem_mb": MAPS_MEM_MB, "headroom": round(MAPS_MEM_MB / peak, 2), "seconds": round(seconds, 1),
    }  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--method", default="SIG")
    ap.add_argument("--images", type=int, default=1)
    ap.add_argument("--arch", default="inceptionv3")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the engine's CPU default")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    a = ap.parse_args(argv)
    r = measure(a.size, a.method, a.images, a.arch, a.batch_size)
    if a.json:
        print(json.dumps(r))
    else:
        print(
            f"{r['arch']} {r['size']} px, {r['method']} {r['params']}, {r['images']} image(s): "
            f"peak RSS {r['peak_rss_mb']} MB (after model build {r['rss_before_maps_mb']} MB), "
            f"rule declares {r['declared_mem_mb']} MB -> {r['headroom']}x headroom; {r['seconds']} s"
        )
    return 0 if r["peak_rss_mb"] <= r["declared_mem_mb"] else 1


if __name__ == "__main__":
    sys.exit(main())
