"""Models stage: training logic (early stopping, seeds, determinism), localizer maps, AVG map."""

import json
import time

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from models_stub import write_shards  # noqa: E402
from saliency_audit import io  # noqa: E402
from saliency_audit.config import with_defaults  # noqa: E402
from saliency_audit.errors import InputError  # noqa: E402
from saliency_audit.models import build_classifier, load_model, localizer_maps  # noqa: E402
from saliency_audit.models import retinanet as rn  # noqa: E402
from saliency_audit.models import train as tr  # noqa: E402
from saliency_audit.models.unet import unet_image_scores  # noqa: E402

SIZE = 32


def tiny_classifier(arch, image_size, weights, seed):
    """A stand-in for InceptionV3 (same head: GAP + Dense 'logits') so the training logic runs in seconds."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((image_size, image_size, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, keras.layers.Dense(1, name="logits")(x))


@pytest.fixture(scope="module")
def seg_shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("seg"), {"train": 48, "val": 16, "test": 32}, SIZE, seed=1)


@pytest.fixture(scope="module")
def det_shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("det"), {"train": 32, "val": 16, "test": 16}, SIZE, "detection", seed=2)


def run(shards, model_id, cfg, seed=3):
    cfg = with_defaults({"datasets": {"d": {"kind": "synthetic"}}, "models": cfg})["models"]  # as validate() fills it
    return tr.train_model(model_id, shards["train"], shards["val"], shards["test"], cfg, SIZE, seed, verbose=0)


@pytest.mark.slow  # trains a model
def test_same_seed_identical_different_seed_differs(seg_shards, monkeypatch):
    monkeypatch.setattr(tr, "build_classifier", tiny_classifier)
    cfg = {"inceptionv3": {"epochs": 2, "patience": 2, "batch_size": 8, "lr": 1e-2, "weights": "none"}}
    a, b, c = run(seg_shards, "inceptionv3_1", cfg), run(seg_shards, "inceptionv3_1", cfg), run(seg_shards, "inceptionv3_2", cfg, seed=4)
    assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)
    assert a.history.equals(b.history)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a.model.get_weights(), c.model.get_weights()))
    assert (a.metrics["seed"], c.metrics["seed"]) == (3, 4)
    assert a.metrics["weights"] == "none" and a.metrics["epochs_run"] == 2
    assert a.metrics["test_auroc"] > 0.8  # the easy task is learnt


@pytest.mark.slow  # trains a model
def test_label_shuffled_model_uses_permuted_labels(seg_shards, monkeypatch):
    seen = []
    orig = tr.data.make_dataset

    def spy(paths, *args, **kwargs):
        seen.append(kwargs.get("labels"))
        return orig(paths, *args, **kwargs)

    monkeypatch.setattr(tr, "build_classifier", tiny_classifier)
    monkeypatch.setattr(tr.data, "make_dataset", spy)
    cfg = {"inceptionv3": {"epochs": 1, "patience": 1, "batch_size": 16, "weights": "none"}}
    res = run(seg_shards, "inceptionv3-shuffled_1", cfg)
    true = tr.data.split_labels(seg_shards["train"])
    assert res.metrics["label_shuffled"] is True
    assert sorted(seen[0]) == sorted(true) and not np.array_equal(seen[0], true)


@pytest.mark.slow  # trains a model
def test_cosine_lr_schedule_decays_to_zero_over_the_epochs(seg_shards, monkeypatch):
    """lr_schedule cosine: after epoch k of E the rate is lr x (1 + cos(pi k / E)) / 2 (hand-computed:
    0.854, 0.5, 0.146, 0 of lr for E = 4); constant keeps lr; both are recorded in the metrics."""
    monkeypatch.setattr(tr, "build_classifier", tiny_classifier)
    base = {"epochs": 4, "patience": 4, "batch_size": 8, "lr": 1e-2, "weights": "none"}
    cos = run(seg_shards, "inceptionv3_1", {"inceptionv3": {**base, "lr_schedule": "cosine"}})
    np.testing.assert_allclose(cos.history["lr"], [0.0085355, 0.005, 0.0014645, 0.0], atol=1e-6)
    const = run(seg_shards, "inceptionv3_1", {"inceptionv3": base})
    np.testing.assert_allclose(const.history["lr"], [1e-2] * 4, rtol=1e-6)
    assert (cos.metrics["lr_schedule"], const.metrics["lr_schedule"]) == ("cosine", "constant")


@pytest.mark.slow  # trains a model
def test_early_stopping_stops_after_patience_and_restores_best(seg_shards, monkeypatch):
    """Scripted val AUCs 0.6, 0.8, 0.7, 0.75, 0.79: patience 3 stops after epoch 5; epoch 2 is restored."""
    script = [0.6, 0.8, 0.7, 0.75, 0.79, 0.99, 0.99]
    val_scores = []
    real = tr.auroc

    def fake_auroc(labels, scores):
        if len(val_scores) < len(script) and len(labels) == 16:  # the val split
            val_scores.append(np.array(scores))
            return script[len(val_scores) - 1]
        return real(labels, scores)

    monkeypatch.setattr(tr, "build_classifier", tiny_classifier)
    monkeypatch.setattr(tr, "auroc", fake_auroc)
    cfg = {"inceptionv3": {"epochs": 7, "patience": 3, "batch_size": 8, "lr": 1e-2, "weights": "none"}}
    res = run(seg_shards, "inceptionv3_1", cfg)
    assert res.metrics["epochs_run"] == 5 and res.metrics["best_epoch"] == 2
    assert res.history["val_auc"].tolist() == script[:5]
    assert res.metrics["val_auroc"] == 0.8
    restored, _ = tr.data.predict_split(res.model, seg_shards["val"], tr.classifier_scores)
    np.testing.assert_allclose(restored, val_scores[1], rtol=1e-5)
    assert not np.allclose(restored, val_scores[4], rtol=1e-3)


def test_imagenet_weights_fail_fast_with_clear_message(tmp_path, monkeypatch):
    # an empty Keras cache and a proxy that refuses connections: the download fails at once
    monkeypatch.setattr("keras.src.backend.config._KERAS_DIR", str(tmp_path))
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    t = time.time()
    with pytest.raises(InputError, match=r"ImageNet weights for inceptionv3 could not be fetched.*weights: none"):
        build_classifier("inceptionv3", 75, "imagenet", 1)
    assert time.time() - t < 60
    with pytest.raises(InputError, match="does not exist"):
        build_classifier("densenet121", 75, str(tmp_path / "missing.weights.h5"), 1)


def test_unet_image_score_is_mean_of_nonzero_cells():
    out = np.zeros((3, 4, 4, 1), np.float32)
    out[0, :2, :2, 0] = [[0.2, 0.4], [0.6, 0.0]]  # non-zero: 0.2 0.4 0.6 -> 0.4
    out[2] = 0.5
    np.testing.assert_allclose(unet_image_scores(out), [0.4, 0.0, 0.5])


@pytest.mark.slow  # trains a model
def test_unet_trains_and_maps(seg_shards, tmp_path):
    cfg = {"unet": {"epochs": 2, "patience": 2, "batch_size": 8, "lr": 1e-3, "base_filters": 4, "depth": 2}}
    res = run(seg_shards, "unet_1", cfg)
    assert res.metrics["epochs_run"] == 2 and res.metrics["monitor"] == "val_loss"
    assert {"loss", "val_loss", "val_auc", "lr"} <= set(res.history.columns)
    tr.save_model(res.model, tmp_path / "model.keras")
    model = load_model(tmp_path / "model.keras")
    shard = io.read_shard(seg_shards["test"][0])
    maps = localizer_maps(model, "unet", shard["images"][:5])
    assert maps.shape == (5, SIZE, SIZE) and maps.dtype == np.float32
    direct = res.model.predict_on_batch(tr.data.to_model_input(shard["images"][:5]))[..., 0]
    np.testing.assert_allclose(maps, direct, atol=1e-6)
    assert 0 <= maps.min() and maps.max() <= 1


def test_unet_pads_odd_sizes():
    from saliency_audit.models.unet import build_unet

    m = build_unet(75, base_filters=2, depth=3, seed=0)
    assert m.output_shape == (None, 75, 75, 1)


def test_avg_map_of_hand_made_masks(tmp_path):
    m1 = np.zeros((2, 4, 4), np.uint8)
    m1[0, 0, :] = 1
    m2 = np.zeros((1, 4, 4), np.uint8)
    m2[0, :, 0] = 1
    for k, m in enumerate((m1, m2)):
        io.write_npz(tmp_path / f"s{k}.npz", masks=m, labels=np.zeros(len(m), np.int8))
    avg = tr.avg_map([tmp_path / "s0.npz", tmp_path / "s1.npz"], 4)
    expected = np.zeros((4, 4))
    expected[0, :] += 1 / 3
    expected[:, 0] += 1 / 3
    np.testing.assert_allclose(avg, expected, rtol=1e-6)
    assert avg.dtype == np.float32


def hand_heatmap(boxes, scores, size, thr):
    out = np.zeros((size, size))
    for r in range(size):
        for c in range(size):
            for (x1, y1, x2, y2), s in zip(boxes, scores):
                if s > thr and x1 <= c + 0.5 <= x2 and y1 <= r + 0.5 <= y2:
                    out[r, c] = max(out[r, c], s)
    return out


def test_box_heatmap_is_max_over_covering_boxes():
    boxes = np.array([[1, 1, 5, 4], [3, 2, 7.6, 7], [0, 0, 8, 8]], float)
    scores = np.array([0.5, 0.9, 0.005])  # the last is below the threshold
    got = rn.box_heatmap(boxes, scores, 8, 0.01)
    expected = np.zeros((8, 8))
    expected[1:4, 1:5] = 0.5  # centres 1.5..3.5 (x), 1.5..3.5 (y)
    expected[2:7, 3:8] = 0.9  # centres 3.5..7.5 (x <= 7.6), 2.5..6.5 (y)
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(got, hand_heatmap(boxes, scores, 8, 0.01))


def test_retinanet_encode_decode_roundtrip():
    anchors = rn.anchors_for(64)
    gt = np.array([[10, 12, 20, 14], [40, 30, 16, 24]], np.float32)  # x y w h
    t = rn.encode(anchors, gt)
    pos = t[:, 0] == 1
    assert pos.sum() >= 2 and (t[:, 0] == 0).sum() > pos.sum()  # most anchors are background
    boxes = rn.decode(anchors[pos], t[pos, 1:], 64)
    xyxy = np.c_[gt[:, :2], gt[:, :2] + gt[:, 2:]]
    # every positive anchor decodes to one of the ground-truth boxes
    err = np.abs(boxes[:, None, :] - xyxy[None]).max(-1).min(1)
    assert err.max() < 1e-3


def test_retinanet_localizer_map_equals_hand_computed():
    class Fixed:  # a model whose raw outputs we choose
        def __init__(self, raw):
            self.raw = raw

        def predict_on_batch(self, x):
            return self.raw[: len(x)]

    size = 64
    anchors = rn.anchors_for(size)
    raw = np.zeros((1, len(anchors), 5), np.float32)
    raw[0, :, 0] = -20  # score ~ 2e-9
    a, b = 100, len(anchors) - 5  # one P3 and one P4 anchor, deltas 0 -> the anchors themselves
    raw[0, a, 0], raw[0, b, 0] = np.log(0.9 / 0.1), np.log(0.3 / 0.7)
    maps = localizer_maps(Fixed(raw), "retinanet", np.zeros((1, size, size), np.uint8))
    boxes = np.clip(anchors[[a, b]], 0, size)
    np.testing.assert_allclose(maps[0], hand_heatmap(boxes, [0.9, 0.3], size, 0.01), atol=1e-6)
    assert np.isclose(rn.retinanet_image_scores(raw)[0], 0.9)


@pytest.mark.slow  # trains a model
def test_retinanet_trains_and_scores(det_shards):
    cfg = {"retinanet": {"epochs": 2, "patience": 2, "batch_size": 8, "lr": 1e-3}}
    res = run(det_shards, "retinanet_1", cfg)
    assert res.metrics["epochs_run"] == 2 and np.isfinite(res.history["loss"]).all()
    # test AUROC = sklearn's on the image scores (max anchor score) of the model's own test predictions
    from sklearn.metrics import roc_auc_score

    scores, labels = [], []
    for path in det_shards["test"]:
        with np.load(path) as z:
            x = np.repeat((z["images"].astype(np.float32) / 127.5 - 1.0)[..., None], 3, axis=-1)
            scores.append(rn.retinanet_image_scores(np.asarray(res.model.predict_on_batch(x))))
            labels.append(z["labels"].astype(int))
    labels = np.concatenate(labels)
    assert 0 < labels.sum() < len(labels)
    ref = roc_auc_score(labels, np.concatenate(scores))
    assert res.metrics["test_auroc"] == pytest.approx(ref, abs=1e-9)
    assert res.metrics["n_test"] == len(labels) == 16
    shard = io.read_shard(det_shards["test"][0])
    maps = localizer_maps(res.model, "retinanet", shard["images"][:4])
    assert maps.shape == (4, SIZE, SIZE) and maps.max() <= 1


def test_focal_dice_loss_hand_computed():
    from saliency_audit.models.unet import focal_dice_loss

    y = np.array([[[[1.0], [0.0]]]], np.float32)  # one image, 1 x 2 pixels
    p = np.array([[[[0.8], [0.1]]]], np.float32)
    focal = np.mean([-0.25 * 0.2**2 * np.log(0.8), -0.75 * 0.1**2 * np.log(0.9)])
    dice = 1 - (2 * 0.8 + 1) / (1 + 0.9 + 1)
    got = keras.ops.convert_to_numpy(focal_dice_loss(y, p))
    np.testing.assert_allclose(got, [focal + dice], rtol=1e-5)


def test_training_input_scaling_equals_the_maps_preprocessing():
    """The tf.data scaling (uint8 kept in the shuffle buffer) is the released code's preprocessing."""
    from saliency_audit.data.prepare import to_model_input
    from saliency_audit.models import data as md

    u8 = np.random.default_rng(0).integers(0, 256, (3, 9, 9), dtype=np.uint8)
    x, _ = md._scale(keras.ops.convert_to_tensor(u8), 0)
    np.testing.assert_array_equal(x.numpy(), to_model_input(u8))
