"""The four criteria on hand-built shards and maps (no models): plans, rows, gather, thresholds."""

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
from skimage.metrics import structural_similarity
from sklearn.metrics import auc, precision_recall_curve

from saliency_audit import io, plan
from saliency_audit.config import with_defaults
from saliency_audit.errors import InputError
from saliency_audit.metrics import criteria, tables

S = 32
CONFIG = with_defaults({
    "seed": 7,
    "datasets": {"toy": {"kind": "synthetic", "task": "segmentation"}},
    "models": {
        "inceptionv3": {"replicates": 2},
        "densenet121": {"replicates": 1},
        "unet": {"replicates": 2},
    },
    "saliency": {"methods": ["GRAD", "GCAM"], "normalization": "released", "images": "with_finding"},
    "randomization": {"threshold_partners": 4, "repeats": 1},
    "stats": {"resamples": 200},
    "criteria": {"similarity": ["ssim", "spearman", "spearman_abs", "hog"]},
})


def minmax(maps, method, mode):
    """Stand-in for saliency.normalize.normalize_maps: per-map min-max of |m| (float32 in [0, 1])."""
    m = np.abs(np.asarray(maps, dtype=np.float64))
    lo, hi = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
    return np.where(hi > lo, (m - lo) / np.where(hi > lo, hi - lo, 1), 0).astype(np.float32)


def write_shard(root, shard, n=6, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.array([f"img{shard}_{i}" for i in range(n)])
    has = np.array([i % 3 != 2 for i in range(n)])  # 4 of 6 with a finding
    masks = np.zeros((n, S, S), np.uint8)
    for i in np.flatnonzero(has):
        r, c = rng.integers(2, 20, 2)
        masks[i, r : r + 8, c : c + 6] = 1
    io.write_npz(
        f"{root}/toy/data/shards/test_{shard}.npz",
        ids=ids,
        images=rng.integers(0, 255, (n, S, S), dtype=np.uint8),
        masks=masks,
        labels=has.astype(np.int8),
        has_finding=has,
        boxes=np.zeros((0, 5), np.float32),
    )
    return ids[has], masks[has]


def write_maps(path, ids, seed, signed=True):
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(len(ids), S, S)) if signed else rng.random((len(ids), S, S))
    io.write_npz(path, ids=ids, maps=maps.astype(np.float32))
    return maps.astype(np.float32)


@pytest.fixture
def tree(tmp_path):
    """results/ tree with two test shards, every map file the plans name, and the AVG map."""
    root = str(tmp_path / "results")
    truth = {}
    for k, shard in enumerate(["000", "001"]):
        ids, masks = write_shard(root, shard, seed=k)
        truth[shard] = (ids, masks)
        for crit in criteria.CRITERIA:
            p = criteria.shard_plan(CONFIG, "toy", crit, shard, results=root)
            specs = p["maps"] + [pair[s] for pair in p["pairs"] for s in ("a", "b")]
            for spec in specs:
                if not (tmp_path / spec["path"]).exists():
                    seed = plan.derive_seed(1, spec["path"])
                    write_maps(spec["path"], ids, seed, signed=spec["method"] != "PRED")
    avg = np.random.default_rng(9).random((S, S)).astype(np.float32)
    (tmp_path / "results/toy/models/avg").mkdir(parents=True)
    np.save(f"{root}/toy/models/avg/avg_map.npy", avg)
    return root, truth, avg


def test_plans_follow_the_config():
    p = criteria.shard_plan(CONFIG, "toy", "utility", "000")
    keys = {(s["model"], s["state"], s["method"]) for s in p["maps"]}
    full = plan.fully_randomized_state(CONFIG)
    assert full == "cascade-mixed1"
    assert ("inceptionv3_1", full, "GCAM") in keys and ("inceptionv3_2", "original", "GRAD") in keys
    assert ("densenet121_1", "original", "GRAD") in keys and ("unet_2", "original", "PRED") in keys
    assert not any(s.startswith("cascade-") and s != full for _, s, _ in keys)
    assert p["avg"] == "results/toy/models/avg/avg_map.npy" and p["shard"] == "results/toy/data/shards/test_000.npz"
    assert "results/toy/maps/unet_1/original/PRED/test_000.npz" in criteria.plan_inputs(p)
    r = criteria.shard_plan(CONFIG, "toy", "randomization", "000")
    assert len(r["pairs"]) == 2 * len(plan.randomization_states(CONFIG)) == 22
    rep = criteria.shard_plan(CONFIG, "toy", "repeatability", "000")
    assert [(q["method"], q["model_a"], q["model_b"]) for q in rep["pairs"]] == [
        ("GRAD", "inceptionv3_1", "inceptionv3_2"),
        ("GCAM", "inceptionv3_1", "inceptionv3_2"),
        ("PRED", "unet_1", "unet_2"),
    ]
    repro = criteria.shard_plan(CONFIG, "toy", "reproducibility", "000")
    assert repro["pairs"][0]["b"]["path"] == "results/toy/maps/densenet121_1/original/GRAD/test_000.npz"


