"""The built-in synthetic phantoms: determinism, labels, ground truth, confounder, shards."""

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from saliency_audit.data.prepare import box_mask, build_manifest, build_shard, preprocess, stage_config
from saliency_audit.data.synthetic import SyntheticSource, assign_labels
from saliency_audit.errors import InputError

SIZE = 80


def make_config(seed=7, size=SIZE, **datasets):
    base = {
        "kind": "synthetic",
        "n_images": 24,
        "prevalence": 0.5,
        "lesion_size": [0.2, 0.3],
        "contrast": [0.3, 0.5],
        "noise": 0.02,
    }
    ds = {name: {**base, **over} for name, over in datasets.items()}
    split = {"fractions": [0.81, 0.09, 0.10]}
    return {"seed": seed, "image_size": size, "datasets": ds, "shards": {"size": 8}, "split": split}


def source(name="ptx", seed=7, size=SIZE, **over):
    over.setdefault("task", "segmentation")
    cfg = make_config(seed, size, **{name: over})
    return SyntheticSource(name, cfg["datasets"][name], cfg)


@pytest.fixture(scope="module")
def ptx():
    src = source("ptx", task="segmentation", n_images=20)
    return src, [src.phantom(i) for i in src.records().image_id]


@pytest.fixture(scope="module")
def pna():
    src = source("pna", task="detection", n_images=20)
    return src, [src.phantom(i) for i in src.records().image_id]


def test_same_seed_same_bytes_any_order():
    a, b = source(), source()
    ids = ["syn-00003", "syn-00000", "syn-00011"]
    first = {i: a.load(i) for i in ids}
    for i in reversed(ids):  # another instance, another order
        s = b.load(i)
        assert s.image.tobytes() == first[i].image.tobytes()
        assert s.mask.tobytes() == first[i].mask.tobytes()
        assert s.boxes.tobytes() == first[i].boxes.tobytes()
    other = source(seed=8).load("syn-00003")
    assert other.image.tobytes() != first["syn-00003"].image.tobytes()
    # a different dataset name is a different stream too
    assert source("ptx2").load("syn-00003").image.tobytes() != first["syn-00003"].image.tobytes()
    # and different images of one dataset differ
    assert first["syn-00000"].image.tobytes() != first["syn-00011"].image.tobytes()


def test_records_ids_labels_exact_prevalence():
    rec = source(n_images=37, prevalence=0.3).records()
    assert rec.image_id.tolist() == [f"syn-{i:05d}" for i in range(37)]
    assert rec.source.tolist() == [f"synthetic:ptx:{i}" for i in range(37)]
    assert rec.label.sum() == 11  # round(37 * 0.3) = round(11.1)
    assert (rec.has_finding == (rec.label == 1)).all()
    assert source(n_images=10, prevalence=0.25).records().label.sum() == 2  # round(2.5): half to even
    assert source(n_images=10, prevalence=0.0).records().label.sum() == 0
    assert source(n_images=10, prevalence=1.0).records().label.sum() == 10
    again = source(n_images=37, prevalence=0.3).records()
    assert again.equals(rec)
    other = source(seed=8, n_images=37, prevalence=0.3).records()
    assert other.label.sum() == 11 and not np.array_equal(other.label, rec.label)
    # the labels are those of assign_labels, and the generated images agree with them
    lab = assign_labels(37, 0.3, 12345)
    assert lab.sum() == 11 and np.array_equal(lab, assign_labels(37, 0.3, 12345))


def test_unknown_image_id():
    with pytest.raises(InputError, match="syn-00024"):
        source().load("syn-00024")
    with pytest.raises(InputError, match="no image"):
        source().load("abc")


