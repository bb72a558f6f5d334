"""Issue 13, saliency side: SmoothGrad noise per (model, state) or common, the explained target
(positive vs predicted class), the maps jobs' params, the cascade repeats' state names, and the
schema's enums and defaults against the package."""

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from saliency_audit import plan
from saliency_audit.config import with_defaults
from saliency_audit.saliency import registry
from saliency_audit.saliency.jobs import NOISE_MODES, job_params, noise_seed

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "schemas/config.schema.yaml").read_text())["properties"]

CONFIG = {
    "seed": 2021,
    "saliency": {"noise": "independent", "target": "positive", "cam_normalization": "minmax", "params": {}},
    "randomization": {"initializer": "truncated_normal", "repeats": 3},
}


def _cfg(**changes):
    cfg = copy.deepcopy(CONFIG)
    for key, value in changes.items():
        section, name = key.split("__")
        cfg[section][name] = value
    return cfg


# ------------------------------------------------------------------------------------ noise seeds


def test_common_noise_seeds_are_the_seeds_of_runs_before_the_key():
    # computed with the formula of saliency/jobs.py before saliency.noise existed:
    # plan.derive_seed(seed, dataset, "saliency", method, shard)
    assert noise_seed(2021, "demo", "SG", 0) == 523538490
    assert noise_seed(7, "siim", "SIG", "3") == 1327641647
    common = _cfg(saliency__noise="common")
    assert job_params(common, "demo", "inceptionv3_1", "original", 0, ["SG"])["seeds"] == {"SG": 523538490}
    assert job_params(common, "demo", "inceptionv3_2", "cascade-mixed5", 0, ["SG"])["seeds"] == {"SG": 523538490}


def test_independent_noise_differs_between_states_and_models_common_does_not():
    seeds = {
        (mode, model, state): job_params(_cfg(saliency__noise=mode), "demo", model, state, 1, ["SG", "SIG", "GRAD"])["seeds"]
        for mode in NOISE_MODES
        for model, state in [("inceptionv3_1", "original"), ("inceptionv3_1", "cascade-mixed1"), ("inceptionv3_2", "original")]
    }
    assert all(set(s) == {"SG", "SIG"} for s in seeds.values())  # methods without noise get no seed
    ind = [seeds[k]["SG"] for k in seeds if k[0] == "independent"]
    com = [seeds[k]["SG"] for k in seeds if k[0] == "common"]
    assert len(set(ind)) == 3 and len(set(com)) == 1
    assert seeds["independent", "inceptionv3_1", "original"]["SG"] != seeds["independent", "inceptionv3_1", "original"]["SIG"]

    # the noise itself: SmoothGrad draws image i's noise from default_rng([seed, i])
    x = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 3)).astype(np.float32)

    def noise(seed, i):
        sg = registry.get_method("SG", {"samples": 4}, seed=seed)
        sg._set_index(x, None)
        return sg._noise(x, i, 4)

    a = seeds["independent", "inceptionv3_1", "original"]["SG"]
    b = seeds["independent", "inceptionv3_1", "cascade-mixed1"]["SG"]
    c = seeds["common", "inceptionv3_1", "original"]["SG"]
    assert not np.allclose(noise(a, 0), noise(b, 0))
    np.testing.assert_array_equal(noise(c, 0), noise(seeds["common", "inceptionv3_1", "cascade-mixed1"]["SG"], 0))
    assert not np.allclose(noise(a, 0), noise(a, 1))  # and each image its own
    sd = 0.15 * float(x[1].max() - x[1].min())
    ref = np.random.default_rng([a, 1]).standard_normal((4, 8, 8, 3), dtype=np.float32) * np.float32(sd)
    np.testing.assert_array_equal(noise(a, 1), ref)


# ------------------------------------------------------------------------------------ job params


