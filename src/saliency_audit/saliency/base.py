"""The one interface of every saliency method and the batched, compiled gradient engine.

A method is a :class:`SaliencyMethod`: ``compute(model, x) -> (N, S, S)`` raw 2-D maps, one per
image of the batch ``x`` (float32, N x S x S x 3, the model input of
:func:`saliency_audit.data.prepare.to_model_input`). The explained output (``saliency.target``,
:data:`TARGETS`) is, per image,

``positive`` (default)
    the positive-class logit (column 0 of the model's (N, 1) output, before any sigmoid);
``predicted``
    the predicted class's logit, as the released code explained the argmax class of its 2-unit
    softmax head: for our single-logit head, the logit where the model predicts positive
    (logit >= 0) and the negated logit where it predicts negative (logit < 0). The class is
    decided once per image, on the image itself, and kept for its noisy copies and path points.

The engine applies the target: every compiled gradient call takes a per-item weight ``w`` (+1 or
-1, :meth:`GradientEngine.target_signs`) and differentiates ``w * logit``, so every method
(gradients, Grad-CAM, XRAI's IG, ...) explains the same output.

Gradient-type methods first compute a channel-resolved attribution (``attribute``, N x S x S x 3)
and then reduce the channels (``saliency.channel_reduction``):

``abs_sum`` (default)
    sum of |.| over the 3 channels, the released code's ``VisualizeImageGrayscale`` reduction;
``sum``
    the signed sum over channels (for signed analyses; the normalization takes |.| later).

:class:`GradientEngine` issues every input gradient through one ``tf.function`` traced once per
input shape (the batch dimension is left unknown so that a short last chunk does not retrace). A
method lays its work out as a flat list of (image, sample, step) items and feeds the engine
chunks of ``batch_size`` items, so one call serves many images x noise samples x steps.
"""

from __future__ import annotations

import logging
import weakref

import numpy as np

from ..architectures import REGISTRY
from ..errors import InputError
from .registry import spec

log = logging.getLogger(__name__)

#: Grad-CAM layer per architecture, from the architecture registry (Arun et al. 2021: InceptionV3
#: ``mixed10``; DenseNet121's final block output, the ``relu`` after the last batch norm in keras.applications).
GRADCAM_LAYERS = {a.name: a.gradcam_layer for a in REGISTRY.values() if a.gradcam_layer}
#: ``saliency.target`` values (see the module docstring)
TARGETS = ("positive", "predicted")


def default_batch_size() -> int:
    """``saliency.batch_size: null``: 256 inputs per gradient call on a GPU, 32 on a CPU."""
    import tensorflow as tf

    return 256 if tf.config.list_physical_devices("GPU") else 32


def reduce_channels(attr: np.ndarray, how: str = "abs_sum") -> np.ndarray:
    """(N, S, S, C) attribution -> (N, S, S) map: ``abs_sum`` = sum |.| over C, ``sum`` = signed sum."""
    if how == "abs_sum":
        return np.abs(attr).sum(axis=-1, dtype=np.float32)
    if how == "sum":
        return attr.sum(axis=-1, dtype=np.float32)
    raise InputError(f"saliency.channel_reduction: expected abs_sum or sum, got {how!r}")


def baseline_value(x: np.ndarray, which: str) -> np.ndarray:
    """Integrated-gradients baseline images: ``black`` = the model input of a black pixel (-1.0,
    uint8 0 through ``x / 127.5 - 1``); ``white`` = +1.0; ``zero`` = 0.0 (PAIR's default, mid-gray)."""
    value = {"black": -1.0, "white": 1.0, "zero": 0.0}[which]
    return np.full_like(x, value, dtype=np.float32)


