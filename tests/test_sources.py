"""The siim / rsna / folder sources end to end (build_manifest + build_shard), and every bad input
stopping with an InputError naming the file/row, leaving no shard behind."""

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skimage.transform import resize

from fixtures_data import (
    SECRET_BIRTH,
    SECRET_ID,
    SECRET_NAME,
    config_for,
    make_folder,
    make_rsna,
    make_siim,
    smooth_image,
    write_dicom,
    write_png,
)
from saliency_audit import io
from saliency_audit.data.base import get_source
from saliency_audit.data.prepare import build_manifest, build_shard
from saliency_audit.errors import InputError


def all_shards(name, config, manifest):
    out = {}
    for split in io.SPLITS:
        for shard in sorted(manifest.loc[manifest["split"] == split, "shard"].unique()):
            out[(split, shard)] = build_shard(name, config, manifest, split, int(shard))
    return out


def write_shard_like_script(name, config, manifest, split, shard, out):
    """What workflow_scripts/shard.py does: build the arrays, then write them atomically."""
    arrays = build_shard(name, config, manifest, split, shard)
    io.write_npz(out, **arrays)


# ------------------------------------------------------------------------------------------- SIIM
def test_siim_end_to_end_masks_and_privacy(tmp_path, caplog):
    ds, masks = make_siim(tmp_path / "siim", n_pos=3, n_neg=3, size=64)
    cfg = config_for("ptx", ds, image_size=64, shard_size=2)
    caplog.set_level(logging.DEBUG)
    m = build_manifest("ptx", cfg)
    assert len(m) == 6 and m["label"].sum() == 3
    assert (m["has_finding"] == m["label"].astype(bool)).all()
    assert m["split"].value_counts().to_dict() == {"train": 2, "val": 2, "test": 2}  # round(1.5) = 2 twice
    for r in m.itertuples():
        assert r.source.endswith(f"{r.image_id}.dcm") and os.path.isfile(r.source)
        assert r.label == int(masks[r.image_id].any())
    shards = all_shards("ptx", cfg, m)
    seen = 0
    for arrays in shards.values():
        for i, iid in enumerate(arrays["ids"]):
            # at the native size the shard mask is exactly the union of the image's RLE rows
            np.testing.assert_array_equal(arrays["masks"][i], masks[iid].astype(np.uint8))
            seen += 1
        assert arrays["boxes"].shape == (0, 5)
    assert seen == 6
    # no header value reaches the manifest, the shard files or the log
    man = tmp_path / "manifest.csv"
    io.write_csv(man, m)
    io.write_npz(tmp_path / "s.npz", **shards[("train", 0)])
    blobs = [man.read_text(), caplog.text, repr(io.read_shard(tmp_path / "s.npz")["ids"])]
    for secret in (SECRET_NAME, SECRET_ID, SECRET_BIRTH, "SECRETNAME"):
        assert all(secret not in b for b in blobs)


def test_siim_union_and_resize(tmp_path):
    ds, masks = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, size=64, jpeg=False, nested=False)
    cfg = config_for("ptx", ds, image_size=32)
    src = get_source("ptx", cfg)
    iid = next(i for i, mk in masks.items() if mk.any())
    s = src.load(iid)
    np.testing.assert_array_equal(s.mask, masks[iid])
    np.testing.assert_array_equal(s.image, smooth_image(64, 64, int(iid.rsplit(".", 1)[1]) - 1000) / 255.0)
    m = build_manifest("ptx", cfg)
    arrays = all_shards("ptx", cfg, m)
    for a in arrays.values():
        for i, j in enumerate(a["ids"]):
            ref = resize(masks[j].astype(np.uint8), (32, 32), order=0, anti_aliasing=False, preserve_range=True)
            np.testing.assert_array_equal(a["masks"][i], ref)


def test_siim_column_name_without_space(tmp_path):
    ds, _ = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, jpeg=False)
    df = pd.read_csv(ds["rle_csv"])
    df.columns = ["ImageId", "EncodedPixels"]
    df.to_csv(ds["rle_csv"], index=False)
    m = build_manifest("ptx", config_for("ptx", ds))
    assert m["label"].sum() == 2


def test_siim_label_without_file(tmp_path):
    ds, _ = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, jpeg=False)
    with open(ds["rle_csv"], "a") as fh:
        fh.write("1.2.3.no.such.image, -1\n")
    with pytest.raises(InputError, match=r"train-rle.csv: 1 image id\(s\) have no image file.*1.2.3.no.such.image"):
        build_manifest("ptx", config_for("ptx", ds))


