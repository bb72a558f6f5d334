"""Bring your own maps: COCO RLE ground truth, map files of any format/resolution, the index's roles,
and the criteria scoring imported maps (checked against scikit-learn / scikit-image / hand values)."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import structural_similarity
from sklearn.metrics import auc, jaccard_score, precision_recall_curve

from pathlib import Path

from snakemake.utils import validate

from saliency_audit import io, plan
from saliency_audit.byom import importer
from saliency_audit.byom.index import expand_datasets, layout
from saliency_audit.config import with_defaults
from saliency_audit.data.chexlocalize import coco_rle_counts, coco_rle_decode, coco_rle_encode_counts
from saliency_audit.data.prepare import build_manifest, build_shard
from saliency_audit.errors import InputError
from saliency_audit.metrics import criteria
from saliency_audit.saliency.normalize import normalize_maps

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
S = 32  # ground-truth grid (image_size)
LOW = 16  # the imported maps' resolution (lower than the masks)


# ------------------------------------------------------------------------------------ COCO RLE
def runs_of(mask):
    """Independent run lengths of a mask: column-major, starting with a (possibly empty) 0-run."""
    flat = np.asarray(mask, bool).ravel(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate(([0], flat, [1 - flat[-1] if flat.size else 0]))))
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(np.unique(bounds))
    return runs if flat.size == 0 or flat[0] == 0 else np.concatenate(([0], runs))


def rle_of(mask):
    return {"size": list(mask.shape), "counts": coco_rle_encode_counts(runs_of(mask))}


def test_coco_rle_hand_encoded_cases():
    # counts [3, 2, 4] on 3x3: characters '3' '2' '4'; ones at column-major pixels 3, 4 = (0,1), (1,1)
    m = coco_rle_decode({"size": [3, 3], "counts": "324"})
    expected = np.zeros((3, 3), bool)
    expected[0, 1] = expected[1, 1] = True
    np.testing.assert_array_equal(m, expected)
    # 40 = 0b01000|1 << 5: low 5 bits 8 with the continuation bit (8 + 32 + 48 = 'X'), then 1 -> '1'
    np.testing.assert_array_equal(coco_rle_counts("X1"), [40])
    # from the 4th count on, differences to the count two before: 1 - 5 = -4 -> 28 + 48 = 'L' (sign bit 0x10)
    np.testing.assert_array_equal(coco_rle_counts("253L"), [2, 5, 3, 1])
    assert coco_rle_encode_counts([2, 5, 3, 1]) == "253L"
    col = coco_rle_decode({"size": [11, 1], "counts": "253L"})[:, 0]
    np.testing.assert_array_equal(col, [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1])
    # uncompressed counts (a list) are accepted too
    np.testing.assert_array_equal(coco_rle_decode({"size": [3, 3], "counts": [3, 2, 4]}), expected)


def test_coco_rle_round_trip_and_errors():
    rng = np.random.default_rng(0)
    for shape in [(7, 5), (40, 33), (1, 1)]:
        for p in (0.0, 0.1, 0.5, 1.0):
            mask = rng.random(shape) < p
            np.testing.assert_array_equal(coco_rle_decode(rle_of(mask)), mask)
    with pytest.raises(InputError, match="3\\*3"):
        coco_rle_decode({"size": [3, 3], "counts": "25"})
    with pytest.raises(InputError, match="alphabet"):
        coco_rle_counts("3~")
    with pytest.raises(InputError, match="ends inside"):
        coco_rle_counts("X")


# ------------------------------------------------------------------------------ map files, resizing
def test_load_map_formats_and_rank_errors(tmp_path):
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", m)
    np.save(tmp_path / "t.npy", m[None, None])  # a PyTorch (1, 1, H, W) map
    np.savez(tmp_path / "b.npz", map=m, other=m * 2)
    Image.fromarray(m.astype(np.uint8)).save(tmp_path / "c.png")
    Image.fromarray(m).save(tmp_path / "d.tif")  # float32 TIFF
    for f in ("a.npy", "t.npy", "b.npz", "c.png", "d.tif"):
        np.testing.assert_array_equal(importer.load_map(tmp_path / f), m)
    np.save(tmp_path / "r3.npy", np.zeros((3, 4, 5)))
    with pytest.raises(InputError, match=r"r3.npy: map of shape \(3, 4, 5\); expected a 2-D map"):
        importer.load_map(tmp_path / "r3.npy")
    np.save(tmp_path / "r1.npy", np.zeros(5))
    with pytest.raises(InputError, match="expected a 2-D map"):
        importer.load_map(tmp_path / "r1.npy")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="one-channel"):
        importer.load_map(tmp_path / "rgb.png")
    with pytest.raises(InputError, match="not found"):
        importer.load_map(tmp_path / "none.npy")
    np.save(tmp_path / "nan.npy", np.full((2, 2), np.nan))
    with pytest.raises(InputError, match="NaN"):
        importer.load_map(tmp_path / "nan.npy")


def bilinear_up2(m):
    """Hand reference: x2 bilinear upsampling with pixel centres aligned (PyTorch align_corners=False):
    output 2i = 0.25 m[i-1] + 0.75 m[i], 2i+1 = 0.75 m[i] + 0.25 m[i+1], edges clamped."""

    def axis0(a):
        prev = np.concatenate([a[:1], a[:-1]])
        nxt = np.concatenate([a[1:], a[-1:]])
        out = np.empty((2 * len(a),) + a.shape[1:])
        out[0::2] = 0.25 * prev + 0.75 * a
        out[1::2] = 0.75 * a + 0.25 * nxt
        return out

    return axis0(axis0(np.asarray(m, float)).T).T


def test_resize_map_nearest_and_bilinear_by_hand():
    m = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(importer.resize_map(m, 4, "nearest"), np.kron(m, np.ones((2, 2))))
    row = importer.resize_map(np.array([[0.0, 1.0]] * 2), 4, "bilinear")[0]
    np.testing.assert_allclose(row, [0, 0.25, 0.75, 1.0])
    rng = np.random.default_rng(3)
    m = rng.random((LOW, LOW))
    np.testing.assert_allclose(importer.resize_map(m, S, "bilinear"), bilinear_up2(m), atol=1e-12)
    with pytest.raises(InputError, match="interpolation"):
        importer.resize_map(m, S, "lanczos")


# --------------------------------------------------------------------------- a BYOM CheXlocalize set
IDS = ["patient1_study1_view1_frontal", "patient2_study1_view1_frontal", "patient3_study1_view1_frontal",
       "patient4_study1_view1_frontal"]


def masks_by_hand():
    masks = np.zeros((4, S, S), bool)
    masks[0, 4:12, 6:16] = True
    masks[1, 18:30, 2:10] = True
    # image 2: no finding
    masks[3, 10:20, 20:28] = True
    return masks


def make_byom(root, maps_models=None):
    """CheXlocalize-style ground truth (one finding, a second one ignored) and an index of maps."""
    root.mkdir(parents=True, exist_ok=True)
    masks = masks_by_hand()
    gt = {i: {"Atelectasis": rle_of(masks[k]), "Edema": rle_of(np.zeros((S, S), bool))} for k, i in enumerate(IDS)}
    (root / "gt.json").write_text(json.dumps(gt))
    rng = np.random.default_rng(5)
    rows = []
    (root / "maps").mkdir(exist_ok=True)

    def add(model, state, method, k, arr, fmt="npy"):
        name = f"maps/{model}_{state or 'o'}_{method}_{k}.{fmt}"
        if fmt == "npy":
            np.save(root / name, arr)
        elif fmt == "png":
            Image.fromarray(arr).save(root / name)
        else:
            np.savez(root / name, arr)
        rows.append({"image_id": IDS[k], "model": model, "state": state, "method": method, "path": name,
                     "finding": "Atelectasis"})

    for k in range(4):
        for model in ("netA", "netB", "netC"):
            # signed raw Grad-CAM-like maps at LOW resolution, brighter over the finding
            truth = masks[k, ::2, ::2]
            add(model, "", "gradcam", k, (truth * 2.0 + rng.normal(0, 0.5, (LOW, LOW))).astype(np.float32))
        add("netA", "", "ig", k, rng.integers(0, 256, (S, S), dtype=np.uint8), fmt="png")
        add("netA", "top", "gradcam", k, rng.normal(0, 1, (LOW, LOW)).astype(np.float32))
        all_zero = np.zeros((LOW, LOW), np.float32)
        add("netA", "all", "gradcam", k, all_zero)
        for j, loc in enumerate(("seg1", "seg2")):
            add(loc, "", "sigmoid", k, np.clip(masks[k] * 0.9 + rng.random((S, S)) * 0.1 * (j + 1), 0, 1), fmt="npz")
    pd.DataFrame(rows).to_csv(root / "index.csv", index=False)
    ds = {
        "kind": "chexlocalize",
        "gt_json": str(root / "gt.json"),
        "finding": "Atelectasis",
        "image_size": S,
        "maps": {
            "index_csv": str(root / "index.csv"),
            "interpolation": "bilinear",
            "rescale": "auto",
            "models": maps_models
            or {"primary": "netA", "replicate": "netB", "other": "netC", "localizer": ["seg1", "seg2"]},
            "states": ["top", "all"],
        },
    }
    config = {
        "seed": 3,
        "image_size": S,
        "datasets": {"cxl": ds},
        "shards": {"size": 8},
        "saliency": {"methods": ["GRAD"], "normalization": "released", "images": "with_finding"},
        "randomization": {"threshold_partners": 3},
        "criteria": {"similarity": ["ssim"], "localization": True, "localization_thresholds": ["otsu", 0.5]},
    }
    config["image_size"] = 80  # the schema's minimum (InceptionV3); the dataset's own grid is S
    validate(config, str(SCHEMA))  # the schema's defaults, as the Snakefile fills them
    return config, masks


def test_layout_maps_labels_onto_internal_roles(tmp_path):
    config, _ = make_byom(tmp_path)
    lay = layout("cxl", config["datasets"]["cxl"])
    assert lay["model_ids"] == ["inceptionv3_1", "inceptionv3_2", "densenet121_1", "unet_1", "unet_2"]
    assert lay["labels"]["densenet121_1"] == "netC" and lay["labels"]["unet_2"] == "seg2"
    assert lay["methods"] == ["gradcam", "ig"]
    assert lay["states"] == ["cascade-top", "cascade-all"]
    assert ("unet_1", "original", "PRED") in lay["triples"]
    assert ("inceptionv3_2", "original", "ig") not in lay["triples"]
    assert plan.model_ids(config, "cxl") == lay["model_ids"]
    assert plan.map_models(config, "cxl") == [
        ("inceptionv3_1", "original"), ("inceptionv3_1", "cascade-top"), ("inceptionv3_1", "cascade-all"),
        ("inceptionv3_2", "original"), ("densenet121_1", "original"),
    ]
    assert plan.randomization_states(config, "cxl") == ["cascade-top", "cascade-all"]
    assert plan.fully_randomized_state(config, "cxl") == "cascade-all"
    assert plan.methods(config, "cxl") == ["gradcam", "ig"]
    assert not plan.has_avg(config, "cxl")


def test_layout_errors_name_the_row(tmp_path):
    config, _ = make_byom(tmp_path, maps_models={"primary": "netA", "replicate": "netB", "localizer": ["seg1", "seg2"]})
    with pytest.raises(InputError, match=r"index.csv: row \d+: model 'netC' has no role"):
        layout("cxl", config["datasets"]["cxl"])
    config, _ = make_byom(tmp_path / "b")
    config["datasets"]["cxl"]["maps"]["states"] = ["top"]
    with pytest.raises(InputError, match="must list exactly"):
        layout("cxl", config["datasets"]["cxl"])
    df = pd.read_csv(tmp_path / "b" / "index.csv", dtype=str, keep_default_na=False)
    df.loc[1, "state"] = "top"  # a randomized state of the replicate
    df.to_csv(tmp_path / "b" / "index.csv", index=False)
    config["datasets"]["cxl"]["maps"]["states"] = ["top", "all"]
    with pytest.raises(InputError, match="row 3: state 'top' for model 'netB'"):
        layout("cxl", config["datasets"]["cxl"])


def test_criteria_plans_of_a_byom_dataset(tmp_path):
    config, _ = make_byom(tmp_path)
    assert criteria.skipped(config, "cxl") == {}
    p = criteria.shard_plan(config, "cxl", "utility", "000", results="R")
    assert p["avg"] is None  # no train/val masks: no AVG baseline
    got = {(s["model"], s["state"], s["method"]) for s in p["maps"]}
    assert got == {
        ("inceptionv3_1", "original", "gradcam"), ("inceptionv3_1", "original", "ig"),
        ("inceptionv3_1", "cascade-all", "gradcam"), ("inceptionv3_2", "original", "gradcam"),
        ("densenet121_1", "original", "gradcam"), ("unet_1", "original", "PRED"), ("unet_2", "original", "PRED"),
    }
    rep = criteria.shard_plan(config, "cxl", "repeatability", "000", results="R")
    assert [(q["method"], q["model_b"]) for q in rep["pairs"]] == [("gradcam", "inceptionv3_2"), ("PRED", "unet_2")]
    rnd = criteria.shard_plan(config, "cxl", "randomization", "000", results="R")
    assert [(q["method"], q["state"]) for q in rnd["pairs"]] == [("gradcam", "cascade-top"), ("gradcam", "cascade-all")]
    thr = criteria.threshold_plan(config, "cxl", ["000"], results="R")
    assert list(thr["methods"]) == ["gradcam"] and thr["states"] == ["cascade-all"]


def import_all(tmp_path, config):
    """Manifest + test shard via the data stage, then every maps file via the importer."""
    ds = config["datasets"]["cxl"]
    res = tmp_path / "R" / "cxl"
    m = build_manifest("cxl", config)
    io.write_csv(res / "data" / "manifest.csv", m)
    shard = build_shard("cxl", config, m, "test", 0)
    io.write_npz(res / "data" / "shards" / "test_000.npz", **shard)
    for model, state, method in layout("cxl", ds)["triples"]:
        arrays = importer.import_maps_file("cxl", ds, res / "data" / "manifest.csv",
                                           res / "data" / "shards" / "test_000.npz", model, state, method)
        io.write_npz(res / "maps" / model / state / method / "test_000.npz", **arrays)
    return m, shard


def test_import_and_score_against_references(tmp_path):
    config, masks = make_byom(tmp_path)
    m, shard = import_all(tmp_path, config)
    assert (m["split"] == "test").all() and m["has_finding"].tolist() == [True, True, False, True]
    np.testing.assert_array_equal(shard["masks"], masks.astype(np.uint8))  # COCO RLE -> shard, unchanged at S
    assert shard["images"].max() == 0  # no images_dir: black images
    res = tmp_path / "R" / "cxl"
    ids, maps = criteria.read_maps(res / "maps/inceptionv3_1/original/gradcam/test_000.npz")
    assert list(ids) == [IDS[0], IDS[1], IDS[3]]  # with_finding: image 2 has no map file entry used
    raw0 = np.load(tmp_path / "maps" / "netA_o_gradcam_0.npy")
    up = bilinear_up2(raw0)
    expected = (up - up.min()) / (up.max() - up.min())  # rescale auto: gradcam is not a registry method
    np.testing.assert_allclose(maps[0], expected, atol=1e-6)

    cfg = criteria.settings(config)
    util = criteria.score_shard(criteria.shard_plan(config, "cxl", "utility", "000", results=str(tmp_path / "R")), cfg)
    assert "avg" not in set(util["model_a"]) and IDS[2] not in set(util["image_id"])
    assert set(util["metric"]) == {"auprc", "ap", "auroc", "constant", "iou_otsu", "iou_0.5", "hit"}

    def value(model, state, method, metric, image):
        sel = util.query("model_a == @model and state == @state and method == @method and metric == @metric "
                         "and image_id == @image")
        assert len(sel) == 1
        return sel["value"].iloc[0]

    norm0 = normalize_maps(maps[:1], "gradcam", "released")[0]
    prec, rec, _ = precision_recall_curve(masks[0].ravel(), norm0.ravel())
    assert value("inceptionv3_1", "original", "gradcam", "auprc", IDS[0]) == pytest.approx(auc(rec, prec), abs=1e-9)
    q = (255 * norm0).astype(np.uint8)
    from skimage.filters import threshold_otsu

    ref = jaccard_score(masks[0].ravel(), (q > threshold_otsu(q)).ravel())
    assert value("inceptionv3_1", "original", "gradcam", "iou_otsu", IDS[0]) == pytest.approx(ref)
    ref = jaccard_score(masks[0].ravel(), (norm0 > 0.5).ravel())
    assert value("inceptionv3_1", "original", "gradcam", "iou_0.5", IDS[0]) == pytest.approx(ref)
    assert value("inceptionv3_1", "original", "gradcam", "hit", IDS[0]) == float(masks[0].flat[np.argmax(norm0)])
    # the all-zero map of the fully randomized model: AUPRC (1 + prevalence) / 2, AP = prevalence, IoU NaN
    prev = masks[3].mean()
    assert value("inceptionv3_1", "cascade-all", "gradcam", "auprc", IDS[3]) == pytest.approx((1 + prev) / 2)
    assert value("inceptionv3_1", "cascade-all", "gradcam", "ap", IDS[3]) == pytest.approx(prev)
    assert np.isnan(value("inceptionv3_1", "cascade-all", "gradcam", "iou_otsu", IDS[3]))  # empty segmentation
    assert value("inceptionv3_1", "cascade-all", "gradcam", "hit", IDS[3]) == float(masks[3][0, 0])
    # localizer maps: PRED, not rescaled
    _, pred = criteria.read_maps(res / "maps/unet_1/original/PRED/test_000.npz")
    prec, rec, _ = precision_recall_curve(masks[1].ravel(), pred[1].ravel())
    assert value("unet_1", "original", "PRED", "auprc", IDS[1]) == pytest.approx(auc(rec, prec), abs=1e-9)

    rep = criteria.score_shard(
        criteria.shard_plan(config, "cxl", "repeatability", "000", results=str(tmp_path / "R")), cfg
    )
    _, b = criteria.read_maps(res / "maps/inceptionv3_2/original/gradcam/test_000.npz")
    a = normalize_maps(maps, "gradcam", "released")
    b = normalize_maps(b, "gradcam", "released")
    got = rep.query("method == 'gradcam' and metric == 'ssim'")["value"].to_numpy()
    ref = [structural_similarity(a[i], b[i], data_range=1.0, win_size=7) for i in range(3)]
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_mismatched_image_id_and_missing_maps_are_clear_errors(tmp_path):
    config, _ = make_byom(tmp_path)
    ds = config["datasets"]["cxl"]
    df = pd.read_csv(tmp_path / "index.csv", dtype=str, keep_default_na=False)
    df.loc[6, "image_id"] = "patient9_study1_view1_frontal"
    df.to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(InputError, match=r"index.csv: row 8: image 'patient9_study1_view1_frontal' is not an image"):
        import_all(tmp_path, config)
    config, _ = make_byom(tmp_path / "b")
    df = pd.read_csv(tmp_path / "b" / "index.csv", dtype=str, keep_default_na=False)
    df = df[~((df["image_id"] == IDS[1]) & (df["model"] == "netB"))]
    df.to_csv(tmp_path / "b" / "index.csv", index=False)
    with pytest.raises(InputError, match=r"model netB.*1 test image\(s\) have no gradcam map"):
        import_all(tmp_path / "b", config)
    config, _ = make_byom(tmp_path / "c")
    np.save(tmp_path / "c" / "maps" / "netA_o_gradcam_0.npy", np.zeros((2, LOW, LOW)))
    with pytest.raises(InputError, match=r"row \d+: image patient1_study1_view1_frontal: .*expected a 2-D map"):
        import_all(tmp_path / "c", config)
    del ds


def test_expand_findings_into_datasets():
    config = {"datasets": {"cxl": {"kind": "chexlocalize", "gt_json": "g.json",
                                   "findings": ["Atelectasis", "Lung Lesion"]}, "other": {"kind": "synthetic"}}}
    out = expand_datasets(copy.deepcopy(config))
    assert list(out["datasets"]) == ["cxl-Atelectasis", "cxl-Lung-Lesion", "other"]
    assert out["datasets"]["cxl-Lung-Lesion"]["finding"] == "Lung Lesion"
    assert "findings" not in out["datasets"]["cxl-Atelectasis"]


def test_single_model_without_model_or_state_columns(tmp_path):
    """A minimal index (no model, no state column): utility only; the other criteria are skipped."""
    config, masks = make_byom(tmp_path)
    df = pd.read_csv(tmp_path / "index.csv", dtype=str, keep_default_na=False)
    df = df[(df["model"] == "netA") & (df["state"] == "")][["image_id", "method", "path", "finding"]]
    df.to_csv(tmp_path / "index.csv", index=False)
    ds = config["datasets"]["cxl"]
    ds["maps"] = {"index_csv": str(tmp_path / "index.csv"), "interpolation": "bilinear", "rescale": "auto"}
    assert plan.model_ids(config, "cxl") == ["inceptionv3_1"]
    assert set(criteria.skipped(config, "cxl")) == {"randomization", "repeatability", "reproducibility"}
    import_all(tmp_path, config)
    util = criteria.score_shard(
        criteria.shard_plan(config, "cxl", "utility", "000", results=str(tmp_path / "R")), criteria.settings(config)
    )
    assert set(util["method"]) == {"gradcam", "ig"} and set(util["model_a"]) == {"inceptionv3_1"}
    assert len(util) == 2 * 3 * 7  # 2 methods x 3 images with a finding x 7 metrics (+ constant flag)


def test_schema_accepts_a_byom_config_and_fills_defaults(tmp_path):
    config, _ = make_byom(tmp_path)
    config["datasets"]["cxl"]["maps"].pop("interpolation")
    validate(config, str(SCHEMA))
    assert config["datasets"]["cxl"]["maps"]["interpolation"] == "bilinear"
    assert config["criteria"]["localization"] is True
    bad = copy.deepcopy(config)
    bad["datasets"]["cxl"]["maps"]["interpolation"] = "lanczos"
    with pytest.raises(Exception, match="lanczos"):
        validate(bad, str(SCHEMA))


def test_boxes_from_a_folder_source_with_tiff_maps_and_a_retinanet_localizer(tmp_path):
    """Any ingest source: folder boxes (detection) -> box masks; TIFF maps at 48 px downsampled to 32."""
    from fixtures_data import config_for, make_folder

    from saliency_audit.data.prepare import box_mask

    ds, _, boxes = make_folder(tmp_path / "data", n_pos=3, n_neg=2, size=48, task="detection")
    rows = []
    (tmp_path / "maps").mkdir()
    rng = np.random.default_rng(4)
    for iid, bb in boxes.items():
        for model, method in (("mine", "gradcam"), ("det", "boxes")):
            name = f"maps/{model}_{iid}.tif"
            Image.fromarray(rng.random((48, 48)).astype(np.float32)).save(tmp_path / name)
            rows.append({"image_id": iid, "model": model, "method": method, "path": name})
    pd.DataFrame(rows).to_csv(tmp_path / "index.csv", index=False)
    ds["maps"] = {"index_csv": str(tmp_path / "index.csv"), "models": {"primary": "mine", "localizer": "det"}}
    ds["image_size"] = S  # the dataset's own grid; the run's is the schema's minimum (InceptionV3)
    config = with_defaults({**config_for("cxl", ds, shard_size=8), "image_size": 80})
    config["criteria"]["localization"] = True
    assert plan.model_ids(config, "cxl") == ["inceptionv3_1", "retinanet_1"]
    m, shard = import_all(tmp_path, config)
    assert (m["split"] == "test").all() and len(m) == 5
    pos = np.flatnonzero(shard["has_finding"])
    for k in pos:  # the boxes, scaled 48 -> 32 px, are the ground truth
        ref = box_mask(np.asarray(boxes[shard["ids"][k]]) * (S / 48), S)
        np.testing.assert_array_equal(shard["masks"][k], ref)
    util = criteria.score_shard(
        criteria.shard_plan(config, "cxl", "utility", "000", results=str(tmp_path / "R")), criteria.settings(config)
    )
    assert set(util["model_a"]) == {"inceptionv3_1", "retinanet_1"} and set(util["method"]) == {"gradcam", "PRED"}
    ids, maps = criteria.read_maps(tmp_path / "R/cxl/maps/inceptionv3_1/original/gradcam/test_000.npz")
    assert maps.shape == (3, S, S)
    norm = normalize_maps(maps, "gradcam", "released")
    for i, iid in enumerate(ids):
        mask = shard["masks"][list(shard["ids"]).index(iid)]
        prec, rec, _ = precision_recall_curve(mask.ravel(), norm[i].ravel())
        got = util.query("method == 'gradcam' and metric == 'auprc' and image_id == @iid")["value"].iloc[0]
        assert got == pytest.approx(auc(rec, prec), abs=1e-9)


def test_missing_map_files_name_the_index_row_needed_or_not(tmp_path, caplog):
    """A missing map of an image that needs one stops the import naming the CSV row; one of an image
    without a finding (not needed) is a warning naming its row."""
    import logging

    config, _ = make_byom(tmp_path)
    df = pd.read_csv(tmp_path / "index.csv", dtype=str, keep_default_na=False)
    ds = config["datasets"]["cxl"]
    m = build_manifest("cxl", config)
    shard = build_shard("cxl", config, m, "test", 0)
    io.write_npz(tmp_path / "test_000.npz", **shard)
    m.to_csv(tmp_path / "manifest.csv", index=False)
    is_gradcam_a = (df["model"] == "netA") & (df["state"] == "") & (df["method"] == "gradcam")
    unneeded = df.index[is_gradcam_a & (df["image_id"] == IDS[2])][0]  # image 2 has no finding
    needed = df.index[is_gradcam_a & (df["image_id"] == IDS[1])][0]
    (tmp_path / df.loc[unneeded, "path"]).unlink()
    caplog.set_level(logging.WARNING, logger="saliency_audit")
    args = ("cxl", ds, tmp_path / "manifest.csv", tmp_path / "test_000.npz", "inceptionv3_1", "original", "gradcam")
    out = importer.import_maps_file(*args)
    assert list(out["ids"]) == [IDS[0], IDS[1], IDS[3]]
    capped = importer.import_maps_file(*args, "with_finding", 2)  # saliency.max_images: the first 2
    assert list(capped["ids"]) == [IDS[0], IDS[1]] and np.array_equal(capped["maps"], out["maps"][:2])
    msg = f"index.csv (model netA, state original, method gradcam): row {unneeded + 2}: image {IDS[2]}: map file"
    assert msg in caplog.text and "not found (not needed" in caplog.text
    (tmp_path / df.loc[needed, "path"]).unlink()
    with pytest.raises(InputError, match=rf"index.csv \(model netA, state original, method gradcam\): row {needed + 2}: "
                       rf"image {IDS[1]}: map file .* not found"):
        importer.import_maps_file(*args)
