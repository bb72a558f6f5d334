"""Saliency methods against the reference libraries (tf-keras-vis 0.8.7, PAIR saliency 0.2.1) and
against properties that must hold (IG completeness, guided-backprop forward pass, constant models).

One small Keras model (convolutions with ReLU, global average pooling, Dense(1) logit) on 32 px
inputs; every comparison is at equal settings with a stated tolerance.
"""

import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from saliency_audit.errors import InputError  # noqa: E402
from saliency_audit.saliency import get_method  # noqa: E402
from saliency_audit.saliency.base import engine_for, find_gradcam_layer  # noqa: E402
from saliency_audit.saliency.compat import pair_call_model_function  # noqa: E402
from saliency_audit.saliency.methods import gradcam_lowres  # noqa: E402
from saliency_audit.saliency.normalize import normalize_maps  # noqa: E402

S = 32
RTOL = 1e-4


def _small_model(seed=0, zero=False):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((S, S, 3))
    h = keras.layers.Conv2D(8, 3, padding="same")(inp)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(16, 3, padding="same", name="last_conv")(h)
    h = keras.layers.ReLU(name="last_relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(1)(h)
    model = keras.Model(inp, out)
    if zero:
        model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def model():
    return _small_model()


@pytest.fixture(scope="module")
def x():
    rng = np.random.default_rng(1)
    g = rng.uniform(-1, 1, (4, S, S, 1)).astype(np.float32)
    return np.repeat(g, 3, axis=-1)  # 3 identical gray channels, as to_model_input makes


def _score(y):
    return y[:, 0]


def _max_rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


# ---------------------------------------------------------------------------------- tf-keras-vis


def test_grad_matches_tf_keras_vis(model, x):
    from tf_keras_vis.saliency import Saliency

    ref = Saliency(model)(_score, x, gradient_modifier=None, keepdims=True, normalize_map=False)
    ours = get_method("GRAD", batch_size=3).attribute(model, x)
    assert ours.shape == x.shape
    assert _max_rel_err(ours, np.asarray(ref)) < RTOL
    # 2-D map = sum of |.| over the channels
    np.testing.assert_allclose(get_method("GRAD").compute(model, x), np.abs(ref).sum(-1), rtol=1e-4, atol=1e-9)


def test_smoothgrad_matches_tf_keras_vis_with_injected_noise(model, x, monkeypatch):
    import tf_keras_vis.saliency as tkv

    k = 5
    rng = np.random.default_rng(2)
    noise = (0.15 * 2.0 * rng.standard_normal((len(x), k) + x.shape[1:])).astype(np.float32)

    def fake_normal(loc, scale, size):
        assert tuple(size) == (k, len(x)) + x.shape[1:]
        return np.transpose(noise, (1, 0, 2, 3, 4))

    monkeypatch.setattr(tkv.np.random, "normal", fake_normal)
    ref = tkv.Saliency(model)(_score, x, smooth_samples=k, gradient_modifier=lambda g: g * g, keepdims=True,
                              normalize_map=False)
    ours = get_method("SG", {"samples": k}, batch_size=7).attribute(model, x, noise=noise)
    assert _max_rel_err(ours, np.asarray(ref)) < 1e-3


def test_smoothgrad_noise_scale_and_seeding(model, x):
    sg = get_method("SG", {"samples": 4, "noise": 0.15}, seed=11)
    sg._set_index(x, None)
    n = sg._noise(x, 0, 4)
    expect = 0.15 * (x[0].max() - x[0].min())
    assert abs(n.std() / expect - 1) < 0.02
    a = get_method("SG", {"samples": 4}, seed=11, batch_size=3).compute(model, x)
    b = get_method("SG", {"samples": 4}, seed=11, batch_size=16).compute(model, x)
    c = get_method("SG", {"samples": 4}, seed=12, batch_size=16).compute(model, x)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-12)  # the noise does not depend on the batch size
    assert not np.allclose(a, c)