def test_skipped_criteria():
    assert criteria.active(CONFIG, "toy") == list(criteria.CRITERIA)
    cfg = copy.deepcopy(CONFIG)
    cfg["models"]["inceptionv3"]["replicates"] = 1
    cfg["models"]["densenet121"]["replicates"] = 0
    cfg["randomization"]["cascade"] = False
    assert criteria.active(cfg, "toy") == ["utility"]
    assert set(criteria.skipped(cfg, "toy")) == {"randomization", "repeatability", "reproducibility"}
    with pytest.raises(InputError, match="repeatability"):
        criteria.shard_plan(cfg, "toy", "repeatability", "000")


def test_utility_shard_rows(tree):
    root, truth, avg = tree
    cfg = dataclasses.replace(criteria.settings(CONFIG), localization=False)  # IoU, hit rate: test_localization.py
    p = criteria.shard_plan(CONFIG, "toy", "utility", "000", results=root)
    df = criteria.score_shard(p, cfg, normalizer=minmax)
    assert list(df.columns) == tables.COLUMNS
    ids, masks = truth["000"]
    n_maps = len(p["maps"]) + 1  # + AVG
    assert len(df) == n_maps * len(ids) * 4
    assert set(df["image_id"]) == set(ids)
    assert (df["model_b"] == "").all() and set(df["metric"]) == {"auprc", "ap", "auroc", "constant"}
    assert (df.query("metric == 'constant'")["value"] == 0).all()  # random maps are not constant
    # one value against the released code's recipe on the normalized map
    raw = io.read_npz(f"{root}/toy/maps/inceptionv3_1/original/GRAD/test_000.npz")["maps"]
    m = minmax(raw, "GRAD", "released")[1]
    pr, rc, _ = precision_recall_curve(masks[1].ravel(), m.ravel())
    row = df.query("model_a == 'inceptionv3_1' and state == 'original' and method == 'GRAD' and metric == 'auprc'")
    assert row["value"].iloc[1] == pytest.approx(auc(rc, pr), abs=1e-9)
    pr, rc, _ = precision_recall_curve(masks[2].ravel(), avg.ravel())
    row = df.query("model_a == 'avg' and method == 'AVG' and metric == 'auprc'")
    assert row["value"].iloc[2] == pytest.approx(auc(rc, pr), abs=1e-9)
    assert set(df.query("method == 'PRED'")["model_a"]) == {"unet_1", "unet_2"}
    assert "cascade-mixed1" in set(df["state"])


def test_randomization_and_repeatability_rows(tree):
    root, truth, _ = tree
    cfg = criteria.settings(CONFIG)
    p = criteria.shard_plan(CONFIG, "toy", "randomization", "001", results=root)
    df = criteria.score_shard(p, cfg, normalizer=minmax)
    ids = truth["001"][0]
    assert len(df) == len(p["pairs"]) * len(ids) * 5  # 4 similarity metrics + constant
    assert (df["model_a"] == "inceptionv3_1").all() and (df["model_b"] == "").all()
    a = minmax(io.read_npz(f"{root}/toy/maps/inceptionv3_1/original/GCAM/test_001.npz")["maps"], "GCAM", "")
    b = minmax(io.read_npz(f"{root}/toy/maps/inceptionv3_1/cascade-mixed5/GCAM/test_001.npz")["maps"], "GCAM", "")
    got = df.query("method == 'GCAM' and state == 'cascade-mixed5' and metric == 'ssim'")["value"].to_numpy()
    ref = [structural_similarity(x.astype(float), y.astype(float), data_range=1.0, win_size=7) for x, y in zip(a, b)]
    assert got == pytest.approx(ref, abs=1e-12)
    rep = criteria.score_shard(
        criteria.shard_plan(CONFIG, "toy", "repeatability", "001", results=root), cfg, normalizer=minmax
    )
    base = rep.query("method == 'PRED' and metric == 'ssim'")
    assert len(base) == len(ids) and set(base["model_a"] + "/" + base["model_b"]) == {"unet_1/unet_2"}


