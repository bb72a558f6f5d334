"""The cost model of the maps jobs (saliency_audit.saliency.cost): counts per method against
hand-computed ones, seconds from a calibration table, requested runtime."""

import math

import pytest

from saliency_audit.errors import InputError
from saliency_audit.saliency import cost
from saliency_audit.saliency.registry import METHOD_NAMES, forward_count, gradient_count

# (method, params, image size) -> (gradient evaluations, forward evaluations) per image, by hand
HAND = [
    ("GRAD", None, 320, 1, 0),
    ("SG", None, 320, 25, 0),  # samples
    ("SG", {"samples": 10}, 320, 10, 0),
    ("IG", None, 320, 25, 0),  # steps
    ("IG", {"steps": 7}, 320, 7, 0),
    ("SIG", None, 320, 625, 0),  # samples x steps
    ("SIG", {"samples": 5, "steps": 4}, 320, 20, 0),
    ("GCAM", None, 320, 1, 0),
    ("XRAI", None, 320, 200, 0),  # 2 baselines (black, white) x steps
    ("XRAI", {"steps": 10}, 320, 20, 0),
    ("GBP", None, 320, 1, 0),
    ("GGCAM", None, 320, 2, 0),  # guided backprop + Grad-CAM
    ("GCAMPP", None, 320, 1, 0),
    ("SCORECAM", None, 320, 1, 2048),  # every mixed10 channel masks the input once
    ("SCORECAM", {"max_channels": 64}, 320, 1, 64),
    ("GIG", None, 320, 25, 0),
    ("BLURIG", None, 320, 25, 0),
    # patch round(0.125 x 320) = 40 px, stride 20 px: positions 0, 20, ..., 280 = 15 per axis
    ("OCC", None, 320, 0, 15 * 15),
    # patch round(0.125 x 128) = 16 px, stride 8 px: 0, 8, ..., 112 = 15 per axis
    ("OCC", None, 128, 0, 15 * 15),
    # patch 0.25 x 100 = 25 px, stride 25 px: 0, 25, 50, 75 = 4 per axis
    ("OCC", {"size": 0.25, "stride": 1.0}, 100, 0, 16),
]


@pytest.mark.parametrize("name,params,size,grads,forwards", HAND)
def test_counts_by_hand(name, params, size, grads, forwards):
    assert gradient_count(name, params) == grads
    assert forward_count(name, size, params) == forwards
    assert cost.evaluations(name, size, params) == pytest.approx(grads + forwards / 3)


def test_every_method_has_a_count():
    assert {n for n, *_ in HAND} == set(METHOD_NAMES)


TABLE = [
    dict(kind="gradient", arch="inceptionv3", image_size=320, batch_size=32, seconds=0.01),
    dict(kind="gradient", arch="inceptionv3", image_size=128, batch_size=32, seconds=0.002),
    dict(kind="gradient", arch="densenet121", image_size=320, batch_size=32, seconds=0.02),
    dict(kind="xrai_segments", arch="", image_size=320, batch_size=1, seconds=0.5),
]


def test_seconds_per_eval_nearest_row_scaled_by_pixels():
    assert cost.seconds_per_eval(TABLE, "inceptionv3", 320) == pytest.approx(0.01)
    assert cost.seconds_per_eval(TABLE, "inceptionv3", 128) == pytest.approx(0.002)
    # 256 px is nearer 320 (log ratio 0.22) than 128 (0.69): 0.01 x (256/320)^2
    assert cost.seconds_per_eval(TABLE, "inceptionv3", 256) == pytest.approx(0.01 * 0.64)
    # densenet121 has one size; an unknown architecture takes the slowest (densenet121)
    assert cost.seconds_per_eval(TABLE, "densenet121", 160) == pytest.approx(0.02 / 4)
    assert cost.seconds_per_eval(TABLE, "resnet", 320) == pytest.approx(0.02)
    assert cost.segmentation_seconds(TABLE, 640) == pytest.approx(2.0)


def test_job_seconds_and_runtime_by_hand():
    # SIG 25 x 25 on 64 images of InceptionV3 at 320 px: 64 x 625 x 0.01 s = 400 s
    sec = cost.maps_job_seconds(TABLE, {"SIG": None}, "inceptionv3", 320, 64)
    assert sec == pytest.approx(400.0)
    assert cost.runtime_minutes(sec) == math.ceil(cost.STARTUP_MINUTES + cost.SAFETY * 400 / 60) == 30
    # XRAI full: 200 gradients, its segments come from rule xrai_segments; fast segments in the job
    assert cost.maps_job_seconds(TABLE, {"XRAI": None}, "inceptionv3", 320, 1) == pytest.approx(2.0)
    assert cost.maps_job_seconds(TABLE, {"XRAI": {"algorithm": "fast"}}, "inceptionv3", 320, 1) == pytest.approx(2.5)
    # OCC has no gradient: 225 forwards at a third of a gradient each
    assert cost.maps_job_seconds(TABLE, {"OCC": None}, "inceptionv3", 320, 3) == pytest.approx(3 * 75 * 0.01)
    # an all-methods job is the sum of its methods; an empty shard asks for the start-up only
    both = cost.maps_job_seconds(TABLE, {"GRAD": None, "SG": None}, "inceptionv3", 320, 10)
    assert both == pytest.approx(10 * 26 * 0.01)
    assert cost.runtime_minutes(0.0) == cost.STARTUP_MINUTES