def test_siim_file_without_label_is_skipped_with_warning(tmp_path, caplog):
    ds, _ = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, jpeg=False)
    write_dicom(Path(ds["images_dir"]) / "extra" / "9.9.9.dcm", smooth_image(64, 64))
    caplog.set_level(logging.WARNING)
    m = build_manifest("ptx", config_for("ptx", ds))
    assert len(m) == 4 and "9.9.9" not in set(m["image_id"])
    assert "1 image file(s) have no row" in caplog.text


@pytest.mark.parametrize("rle, words", [("1 2 x", "not '-1' or space-separated integers"), ("", "empty EncodedPixels")])
def test_siim_malformed_rle_names_row(tmp_path, rle, words):
    ds, _ = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, jpeg=False)
    df = pd.read_csv(ds["rle_csv"], dtype=str, keep_default_na=False)
    df.iloc[3, 1] = rle
    df.to_csv(ds["rle_csv"], index=False)
    with pytest.raises(InputError, match=rf"train-rle.csv: row 5: image .*{words}"):
        build_manifest("ptx", config_for("ptx", ds))


def _fail_shard(name, cfg, m, image_id, tmp_path, match):
    r = m.set_index("image_id").loc[image_id]
    out = tmp_path / "out" / f"{r['split']}_{int(r['shard']):03d}.npz"
    with pytest.raises(InputError, match=match) as e:
        write_shard_like_script(name, cfg, m, r["split"], int(r["shard"]), out)
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no temporary files either
    return e


def test_siim_rle_longer_than_image_no_partial_shard(tmp_path):
    ds, masks = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, size=64, jpeg=False)
    df = pd.read_csv(ds["rle_csv"], dtype=str)
    iid = df.iloc[0, 0]
    df.iloc[0, 1] = "4000 50"  # 64 x 64 = 4096 pixels: ends at pixel 4050, inside
    df.iloc[1, 1] = "4090 10"  # (file row 3) ends at pixel 4100 > 4096
    df.to_csv(ds["rle_csv"], index=False)
    cfg = config_for("ptx", ds, shard_size=8)
    m = build_manifest("ptx", cfg)
    e = _fail_shard("ptx", cfg, m, iid, tmp_path, r"train-rle.csv: row 3: image .*beyond the 64x64 image")
    assert iid in str(e.value)


def test_siim_corrupt_and_pixelless_dicoms(tmp_path):
    ds, _ = make_siim(tmp_path / "siim", n_pos=2, n_neg=2, size=64, jpeg=False, nested=False)
    cfg = config_for("ptx", ds, shard_size=8)
    m = build_manifest("ptx", cfg)
    bad = m.iloc[0]
    Path(bad["source"]).write_bytes(b"not a dicom at all" * 20)
    e = _fail_shard("ptx", cfg, m, bad["image_id"], tmp_path, "not a DICOM file")
    assert bad["source"] in str(e.value)
    other = m.iloc[1]
    write_dicom(other["source"], smooth_image(64, 64), pixel_data=False)
    _fail_shard("ptx", cfg, m, other["image_id"], tmp_path, "has no pixel data")


def test_siim_empty_labels(tmp_path):
    ds, _ = make_siim(tmp_path / "siim", n_pos=1, n_neg=1, jpeg=False)
    Path(ds["rle_csv"]).write_text("ImageId, EncodedPixels\n")
    with pytest.raises(InputError, match="no images left"):
        build_manifest("ptx", config_for("ptx", ds))


# ------------------------------------------------------------------------------------------- RSNA
def test_rsna_filter_boxes_end_to_end(tmp_path):
    ds, boxes = make_rsna(tmp_path / "rsna", size=64)
    cfg = config_for("pna", ds, image_size=32, shard_size=8)
    m = build_manifest("pna", cfg)
    assert sorted(m["image_id"]) == ["p0", "p1", "p2", "p3"]  # p4 (No Lung Opacity / Not Normal) dropped
    assert dict(zip(m["image_id"], m["label"])) == {"p0": 1, "p1": 1, "p2": 0, "p3": 0}
    src = get_source("pna", cfg)
    s = src.load("p0")
    np.testing.assert_array_equal(s.boxes, np.array(boxes["p0"], np.float32))
    assert not s.mask.any() and s.image.shape == (64, 64)
    got = {}
    for a in all_shards("pna", cfg, m).values():
        for k, iid in enumerate(a["ids"]):
            got[iid] = a["boxes"][a["boxes"][:, 0] == k, 1:]
            assert a["masks"][k].any() == (iid in ("p0", "p1"))
    for pid, bb in boxes.items():
        if pid != "p4":
            np.testing.assert_allclose(got[pid], np.array(bb, np.float32).reshape(-1, 4) * 0.5)  # 64 -> 32 px


