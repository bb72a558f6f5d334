"""Model randomization of InceptionV3 (Adebayo et al. 2018; Arun et al. 2021): block membership,
which weights change, BN statistics kept, and a fully randomized model scoring at chance."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models_stub import write_shards  # noqa: E402
from saliency_audit import plan  # noqa: E402
from saliency_audit.errors import InputError  # noqa: E402
from saliency_audit.models import train as tr  # noqa: E402
from saliency_audit.models.randomize import apply_state, inception_blocks, state_blocks  # noqa: E402

SIZE = 75


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An InceptionV3 trained end to end (train_model on shards) on an easy task at 75 px."""
    shards = write_shards(tmp_path_factory.mktemp("inc"), {"train": 64, "val": 16, "test": 48}, SIZE, seed=5, contrast=110)
    cfg = {"inceptionv3": {"epochs": 3, "patience": 3, "batch_size": 16, "lr": 1e-3, "weights": "none", "bn_momentum": 0.5}}
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


def test_blocks_partition_the_model(trained):
    model = fresh(trained[2])
    blocks = inception_blocks(model)
    names = [n for b in blocks.values() for n in b]
    assert sorted(names) == sorted(layer.name for layer in model.layers)  # every layer in exactly one block
    assert blocks["logits"] == ["avg_pool", "logits"]
    assert "mixed0" in blocks["stem"] and "mixed10" in blocks["mixed10"] and "mixed9_1" in blocks["mixed10"]
    assert state_blocks("inceptionv3", "cascade-mixed8") == ["logits", "mixed10", "mixed9", "mixed8"]
    assert state_blocks("inceptionv3", "indep-mixed5") == ["mixed5"]
    with pytest.raises(InputError):
        state_blocks("inceptionv3", "cascade-mixed0")


def test_cascade_changes_exactly_the_blocks_above_and_keeps_bn_stats(trained):
    res, _, path = trained
    w0 = weights(res.model)
    model = apply_state(fresh(path), "inceptionv3", "cascade-mixed8", 99)
    w1 = weights(model)
    blocks = inception_blocks(model)
    inside = block_vars(model, [n for b in ("logits", "mixed10", "mixed9", "mixed8") for n in blocks[b]])
    changed = {p for p in w0 if not np.array_equal(w0[p], w1[p])}
    moving = {p for p in w0 if "moving_" in p}
    assert changed == inside - moving  # every re-drawable weight of those blocks, nothing else
    assert not changed & moving
    # a block gets the same new weights in every state: mixed9 under cascade-mixed9 and cascade-mixed5
    m9 = apply_state(fresh(path), "inceptionv3", "cascade-mixed9", 99)
    mixed9 = block_vars(model, blocks["mixed9"])
    w9 = weights(m9)
    assert all(np.array_equal(w9[p], w1[p]) for p in mixed9)
    # the initializer's distribution: glorot-uniform kernels are bounded by sqrt(6 / (fan_in + fan_out))
    k = model.get_layer("logits").kernel
    assert np.abs(np.array(k)).max() <= np.sqrt(6 / (k.shape[0] + 1)) + 1e-6


def test_independent_changes_one_block(trained):
    res, _, path = trained
    w0 = weights(res.model)
    model = apply_state(fresh(path), "inceptionv3", "indep-mixed5", 99)
    w1 = weights(model)
    inside = block_vars(model, inception_blocks(model)["mixed5"])
    changed = {p for p in w0 if not np.array_equal(w0[p], w1[p])}
    assert changed == {p for p in inside if "moving_" not in p}
    w2 = weights(apply_state(fresh(path), "inceptionv3", "original", 99))
    assert all(np.array_equal(w0[p], w2[p]) for p in w0)


def test_trained_model_beats_chance_and_fully_randomized_is_at_chance(trained):
    res, shards, path = trained
    assert res.metrics["test_auroc"] > 0.9
    last = plan.randomization_states({"randomization": {}})[-1]
    assert last == "cascade-mixed1"
    aucs = []
    for seed in (1, 2, 3):
        model = apply_state(fresh(path), "inceptionv3", last, seed)
        scores, labels = tr.data.predict_split(model, shards["test"], tr.classifier_scores)
        aucs.append(tr.auroc(labels, scores))
    print("randomized AUROCs", aucs)
    assert abs(np.mean(aucs) - 0.5) < 0.25  # random features still see brightness; trained: > 0.9
