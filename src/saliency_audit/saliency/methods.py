"""The saliency methods. Each is small: the batched engine (:mod:`.base`) carries the loops.

Paper methods (Arun et al. 2021, Table 1): GRAD, SG, IG, SIG, GCAM, XRAI, GBP, GGCAM.
Beyond the paper: GCAMPP (Grad-CAM++), SCORECAM, GIG (Guided IG), BLURIG, OCC (occlusion).
All explain the output chosen by ``saliency.target`` (the positive-class logit by default; see
:mod:`.base`), applied by the engine. Parameters and defaults: :mod:`.registry`.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from .base import SaliencyMethod, check_input, baseline_value, find_gradcam_layer, reduce_channels
from ..errors import InputError
from .normalize import CAM_NORMALIZATIONS, clip_p99

# ----------------------------------------------------------------------------------------
# gradient paths: GRAD, SG, IG, SIG and XRAI's IG share one batched integrator


def smooth_path(engine, x, samples, endpoints, bases=None, steps=1, magnitude=False):
    """Average over ``samples`` of a (path-integrated) gradient, batched over images x samples x steps.

    For image ``i`` and sample ``s`` the end point is ``endpoints(i)[s]`` (the image, plus noise for
    SmoothGrad). Without ``bases`` the sample's attribution is the gradient at the end point;
    with ``bases(i)[s]`` = baseline ``b`` it is the integrated gradient of PAIR/Sundararajan et
    al. (eq. 3, PAIR's Riemann sum): ``(x_s - b) * mean_t grad(b + a_t (x_s - b))`` with
    ``a_t = linspace(0, 1, steps)``. The result per image is ``mean_s r_s`` or, with
    ``magnitude``, ``mean_s r_s ** 2`` (PAIR ``GetSmoothedMask(magnitude=True)``).

    Work items are ordered (image, sample, step) and fed to the engine in chunks of its batch
    size, so one compiled call covers several images, samples and steps. Every item of image ``i``
    explains image ``i``'s class (``engine.target_signs``), not its own.
    """
    n = len(x)
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32) if bases is not None else np.ones(1, np.float32)
    per_image = samples * len(alphas)
    out = np.zeros(x.shape, np.float32)
    acc = {}  # (i, s) -> running sum of gradients
    cache = {}  # i -> (endpoints (S,...), bases (S,...) or None)

    def get(i):
        if i not in cache:
            cache[i] = (np.asarray(endpoints(i), np.float32), None if bases is None else np.asarray(bases(i), np.float32))
        return cache[i]

    def build(lo, hi):
        f = np.arange(lo, hi)
        z = np.empty((hi - lo,) + x.shape[1:], np.float32)
        for j, item in enumerate(f):
            i, r = divmod(int(item), per_image)
            s, t = divmod(r, len(alphas))
            ends, bs = get(i)
            if bs is None:
                z[j] = ends[s]
            else:
                z[j] = bs[s] + alphas[t] * (ends[s] - bs[s])
        return z

    def consume(lo, hi, g):
        for j, item in enumerate(range(lo, hi)):
            i, r = divmod(item, per_image)
            s, t = divmod(r, len(alphas))
            key = (i, s)
            acc[key] = g[j] if key not in acc else acc[key] + g[j]
            if t == len(alphas) - 1:
                ends, bs = get(i)
                res = acc.pop(key) / len(alphas)
                if bs is not None:
                    res = res * (ends[s] - bs[s])
                out[i] += res * res if magnitude else res
                if s == samples - 1:
                    cache.pop(i, None)
                    out[i] /= samples

    engine.stream(n * per_image, build, consume, np.repeat(engine.target_signs(x), per_image))
    return out


class _NoisyMixin:
    def _noise(self, x, i, k, noise=None):
        """Absolute noise (k, S, S, C) of image ``i``: sd = ``noise`` x (max - min) of the image
        (Smilkov et al. 2017, sec. 3; PAIR ``stdev_spread``), drawn from ``default_rng([seed, i])``.
        An injected ``noise`` array (N, k, S, S, C) is used as is (tests)."""
        if noise is not None:
            return noise[i]
        sd = self.params["noise"] * float(x[i].max() - x[i].min())
        rng = np.random.default_rng([self.seed, int(self._index[i])])
        return rng.standard_normal((k,) + x.shape[1:], dtype=np.float32) * np.float32(sd)

    def _set_index(self, x, index):
        self._index = np.arange(len(x)) if index is None else np.asarray(index)


class Gradient(SaliencyMethod):
    """Vanilla gradient d logit / d x (Simonyan et al. 2014, eq. 1)."""

    def attribute(self, model, x, **_):
        return smooth_path(self.engine(model), x, 1, lambda i: x[i][None])


class SmoothGrad(_NoisyMixin, SaliencyMethod):
    """SmoothGrad (Smilkov et al. 2017, eq. 2): mean over ``samples`` noisy copies of the gradient;
    with ``magnitude`` (default, the released code through PAIR) the mean of squared gradients.

    ``compute(model, x, noise=None, index=None)``: ``noise`` (N, samples, S, S, C) injects
    absolute noise; ``index`` are the images' seed keys (position in the shard)."""

    def attribute(self, model, x, noise=None, index=None, **_):
        self._set_index(x, index)
        k = self.params["samples"]
        return smooth_path(self.engine(model), x, k, lambda i: x[i][None] + self._noise(x, i, k, noise),
                           magnitude=self.params["magnitude"])


class IntegratedGradients(SaliencyMethod):
    """Integrated Gradients (Sundararajan et al. 2017, eq. 3) from a ``black`` (default), ``zero``
    or ``white`` baseline, PAIR's Riemann sum over ``linspace(0, 1, steps)``."""

    def attribute(self, model, x, **_):
        b = baseline_value(x[:1], self.params["baseline"])
        return smooth_path(self.engine(model), x, 1, lambda i: x[i][None], lambda i: b, steps=self.params["steps"])


class SmoothIntegratedGradients(_NoisyMixin, SaliencyMethod):
    """SmoothGrad over Integrated Gradients (PAIR ``IntegratedGradients.GetSmoothedMask``): IG
    from the baseline to each of ``samples`` noisy copies, squared (``magnitude``) and averaged.
    Cost: samples x steps gradients per image."""

    def attribute(self, model, x, noise=None, index=None, **_):
        self._set_index(x, index)
        k = self.params["samples"]
        b = baseline_value(x[:1], self.params["baseline"])
        return smooth_path(self.engine(model), x, k, lambda i: x[i][None] + self._noise(x, i, k, noise),
                           lambda i: np.broadcast_to(b, (k,) + x.shape[1:]), steps=self.params["steps"],
                           magnitude=self.params["magnitude"])


class GuidedBackprop(SaliencyMethod):
    """Guided backpropagation (Springenberg et al. 2015) on a ReLU-overridden clone (:mod:`.guided`)."""

    def attribute(self, model, x, **_):
        eng = self.engine(model).guided()
        return smooth_path(eng, x, 1, lambda i: x[i][None])


# ----------------------------------------------------------------------------------------
# class activation maps


def upsample(cams: np.ndarray, size) -> np.ndarray:
    """Bilinear upsampling of (N, h, w) maps to ``size`` (skimage ``resize(order=1)``, as PAIR)."""
    return np.stack([resize(c, tuple(size), order=1) for c in cams]).astype(np.float32)


class _CamMixin:
    def _layer(self, model):
        return find_gradcam_layer(model, self.arch, self.gradcam_layer)

    def _acts_grads(self, model, x):
        acts, grads, _ = self.engine(model).cam_gradients(x, self._layer(model))
        return acts, grads


def gradcam_lowres(acts, grads):
    """Grad-CAM at the layer's resolution (Selvaraju et al. 2017, eq. 1-2): ReLU(sum_k w_k A_k),
    w_k = spatial mean of d logit / d A_k."""
    w = grads.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwk,nk->nhw", acts, w), 0)


class GradCam(_CamMixin, SaliencyMethod):
    """Grad-CAM on the last convolutional block, ReLU, bilinear upsampling (no scaling)."""

    def _compute(self, model, x, **_):
        acts, grads = self._acts_grads(model, x)
        return upsample(gradcam_lowres(acts, grads), x.shape[1:3])


class GuidedGradCam(_CamMixin, SaliencyMethod):
    """Guided Grad-CAM (Selvaraju et al. 2017, sec. 3.1): guided backprop x upsampled Grad-CAM.

    ``cam_normalization`` (config ``saliency.cam_normalization``) chooses how the parts combine:

    ``minmax`` (default)
        the channel-resolved product ``gbp * cam`` (Selvaraju et al.), reduced over channels like
        every gradient map and normalized at scoring time as one (99th-percentile clip);
    ``released``
        the released code's form: the product of the two already-visualised maps, GBP's
        grayscale visualisation (sum of |.| over channels, 99th-percentile clip to [0, 1]) times
        Grad-CAM's (divided by its max, then the same clip), min-max scaled at scoring time.
        It is made here, not at scoring time, because it needs the two parts, which the stored
        map (one 2-D array per image) no longer has; the rule's params carry the setting.
    """

    def _parts(self, model, x):
        acts, grads = self._acts_grads(model, x)
        cam = upsample(gradcam_lowres(acts, grads), x.shape[1:3])
        gbp = smooth_path(self.engine(model).guided(), x, 1, lambda i: x[i][None])
        return gbp, cam

    def attribute(self, model, x, **_):
        gbp, cam = self._parts(model, x)
        return gbp * cam[..., None]

    def compute(self, model, x, **kwargs):
        if self.cam_normalization == "minmax":
            return super().compute(model, x, **kwargs)
        if self.cam_normalization != "released":
            raise InputError(f"saliency.cam_normalization: expected one of {CAM_NORMALIZATIONS}, got {self.cam_normalization!r}")
        gbp, cam = self._parts(model, check_input(x))
        return released_ggcam(reduce_channels(gbp, self.channel_reduction), cam)


def released_ggcam(gbp: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The released code's Guided Grad-CAM of 2-D parts (N, S, S): ``clip_p99(gbp) * clip_p99(cam)``
    (each part visualised to [0, 1] first; :func:`saliency_audit.saliency.normalize.clip_p99`)."""
    return (clip_p99(gbp) * clip_p99(cam)).astype(np.float32)


class GradCamPlusPlus(_CamMixin, SaliencyMethod):
    """Grad-CAM++ (Chattopadhay et al. 2018, eq. 19) with the exponential-score closed form of
    tf-keras-vis; the common factor exp(logit) is dropped (it only scales the map)."""

    def _compute(self, model, x, **_):
        a, g = self._acts_grads(model, x)
        return upsample(gradcampp_lowres(a, g), x.shape[1:3])


def gradcampp_lowres(a, g):
    """Grad-CAM++ at the layer's resolution (tf-keras-vis's formula without the exp(logit) factor)."""
    second, third = g * g, g * g * g
    gsum = a.sum(axis=(1, 2), keepdims=True)
    denom = 2.0 * second + third * gsum
    denom = denom + (second == 0)
    alphas = second / denom
    norm = alphas.sum(axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + (norm == 0))
    w = (np.maximum(g, 0) * alphas).sum(axis=(1, 2))
    return np.maximum(np.einsum("nhwk,nk->nhw", a, w), 0)


class ScoreCam(_CamMixin, SaliencyMethod):
    """Score-CAM (Wang et al. 2020, eq. 5-8): each upsampled, min-max scaled activation map masks
    the input; channel weights = softmax over channels of (logit(masked) - logit(zero input)).
    ``max_channels`` > 0 keeps the channels of largest activation SD (Faster Score-CAM)."""

    def _compute(self, model, x, **_):
        import tensorflow as tf

        eng = self.engine(model)
        acts, _, _ = eng.cam_gradients(x, self._layer(model))
        out = np.zeros(x.shape[:3], np.float32)
        base = eng.logits(np.zeros_like(x[:1]))[0]
        sign = eng.target_signs(x)
        for i in range(len(x)):
            a = acts[i]
            if self.params["max_channels"] and self.params["max_channels"] < a.shape[-1]:
                keep = np.argsort(-a.std(axis=(0, 1)))[: self.params["max_channels"]]
                a = a[..., keep]
            up = tf.image.resize(a[None], x.shape[1:3], method="bilinear").numpy()[0]
            lo, hi = up.min(axis=(0, 1)), up.max(axis=(0, 1))
            masks = (up - lo) / np.where(hi > lo, hi - lo, 1)
            masked = x[i][None] * np.transpose(masks, (2, 0, 1))[..., None]
            s = sign[i] * (eng.logits(masked) - base)
            w = np.exp(s - s.max())
            w /= w.sum()
            out[i] = np.maximum(np.tensordot(up, w, axes=([2], [0])), 0)
        return out


# ----------------------------------------------------------------------------------------
# XRAI, PAIR-based methods, occlusion


class Xrai(SaliencyMethod):
    """XRAI (Kapishnikov et al. 2019) with PAIR's defaults: IG from the image's min and max
    baselines (black and white), Felzenszwalb segments, greedy region ranking (``full``).
    The IG attributions come from our batched engine; segmentation and ranking are PAIR's
    algorithm, run by the faster exact re-implementation in :mod:`.xrai` (``full``) or by PAIR's
    ``XRAI`` with ``base_attribution`` (``fast``)."""

    def _compute(self, model, x, **_):
        from saliency.core import XRAI, XRAIParameters

        steps = self.params["steps"]
        lo = x.min(axis=(1, 2, 3))
        hi = x.max(axis=(1, 2, 3))
        attr = smooth_path(
            self.engine(model), x, 2, lambda i: np.broadcast_to(x[i], (2,) + x.shape[1:]),
            lambda i: np.stack([np.full(x.shape[1:], lo[i], np.float32), np.full(x.shape[1:], hi[i], np.float32)]),
            steps=steps,
        )
        if self.params["algorithm"] == "full":
            from .xrai import xrai_map

            return np.stack([xrai_map(x[i], attr[i]) for i in range(len(x))])
        xrai = XRAI()
        par = XRAIParameters(steps=steps, algorithm=self.params["algorithm"])
        return np.stack([xrai.GetMask(x[i], None, base_attribution=attr[i], extra_parameters=par) for i in range(len(x))])


def _call_model_function(engine, sign: float):
    """PAIR call_model_function of one image whose class sign is ``sign`` (every path point
    explains the image's class)."""
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def fn(x_batch, call_model_args=None, expected_keys=None):
        z = np.asarray(x_batch, np.float32)
        g, _ = engine.input_gradients(z, np.full(len(z), sign, np.float32))
        return {INPUT_OUTPUT_GRADIENTS: g}

    return fn


class GuidedIG(SaliencyMethod):
    """Guided Integrated Gradients (Kapishnikov et al. 2021) through PAIR's ``GuidedIG`` (a
    sequential path: one gradient per step per image), numpy>=2.4 shim in :mod:`.compat`."""

    def attribute(self, model, x, **_):
        from .compat import patch_guided_ig

        gig = patch_guided_ig().GuidedIG()
        eng = self.engine(model)
        sign = eng.target_signs(x)
        b = baseline_value(x[0], self.params["baseline"])
        return np.stack([
            gig.GetMask(x[i], _call_model_function(eng, sign[i]), x_baseline=b, x_steps=self.params["steps"], fraction=self.params["fraction"],
                        max_dist=self.params["max_dist"]) for i in range(len(x))
        ]).astype(np.float32)


class BlurIG(SaliencyMethod):
    """Blur IG (Xu et al. 2020) through PAIR's ``BlurIG`` with batched steps per image."""

    def attribute(self, model, x, **_):
        from saliency.core import BlurIG as PairBlurIG

        eng = self.engine(model)
        sign = eng.target_signs(x)
        p = self.params
        return np.stack([
            PairBlurIG().GetMask(x[i], _call_model_function(eng, sign[i]), max_sigma=p["max_sigma"], steps=p["steps"], grad_step=p["grad_step"],
                                 sqrt=p["sqrt"], batch_size=eng.batch_size) for i in range(len(x))
        ]).astype(np.float32)


class Occlusion(SaliencyMethod):
    """Occlusion (Zeiler & Fergus 2014): a square patch of side ``size`` x S set to ``value``
    slides with stride ``stride`` x patch; each pixel gets the mean drop of the explained logit over the
    patches that cover it. Forward passes are batched."""

    def _compute(self, model, x, **_):
        eng = self.engine(model)
        n, s = x.shape[0], x.shape[1]
        p = max(1, int(round(self.params["size"] * s)))
        st = max(1, int(round(self.params["stride"] * p)))
        pos = list(range(0, max(s - p, 0) + 1, st))
        if pos[-1] != s - p:
            pos.append(s - p)
        boxes = [(r, c) for r in pos for c in pos]
        base = eng.logits(x)
        sign = eng.target_signs(x)
        out = np.zeros(x.shape[:3], np.float32)
        cover = np.zeros((s, s), np.float32)
        for r, c in boxes:
            cover[r : r + p, c : c + p] += 1
        for i in range(n):
            occ = np.repeat(x[i][None], len(boxes), axis=0)
            for j, (r, c) in enumerate(boxes):
                occ[j, r : r + p, c : c + p] = self.params["value"]
            drop = sign[i] * (base[i] - eng.logits(occ))
            for j, (r, c) in enumerate(boxes):
                out[i, r : r + p, c : c + p] += drop[j]
        return out / cover