def test_runtime_grows_with_cost_and_shard_size():
    def minutes(method, n):
        return cost.runtime_minutes(cost.maps_job_seconds(TABLE, {method: None}, "inceptionv3", 320, n))

    order = ["GRAD", "GGCAM", "SG", "XRAI", "SIG"]  # 1 < 2 < 25 < 200 < 625 evaluations
    assert [minutes(m, 256) for m in order] == sorted(minutes(m, 256) for m in order)
    assert minutes("SIG", 256) > minutes("SG", 256) > minutes("GRAD", 256)
    assert minutes("SG", 256) > minutes("SG", 64)
    assert minutes("SIG", 256) > minutes("SIG", 64) > minutes("SIG", 1)


def test_estimate_rows_by_hand():
    config = {"datasets": {"d": {"kind": "synthetic", "task": "segmentation"}}, "image_size": 320, "seed": 1,
              "models": {"inceptionv3": {"replicates": 1, "epochs": 2, "batch_size": 32},
                         "densenet121": {"replicates": 0}, "label_shuffled": False,
                         "unet": {"replicates": 1, "epochs": 3, "batch_size": 4}},
              "randomization": {"cascade": True, "cascade_to_stem": False, "blocks": None, "repeats": 0,
                                "independent": False},
              "saliency": {"methods": ["GRAD", "SIG"], "job_per": "method", "params": {}, "batch_size": None}}
    table = TABLE + [dict(kind="ingest", arch="jpeg", image_size=320, batch_size=1, seconds=0.1)]
    rows = {r["stage"]: r for r in cost.estimate_rows(
        config, {"d": {0: 10, 1: 4}}, table, groups={"saliency_maps": "maps", "shard": "shards"},
        components={"maps": 3, "shards": 4}, shard_images={"d": [100, 100, 14]},
        split_images={"d": {"train": 100, "val": 100, "test": 14}})}
    # maps of the one classifier's original state (no cascade runs): 2 methods x 2 test shards,
    # (GRAD 1 + SIG 625) x 0.01 s x 14 images
    assert rows["maps"]["jobs"] == 4
    assert rows["maps"]["gpu_hours"] == pytest.approx(626 * 0.01 * 14 / 3600)
    assert rows["maps"]["slurm_jobs"] == math.ceil(rows["maps"]["jobs"] / 3)
    # training: epochs x (100 train + 100 val / 3) + 14 test / 3 evaluations; InceptionV3 0.01 s each,
    # U-Net (no calibration row) the slowest classifier at 320 px, DenseNet121's 0.02 s
    train_sec = (2 * (100 + 100 / 3) + 14 / 3) * 0.01 + (3 * (100 + 100 / 3) + 14 / 3) * 0.02
    assert rows["training"]["jobs"] == 2 and rows["training"]["basis"] == "cost model"
    assert rows["training"]["gpu_hours"] == pytest.approx(train_sec / 3600)
    assert rows["training"]["requested_hours"] == pytest.approx(
        (cost.runtime_minutes((2 * (100 + 100 / 3) + 14 / 3) * 0.01)
         + cost.runtime_minutes((3 * (100 + 100 / 3) + 14 / 3) * 0.02)) / 60)
    assert rows["data"]["jobs"] == 3 and rows["data"]["slurm_jobs"] == 1
    assert rows["data"]["cpu_hours"] == pytest.approx(214 * 0.1 / 3600)
    assert "xrai_segments" not in rows
    assert rows["total"]["gpu_hours"] == pytest.approx(rows["maps"]["gpu_hours"] + train_sec / 3600)


