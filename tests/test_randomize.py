"""Model randomization of InceptionV3 (Adebayo et al. 2018; Arun et al. 2021): block membership,
which weights change, BN statistics kept, the re-initialisation's distribution (truncated normal
as in Adebayo et al.'s code, or each layer's own), cascade repeats, and a fully randomized model
scoring at chance."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models_stub import write_shards  # noqa: E402
from saliency_audit import plan  # noqa: E402
from saliency_audit.config import with_defaults  # noqa: E402
from saliency_audit.errors import InputError  # noqa: E402
from saliency_audit.models import train as tr  # noqa: E402
from saliency_audit.models.classifiers import build_classifier  # noqa: E402
from saliency_audit.models.randomize import apply_state, inception_blocks, state_blocks  # noqa: E402

SIZE = 75


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An InceptionV3 trained end to end (train_model on shards) on an easy task at 75 px."""
    shards = write_shards(tmp_path_factory.mktemp("inc"), {"train": 64, "val": 16, "test": 48}, SIZE, seed=5, contrast=110)
    cfg = {"inceptionv3": {"epochs": 3, "patience": 3, "batch_size": 16, "lr": 1e-3, "weights": "none", "bn_momentum": 0.5}}
    cfg = with_defaults({"datasets": {"d": {"kind": "synthetic"}}, "models": cfg})["models"]  # as validate() fills it
    res = tr.train_model("inceptionv3_1", shards["train"], shards["val"], shards["test"], cfg, SIZE, 11, verbose=0)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    tr.save_model(res.model, path)
    return res, shards, path


def fresh(path):
    return keras.models.load_model(path, compile=False)


def weights(model):
    return {v.path: np.array(v) for v in model.weights}


def block_vars(model, names):
    return {v.path for n in names for v in model.get_layer(n).weights}


@pytest.mark.slow  # trains an InceptionV3 (module fixture `trained`)
def test_blocks_partition_the_model(trained):
    model = fresh(trained[2])
    blocks = inception_blocks(model)
    names = [n for b in blocks.values() for n in b]
    assert sorted(names) == sorted(layer.name for layer in model.layers)  # every layer in exactly one block
    assert blocks["logits"] == ["avg_pool", "logits"]
    assert "mixed0" in blocks["stem"] and "mixed10" in blocks["mixed10"] and "mixed9_1" in blocks["mixed10"]
    assert state_blocks("inceptionv3", "cascade-mixed8") == ["logits", "mixed10", "mixed9", "mixed8"]
    assert state_blocks("inceptionv3", "indep-mixed5") == ["mixed5"]
    assert state_blocks("inceptionv3", "cascade3-mixed9") == ["logits", "mixed10", "mixed9"]
    for bad in ("cascade-mixed0", "cascade1-mixed9", "indep2-mixed9", "mixed9"):
        with pytest.raises(InputError):
            state_blocks("inceptionv3", bad)


@pytest.mark.slow  # trains an InceptionV3 (module fixture `trained`)
def test_cascade_changes_exactly_the_blocks_above_and_keeps_bn_stats(trained):
    res, _, path = trained
    w0 = weights(res.model)
    model = apply_state(fresh(path), "inceptionv3", "cascade-mixed8", 99, initializer="layer_default")
    w1 = weights(model)
    blocks = inception_blocks(model)
    inside = block_vars(model, [n for b in ("logits", "mixed10", "mixed9", "mixed8") for n in blocks[b]])
    changed = {p for p in w0 if not np.array_equal(w0[p], w1[p])}
    moving = {p for p in w0 if "moving_" in p}
    assert changed == inside - moving  # every re-drawable weight of those blocks, nothing else
    assert not changed & moving
    # a block gets the same new weights in every state: mixed9 under cascade-mixed9 and cascade-mixed5
    m9 = apply_state(fresh(path), "inceptionv3", "cascade-mixed9", 99, initializer="layer_default")
    mixed9 = block_vars(model, blocks["mixed9"])
    w9 = weights(m9)
    assert all(np.array_equal(w9[p], w1[p]) for p in mixed9)
    # the initializer's distribution: glorot-uniform kernels are bounded by sqrt(6 / (fan_in + fan_out))
    k = model.get_layer("logits").kernel
    assert np.abs(np.array(k)).max() <= np.sqrt(6 / (k.shape[0] + 1)) + 1e-6


@pytest.mark.slow  # trains an InceptionV3 (module fixture `trained`)
def test_independent_changes_one_block(trained):
    res, _, path = trained
    w0 = weights(res.model)
    model = apply_state(fresh(path), "inceptionv3", "indep-mixed5", 99, initializer="truncated_normal")
    w1 = weights(model)
    inside = block_vars(model, inception_blocks(model)["mixed5"])
    changed = {p for p in w0 if not np.array_equal(w0[p], w1[p])}
    assert changed == {p for p in inside if "moving_" not in p}
    w2 = weights(apply_state(fresh(path), "inceptionv3", "original", 99, initializer="truncated_normal"))
    assert all(np.array_equal(w0[p], w2[p]) for p in w0)