def test_job_params_rerun_exactly_what_a_key_changes():
    def params(cfg, model="inceptionv3_1", state="original", methods=("GRAD", "SG", "GGCAM")):
        return job_params(cfg, "demo", model, state, 0, list(methods))

    base = _cfg()
    # randomization keys never touch the trained model's maps
    for change in ({"randomization__initializer": "layer_default"}, {"randomization__repeats": 1}):
        assert params(_cfg(**change)) == params(base)
    assert params(base)["randomization"] is None
    cas = params(base, state="cascade-mixed5")["randomization"]
    assert cas == {"seed": plan.derive_seed(2021, "demo", "inceptionv3_1", "randomization"), "initializer": "truncated_normal"}
    assert params(_cfg(randomization__initializer="layer_default"), state="cascade-mixed5")["randomization"]["initializer"] == "layer_default"
    # noise changes the seeds of noisy methods only; GRAD's job (job_per: method) keeps its params
    assert params(_cfg(saliency__noise="common"), methods=["GRAD"]) == params(base, methods=["GRAD"])
    assert params(_cfg(saliency__noise="common"), methods=["SG"]) != params(base, methods=["SG"])
    # GGCAM's map depends on cam_normalization; other methods' jobs do not see it
    assert params(base)["cam_normalization"] == "minmax"
    assert params(_cfg(saliency__cam_normalization="released"), methods=["GCAM"]) == params(base, methods=["GCAM"])
    assert params(base, methods=["GCAM"])["cam_normalization"] is None
    # XRAI's integration steps default to PAIR's 100 (the released code)
    assert params(base, methods=["XRAI"])["methods"]["XRAI"]["steps"] == 100


def test_maps_rule_passes_target_and_accepts_repeat_states():
    import re

    smk = (ROOT / "rules/saliency.smk").read_text()
    assert 'target=SAL["target"]' in smk
    state = re.search(r'state=r"([^"]+)"', smk).group(1)
    for s in plan.randomization_states(randomization(repeats=12, independent=True, cascade_to_stem=True)):
        assert re.fullmatch(state, s), s
    assert re.fullmatch(state, "original")


# ------------------------------------------------------------------------------------ repeats


def randomization(**block):
    """A validated config (schema defaults filled) with ``block`` as its randomization settings."""
    return with_defaults({"datasets": {"p": {"kind": "synthetic"}}, "randomization": block})


def test_cascade_repeats_state_names():
    cfg = randomization(repeats=3, independent=True)
    runs = plan.cascade_states(cfg)
    assert len(runs) == 3 and all(len(r) == 11 for r in runs)
    assert runs[0] == [f"cascade-{b}" for b in plan.INCEPTION_CASCADE]  # repeat 1 = the names of one run
    assert runs[1][:2] == ["cascade2-logits", "cascade2-mixed10"] and runs[2][-1] == "cascade3-mixed1"
    assert plan.fully_randomized_states(cfg) == ["cascade-mixed1", "cascade2-mixed1", "cascade3-mixed1"]
    assert plan.fully_randomized_state(cfg) == "cascade-mixed1"
    states = plan.randomization_states(cfg)
    assert states == runs[0] + runs[1] + runs[2] + [f"indep-{b}" for b in plan.INCEPTION_CASCADE]  # indep not repeated
    assert plan.randomization_states(randomization(repeats=1)) == runs[0]
    assert plan.cascade_states(randomization(cascade=False, repeats=3)) == []
    assert plan.fully_randomized_state(randomization(cascade=False)) is None
    assert plan.parse_state("cascade2-mixed10") == ("cascade", 2, "mixed10")
    assert plan.parse_state("cascade-logits") == ("cascade", 1, "logits")
    assert plan.parse_state("indep-mixed3") == ("indep", 1, "mixed3")
    assert plan.parse_state("original") == ("original", 1, None)
    for bad in ("cascade1-mixed1", "cascade02-mixed1", "indep2-mixed1", "random-mixed1", "cascade-"):
        with pytest.raises(ValueError):
            plan.parse_state(bad)
    one_classifier = {"inceptionv3": {"replicates": 1}, "densenet121": {"replicates": 0}}
    cfg = with_defaults({"datasets": {"d": {"kind": "synthetic"}}, "randomization": {"repeats": 2},
                         "models": one_classifier})
    pairs = plan.map_models(cfg, "d")
    assert len(pairs) == 1 + 22 and ("inceptionv3_1", "cascade2-mixed1") in pairs


# ------------------------------------------------------------------------------------ schema