def test_gradcam_matches_tf_keras_vis_lowres(model, x):
    from tf_keras_vis.gradcam import Gradcam

    ref = Gradcam(model)(_score, x, penultimate_layer="last_relu",
                              seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)
    acts, grads, _ = engine_for(model, 8).cam_gradients(x, "last_relu")
    ours = gradcam_lowres(acts, grads)
    assert ours.shape == (len(x), S // 2, S // 2)
    assert ours.max() > 0
    assert _max_rel_err(ours, np.asarray(ref)) < RTOL


# ---------------------------------------------------------------------------------- PAIR saliency


def test_gradcam_matches_pair(model, x):
    from saliency.core import GradCam

    fn = pair_call_model_function(model, "last_relu")
    ours = get_method("GCAM", gradcam_layer="last_relu").compute(model, x)
    assert ours.shape == (len(x), S, S)
    acts, grads, _ = engine_for(model, 8).cam_gradients(x, "last_relu")
    lowres_max = gradcam_lowres(acts, grads).max(axis=(1, 2))  # PAIR scales by the low-res maximum
    for i in range(len(x)):
        ref = GradCam().GetMask(x[i], fn, should_resize=True, three_dims=False)
        np.testing.assert_allclose(ours[i] / lowres_max[i], ref, atol=1e-5)


def test_integrated_gradients_matches_pair(model, x):
    from saliency.core import IntegratedGradients

    fn = pair_call_model_function(model)
    steps = 8
    ours = get_method("IG", {"steps": steps}, batch_size=5).attribute(model, x)
    for i in range(len(x)):
        ref = IntegratedGradients().GetMask(x[i], fn, x_baseline=np.full_like(x[i], -1.0), x_steps=steps, batch_size=3)
        assert _max_rel_err(ours[i], ref) < RTOL


def test_xrai_matches_pair(model, x):
    from saliency.core import XRAI, XRAIParameters

    fn = pair_call_model_function(model)
    steps = 4
    ours = get_method("XRAI", {"steps": steps}, batch_size=6).compute(model, x[:2])
    for i in range(2):
        ref = XRAI().GetMask(x[i], fn, extra_parameters=XRAIParameters(steps=steps), batch_size=4)
        assert np.isfinite(ours[i]).all()
        np.testing.assert_allclose(ours[i], ref, rtol=1e-4, atol=1e-7 * np.abs(ref).max())


def test_smooth_ig_matches_pair_smoothed_mask(model, x, monkeypatch):
    """SIG = PAIR IntegratedGradients.GetSmoothedMask(magnitude=True) with the same noise."""
    from saliency.core import IntegratedGradients
    import saliency.core.base as pair_base

    k, steps = 3, 4
    rng = np.random.default_rng(3)
    noise = (0.3 * rng.standard_normal((1, k) + x.shape[1:])).astype(np.float32)
    draws = iter(noise[0])
    monkeypatch.setattr(pair_base.np.random, "normal", lambda loc, sd, shape: next(draws))
    ref = IntegratedGradients().GetSmoothedMask(x[0], pair_call_model_function(model), nsamples=k,
                                                x_baseline=np.full_like(x[0], -1.0), x_steps=steps, batch_size=4)
    ours = get_method("SIG", {"samples": k, "steps": steps}, batch_size=5).attribute(model, x[:1], noise=noise)[0]
    assert _max_rel_err(ours, ref) < 1e-3


# ---------------------------------------------------------------------------------- properties


def test_ig_completeness_improves_with_steps(model, x):
    eng = engine_for(model, 32)
    gap = eng.logits(x) - eng.logits(np.full_like(x, -1.0))
    errs = []
    for steps in (4, 16, 64):
        attr = get_method("IG", {"steps": steps}, batch_size=32).attribute(model, x)
        errs.append(np.abs(attr.sum(axis=(1, 2, 3)) - gap).mean() / np.abs(gap).mean())
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] < 0.05


