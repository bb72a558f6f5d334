"""Compatibility shims for the reference libraries, applied at run time (site-packages untouched),
and the plain PAIR adapter that tests and benchmarks compare this package's methods with.

PAIR ``saliency.core.guided_ig`` (0.2.1) calls ``np.quantile(..., interpolation='lower')``; the
``interpolation`` keyword was removed in numpy 2.4 (renamed ``method`` in numpy 1.22). The shim
gives that module a namespace whose ``quantile`` translates the keyword and otherwise forwards to
numpy; nothing else changes.
"""

from __future__ import annotations

import types

import numpy as np


def _quantile(a, q, *args, interpolation=None, **kwargs):
    if interpolation is not None:
        kwargs.setdefault("method", interpolation)
    return np.quantile(a, q, *args, **kwargs)


class _NumpyShim(types.ModuleType):
    def __getattr__(self, name):
        return getattr(np, name)


def patch_guided_ig():
    """Make PAIR's Guided IG run on numpy >= 2.4; returns the patched module (idempotent)."""
    from saliency.core import guided_ig

    if not isinstance(guided_ig.np, _NumpyShim):
        shim = _NumpyShim("numpy_quantile_shim")
        shim.quantile = _quantile
        guided_ig.np = shim
    return guided_ig


def pair_call_model_function(model, layer=None):
    """A plain call_model_function for PAIR ``saliency.core``, written as PAIR's examples write it
    (eager, one ``GradientTape`` per call): the independent reference of tests/test_saliency.py and
    benchmarks/bench_saliency.py. The package's own methods use the compiled, batched engine.

    ``layer``: None for input gradients (IG, SmoothGrad, XRAI, ...), or the name of the
    convolutional layer whose values and gradients Grad-CAM needs.
    """
    import keras
    import tensorflow as tf
    from saliency.core import base as B

    sub = keras.Model(model.inputs, [model.get_layer(layer).output, model.output]) if layer else None

    def fn(xb, call_model_args=None, expected_keys=None):
        xb = tf.convert_to_tensor(np.asarray(xb, np.float32))
        with tf.GradientTape() as tape:
            tape.watch(xb)
            if sub is None:
                return {B.INPUT_OUTPUT_GRADIENTS: tape.gradient(model(xb)[:, 0], xb).numpy()}
            a, y = sub(xb)
            y = y[:, 0]  # inside the tape: a slice taken outside it is not differentiable
        return {B.CONVOLUTION_LAYER_VALUES: a.numpy(), B.CONVOLUTION_OUTPUT_GRADIENTS: tape.gradient(y, a).numpy()}

    return fn