def test_shard_resources_by_hand_and_grow_with_shard_size():
    table = TABLE + [dict(kind="ingest", arch="jpeg", image_size=320, batch_size=1, seconds=0.05),
                     dict(kind="ingest", arch="dicom16", image_size=320, batch_size=1, seconds=0.04)]
    # slowest format 0.05 s x 256 images x SAFETY 3 = 38.4 s = 0.64 min, + 10 min start-up
    assert cost.shard_runtime_minutes(table, 256) == math.ceil(10 + 3 * 256 * 0.05 / 60) == 11
    assert cost.shard_runtime_minutes(table, 4096) == math.ceil(10 + 3 * 4096 * 0.05 / 60) == 21
    runtimes = [cost.shard_runtime_minutes(table, n) for n in (32, 1024, 4096, 16384)]
    assert runtimes == sorted(runtimes) and runtimes[0] < runtimes[-1]
    # 2 x (170 MB + 0.25 MB x images x (size / 320)^2), at least 1000 MB
    assert cost.shard_mem_mb(32, 320) == 1000  # 2 x 178 = 356 < floor
    assert cost.shard_mem_mb(4096, 320) == 2 * (170 + 1024) == 2388
    assert cost.shard_mem_mb(4096, 640) == 2 * (170 + 4096) == 8532
    mems = [cost.shard_mem_mb(n, 320) for n in (256, 2048, 4096, 16384)]
    assert mems == sorted(mems) and mems[0] < mems[-1]
    with pytest.raises(InputError, match="ingest"):
        cost.shard_runtime_minutes(TABLE, 10)


def test_training_seconds_by_hand_and_grow_with_epochs_and_images():
    images = {"train": 800, "val": 90, "test": 120}
    # 20 x (800 + 90 / 3) + 120 / 3 = 16640 evaluations x 0.01 s
    assert cost.training_seconds(TABLE, "inceptionv3", 320, 20, images) == pytest.approx(166.4)
    # at 160 px the 128 px row scaled by (160 / 128)^2
    assert cost.training_seconds(TABLE, "inceptionv3", 160, 20, images) == pytest.approx(16640 * 0.002 * 1.5625)
    # a localizer (no row) takes the slowest classifier at that size: DenseNet121's 0.02 s
    assert cost.training_seconds(TABLE, "unet", 320, 20, images) == pytest.approx(332.8)
    by_epochs = [cost.runtime_minutes(cost.training_seconds(TABLE, "inceptionv3", 320, e, images) * 100)
                 for e in (1, 5, 20)]
    assert by_epochs == sorted(by_epochs) and by_epochs[0] < by_epochs[-1]
    more = dict(images, train=8000)
    assert cost.training_seconds(TABLE, "inceptionv3", 320, 20, more) > cost.training_seconds(
        TABLE, "inceptionv3", 320, 20, images)


def test_maps_mem_by_hand():
    # batch null = the CPU batch of 32: 2 x (800 + 63 x 32) = 5632 MB < the 8000 MB floor
    assert cost.maps_mem_mb(320, None, 8000) == 8000
    assert cost.maps_mem_mb(320, 256, 8000) == 2 * (800 + 63 * 256) == 33856
    assert cost.maps_mem_mb(640, 64, 8000) == 2 * (800 + 63 * 64 * 4) == 33856
    assert cost.maps_mem_mb(160, 64, 1000) == 2 * (800 + 63 * 64 // 4) == 3616


def test_group_jobs():
    groups, comps = {"saliency_maps": "maps"}, {"maps": 8}
    assert cost.group_jobs(17, "saliency_maps", groups, comps) == 3
    assert cost.group_jobs(17, "train_model", groups, comps) == 17


def test_shipped_calibration_covers_the_classifiers():
    table = cost.read_calibration(cost.SHIPPED_CALIBRATION)
    assert {r["arch"] for r in table if r["kind"] == "gradient"} >= {"inceptionv3", "densenet121"}
    assert any(r["kind"] == "xrai_segments" for r in table)
    assert all(r["seconds"] > 0 and r["evals_per_s"] == pytest.approx(1 / r["seconds"], rel=1e-3) for r in table)


def test_bad_calibration_names_file_and_row(tmp_path):
    path = tmp_path / "cal.csv"
    path.write_text(",".join(cost.CALIBRATION_COLUMNS) + "\ngradient,inceptionv3,320,32,fast,1,2,cpu\n")
    with pytest.raises(InputError, match=r"cal.csv, row 2"):
        cost.read_calibration(path)
    path.write_text("kind,arch\ngradient,inceptionv3\n")
    with pytest.raises(InputError, match="lacks column"):
        cost.read_calibration(path)


def test_fallback_test_images(tmp_path):
    split = tmp_path / "s.csv"
    split.write_text(",Image_ID,Split\n" + "".join(f"{i},id{i},{'test' if i % 2 else 'train'}\n" for i in range(10)))
    config = {"datasets": {"a": {"kind": "siim", "split_file": str(split)}, "b": {"kind": "synthetic", "n_images": 48}},
              "shards": {"size": 2}, "split": {"fractions": [0.8, 0.1, 0.1]}, "saliency": {"max_images": None}}
    assert cost.fallback_test_images(config, "a", tmp_path) == {0: 2, 1: 2, 2: 1}  # 5 test rows
    assert cost.fallback_test_images(config, "b", tmp_path) == {0: 2, 1: 2, 2: 1}  # round(4.8) = 5
    config["saliency"]["max_images"] = 1  # at most 1 image of each shard gets maps
    assert cost.fallback_test_images(config, "a", tmp_path) == {0: 1, 1: 1, 2: 1}