def test_schema_keys_match_the_package():
    from saliency_audit.models.randomize import INITIALIZERS
    from saliency_audit.saliency.base import TARGETS
    from saliency_audit.saliency.normalize import CAM_NORMALIZATIONS

    sal, rnd = SCHEMA["saliency"]["properties"], SCHEMA["randomization"]["properties"]
    assert tuple(sal["noise"]["enum"]) == NOISE_MODES and sal["noise"]["default"] == "independent"
    assert tuple(sal["target"]["enum"]) == TARGETS and sal["target"]["default"] == "positive"
    assert tuple(sal["cam_normalization"]["enum"]) == CAM_NORMALIZATIONS and sal["cam_normalization"]["default"] == "minmax"
    assert tuple(rnd["initializer"]["enum"]) == INITIALIZERS and rnd["initializer"]["default"] == "truncated_normal"
    assert rnd["repeats"]["default"] == 3 and rnd["repeats"]["minimum"] == 1
    for key in (sal["noise"], sal["target"], sal["cam_normalization"], rnd["initializer"], rnd["repeats"]):
        text = " ".join(key["description"].split())
        assert "Paper text" in text and "Released code" in text and "default" in text
    assert "sqrt(2 / fan_in)" in " ".join(rnd["initializer"]["description"].split())


# ------------------------------------------------------------------------------------ target


tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from saliency_audit.saliency import get_method  # noqa: E402
from saliency_audit.saliency.methods import gradcam_lowres, upsample  # noqa: E402

S = 16