@pytest.mark.parametrize("fixture", ["ptx", "pna"])
def test_masks_follow_labels_and_range(fixture, request):
    src, phs = request.getfixturevalue(fixture)
    rec = src.records()
    assert rec.label.sum() == 10
    for lab, ph in zip(rec.label, phs):
        assert ph.image.shape == (SIZE, SIZE) and ph.image.dtype == np.float64
        assert np.isfinite(ph.image).all() and ph.image.min() >= 0.0 and ph.image.max() <= 1.0
        assert ph.label == lab
        assert ph.mask.dtype == bool
        if lab:
            assert ph.mask.sum() >= 3 and ph.lesion.any()
        else:
            assert not ph.mask.any() and not ph.lesion.any() and len(ph.boxes) == 0
    # a radiograph, not noise: lungs darker than the mediastinum, air outside the body darkest
    img = np.mean([p.image for p in phs], 0)
    lungs = np.mean([p.lungs for p in phs], 0) > 0.99
    assert img[lungs].mean() < img[SIZE // 2 :, SIZE // 2].mean() - 0.15
    assert img[:, :3].mean() < img[lungs].mean()


def test_pneumothorax_mask_is_the_lesion_inside_the_lung(ptx):
    src, phs = ptx
    for ph in phs:
        if ph.label:
            assert np.array_equal(ph.mask, ph.lesion)
            assert not (ph.mask & ~ph.lungs).any()
            assert len(ph.boxes) == 0
            # one connected crescent touching the costal pleura of one lung
            assert ndi.label(ph.mask, np.ones((3, 3)))[1] == 1
            assert ph.info["where"] in ("apex", "lateral")
    wheres = {ph.info["where"] for ph in phs if ph.label}
    lungs = {ph.info["lung"] for ph in phs if ph.label}
    assert wheres == {"apex", "lateral"} and lungs == {0, 1}


def test_twin_differs_only_at_the_lesion():
    """The counterfactual twin (same index, label 0) is the same radiograph outside the lesion."""
    src = source(size=96, n_images=8, noise=0.02)
    gen = src.generator
    for i in np.flatnonzero(src.labels)[:3]:
        pos, neg = gen.generate(int(i)), gen.generate(int(i), label=0)
        assert not neg.mask.any()
        far = ~ndi.binary_dilation(pos.mask, iterations=6)
        assert np.abs(pos.image - neg.image)[far].max() < 1e-4
        assert np.abs(pos.image - neg.image)[pos.mask].mean() > 0.02


def test_pneumothorax_crescent_has_no_lung_markings():
    """Inside the pleural air the lung markings are gone; the twin has them at the same pixels."""
    src = source(size=128, n_images=16, noise=0.0, contrast=[0.3, 0.3], lesion_size=[0.28, 0.28])
    gen = src.generator
    twin_core, twin_lung = [], []
    for i in np.flatnonzero(src.labels):
        pos, neg = gen.generate(int(i)), gen.generate(int(i), label=0)
        core = ndi.binary_erosion(pos.mask, iterations=3)  # 1-2 px from the air's border (soft edge)
        if core.sum() < 5:
            continue
        assert pos.markings[core].max() < 0.05 * neg.markings[pos.lungs].max()
        twin_core.append(neg.markings[core].mean())
        twin_lung.append(neg.markings[pos.lungs].mean())
        # and the image shows it: the lesion lowers the intensity of the air space
        assert (neg.image - pos.image)[core].mean() > 0.3 * 0.3 * 0.5
    assert len(twin_core) >= 5
    assert np.mean(twin_core) > 0.25 * np.mean(twin_lung)  # there were markings to remove


def test_detection_boxes_cover_exactly_the_mask(pna):
    src, phs = pna
    n_boxes = []
    for ph in phs:
        if not ph.label:
            continue
        assert 1 <= len(ph.boxes) <= 3
        n_boxes.append(len(ph.boxes))
        assert np.array_equal(ph.boxes, np.round(ph.boxes))  # whole pixels
        assert np.array_equal(box_mask(ph.boxes, SIZE).astype(bool), ph.mask)
        assert not (ph.lesion & ~ph.mask).any()  # every opacity pixel is boxed
        assert not (ph.lesion & ~ph.lungs).any()  # opacity within the lung field
        for x, y, w, h in ph.boxes.astype(int):  # each box is tight around an opacity
            sub = ph.lesion[y : y + h, x : x + w]
            assert sub[0].any() and sub[-1].any() and sub[:, 0].any() and sub[:, -1].any()
            cy, cx = y + h // 2, x + w // 2
            assert ndi.binary_dilation(ph.lungs, iterations=3)[cy, cx]
    assert len(set(n_boxes)) >= 2


def test_confounder_fractions_and_no_overlap():
    src = source(
        "pna", task="detection", n_images=40, prevalence=0.5, confounder={"positives": 0.25, "negatives": 0.75}
    )
    rec = src.records()
    # 20 positives, 20 negatives: round(20 * 0.25) = 5 and round(20 * 0.75) = 15 with the device
    assert rec.query("label == 1").confounder.sum() == 5
    assert rec.query("label == 0").confounder.sum() == 15
    for r in rec.itertuples():
        ph = src.phantom(r.image_id)
        assert ph.confounder == r.confounder
        assert ph.device.any() == r.confounder
        assert not (ph.device & ph.mask).any() and not (ph.device & ph.lesion).any()
    seg = source("ptx", n_images=20, confounder={"positives": 1.0, "negatives": 0.0})
    for r in seg.records().itertuples():
        ph = seg.phantom(r.image_id)
        assert ph.device.any() == bool(r.label)
        assert not (ph.device & ph.mask).any()


def test_confounder_visible_against_same_image_without():
    with_dev = source(n_images=8, confounder={"positives": 1.0, "negatives": 1.0}).phantom("syn-00001")
    without = source(n_images=8).phantom("syn-00001")
    diff = with_dev.image - without.image
    assert diff[with_dev.device].mean() > 0.08 and np.percentile(diff[with_dev.device], 90) > 0.2
    assert np.abs(diff[~ndi.binary_dilation(with_dev.device, iterations=3)]).max() < 0.05


def test_bad_ranges_are_input_errors():
    with pytest.raises(InputError, match="contrast"):
        source(contrast=[0.5, 0.2])


def test_data_jobs_read_only_their_params():
    """The manifest and shard jobs get the dataset, the seed and their own blocks through params
    (rules/data.smk): the same manifest and shard as from the whole config, and a key left out is named."""
    cfg = make_config(7, SIZE, **{"tiny-pna": {"task": "detection"}})
    ds = cfg["datasets"]["tiny-pna"]
    m = build_manifest("tiny-pna", cfg)
    alone = stage_config("tiny-pna", ds, 7, split=cfg["split"], shards=cfg["shards"], image_size=SIZE)
    pd.testing.assert_frame_equal(build_manifest("tiny-pna", alone), m)
    want = build_shard("tiny-pna", cfg, m, "test", 0)
    got = build_shard("tiny-pna", stage_config("tiny-pna", ds, 7, image_size=SIZE), m, "test", 0)
    assert want.keys() == got.keys() and all(np.array_equal(want[k], got[k]) for k in want)
    with pytest.raises(KeyError, match="shards"):
        build_manifest("tiny-pna", stage_config("tiny-pna", ds, 7, split=cfg["split"], image_size=SIZE))


def test_shard_from_tiny_config(tmp_path):
    cfg = make_config(7, SIZE, **{"tiny-ptx": {"task": "segmentation"}, "tiny-pna": {"task": "detection"}})
    for name in cfg["datasets"]:
        m = build_manifest(name, cfg)
        assert len(m) == 24 and m.label.sum() == 12
        assert set(m.split) == {"train", "val", "test"}
        arrays = build_shard(name, cfg, m, "train", 0)
        n = len(arrays["ids"])
        assert n == min(8, (m.split == "train").sum())
        assert arrays["images"].shape == (n, SIZE, SIZE) and arrays["images"].dtype == np.uint8
        assert arrays["masks"].shape == (n, SIZE, SIZE)
        src = SyntheticSource(name, cfg["datasets"][name], cfg)
        for k, image_id in enumerate(arrays["ids"]):
            s = src.load(str(image_id))
            img, mask, boxes = preprocess(s, SIZE)
            # generated at the model size: preprocessing is the identity up to 8-bit rounding
            assert np.abs(arrays["images"][k].astype(int) - np.round(s.image * 255)).max() <= 1
            assert np.array_equal(arrays["masks"][k], s.mask.astype(np.uint8))
            assert arrays["has_finding"][k] == s.mask.any()
            sb = arrays["boxes"][arrays["boxes"][:, 0] == k, 1:]
            assert np.array_equal(sb, s.boxes)
        if cfg["datasets"][name]["task"] == "detection":
            assert len(arrays["boxes"]) >= arrays["has_finding"].sum()
        else:
            assert len(arrays["boxes"]) == 0


def test_semi_synthetic_backgrounds(tmp_path):
    """Radiographs (PNG, and MONOCHROME1 DICOM through the DICOM reader) as backgrounds: each image
    shows its own file, displayed the right way round, untouched away from the lesion."""
    from fixtures_data import write_dicom, write_png
    from skimage.transform import resize

    bg = source("bg", seed=99, n_images=2, prevalence=0.0, size=100)
    png, dcm = (np.round(bg.phantom(i).image * 255).astype(np.uint8) for i in ("syn-00000", "syn-00001"))
    write_png(tmp_path / "bg" / "a.png", png)
    write_dicom(tmp_path / "bg" / "b.dcm", 255 - dcm, photometric="MONOCHROME1")  # stored inverted
    (tmp_path / "bg" / "notes.txt").write_text("not an image")
    src = source(n_images=12, noise=0.0, backgrounds=str(tmp_path / "bg"))
    refs = {"a.png": resize(png / 255.0, (SIZE, SIZE)), "b.dcm": resize(dcm / 255.0, (SIZE, SIZE))}
    rec = src.records()
    assert rec.background.value_counts().to_dict() == {"a.png": 6, "b.dcm": 6}
    for r in rec.itertuples():
        ph = src.phantom(r.image_id)
        assert ph.image.min() >= 0 and ph.image.max() <= 1
        far = ~ndi.binary_dilation(ph.mask, iterations=6)  # beyond the collapsed lung's denser rim
        assert np.abs(ph.image - refs[r.background])[far].max() < 0.005
        if r.label:
            assert ph.mask.any() and not (ph.mask & ~ph.lungs).any()
            twin = src.generator.generate(int(r.image_id[4:]), label=0)
            assert (twin.image - ph.image)[ph.mask].mean() > 0.02
    with pytest.raises(InputError, match="no PNG/JPEG/DICOM"):
        source(backgrounds=str(tmp_path)).load("syn-00000")


@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_occult_lesions_are_labelled_and_masked_but_not_drawn(task):
    """``occult``: exactly round(n_pos x fraction) positives are pixel-identical to their lesion-free
    twin (same detector noise) yet keep label 1 and their mask; the others are the images of a
    dataset without the key, byte for byte."""
    plain = source("d", task=task, n_images=16)
    src = source("d", task=task, n_images=16, occult=0.25)
    pos = np.flatnonzero(src.labels)
    assert (src.labels == plain.labels).all() and len(pos) == 8
    occult = np.flatnonzero(src.occult)
    assert len(occult) == 2 and set(occult) <= set(pos)
    for i in pos:
        ph, before = src.generator.generate(int(i)), plain.generator.generate(int(i))
        twin = src.generator.generate(int(i), label=0)
        assert ph.label == 1 and ph.mask.any() and ph.info["occult"] == (i in occult)
        np.testing.assert_array_equal(ph.mask, before.mask)
        if i in occult:
            np.testing.assert_array_equal(ph.image, twin.image)
        else:
            np.testing.assert_array_equal(ph.image, before.image)
            assert np.abs(ph.image - twin.image)[ph.mask].mean() > 0.01


def test_occult_needs_phantoms(tmp_path):
    with pytest.raises(InputError, match="occult"):
        source("d", occult=0.2, backgrounds=str(tmp_path))


def test_occult_positives_are_stratified_across_splits():
    """The split is stratified by (label, occult): with 200 images, prevalence 0.5 and occult 0.2 the
    test split's 10 positives hold exactly round(10 x 0.2) = 2 occult ones, and the train, val and
    test shares of occult positives are all 0.2 (to one image); without ``occult`` the split is the
    label-stratified one, unchanged (no stratum column)."""
    cfg = make_config(d={"task": "detection", "n_images": 200, "occult": 0.2})
    cfg["split"]["fractions"] = [0.8, 0.1, 0.1]
    src = SyntheticSource("d", cfg["datasets"]["d"], cfg)
    assert list(np.unique(src.records()["stratum"])) == [0, 1, 2]
    man = build_manifest("d", cfg)
    occ = np.array([src.occult[src.index(i)] for i in man["image_id"]])
    for split, n_pos in (("train", 80), ("val", 10), ("test", 10)):
        sel = (man["split"] == split).to_numpy()
        assert man["label"][sel].sum() == n_pos
        assert abs(occ[sel].sum() - 0.2 * n_pos) <= 1, split
    assert occ[(man["split"] == "test").to_numpy()].sum() == 2
    plain = make_config(d={"task": "detection", "n_images": 200})
    plain["split"]["fractions"] = [0.8, 0.1, 0.1]
    assert "stratum" not in SyntheticSource("d", plain["datasets"]["d"], plain).records()