def test_mismatched_ids_are_an_input_error(tree):
    root, truth, _ = tree
    path = f"{root}/toy/maps/inceptionv3_2/original/GRAD/test_000.npz"
    write_maps(path, truth["000"][0][::-1], seed=1)
    p = criteria.shard_plan(CONFIG, "toy", "repeatability", "000", results=root)
    with pytest.raises(InputError, match="image ids differ"):
        criteria.score_shard(p, criteria.settings(CONFIG), normalizer=minmax)


def test_default_normalizer_is_the_saliency_stage():
    normalize_maps = pytest.importorskip("saliency_audit.saliency.normalize").normalize_maps
    raw = np.random.default_rng(0).normal(size=(2, S, S))
    assert criteria.normalize(raw, "GRAD", "released") == pytest.approx(normalize_maps(raw, "GRAD", "released"))
    assert criteria.normalize(raw, "PRED", "released") == pytest.approx(raw.astype(np.float32))  # left as is


def test_partner_pairs_every_image_anchors_and_is_drawn_never_itself():
    for n, k in [(2, 1), (5, 4), (5, 9), (40, 50), (300, 50)]:
        pairs = criteria.partner_pairs(n, k, seed=3)
        assert pairs.shape == (n * k, 2)  # count = partners x n
        assert (pairs[:, 0] != pairs[:, 1]).all()  # never itself
        np.testing.assert_array_equal(pairs[:, 0], np.repeat(np.arange(n), k))  # every image is an anchor k times
        assert set(pairs[:, 1]) == set(range(n))  # every image can be drawn (the released randint bug: never the last)
        if k <= n - 1:  # distinct partners per anchor
            assert all(len(set(pairs[pairs[:, 0] == i, 1])) == k for i in range(n))
        np.testing.assert_array_equal(pairs, criteria.partner_pairs(n, k, seed=3))
    assert not np.array_equal(criteria.partner_pairs(300, 50, 3), criteria.partner_pairs(300, 50, 4))
    # partners uniform over the other images: 2000 draws from anchor 0 of 5 images hit 1..4 about 500 times each
    counts = np.bincount(criteria.partner_pairs(5, 2000, 0)[:2000, 1], minlength=5)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] - 500) < 90)
    assert criteria.partner_pairs(1, 10, 0).shape == (0, 2)