def _walk_layers(model):
    """Every layer of ``model``, nested models included, in graph order (depth first)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _walk_layers(layer)


def find_gradcam_layer(model, arch: str | None = None, override: str | None = None) -> str:
    """The name of the Grad-CAM layer of ``model``.

    Order: an explicit ``override`` (config ``saliency.gradcam_layer.<arch>``), the per-architecture
    default in :data:`GRADCAM_LAYERS` when the model has that layer, else the last layer with a
    4-D output (the last convolutional feature map before global pooling).
    """
    names = {layer.name for layer in model.layers}
    if override:
        if override not in names:
            raise InputError(
                f"saliency.gradcam_layer.{arch}: layer {override!r} is not a top-level layer of the {arch} model"
            )
        return override
    default = GRADCAM_LAYERS.get((arch or "").lower())
    if default and default in names:
        return default
    for layer in reversed(model.layers):
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4 and layer is not model.layers[0]:
            return layer.name
    raise InputError(f"model {model.name!r} ({arch}): no layer with a 4-D output for Grad-CAM")


class GradientEngine:
    """Compiled batched gradients of the explained output (``target``) for one model.

    ``input_gradients(z, w)`` returns d (w * logit) / d z for a batch (``w`` per item, +1 or -1,
    from :meth:`target_signs`); ``cam_gradients(z, layer)`` returns the layer's activations and
    their gradients of the target of each image. Both are ``tf.function``\\ s traced once per input
    shape (unknown batch dimension) and cached on the engine; :func:`engine_for` caches one engine
    per model object.
    """

    def __init__(self, model, batch_size: int | None = None, target: str = "positive"):
        if target not in TARGETS:
            raise InputError(f"saliency.target: expected one of {TARGETS}, got {target!r}")
        self.model = model
        self.target = target
        self.batch_size = int(batch_size or default_batch_size())
        self._grad_fns = {}
        self._cam_fns = {}
        self._fwd_fns = {}
        self._guided = None
        #: Grad-CAM layer whose activations/gradients every gradient call also returns (or None).
        self.default_layer = None

    # -- compiled functions -------------------------------------------------------------
    def _grad_fn(self, shape):
        import tensorflow as tf

        key = tuple(shape[1:])
        if key not in self._grad_fns:
            model = self.model

            @tf.function(input_signature=[tf.TensorSpec((None,) + key, tf.float32), tf.TensorSpec((None,), tf.float32)])
            def fn(z, w):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    y = model(z, training=False)
                    y = tf.reshape(tf.cast(y, tf.float32), (tf.shape(z)[0], -1))[:, 0]
                    target = w * y  # per-item sign of the explained class
                return tape.gradient(target, z), y

            self._grad_fns[key] = fn
        return self._grad_fns[key]

    def _fwd_fn(self, shape):
        import tensorflow as tf

        key = tuple(shape[1:])
        if key not in self._fwd_fns:
            model = self.model

            @tf.function(input_signature=[tf.TensorSpec((None,) + key, tf.float32)])
            def fn(z):
                y = model(z, training=False)
                return tf.reshape(tf.cast(y, tf.float32), (tf.shape(z)[0], -1))[:, 0]

            self._fwd_fns[key] = fn
        return self._fwd_fns[key]

    def _cam_fn(self, shape, layer_name):
        """(z, w) -> (d target/d z, layer activations, d target/d activations, logit), target = w * logit:
        one backward pass.

        When ``default_layer`` is set, input gradients go through this function too, so a job
        computing GRAD/SG/IG/... and Grad-CAM traces the model's gradient graph only once."""
        import keras
        import tensorflow as tf

        key = (tuple(shape[1:]), layer_name)
        if key not in self._cam_fns:
            model = self.model
            sub = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])

            @tf.function(input_signature=[tf.TensorSpec((None,) + key[0], tf.float32), tf.TensorSpec((None,), tf.float32)])
            def fn(z, w):
                with tf.GradientTape() as tape:
                    tape.watch(z)
                    a, y = sub(z, training=False)
                    y = tf.reshape(tf.cast(y, tf.float32), (tf.shape(z)[0], -1))[:, 0]
                    target = w * y
                dz, da = tape.gradient(target, [z, a])
                return dz, tf.cast(a, tf.float32), tf.cast(da, tf.float32), y

            self._cam_fns[key] = fn
        return self._cam_fns[key]

    # -- public -------------------------------------------------------------------------
    def target_signs(self, x: np.ndarray) -> np.ndarray:
        """Per image of ``x`` the sign of its explained class: +1 (``positive``, no model call), or
        under ``predicted`` -1 where the model predicts negative (logit < 0), else +1."""
        if self.target == "positive":
            return np.ones(len(x), np.float32)
        return np.where(self.logits(x) < 0, -1.0, 1.0).astype(np.float32)

    def input_gradients(self, z: np.ndarray, w: np.ndarray | None = None):
        """(gradients of ``w * logit`` (B,S,S,C), logits (B,)) for one batch, in one compiled call.

        ``w`` (B,): each item's class sign (:meth:`target_signs` of the image it came from); None =
        the signs of ``z`` itself (right when ``z`` are the images, not noisy copies or path points).
        """
        z = np.ascontiguousarray(z, dtype=np.float32)
        w = self.target_signs(z) if w is None else np.ascontiguousarray(w, dtype=np.float32)
        if self.default_layer:
            g, _, _, y = self._cam_fn(z.shape, self.default_layer)(z, w)
        else:
            g, y = self._grad_fn(z.shape)(z, w)
        return g.numpy(), y.numpy()

    def logits(self, z: np.ndarray) -> np.ndarray:
        out = []
        fn = self._fwd_fn(z.shape)
        for lo in range(0, len(z), self.batch_size):
            out.append(fn(np.ascontiguousarray(z[lo : lo + self.batch_size], dtype=np.float32)).numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def cam_gradients(self, z: np.ndarray, layer_name: str):
        """(activations, d target / d activations, logits) of ``layer_name`` for the images ``z``, batched."""
        fn = self._cam_fn(z.shape, layer_name)
        acts, grads, ys = [], [], []
        for lo in range(0, len(z), self.batch_size):
            zb = np.ascontiguousarray(z[lo : lo + self.batch_size], dtype=np.float32)
            _, a, g, y = fn(zb, self.target_signs(zb))
            acts.append(a.numpy())
            grads.append(g.numpy())
            ys.append(y.numpy())
        return np.concatenate(acts), np.concatenate(grads), np.concatenate(ys)

    def stream(self, total: int, build, consume, weights: np.ndarray):
        """Feed ``total`` work items to the gradient function in chunks of ``batch_size``.

        ``build(lo, hi) -> z`` makes the inputs of items ``lo..hi-1``; ``consume(lo, hi, g)``
        receives their gradients; ``weights`` (total,) are the items' class signs (those of the
        images they belong to). Items are processed in order, so a method can finalize an
        image (or a noise sample) as soon as its last item has been consumed.
        """
        for lo in range(0, total, self.batch_size):
            hi = min(lo + self.batch_size, total)
            g, _ = self.input_gradients(build(lo, hi), weights[lo:hi])
            consume(lo, hi, g)

    def sync_guided(self):
        """Copy the model's current weights into the guided-backprop clone, if it was built: after
        :func:`saliency_audit.models.randomize.apply_state` changed the model in place. Assigns into
        the clone's own variables, so its compiled functions stay valid (no retrace)."""
        if self._guided is not None:
            for dst, src in zip(self._guided.model.weights, self.model.weights):
                dst.assign(src)

    def guided(self) -> "GradientEngine":
        """An engine on the guided-backprop clone of the model (built once)."""
        if self._guided is None:
            from .guided import guided_clone

            self._guided = GradientEngine(guided_clone(self.model), self.batch_size, self.target)
        return self._guided


_ENGINES: dict[int, tuple] = {}


def engine_for(model, batch_size: int | None = None, target: str = "positive") -> GradientEngine:
    """The cached :class:`GradientEngine` of ``model`` (one per model object, batch size and target)."""
    bs = int(batch_size or default_batch_size())
    key = id(model)
    hit = _ENGINES.get(key)
    if hit is not None and hit[0]() is model and hit[1].batch_size == bs and hit[1].target == target:
        return hit[1]
    engine = GradientEngine(model, bs, target)
    try:
        ref = weakref.ref(model)
    except TypeError:  # pragma: no cover
        ref = lambda: model  # noqa: E731
    _ENGINES[key] = (ref, engine)
    return engine


class SaliencyMethod:
    """Base class: ``compute(model, x) -> (N, S, S)`` raw maps.

    Parameters
    ----------
    name : str
        Registry id.
    params : dict
        Resolved parameters (:func:`saliency_audit.saliency.registry.resolve_params`).
    batch_size : int or None
        Inputs per compiled gradient call (``saliency.batch_size``; None = 256 GPU / 32 CPU).
    channel_reduction : {'abs_sum', 'sum'}
        How gradient-type attributions become 2-D maps.
    arch : str or None
        Model architecture (``inceptionv3``, ``densenet121``), for the Grad-CAM layer lookup.
    gradcam_layer : str or None
        Explicit Grad-CAM layer (config ``saliency.gradcam_layer.<arch>``).
    seed : int
        Seed of the method's random noise; image ``i`` of a call uses
        ``numpy.random.default_rng([seed, i])``, independent of the batch size.
    target : {'positive', 'predicted'}
        The explained output (``saliency.target``; module docstring), applied by the engine.
    cam_normalization : {'minmax', 'released'}
        ``saliency.cam_normalization``; only Guided Grad-CAM's map depends on it
        (:class:`saliency_audit.saliency.methods.GuidedGradCam`).
    """

    def __init__(self, name, params, batch_size=None, channel_reduction="abs_sum", arch=None,
                 gradcam_layer=None, seed=0, target="positive", cam_normalization="minmax"):
        self.name = name
        self.spec = spec(name)
        self.params = params
        self.batch_size = batch_size
        self.channel_reduction = channel_reduction
        self.arch = arch
        self.gradcam_layer = gradcam_layer
        self.seed = int(seed)
        self.target = target
        self.cam_normalization = cam_normalization

    @property
    def kind(self) -> str:
        return self.spec.kind

    def engine(self, model) -> GradientEngine:
        return engine_for(model, self.batch_size, self.target)

    def compute(self, model, x: np.ndarray, **kwargs) -> np.ndarray:
        """Raw 2-D maps (N, S, S) float32 for the batch ``x`` (N, S, S, C)."""
        x = check_input(x)
        if self.kind == "gradient":
            return reduce_channels(self.attribute(model, x, **kwargs), self.channel_reduction)
        return self._compute(model, x, **kwargs).astype(np.float32)

    def attribute(self, model, x, **kwargs):  # gradient-type methods
        raise NotImplementedError

    def _compute(self, model, x, **kwargs):  # other methods
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}({self.name}, {self.params})"


def check_input(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise InputError(f"saliency: expected a batch of images (N, S, S, C), got shape {x.shape}")
    return x