@pytest.mark.slow  # trains an InceptionV3 (module fixture `trained`)
def test_trained_model_beats_chance_and_fully_randomized_is_at_chance(trained):
    res, shards, path = trained
    assert res.metrics["test_auroc"] > 0.9
    one_run = {"cascade": True, "cascade_to_stem": False, "blocks": None, "independent": False, "repeats": 1}  # validated
    last = plan.randomization_states({"randomization": one_run})[-1]
    assert last == "cascade-mixed1"
    aucs = []
    for seed in range(1, 9):
        model = apply_state(fresh(path), "inceptionv3", last, seed, initializer="truncated_normal")
        scores, labels = tr.data.predict_split(model, shards["test"], tr.classifier_scores)
        aucs.append(tr.auroc(labels, scores))
    print("randomized AUROCs", aucs)
    # random ReLU features still see the lesions' brightness (He-scaled truncated-normal kernels keep
    # it through the depth), so one re-draw can separate the classes either way (measured with
    # seeds 1-8: 0.02, 0.07, 0.29, 1.0, 0.02, 0.08, 0.22, 0.01); what must not survive is the
    # trained decision (AUROC > 0.9 for every re-draw)
    assert np.mean(aucs) < 0.75 and min(aucs) < 0.5 < max(aucs)


# ---------------------------------------------------------------------------- initializer, repeats


@pytest.fixture(scope="module")
def untrained():
    """InceptionV3 at 75 px as built for training (the re-drawn weights depend on seeds and shapes only)."""
    return lambda: build_classifier("inceptionv3", SIZE, "none", seed=0)


def _first_conv(model, block):
    return model.get_layer([n for n in inception_blocks(model)[block] if "conv" in n][0])


def test_truncated_normal_has_adebayos_standard_deviation(untrained):
    model = apply_state(untrained(), "inceptionv3", "cascade-mixed10", 5, initializer="truncated_normal")
    conv = _first_conv(model, "mixed10")
    k = np.array(conv.kernel, dtype=np.float64)
    assert k.shape == (1, 1, 2048, 448)  # 917,504 values: the sample sd is within 0.2% of the truth
    sd = np.sqrt(2 / 2048)  # He et al.: sqrt(2 / fan_in), what slim.variance_scaling_initializer() gives
    assert k.std() == pytest.approx(sd, rel=0.01) and abs(k.mean()) < 0.01 * sd
    # truncated at 2 sigma of the untruncated normal (sigma = sd / 0.8796 = sqrt(1.3 x 2 / fan_in) to 0.3%)
    sigma = sd / 0.87962566103423978
    assert np.abs(k).max() <= 2 * sigma * (1 + 1e-6) and np.abs(k).max() > 1.95 * sigma
    logits = model.get_layer("logits")
    assert np.array(logits.kernel).std() == pytest.approx(np.sqrt(2 / 2048), rel=0.1)  # 2048 values
    assert not np.any(np.array(logits.bias))  # biases and BatchNorm betas re-set to 0
    bn = [model.get_layer(n) for n in inception_blocks(model)["mixed10"] if "batch_normalization" in n][0]
    assert not np.any(np.array(bn.beta))  # (moving statistics kept: test_cascade_changes_exactly_...)
    layer_default = apply_state(untrained(), "inceptionv3", "cascade-mixed10", 5, initializer="layer_default")
    g = np.array(_first_conv(layer_default, "mixed10").kernel)
    assert np.abs(g).max() <= np.sqrt(6 / (2048 + 448)) + 1e-6  # glorot-uniform: a different distribution


def test_layer_default_reproduces_the_weights_of_runs_before_the_key(untrained):
    # values computed with models/randomize.py before randomization.initializer existed (commit e1a8efe),
    # apply_state(model, 'inceptionv3', 'cascade-mixed10', 99)
    model = apply_state(untrained(), "inceptionv3", "cascade-mixed10", 99, initializer="layer_default")
    k1 = np.array(model.get_layer("logits").kernel)
    k2 = np.array(_first_conv(model, "mixed10").kernel)
    np.testing.assert_allclose(k1.ravel()[:3], [0.00229892, 0.04834708, -0.01923582], rtol=1e-5)
    assert float(k1.astype(np.float64).sum()) == pytest.approx(-1.338235905393958, rel=1e-6)
    np.testing.assert_allclose(k2.ravel()[:3], [0.04358017, 0.03953734, 0.02145415], rtol=1e-5)
    assert float(k2.astype(np.float64).sum()) == pytest.approx(17.246054539456964, rel=1e-6)


def test_cascade_repeats_draw_new_weights_consistently(untrained):
    def kernels(state, block="mixed10"):
        m = apply_state(untrained(), "inceptionv3", state, 99, initializer="truncated_normal")
        return np.array(_first_conv(m, block).kernel), np.array(m.get_layer("logits").kernel)

    r1 = kernels("cascade-mixed10")
    r2 = kernels("cascade2-mixed10")
    r2_deeper = kernels("cascade2-mixed9")
    r3 = kernels("cascade3-mixed10")
    assert not np.allclose(r1[0], r2[0]) and not np.allclose(r2[0], r3[0]) and not np.allclose(r1[1], r2[1])
    # within a repeat a block gets the same weights in every state of the cascade
    np.testing.assert_array_equal(r2[0], r2_deeper[0])
    np.testing.assert_array_equal(r2[1], r2_deeper[1])
    # repeat 1 is the single-run cascade: same seed base, same weights as before repeats existed
    np.testing.assert_array_equal(r1[0], kernels("cascade-mixed8")[0])