def test_gather_summary_and_thresholds(tree, tmp_path):
    root, truth, _ = tree
    cfg = criteria.settings(CONFIG)
    paths = []
    for shard in ("000", "001"):
        p = criteria.shard_plan(CONFIG, "toy", "randomization", shard, results=root)
        path = tmp_path / f"scores/randomization/test_{shard}.csv"
        io.write_csv(path, criteria.score_shard(p, cfg, normalizer=minmax))
        paths.append(path)
    gathered = tables.gather(paths)
    assert list(gathered.columns) == tables.COLUMNS
    assert len(gathered) == sum(len(tables.read_scores(p)) for p in paths)
    assert list(gathered["image_id"].unique()) == list(truth["000"][0]) + list(truth["001"][0])
    assert gathered["model_b"].eq("").all()  # empty column survives the CSV round trip
    bad = tmp_path / "bad.csv"
    gathered.drop(columns="state").to_csv(bad, index=False)
    with pytest.raises(InputError, match="columns"):
        tables.gather([paths[0], bad])
    empty = tmp_path / "empty.csv"
    io.write_csv(empty, tables.concat([]))
    assert list(tables.gather([empty]).columns) == tables.COLUMNS

    summ = tables.summarize(gathered)
    assert list(summ.columns) == tables.SUMMARY_COLUMNS
    sel = gathered.query("method == 'GRAD' and state == 'cascade-logits' and metric == 'ssim'")["value"]
    row = summ.query("method == 'GRAD' and state == 'cascade-logits' and metric == 'ssim'")
    assert row["mean"].item() == pytest.approx(sel.mean()) and row["sd"].item() == pytest.approx(sel.std(ddof=1))
    assert row["n"].item() == 8

    tplan = criteria.threshold_plan(CONFIG, "toy", ["000", "001"], results=root)
    assert tplan["partners"] == 4 and tplan["resamples"] == 200 and tplan["states"] == ["cascade-mixed1"]
    thr, anchors = criteria.randomization_thresholds(tplan, cfg, gathered, normalizer=minmax)
    assert list(thr.columns) == tables.THRESHOLD_COLUMNS and list(anchors.columns) == tables.ANCHOR_COLUMNS
    n = 8  # images with maps in the two shards
    assert len(thr) == 2 * 4 and (thr["n_pairs"] == 4 * n).all() and (thr["n_images"] == n).all()
    # recompute the SSIM threshold of GRAD by hand from the same seeded partner pairs
    maps = np.concatenate(
        [
            minmax(io.read_npz(f"{root}/toy/maps/inceptionv3_1/original/GRAD/test_{s}.npz")["maps"], "GRAD", "")
            for s in ("000", "001")
        ]
    ).astype(float)
    pairs = criteria.partner_pairs(len(maps), 4, tplan["seed"])
    per_pair = np.array([structural_similarity(maps[i], maps[j], data_range=1.0, win_size=7) for i, j in pairs])
    row = thr.query("method == 'GRAD' and metric == 'ssim'").iloc[0]
    assert row["threshold"] == pytest.approx(per_pair.mean(), abs=1e-12)
    a = anchors.query("method == 'GRAD' and metric == 'ssim'")
    assert list(a["image_id"]) == list(gathered["image_id"].unique())
    assert a["mean"].to_numpy() == pytest.approx(per_pair.reshape(n, 4).mean(axis=1), abs=1e-12)
    # bootstrap CI over anchor images: reproducible with the seed, by hand with numpy
    idx = np.random.default_rng(tplan["seed"]).integers(0, n, size=(tplan["resamples"], n))
    boot = per_pair.reshape(n, 4).mean(axis=1)[idx].mean(axis=1)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(boot, [2.5, 97.5])), abs=1e-12)
    assert row["ci_low"] < row["threshold"] < row["ci_high"]
    full = gathered.query("method == 'GRAD' and metric == 'ssim' and state == 'cascade-mixed1'")["value"].mean()
    assert row["randomized_mean"] == pytest.approx(full)
    assert row["verdict"] == ("PASS" if full < per_pair.mean() else "FAIL")
    again, _ = criteria.randomization_thresholds(tplan, cfg, gathered, normalizer=minmax)
    pd.testing.assert_frame_equal(thr, again)


def test_thresholds_average_the_repeats_fully_randomized_states(tree, tmp_path):
    """With repeats, an image's fully randomized value is the mean over the repeats' last states."""
    root, truth, _ = tree
    cfg = dataclasses.replace(criteria.settings(CONFIG), similarity=("ssim",))
    tplan = criteria.threshold_plan(CONFIG, "toy", ["000", "001"], results=root)
    ids = list(truth["000"][0])
    rows = []
    for state, v in (("cascade-mixed1", 0.1), ("cascade2-mixed1", 0.3), ("cascade3-mixed1", 0.8)):
        rows.append(tables.rows("toy", "randomization", "GRAD", "inceptionv3_1", "", state, ids, {"ssim": np.full(4, v)}))
    scores = tables.concat(rows)
    per_image = criteria.fully_randomized_per_image(scores, ["cascade-mixed1", "cascade2-mixed1"])
    assert per_image["value"].to_numpy() == pytest.approx(np.full(4, 0.2))
    thr, _ = criteria.randomization_thresholds({**tplan, "states": ["cascade-mixed1", "cascade2-mixed1"]}, cfg, scores, minmax)
    row = thr.query("method == 'GRAD'").iloc[0]
    assert row["randomized_mean"] == pytest.approx(0.2) and row["n_randomized"] == 4
    assert row["states"] == "cascade-mixed1;cascade2-mixed1"


