"""Guided backpropagation by a ReLU gradient override on a clone of the model.

Springenberg et al. (2015), arXiv:1412.6806, eq. in Fig. 1: at every ReLU the backward signal is
passed only where both the forward input and the incoming gradient are positive. The forward pass
is the model's own (``tf.nn.relu``); only the gradient changes, through ``tf.custom_gradient``.
The original model is not touched: the override lives on a clone with the same weights.
Keras 3 applications use ``Activation('relu')`` layers (InceptionV3, DenseNet121); layers with a
``relu`` activation argument (Conv2D/Dense) and default ``ReLU`` layers are overridden too.
"""

from __future__ import annotations

import tensorflow as tf


@tf.custom_gradient
def guided_relu(x):
    """ReLU forward; guided backward: ``dy * (x > 0) * (dy > 0)``."""
    y = tf.nn.relu(x)

    def grad(dy):
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return y, grad


def _is_relu(fn) -> bool:
    return getattr(fn, "__name__", "") == "relu"


def _walk(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk(layer)


def guided_clone(model):
    """A clone of ``model`` with the same weights whose ReLUs back-propagate the guided way.

    Returns the clone; raises ``ValueError`` when the model has no ReLU at all (guided
    backpropagation would equal the plain gradient, which is more likely a mistake).
    """
    import keras

    clone = keras.models.clone_model(model, recursive=True)
    clone.set_weights(model.get_weights())
    n = 0
    for layer in _walk(clone):
        if isinstance(layer, keras.layers.ReLU):
            if layer.max_value is None and not layer.negative_slope and not layer.threshold:
                layer.call = lambda inputs, *a, **k: guided_relu(inputs)
                n += 1
        elif _is_relu(getattr(layer, "activation", None)):
            layer.activation = guided_relu
            n += 1
    if n == 0:
        raise ValueError(f"model {model.name!r} has no ReLU: guided backpropagation is undefined")
    return clone
