"""Speed of the saliency methods (a benchmark, not a test).

For each method: maps/s, the ratio of its time to (a) the gradient floor = k x (time of one
compiled batched input gradient per image) x images, k = the method's gradient count from the
registry, and (b) the reference library's implementation at equal settings (tf-keras-vis
Saliency/SmoothGrad/Gradcam, PAIR IntegratedGradients/XRAI with PAIR's default batch_size=1 and
a plain eager call_model_function as in PAIR's examples).

    .venv/bin/python benchmarks/bench_saliency.py [--size 128] [--images 8] [--methods GRAD,SG,...]

Targets on CPU (InceptionV3, 128 px, 2 cores): gradient methods within 1.3x of their floor,
SmoothGrad >= 3x faster than tf-keras-vis, XRAI >= 2x faster than PAIR's default path.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def build_model(size):
    import keras

    keras.utils.set_random_seed(0)
    base = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(size, size, 3))
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(base.output))
    return keras.Model(base.input, out)


def images(n, size):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    g = gaussian_filter(rng.uniform(0, 255, (n, size, size)), (0, 3, 3))
    g = (g - g.min()) / (g.max() - g.min()) * 255
    x = g.astype(np.float32) / 127.5 - 1.0
    return np.repeat(x[..., None], 3, axis=-1)


def timed(fn, repeat=1):
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def reference(name, model, x, params):
    """The reference library's implementation of ``name`` at equal settings, or None."""
    from saliency_audit.saliency.compat import pair_call_model_function

    score = lambda y: y[:, 0]  # noqa: E731
    if name == "GRAD":
        from tf_keras_vis.saliency import Saliency

        return lambda: Saliency(model)(score, x, gradient_modifier=None, keepdims=True, normalize_map=False)
    if name == "SG":
        from tf_keras_vis.saliency import Saliency

        return lambda: Saliency(model)(score, x, smooth_samples=params["samples"], smooth_noise=params["noise"],
                                       gradient_modifier=lambda g: g * g, keepdims=True, normalize_map=False)
    if name == "GCAM":
        from tf_keras_vis.gradcam import Gradcam

        return lambda: Gradcam(model)(score, x, penultimate_layer="mixed10", seek_penultimate_conv_layer=False)
    if name == "IG":
        from saliency.core import IntegratedGradients

        fn = pair_call_model_function(model)
        b = np.full_like(x[0], -1.0)
        return lambda: [IntegratedGradients().GetMask(xi, fn, x_baseline=b, x_steps=params["steps"]) for xi in x]
    if name == "XRAI":
        from saliency.core import XRAI, XRAIParameters

        fn = pair_call_model_function(model)
        par = XRAIParameters(steps=params["steps"])
        return lambda: [XRAI().GetMask(xi, fn, extra_parameters=par) for xi in x]
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--methods", default="GRAD,SG,IG,SIG,GCAM,XRAI,GBP,GGCAM")
    ap.add_argument("--params", default="SIG.samples=10,SIG.steps=10", help="overrides, e.g. SG.samples=10")
    ap.add_argument("--ref-images", type=int, default=2,
                    help="images for the slow per-image PAIR references (IG, XRAI); times are scaled per image")
    ap.add_argument("--no-reference", action="store_true")
    args = ap.parse_args()

    import tensorflow as tf

    from saliency_audit.saliency import get_method
    from saliency_audit.saliency.base import engine_for
    from saliency_audit.saliency.registry import gradient_count, resolve_params

    over = {}
    for item in filter(None, args.params.split(",")):
        key, value = item.split("=")
        m, k = key.split(".")
        over.setdefault(m, {})[k] = type(resolve_params(m)[k])(value)

    model = build_model(args.size)
    x = images(args.images, args.size)
    eng = engine_for(model, args.batch_size)
    print(f"InceptionV3 {args.size}px, {args.images} images, batch {args.batch_size}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()} threads")

    t = time.perf_counter()
    eng.input_gradients(x[:1])
    print(f"trace of the compiled gradient: {time.perf_counter() - t:.1f} s (once per model and input shape)")
    z = np.repeat(x, int(np.ceil(args.batch_size / len(x))), axis=0)[: args.batch_size]
    per_grad = timed(lambda: eng.input_gradients(z), repeat=3) / args.batch_size
    print(f"gradient floor: {1000 * per_grad:.1f} ms per image-gradient (one compiled call of {args.batch_size})\n")

    print("ref s: the reference library on the same images (PAIR IG/XRAI: timed on --ref-images, scaled)")
    print(f"{'method':7s} {'params':36s} {'k':>5s} {'s':>7s} {'maps/s':>7s} {'x floor':>8s} {'ref s':>7s} {'speed-up':>8s}")
    for name in args.methods.split(","):
        params = resolve_params(name, over.get(name))
        method = get_method(name, params, batch_size=args.batch_size, arch="inceptionv3")
        method.compute(model, x[:1])  # warm-up: traces this method's compiled functions
        secs = timed(lambda: method.compute(model, x))
        k = gradient_count(name, params)
        floor = k * per_grad * len(x)
        nref = args.ref_images if name in ("IG", "XRAI") else len(x)
        ref = None if args.no_reference else reference(name, model, x[:nref], params)
        rsecs = None
        if ref is not None:
            rsecs = timed(ref) * len(x) / nref  # seconds for all images
        shown = ",".join(f"{a}={b}" for a, b in params.items())
        print(f"{name:7s} {shown[:36]:36s} {k:5d} {secs:7.2f} {len(x) / secs:7.2f} {secs / floor:8.2f} "
              + (f"{rsecs:7.2f} {rsecs / secs:8.2f}" if rsecs else f"{'-':>7s} {'-':>8s}"))


if __name__ == "__main__":
    main()