def test_rsna_keep_classes_and_no_class_info(tmp_path):
    ds, _ = make_rsna(tmp_path / "rsna")
    all5 = {**ds, "keep_classes": ["Normal", "Lung Opacity", "No Lung Opacity / Not Normal"]}
    assert len(get_source("pna", config_for("pna", all5)).records()) == 5
    assert len(get_source("pna", config_for("pna", {**ds, "class_info_csv": None})).records()) == 5
    with pytest.raises(InputError, match=r"keep_classes \['Nomral'\] do not occur"):
        get_source("pna", config_for("pna", {**ds, "keep_classes": ["Nomral"]})).records()


def test_rsna_box_outside_image(tmp_path):
    ds, _ = make_rsna(tmp_path / "rsna", size=64)
    df = pd.read_csv(ds["labels_csv"])
    df.loc[1, "width"] = 40.0  # row 3 of the file: x=30 + 40 > 64
    df.to_csv(ds["labels_csv"], index=False)
    cfg = config_for("pna", ds, shard_size=8)
    m = build_manifest("pna", cfg)
    _fail_shard(
        "pna",
        cfg,
        m,
        "p0",
        tmp_path,
        r"stage_2_train_labels.csv: row 3: image p0: box x=30, y=20, w=40, h=20 lies outside the 64x64",
    )


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda df: df.loc.__setitem__((2, "Target"), 0), r"row 4: patient p1: Target 0 with a box"),
        (lambda df: df.loc.__setitem__((1, "Target"), 0), r"row 3: patient p0: Target 0 disagrees with row 2"),
        (lambda df: df.loc.__setitem__((3, "x"), 5.0), r"row 5: patient p2: Target 0 with a box"),
        (lambda df: df.loc.__setitem__((0, "height"), np.nan), r"row 2: image p0: positive image with an empty box"),
        (lambda df: df.loc.__setitem__((0, "Target"), 2), r"row 2: patient p0: Target '2'"),
    ],
)
def test_rsna_inconsistent_rows(tmp_path, edit, match):
    ds, _ = make_rsna(tmp_path / "rsna")
    df = pd.read_csv(ds["labels_csv"])
    edit(df)
    df.to_csv(ds["labels_csv"], index=False)
    with pytest.raises(InputError, match=match):
        build_manifest("pna", config_for("pna", ds))


def test_rsna_label_without_file_and_class_conflict(tmp_path):
    ds, _ = make_rsna(tmp_path / "rsna")
    os.remove(Path(ds["images_dir"]) / "p2.dcm")
    with pytest.raises(
        InputError,
        match=r"stage_2_train_labels.csv: 1 image id\(s\) have no image file in the images folder, e.g. 'p2'",
    ):
        build_manifest("pna", config_for("pna", ds))
    ds, _ = make_rsna(tmp_path / "rsna2")
    info = pd.read_csv(ds["class_info_csv"])
    info.loc[info["patientId"] == "p1", "class"] = "Normal"
    info.to_csv(ds["class_info_csv"], index=False)
    with pytest.raises(
        InputError, match=r"stage_2_detailed_class_info.csv: row 4: patient p1: class 'Normal' but Target 1"
    ):
        build_manifest("pna", config_for("pna", ds))