@pytest.fixture(scope="module")
def model_x():
    """A tiny ReLU CNN with a single logit, and images on both sides of its decision (logit +/-)."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((S, S, 3))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inp)
    h = keras.layers.Conv2D(8, 3, padding="same", name="last_conv")(h)
    h = keras.layers.ReLU(name="last_relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inp, keras.layers.Dense(1)(h))
    g = np.random.default_rng(3).uniform(-1, 1, (6, S, S, 1)).astype(np.float32)
    x = np.repeat(g, 3, axis=-1)
    y = model(x).numpy()[:, 0]
    dense = model.layers[-1]
    dense.bias.assign([-float(np.median(y))])  # half the images predicted negative
    y = model(x).numpy()[:, 0]
    assert (y > 0).sum() == 3 and (y < 0).sum() == 3
    return model, x, y


def _tape_input_grad(model, x, sign):
    z = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = sign * model(z)[:, 0]
    return tape.gradient(out, z).numpy()


def _tape_gradcam(model, x, sign):
    sub = keras.Model(model.inputs, [model.get_layer("last_relu").output, model.output])
    z = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        a, y = sub(z)
        out = sign * y[:, 0]
    g = tape.gradient(out, a).numpy()
    return upsample(gradcam_lowres(a.numpy(), g), (S, S))


def test_predicted_target_equals_positive_on_positives_and_negated_logit_on_negatives(model_x):
    model, x, y = model_x
    neg, pos = y < 0, y > 0
    sign = np.where(neg, -1.0, 1.0).astype(np.float32)
    opts = dict(batch_size=4, channel_reduction="sum", gradcam_layer="last_relu")

    def maps(name, target, params=None):
        return get_method(name, params, target=target, seed=11, **opts).compute(model, x)

    for name, params in [("GRAD", None), ("IG", {"steps": 5}), ("SG", {"samples": 3, "magnitude": False}),
                         ("GCAM", None), ("GBP", None), ("GGCAM", None)]:
        p, q = maps(name, "positive", params), maps(name, "predicted", params)
        np.testing.assert_allclose(q[pos], p[pos], rtol=1e-5, atol=1e-7, err_msg=name)
        assert not np.allclose(q[neg], p[neg]), name
    # hand-computed references with tf.GradientTape: d(sign * logit)/dx
    np.testing.assert_allclose(maps("GRAD", "predicted"), _tape_input_grad(model, x, sign).sum(-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps("GRAD", "predicted")[neg], -maps("GRAD", "positive")[neg], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(maps("GCAM", "predicted"), _tape_gradcam(model, x, sign), rtol=1e-4, atol=1e-6)
    # IG and SmoothGrad (same seed, same noise) are linear in the explained output: the class sign of
    # the image is kept for every path point and noisy copy, whatever their own logit
    for name, params in [("IG", {"steps": 5}), ("SG", {"samples": 3, "magnitude": False})]:
        np.testing.assert_allclose(maps(name, "predicted", params)[neg], -maps(name, "positive", params)[neg],
                                   rtol=1e-5, atol=1e-7, err_msg=name)


def test_predicted_target_reaches_the_methods_beyond_the_paper(model_x):
    model, x, y = model_x
    neg, pos = y < 0, y > 0
    opts = dict(batch_size=4, channel_reduction="sum", gradcam_layer="last_relu")
    # linear in the explained output: the negated map on images predicted negative
    for name, params in [("OCC", {"size": 0.25}), ("GIG", {"steps": 4}), ("BLURIG", {"steps": 4})]:
        p = get_method(name, params, target="positive", **opts).compute(model, x)
        q = get_method(name, params, target="predicted", **opts).compute(model, x)
        np.testing.assert_allclose(q[pos], p[pos], rtol=1e-4, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(q[neg], -p[neg], rtol=1e-4, atol=1e-6, err_msg=name)
    # not linear (ReLU, softmax over channels, region ranking): equal on positives only
    for name, params in [("GCAMPP", None), ("SCORECAM", None), ("XRAI", {"steps": 2})]:
        p = get_method(name, params, target="positive", **opts).compute(model, x)
        q = get_method(name, params, target="predicted", **opts).compute(model, x)
        np.testing.assert_allclose(q[pos], p[pos], rtol=1e-4, atol=1e-6, err_msg=name)
        assert not np.allclose(q[neg], p[neg]), name


def test_predicted_target_guided_backprop_and_gradcam_in_one_job(model_x):
    from saliency_audit.saliency.guided import guided_clone
    from saliency_audit.saliency.run import shard_maps

    model, x, y = model_x
    sign = np.where(y < 0, -1.0, 1.0).astype(np.float32)
    ref = _tape_input_grad(guided_clone(model), x, sign)  # guided ReLU gates on the sign of the incoming gradient
    got = get_method("GBP", target="predicted", batch_size=4, channel_reduction="sum").compute(model, x)
    np.testing.assert_allclose(got, ref.sum(-1), rtol=1e-5, atol=1e-7)
    # shard_maps shares one compiled Grad-CAM + input-gradient call: the target goes through it too
    out = shard_maps(model, x, {"GRAD": {}, "GCAM": {}}, arch="small", seeds={}, batch_size=4, channel_reduction="sum",
                     gradcam_layer="last_relu", target="predicted", chunk=4)
    np.testing.assert_allclose(out["GRAD"], _tape_input_grad(model, x, sign).sum(-1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out["GCAM"], _tape_gradcam(model, x, sign), rtol=1e-4, atol=1e-6)


def test_released_guided_gradcam_is_the_product_of_the_visualised_parts(model_x):
    from saliency_audit.saliency.normalize import normalize_maps

    model, x, _ = model_x
    gbp = get_method("GBP", batch_size=4).compute(model, x)  # abs-sum over channels
    cam = get_method("GCAM", batch_size=4, gradcam_layer="last_relu").compute(model, x)
    got = get_method("GGCAM", batch_size=4, gradcam_layer="last_relu", cam_normalization="released").compute(model, x)

    def visualise(m):  # PAIR VisualizeImageGrayscale of a 2-D map (the released code)
        lo, hi = m.min(), np.percentile(m, 99)
        return np.clip((m - lo) / (hi - lo), 0, 1)

    # images whose Grad-CAM is zero on over 99% of the pixels have no released form (0 / 0)
    regular = [i for i in range(len(x)) if np.percentile(cam[i], 99) > cam[i].min()]
    assert len(regular) >= 3
    for i in regular:
        np.testing.assert_allclose(got[i], visualise(gbp[i]) * visualise(cam[i] / cam[i].max()), rtol=1e-5, atol=1e-6)
    # today's GGCAM is the raw product; scored maps in [0, 1] either way
    raw = get_method("GGCAM", batch_size=4, gradcam_layer="last_relu").compute(model, x)
    np.testing.assert_allclose(raw, gbp * cam, rtol=1e-4, atol=1e-8)
    final = normalize_maps(got, "GGCAM", "released", "released")
    assert final.min(axis=(1, 2)).tolist() == [0.0] * len(x) and np.allclose(final.max(axis=(1, 2)), 1.0)
