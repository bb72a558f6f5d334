"""Splits: the paper's published split files are reproduced exactly; stratified_split gives the
paper's 81:9:10 counts, stratifies by label and is reproducible from its seed."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saliency_audit.data import base
from saliency_audit.data.prepare import build_manifest
from saliency_audit.data.splits import read_split_file, stratified_split
from saliency_audit.errors import InputError

SPLITS = Path(__file__).resolve().parents[1] / "resources" / "splits"
#: Arun et al. 2021: SIIM 8646/961/1068, RSNA 12039/1338/1486 (train/val/test).
PAPER = {"pneumothorax": (8646, 961, 1068), "pneumonia": (12039, 1338, 1486)}


@pytest.mark.parametrize("name", ["pneumothorax", "pneumonia"])
def test_published_split_file_reproduced_exactly(name):
    path = SPLITS / f"{name}_splits.csv"
    ref = pd.read_csv(path, dtype=str)
    counts = ref["Split"].value_counts()
    assert tuple(counts[["train", "val", "test"]]) == PAPER[name]  # the file itself has the paper's counts
    # the dataset's own ids: SIIM ImageIds as in the file, RSNA patientIds without the file's ".png"
    ids = ref["Image_ID"].str.replace(".png", "", regex=False).to_numpy()
    assert (name == "pneumonia") == ref["Image_ID"].str.endswith(".png").all()
    order = np.random.default_rng(0).permutation(len(ids))
    got = read_split_file(path, ids[order])
    assert got.index.tolist() == ids[order].tolist()
    np.testing.assert_array_equal(got.to_numpy(), ref["Split"].to_numpy()[order])
    assert tuple(got.value_counts()[["train", "val", "test"]]) == PAPER[name]


class _ListSource(base.Source):
    """Records only (ids from a split file); no pixels needed for the manifest."""

    kind = "_test_list"

    def records(self):
        ids = self.cfg["ids"]
        return pd.DataFrame(
            {
                "image_id": ids,
                "label": [i % 2 for i in range(len(ids))],
                "has_finding": [bool(i % 2) for i in range(len(ids))],
                "source": ids,
            }
        )


def test_manifest_with_published_split_file(monkeypatch):
    monkeypatch.setitem(base.SOURCES, "_test_list", _ListSource)
    path = SPLITS / "pneumonia_splits.csv"
    ref = pd.read_csv(path, dtype=str)
    ids = ref["Image_ID"].str[:-4].tolist()[::-1]
    cfg = {
        "seed": 1,
        "datasets": {"pna": {"kind": "_test_list", "ids": ids, "split_file": str(path)}},
        "shards": {"size": 500},
    }
    m = build_manifest("pna", cfg)
    truth = dict(zip(ref["Image_ID"].str[:-4], ref["Split"]))
    assert (m["split"] == m["image_id"].map(truth)).all()
    assert m.groupby("split")["shard"].max().to_dict() == {
        "train": 12039 // 500,
        "val": 1338 // 500,
        "test": 1486 // 500,
    }


def test_split_file_ids_without_images_are_ignored_and_missing_images_fail(tmp_path):
    path = SPLITS / "pneumothorax_splits.csv"
    ref = pd.read_csv(path, dtype=str)
    sub = ref["Image_ID"].iloc[:50]
    got = read_split_file(path, sub)
    assert got.tolist() == ref["Split"].iloc[:50].tolist()
    with pytest.raises(InputError, match=r"pneumothorax_splits.csv: 1 images have no split, e.g. \['not-in-file'\]"):
        read_split_file(path, list(sub) + ["not-in-file"])


@pytest.mark.parametrize(
    "text, match",
    [
        ("Image_ID,Fold\na,train\n", r"needs columns Image_ID, Split; missing \['Split'\]"),
        (
            "Image_ID,Split\na,train\nb,holdout\n",
            r"row 3: Image_ID 'b', Split 'holdout'; expected an id and one of train/val/test",
        ),
        ("Image_ID,Split\na.png,train\nb,val\na,test\n", r"row 4: image 'a' is 'test' but row 2 says 'train'"),
        ("", "split file is empty"),
    ],
)
def test_bad_split_files(tmp_path, text, match):
    p = tmp_path / "s.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        read_split_file(p, ["a"])


def test_extension_matching_both_ways(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(",Image_ID,Split\n0,x.png,val\n1,y.dcm,test\n2,z,train\n")
    assert read_split_file(p, ["x", "y", "z", "x.png"]).tolist() == ["val", "test", "train", "val"]


@pytest.mark.parametrize("n, paper", [(10675, PAPER["pneumothorax"]), (14863, PAPER["pneumonia"])])
def test_stratified_split_paper_counts_and_strata(n, paper):
    rng = np.random.default_rng(1)
    labels = (rng.random(n) < 0.22).astype(int)
    ids = np.array([f"id{i:05d}" for i in range(n)])
    s = stratified_split(ids, labels, (0.81, 0.09, 0.10), seed=5)
    assert s.index.tolist() == ids.tolist()
    assert tuple(s.value_counts()[["train", "val", "test"]]) == paper
    p = labels.mean()
    for split, size in zip(("train", "val", "test"), paper):
        pos = labels[(s == split).to_numpy()].sum()
        assert abs(pos - p * size) <= 1.0, (split, pos, p * size)  # stratified: within one image of the overall rate


def test_stratified_split_seeded():
    ids = [f"i{k}" for k in range(200)]
    labels = [k % 3 == 0 for k in range(200)]
    a = stratified_split(ids, labels, (0.8, 0.1, 0.1), seed=11)
    b = stratified_split(ids, labels, (0.8, 0.1, 0.1), seed=11)
    c = stratified_split(ids, labels, (0.8, 0.1, 0.1), seed=12)
    pd.testing.assert_series_equal(a, b)
    assert (a != c).sum() > 10
    assert a.value_counts().to_dict() == {"train": 160, "val": 20, "test": 20}


def test_stratified_split_too_few():
    with pytest.raises(InputError, match="too few"):
        stratified_split(["a", "b"], [0, 1], (0.8, 0.1, 0.1))