def test_guided_backprop_forward_unchanged_and_gradient_guided(model, x):
    from saliency_audit.saliency.guided import guided_clone

    clone = guided_clone(model)
    np.testing.assert_allclose(clone(x).numpy(), model(x).numpy(), rtol=1e-6)
    gbp = get_method("GBP").attribute(model, x)
    grad = get_method("GRAD").attribute(model, x)
    assert not np.allclose(gbp, grad)
    # the original model is untouched
    np.testing.assert_allclose(get_method("GRAD").attribute(model, x), grad, rtol=1e-6)


def test_guided_backprop_hand_computed():
    """f = w2 . relu(W1 x): guided gradient = W1 (1[h > 0] 1[w2 > 0] w2)."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((4, 4, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(6, activation="relu", use_bias=False)(h)
    out = keras.layers.Dense(1, use_bias=False)(h)
    m = keras.Model(inp, out)
    w1, w2 = m.get_weights()
    xin = np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype(np.float32)
    got = get_method("GBP").attribute(m, xin).reshape(2, -1)
    pre = xin.reshape(2, -1) @ w1
    expect = ((pre > 0) * (w2[:, 0] > 0) * w2[:, 0]) @ w1.T
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-7)


def test_guided_gradcam_is_gbp_times_cam(model, x):
    gg = get_method("GGCAM", gradcam_layer="last_relu").compute(model, x)
    gbp = get_method("GBP").compute(model, x)
    cam = get_method("GCAM", gradcam_layer="last_relu").compute(model, x)
    np.testing.assert_allclose(gg, gbp * cam, rtol=1e-5, atol=1e-12)


def test_constant_model_gives_zero_maps_and_normalizes(x):
    m = _small_model(zero=True)
    for name in ("GRAD", "SG", "IG", "GCAM", "GBP", "GGCAM", "XRAI"):
        params = {"samples": 2} if name == "SG" else {"steps": 2} if name in ("IG", "XRAI") else {}
        maps = get_method(name, params).compute(m, x[:2])
        assert np.all(maps == 0), name
        norm = normalize_maps(maps, name, "released")
        assert np.isfinite(norm).all() and np.all(norm == 0), name


def test_all_methods_run_and_shapes(model, x):
    from saliency_audit.saliency.registry import METHOD_NAMES

    small = {"SG": {"samples": 2}, "IG": {"steps": 2}, "SIG": {"samples": 2, "steps": 2}, "XRAI": {"steps": 2},
             "GIG": {"steps": 3}, "BLURIG": {"steps": 3}, "SCORECAM": {"max_channels": 4}}
    for name in METHOD_NAMES:
        maps = get_method(name, small.get(name), gradcam_layer="last_relu").compute(model, x[:2])
        assert maps.shape == (2, S, S) and maps.dtype == np.float32, name
        assert np.isfinite(maps).all() and np.abs(maps).max() > 0, name


def test_gradcam_plus_plus_matches_tf_keras_vis(model, x):
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    from saliency_audit.saliency.methods import gradcampp_lowres

    ref = GradcamPlusPlus(model)(_score, x, penultimate_layer="last_relu", seek_penultimate_conv_layer=False,
                                 expand_cam=False, normalize_cam=False)
    acts, grads, logits = engine_for(model, 8).cam_gradients(x, "last_relu")
    # tf-keras-vis keeps the common factor exp(logit) of the exponential-score closed form
    ours = gradcampp_lowres(acts, grads) * np.exp(logits)[:, None, None]
    assert ours.max() > 0
    assert _max_rel_err(ours, np.asarray(ref)) < RTOL


# ---------------------------------------------------------------------------------- layers, registry


def test_gradcam_layer_lookup_inceptionv3_and_fallback(model):
    keras.utils.set_random_seed(0)
    base = keras.applications.InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3))
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(base.output))
    inc = keras.Model(base.input, out)
    assert find_gradcam_layer(inc, "inceptionv3") == "mixed10"
    assert find_gradcam_layer(inc, "inceptionv3", override="mixed9") == "mixed9"
    with pytest.raises(InputError, match="mixed99"):
        find_gradcam_layer(inc, "inceptionv3", override="mixed99")
    xin = np.random.default_rng(0).uniform(-1, 1, (1, 75, 75, 3)).astype(np.float32)
    cam = get_method("GCAM", arch="inceptionv3").compute(inc, xin)
    assert cam.shape == (1, 75, 75) and np.isfinite(cam).all()
    # generic fallback: the last layer with a 4-D output
    assert find_gradcam_layer(model, "unknown-arch") == "last_relu"


def test_registry_matches_config_check():
    from saliency_audit.config import check_config
    from saliency_audit.saliency.registry import METHOD_NAMES, PAPER_METHODS, check_saliency_config

    assert PAPER_METHODS == ("GRAD", "SG", "IG", "SIG", "GCAM", "XRAI", "GBP", "GGCAM")
    base = {"datasets": {"d": {"kind": "synthetic"}}}
    check_config({**base, "saliency": {"methods": list(METHOD_NAMES)}})
    with pytest.raises(InputError, match="NOPE"):
        check_config({**base, "saliency": {"methods": ["GRAD", "NOPE"]}})
    with pytest.raises(InputError, match=r"saliency\.params\.SG\.sample"):
        check_saliency_config({"saliency": {"params": {"SG": {"sample": 3}}}})
    with pytest.raises(InputError, match=r"saliency\.params\.IG\.steps"):
        check_saliency_config({"saliency": {"params": {"IG": {"steps": 0}}}})


def test_registry_imports_without_tensorflow():
    code = (
        "import sys; import saliency_audit.config; from saliency_audit.saliency.registry import METHOD_NAMES; "
        "from saliency_audit.saliency.normalize import normalize_maps; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'; print(len(METHOD_NAMES))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert int(res.stdout.strip()) >= 8


def test_fast_xrai_segments_and_ranking_equal_pair():
    from scipy.ndimage import gaussian_filter
    from saliency.core import XRAI
    from saliency.core import xrai as pair_xrai

    from saliency_audit.saliency.xrai import rank_regions, segments

    rng = np.random.default_rng(4)
    g = gaussian_filter(rng.uniform(0, 1, (64, 64)), 2)
    im = np.repeat(((g - g.min()) / (g.max() - g.min()) * 2 - 1)[..., None], 3, axis=-1)
    attr = gaussian_filter(rng.normal(size=(64, 64)), 1)
    ref_segs = pair_xrai._get_segments_felzenszwalb(im)
    segs = segments(im)
    assert len(segs) == len(ref_segs) > 6
    assert all(np.array_equal(a, b) for a, b in zip(segs, ref_segs))
    ref, _ = XRAI._xrai(attr, ref_segs)
    np.testing.assert_allclose(rank_regions(attr, segs), ref, rtol=1e-6, atol=1e-9)


def test_shard_maps_shared_trace_and_chunking(x):
    """run.shard_maps: Grad-CAM layer shared with the input-gradient function, chunking-invariant noise."""
    from saliency_audit.saliency.run import noise_seed, shard_maps

    m = _small_model(seed=3)
    methods = {"GRAD": {}, "SG": {"samples": 3}, "GCAM": {}}
    seeds = {k: noise_seed(7, "ds", k, 0) for k in methods}
    a = shard_maps(m, x, methods, arch="small", seeds=seeds, batch_size=4, gradcam_layer="last_relu", chunk=3)
    assert engine_for(m, 4).default_layer == "last_relu"
    m2 = _small_model(seed=3)  # same weights, fresh engine without the shared layer
    assert engine_for(m2, 5).default_layer is None
    np.testing.assert_allclose(a["GRAD"], get_method("GRAD", batch_size=5).compute(m2, x), rtol=1e-5, atol=1e-12)
    sg = get_method("SG", {"samples": 3}, batch_size=5, seed=seeds["SG"]).compute(m2, x)
    np.testing.assert_allclose(a["SG"], sg, rtol=1e-4, atol=1e-14)
    cam = get_method("GCAM", batch_size=5, gradcam_layer="last_relu").compute(m2, x)
    np.testing.assert_allclose(a["GCAM"], cam, rtol=1e-5, atol=1e-12)
    assert seeds["SG"] != noise_seed(7, "ds", "SG", 1)


def test_gradcam_layer_lookup_densenet121():
    keras.utils.set_random_seed(0)
    base = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(32, 32, 3))
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(base.output))
    dn = keras.Model(base.input, out)
    layer = find_gradcam_layer(dn, "densenet121")
    assert layer == "relu"  # the final dense block's output after its batch norm and ReLU
    assert dn.get_layer(layer).output.shape[-1] == 1024


def test_guided_ig_compat_shim_quantile():
    from saliency_audit.saliency.compat import patch_guided_ig

    mod = patch_guided_ig()
    a = np.random.default_rng(0).normal(size=101)
    assert mod.np.quantile(a, 0.25, interpolation="lower") == np.quantile(a, 0.25, method="lower")
    assert mod.np.abs is np.abs  # everything else is numpy itself
    assert patch_guided_ig().np is mod.np  # idempotent


def test_occlusion_linear_model_hand_computed():
    """f = sum(w * x): the drop of a patch set to 0 is sum over the patch of w * x; each pixel gets
    the mean drop of the patches covering it."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((8, 8, 1))
    out = keras.layers.Dense(1, use_bias=False)(keras.layers.Flatten()(inp))
    m = keras.Model(inp, out)
    w = m.get_weights()[0][:, 0].reshape(8, 8)
    xin = np.random.default_rng(1).normal(size=(1, 8, 8, 1)).astype(np.float32)
    got = get_method("OCC", {"size": 0.5, "stride": 0.5}).compute(m, xin)[0]  # 4x4 patches, stride 2
    contrib = w * xin[0, :, :, 0]
    total = np.zeros((8, 8))
    cover = np.zeros((8, 8))
    for r in (0, 2, 4):
        for c in (0, 2, 4):
            total[r : r + 4, c : c + 4] += contrib[r : r + 4, c : c + 4].sum()
            cover[r : r + 4, c : c + 4] += 1
    np.testing.assert_allclose(got, total / cover, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------- sharper references
# Inputs whose value range differs per image (per-image and per-batch noise scaling differ), noise
# drawn by the reference itself from the documented seeding, the default Grad-CAM layer, IG's other
# baselines, guided backprop through Activation/ReLU layers, Guided IG and Score-CAM.


@pytest.fixture(scope="module")
def x_ranges():
    """4 images whose value ranges differ (spans 2, 0.5, 4 and 1; offsets differ too)."""
    rng = np.random.default_rng(21)
    lo_hi = [(-1.0, 1.0), (-0.2, 0.3), (-3.0, 1.0), (0.5, 1.5)]
    g = rng.uniform(0, 1, (len(lo_hi), S, S, 1)).astype(np.float32)
    x = np.stack([lo + (hi - lo) * g[i] for i, (lo, hi) in enumerate(lo_hi)]).astype(np.float32)
    return np.repeat(x, 3, axis=-1)


def _pair_noise(monkeypatch, seed, i, k, shape):
    """PAIR's ``np.random.normal(0, sd, shape)`` replaced by the documented draws of image ``i``:
    ``default_rng([seed, i]).standard_normal`` scaled by the sd PAIR itself computes from that image."""
    import saliency.core.base as pair_base

    z = iter(np.random.default_rng([seed, i]).standard_normal((k,) + shape, dtype=np.float32))
    monkeypatch.setattr(pair_base.np.random, "normal", lambda loc, sd, size: next(z) * np.float32(sd))


def test_x_ranges_fixture_spans_differ(x_ranges):
    spans = x_ranges.max(axis=(1, 2, 3)) - x_ranges.min(axis=(1, 2, 3))
    assert spans.max() / spans.min() > 7  # per-batch scaling would give every image the widest sd


def test_smoothgrad_own_seeded_noise_per_image_matches_pair(model, x_ranges, monkeypatch):
    """SG with its own noise (seed 13) = PAIR GetSmoothedMask(stdev_spread=0.15, magnitude) whose
    draws the reference takes from default_rng([13, i]) and scales by PAIR's per-image sd."""
    from saliency.core import GradientSaliency

    k, seed = 4, 13
    ours = get_method("SG", {"samples": k}, seed=seed, batch_size=7).attribute(model, x_ranges)
    fn = pair_call_model_function(model)
    for i in range(len(x_ranges)):
        _pair_noise(monkeypatch, seed, i, k, x_ranges.shape[1:])
        ref = GradientSaliency().GetSmoothedMask(x_ranges[i], fn, stdev_spread=0.15, nsamples=k, magnitude=True)
        assert _max_rel_err(ours[i], ref) < 1e-3, i


def test_smooth_ig_own_seeded_noise_per_image_matches_pair(model, x_ranges, monkeypatch):
    from saliency.core import IntegratedGradients

    k, steps, seed = 3, 4, 5
    ours = get_method("SIG", {"samples": k, "steps": steps}, seed=seed, batch_size=5).attribute(model, x_ranges)
    fn = pair_call_model_function(model)
    for i in range(len(x_ranges)):
        _pair_noise(monkeypatch, seed, i, k, x_ranges.shape[1:])
        ref = IntegratedGradients().GetSmoothedMask(x_ranges[i], fn, stdev_spread=0.15, nsamples=k, magnitude=True,
                                                    x_baseline=np.full_like(x_ranges[i], -1.0), x_steps=steps,
                                                    batch_size=4)
        assert _max_rel_err(ours[i], ref) < 1e-3, i


@pytest.mark.parametrize("baseline, value", [("white", 1.0), ("zero", 0.0), ("black", -1.0)])
def test_integrated_gradients_baselines_match_pair(model, x_ranges, baseline, value):
    from saliency.core import IntegratedGradients

    steps = 6
    ours = get_method("IG", {"steps": steps, "baseline": baseline}, batch_size=5).attribute(model, x_ranges)
    fn = pair_call_model_function(model)
    for i in range(len(x_ranges)):
        ref = IntegratedGradients().GetMask(x_ranges[i], fn, x_baseline=np.full_like(x_ranges[i], value),
                                            x_steps=steps, batch_size=4)
        assert _max_rel_err(ours[i], ref) < RTOL, (baseline, i)


def test_gradcam_default_layer_of_inceptionv3_matches_pair_at_mixed10():
    """The project's InceptionV3 classifier (random weights, 107 px: mixed10 is 2 x 2), Grad-CAM with
    no layer given = PAIR's GradCam at mixed10 (PAIR scales by the low-res maximum)."""
    from saliency.core import GradCam

    from saliency_audit.models.classifiers import build_classifier

    inc = build_classifier("inceptionv3", 107, "none", seed=3)
    assert inc.get_layer("mixed10").output.shape[1:3] == (2, 2)
    xin = np.random.default_rng(8).uniform(-1, 1, (3, 107, 107, 1)).astype(np.float32).repeat(3, axis=-1)
    ours = get_method("GCAM", arch="inceptionv3", batch_size=4).compute(inc, xin)
    fn = pair_call_model_function(inc, "mixed10")
    nonzero = 0
    for i in range(len(xin)):
        low = GradCam().GetMask(xin[i], fn, should_resize=False, three_dims=False)
        assert low.shape == (2, 2)
        ref = GradCam().GetMask(xin[i], fn, should_resize=True, three_dims=False) * low.max()
        np.testing.assert_allclose(ours[i], ref, rtol=1e-4, atol=1e-6 * max(low.max(), 1e-30))
        nonzero += low.max() > 0
    assert nonzero >= 2  # not a comparison of zero maps


def test_guided_backprop_activation_and_relu_layers_hand_computed():
    """f = w3 . ReLU(W2 Activation('relu')(W1 x)): the guided gradient passes the backward signal
    at each ReLU only where its forward input and the incoming signal are both positive."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((4, 4, 1))
    h = keras.layers.Flatten()(inp)
    h = keras.layers.Dense(8, use_bias=False)(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Dense(6, use_bias=False)(h)
    h = keras.layers.ReLU()(h)
    out = keras.layers.Dense(1, use_bias=False)(h)
    m = keras.Model(inp, out)
    w1, w2, w3 = m.get_weights()
    xin = np.random.default_rng(2).normal(size=(5, 4, 4, 1)).astype(np.float32)
    got = get_method("GBP", batch_size=4).attribute(m, xin).reshape(len(xin), -1)
    expect, plain = [], []
    for v in xin.reshape(len(xin), -1).astype(np.float64):
        p1 = v @ w1
        p2 = np.maximum(p1, 0) @ w2
        g = w3[:, 0]  # d f / d ReLU output
        plain.append(((g * (p2 > 0)) @ w2.T * (p1 > 0)) @ w1.T)
        g = g * (p2 > 0) * (g > 0)
        g = g @ w2.T
        g = g * (p1 > 0) * (g > 0)
        expect.append(g @ w1.T)
    expect, plain = np.array(expect), np.array(plain)
    assert not np.allclose(expect, plain, atol=1e-3)  # the case tells guided from plain gradients
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)


def test_guided_ig_matches_pair(model, x_ranges):
    """GIG (our engine's gradients through PAIR's path) = PAIR GuidedIG with PAIR's plain
    call_model_function (the numpy>=2.4 shim of saliency.compat applies to both)."""
    from saliency_audit.saliency.compat import patch_guided_ig

    steps = 8
    ours = get_method("GIG", {"steps": steps}, batch_size=5).attribute(model, x_ranges[:2])
    fn = pair_call_model_function(model)
    gig = patch_guided_ig().GuidedIG()
    for i in range(2):
        ref = gig.GetMask(x_ranges[i], fn, x_baseline=np.full_like(x_ranges[i], -1.0), x_steps=steps,
                          fraction=0.25, max_dist=0.02)
        assert np.abs(ref).max() > 0
        assert _max_rel_err(ours[i], ref) < 1e-3, i


def test_scorecam_two_channel_model_hand_computed(x_ranges):
    """Score-CAM (Wang et al. 2020) by hand on a model whose CAM layer has 2 channels at full
    resolution (no upsampling): masks = min-max scaled channels, weights = softmax over channels of
    f(x * mask) - f(0), map = ReLU(sum_k w_k A_k)."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((S, S, 3))
    a = keras.layers.Conv2D(2, 3, padding="same", activation="relu", name="cam2")(inp)
    out = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(a))
    m = keras.Model(inp, out)
    acts = keras.Model(inp, m.get_layer("cam2").output)(x_ranges).numpy().astype(np.float64)
    f0 = float(m(np.zeros_like(x_ranges[:1]))[0, 0])
    got = get_method("SCORECAM", batch_size=4).compute(m, x_ranges)  # default layer: the last 4-D one
    for i in range(len(x_ranges)):
        A = acts[i]
        s = []
        for k in range(2):
            ak = A[..., k]
            mask = (ak - ak.min()) / (ak.max() - ak.min()) if ak.max() > ak.min() else np.zeros_like(ak)
            s.append(float(m((x_ranges[i] * mask[..., None].astype(np.float32))[None])[0, 0]) - f0)
        w = np.exp(np.array(s) - max(s))
        w /= w.sum()
        expect = np.maximum(A @ w, 0)
        assert 0.02 < w.min(), w  # both channels count
        np.testing.assert_allclose(got[i], expect, rtol=1e-4, atol=1e-5 * expect.max())