def test_constant_map_scores_and_flag(tmp_path):
    """Hand-computed: a constant map's trapezoidal AUPRC is (1 + prevalence) / 2, its AP the
    prevalence, and it is counted as constant in the utility rows."""
    root = str(tmp_path / "results")
    ids = np.array(["a", "b"])
    masks = np.zeros((2, S, S), np.uint8)
    masks[0, :8, :8] = 1  # prevalence 64 / 1024
    masks[1, :16, :16] = 1  # prevalence 256 / 1024
    io.write_npz(
        f"{root}/toy/data/shards/test_000.npz", ids=ids, images=np.zeros((2, S, S), np.uint8), masks=masks,
        labels=np.ones(2, np.int8), has_finding=np.ones(2, bool), boxes=np.zeros((0, 5), np.float32),
    )  # fmt: skip
    p = {
        "criterion": "utility",
        "dataset": "toy",
        "shard": f"{root}/toy/data/shards/test_000.npz",
        "avg": None,
        "maps": [{"model": "inceptionv3_1", "state": "cascade-mixed1", "method": "GCAM", "path": f"{root}/m.npz"}],
        "pairs": [],
    }
    maps = np.zeros((2, S, S), np.float32)
    maps[1] = 0.25  # constant, not zero
    io.write_npz(p["maps"][0]["path"], ids=ids, maps=maps)
    cfg = dataclasses.replace(criteria.settings(CONFIG), localization=False)
    df = criteria.score_shard(p, cfg, normalizer=lambda m, method, mode: np.asarray(m, np.float32)).set_index(
        ["image_id", "metric"]
    )["value"]
    for i, prev in (("a", 64 / 1024), ("b", 256 / 1024)):
        assert df[(i, "auprc")] == pytest.approx((1 + prev) / 2, abs=1e-12)
        assert df[(i, "ap")] == pytest.approx(prev, abs=1e-12)
        assert df[(i, "auroc")] == pytest.approx(0.5) and df[(i, "constant")] == 1.0
    summ = tables.summarize(tables.concat([df.reset_index().assign(
        dataset="toy", criterion="utility", method="GCAM", model_a="inceptionv3_1", model_b="", state="cascade-mixed1"
    )[tables.COLUMNS]]))  # fmt: skip
    row = summ.query("metric == 'constant'").iloc[0]
    assert row["n"] * row["mean"] == 2  # count of constant maps = n x mean


def test_rows_reject_wrong_lengths():
    with pytest.raises(InputError, match="values for"):
        tables.rows("toy", "utility", "GRAD", "m", "", "original", ["a", "b"], {"auprc": np.zeros(3)})
    df = tables.rows("toy", "utility", "GRAD", "m", None, "original", ["a"], {"auprc": [0.5], "ap": [0.4]})
    assert list(df.columns) == tables.COLUMNS and len(df) == 2
    assert pd.isna(df["value"]).sum() == 0


def test_shard_without_findings(tmp_path):
    """A test shard whose images have no finding: empty map files give an empty table, not an error."""
    root = str(tmp_path / "results")
    rng = np.random.default_rng(0)
    io.write_npz(
        f"{root}/toy/data/shards/test_000.npz",
        ids=np.array(["a", "b"]),
        images=np.zeros((2, S, S), np.uint8),
        masks=np.zeros((2, S, S), np.uint8),
        labels=np.zeros(2, np.int8),
        has_finding=np.zeros(2, bool),
        boxes=np.zeros((0, 5), np.float32),
    )
    (tmp_path / "results/toy/models/avg").mkdir(parents=True)
    np.save(f"{root}/toy/models/avg/avg_map.npy", rng.random((S, S)).astype(np.float32))
    cfg = criteria.settings(CONFIG)
    for crit in ("utility", "randomization"):
        p = criteria.shard_plan(CONFIG, "toy", crit, "000", results=root)
        for spec in p["maps"] + [q[k] for q in p["pairs"] for k in "ab"]:
            io.write_npz(spec["path"], ids=np.array([], dtype=str), maps=np.zeros((0, S, S), np.float32))
        df = criteria.score_shard(p, cfg)  # the real normalizer, on empty stacks
        assert df.empty and list(df.columns) == tables.COLUMNS