# ----------------------------------------------------------------------------------------- folder
@pytest.mark.parametrize("task, fmt", [("segmentation", "png"), ("detection", "png"), ("segmentation", "dcm")])
def test_folder_end_to_end(tmp_path, task, fmt):
    ds, masks, boxes = make_folder(tmp_path / "f", n_pos=5, n_neg=5, size=48, task=task, fmt=fmt)
    cfg = config_for("f", ds, image_size=24, shard_size=3, fractions=(0.6, 0.2, 0.2))
    m = build_manifest("f", cfg)
    assert len(m) == 10 and m["label"].sum() == 5
    assert m.groupby("split")["label"].agg(["count", "sum"]).to_dict() == {
        "count": {"test": 2, "train": 6, "val": 2},
        "sum": {"test": 1, "train": 3, "val": 1},  # stratified by label
    }
    assert (m.groupby("split")["shard"].max() == (m.groupby("split").size() - 1) // 3).all()
    assert all(Path(s).parent == Path(ds["images_dir"]) for s in m["source"])
    shards = all_shards("f", cfg, m)
    ids = np.concatenate([a["ids"] for a in shards.values()])
    assert sorted(ids) == sorted(m["image_id"])
    for a in shards.values():
        assert a["images"].dtype == np.uint8 and a["images"].shape[1:] == (24, 24)
        for k, iid in enumerate(a["ids"]):
            assert a["labels"][k] == int(iid < "img005") and a["has_finding"][k] == (iid < "img005")
            img = smooth_image(48, 48, int(iid[3:])) / 255.0
            ref = np.clip(np.round(resize(img, (24, 24), order=1, anti_aliasing=True) * 255), 0, 255)
            np.testing.assert_array_equal(a["images"][k], ref.astype(np.uint8))
            if task == "segmentation":
                ref = resize(masks[iid].astype(np.uint8), (24, 24), order=0, anti_aliasing=False, preserve_range=True)
                np.testing.assert_array_equal(a["masks"][k], ref)
            else:
                np.testing.assert_allclose(
                    a["boxes"][a["boxes"][:, 0] == k, 1:], np.array(boxes[iid]).reshape(-1, 4) / 2
                )


def test_folder_mask_wrong_size(tmp_path):
    ds, masks, _ = make_folder(tmp_path / "f", n_pos=3, n_neg=3, size=48)
    mpath = Path(ds["labels_csv"]).parent / "masks" / "img001_mask.png"
    write_png(mpath, np.zeros((40, 48), np.uint8) + 255)
    cfg = config_for("f", ds, shard_size=10)
    m = build_manifest("f", cfg)
    _fail_shard(
        "f", cfg, m, "img001", tmp_path, r"labels.csv: row 3: image img001: mask .* is 48x40 but the image .* is 48x48"
    )


def test_folder_file_without_label(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=2, n_neg=2)
    write_png(Path(ds["images_dir"]) / "sub" / "stray.png", smooth_image(48, 48))
    with pytest.raises(InputError, match=r"images: 1 image file\(s\) have no row in .*labels.csv, e.g. .*stray.png"):
        build_manifest("f", config_for("f", ds))


def test_folder_label_without_file(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=2, n_neg=2)
    os.remove(Path(ds["images_dir"]) / "img002.png")
    with pytest.raises(InputError, match=r"labels.csv: row 4: image img002: image file .*img002.png not found"):
        build_manifest("f", config_for("f", ds))


def test_folder_label_disagrees_with_mask(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=2, n_neg=2)
    df = pd.read_csv(ds["labels_csv"], dtype=str, keep_default_na=False)
    df.loc[3, "mask"] = df.loc[0, "mask"]  # a negative image with a non-empty mask
    df.to_csv(ds["labels_csv"], index=False)
    cfg = config_for("f", ds, shard_size=10)
    m = build_manifest("f", cfg)
    _fail_shard("f", cfg, m, "img003", tmp_path, "img003 is labelled without a finding but has a mask")
    df.loc[3, "mask"] = ""
    df.loc[3, "label"] = "1"
    df.to_csv(ds["labels_csv"], index=False)
    with pytest.raises(InputError, match=r"labels.csv: row 5: image img003: label 1 but no mask file"):
        build_manifest("f", cfg)


def test_folder_bad_rows(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=2, n_neg=2, task="detection")
    df = pd.read_csv(ds["labels_csv"])
    bad = df.copy()
    bad.loc[2, "label"] = 7
    bad.to_csv(ds["labels_csv"], index=False)
    with pytest.raises(InputError, match=r"labels.csv: row 4: image img001: label '7'; expected 0 or 1"):
        build_manifest("f", config_for("f", ds))
    bad = df.copy()
    bad.loc[4, ["x", "y", "w", "h"]] = [1, 2, 3, 4]  # img002 is negative
    bad.to_csv(ds["labels_csv"], index=False)
    with pytest.raises(InputError, match=r"labels.csv: row 6: image img002: label 0 with a box"):
        build_manifest("f", config_for("f", ds))
    bad = df.copy()
    bad.loc[1, "x"] = 45.0  # 45 + 8 > 48
    bad.to_csv(ds["labels_csv"], index=False)
    cfg = config_for("f", ds, shard_size=10)
    _fail_shard("f", cfg, build_manifest("f", cfg), "img000", tmp_path, r"labels.csv: row 3: image img000: box x=45")


def test_folder_ids_from_paths_and_images_by_id(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=2, n_neg=2)
    df = pd.read_csv(ds["labels_csv"], dtype=str, keep_default_na=False)
    df.drop(columns=["image_id"]).to_csv(ds["labels_csv"], index=False)
    with pytest.raises(InputError, match=r"labels.csv: no column 'image_id' \(datasets.f.id_column\)"):
        build_manifest("f", config_for("f", ds))  # named explicitly in the config: must exist
    ds = {k: v for k, v in ds.items() if k not in ("id_column", "path_column")}  # defaults may be absent
    assert sorted(build_manifest("f", config_for("f", ds))["image_id"]) == ["img000", "img001", "img002", "img003"]
    df.drop(columns=["path"]).to_csv(ds["labels_csv"], index=False)
    m = build_manifest("f", config_for("f", ds))
    assert m["source"].tolist() == [str(Path(ds["images_dir"]) / f"img00{i}.png") for i in range(4)]


def test_folder_empty_and_unknown_kind(tmp_path):
    ds, _, _ = make_folder(tmp_path / "f", n_pos=1, n_neg=1)
    Path(ds["labels_csv"]).write_text("image_id,path,label,mask\n")
    for f in Path(ds["images_dir"]).iterdir():
        f.unlink()
    with pytest.raises(InputError, match="no images left"):
        build_manifest("f", config_for("f", ds))
    with pytest.raises(InputError, match=r"unknown kind 'nifti'; expected one of .*'folder'.*'rsna'.*'siim'"):
        build_manifest("f", config_for("f", {"kind": "nifti"}))


# ------------------------------------------------------------------------------ preprocess corners
def test_thin_mask_survives_downsampling(caplog):
    from saliency_audit.data.base import Sample
    from saliency_audit.data.prepare import max_pool_mask, preprocess

    mask = np.zeros((64, 64), bool)
    mask[10:30, 0] = True  # one pixel wide: nearest neighbour (samples columns 1.5, 5.5, ...) misses it
    assert not resize(mask.astype(np.uint8), (16, 16), order=0, anti_aliasing=False, preserve_range=True).any()
    _, m, _ = preprocess(Sample(image=np.zeros((64, 64)), mask=mask), 16, "thin")
    expected = np.zeros((16, 16), np.uint8)
    expected[2:8, 0] = 1  # rows 10..29 lie in blocks 2 (8-11) .. 7 (28-31)
    np.testing.assert_array_equal(m, expected)
    assert "thin" in caplog.text
    # max pooling with a non-integer factor: 10 -> 4 px, blocks start at rows/cols 0, 2, 5, 7
    a = np.zeros((10, 10), bool)
    a[6, 4] = True
    np.testing.assert_array_equal(np.argwhere(max_pool_mask(a, 4)), [[2, 1]])


def test_tiny_box_marks_its_centre_pixel():
    from saliency_audit.data.prepare import box_mask

    m = box_mask([[5.2, 7.1, 0.3, 0.4]], 16)
    assert m.sum() == 1 and m[7, 5] == 1
    m = box_mask([[2.0, 3.0, 4.0, 2.0]], 16)  # covers pixel centres x 2.5..5.5, y 3.5..4.5
    assert m.sum() == 8 and m[3:5, 2:6].all()


def test_failed_write_leaves_no_file(tmp_path):
    """A write failing after bytes reached the disk (the second array's pickling raises) leaves
    neither the final file nor its temporary file, and the error is the writer's own."""
    out = tmp_path / "shards" / "train_000.npz"
    on_disk = []

    class Boom:
        def __reduce__(self):  # called while np.savez writes the second member
            on_disk.extend((p.name, p.stat().st_size) for p in out.parent.iterdir())
            raise RuntimeError("disk full (injected)")

    big = np.random.default_rng(0).integers(0, 255, 2**21, dtype=np.uint8)  # incompressible: 2 MB flushed
    with pytest.raises(RuntimeError, match=r"disk full \(injected\)"):
        io.write_npz(out, big=big, bad=np.array([Boom()], dtype=object))
    assert len(on_disk) == 1 and on_disk[0][0] != out.name and on_disk[0][1] > 2**20, on_disk  # a partial temp file
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_relative_paths_stay_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds, _, _ = make_folder(Path("f"), n_pos=2, n_neg=2)
    ds = {**ds, "images_dir": "f/images", "labels_csv": "f/labels.csv"}
    m = build_manifest("f", config_for("f", ds))
    assert sorted(m["source"]) == [f"f/images/img00{i}.png" for i in range(4)]
    sds, _ = make_siim(Path("s"), n_pos=1, n_neg=1, jpeg=False)
    sds = {**sds, "images_dir": "s/dicom-images-train", "rle_csv": "s/train-rle.csv"}
    src = get_source("ptx", config_for("ptx", sds)).records()
    assert all(p.startswith("s/dicom-images-train/study") for p in src["source"])
