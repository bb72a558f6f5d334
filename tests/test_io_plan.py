"""Atomic writes, corrupt-file detection, and what a config plans (model ids, states, seeds)."""

import numpy as np
import pytest

from saliency_audit import io, plan
from saliency_audit.config import with_defaults
from saliency_audit.errors import ShardError


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    out = tmp_path / "sub" / "a.npz"
    with pytest.raises(RuntimeError):
        with io.atomic_path(out) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("killed")
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_npz_round_trip_and_truncation_is_detected(tmp_path):
    out = tmp_path / "s.npz"
    arrays = {"ids": np.array(["a", "b"]), "images": np.arange(8, dtype=np.uint8).reshape(2, 2, 2)}
    io.write_npz(out, **arrays)
    back = io.read_npz(out, required=["ids", "images"])
    np.testing.assert_array_equal(back["images"], arrays["images"])
    assert list(back["ids"]) == ["a", "b"]
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="s.npz: truncated or corrupt"):
        io.read_npz(out)
    with pytest.raises(ShardError, match="missing arrays"):
        io.write_npz(out, **arrays)
        io.read_npz(out, required=["masks"])


def test_map_image_index():
    shard = {"ids": np.array(["a", "b", "c"]), "has_finding": np.array([True, False, True])}
    assert io.map_image_index(shard, "with_finding", None).tolist() == [0, 2]
    assert io.map_image_index(shard, "all", None).tolist() == [0, 1, 2]
    # saliency.max_images keeps the first of the selected images, in shard order
    assert io.map_image_index(shard, "with_finding", 1).tolist() == [0]
    assert io.map_image_index(shard, "all", 2).tolist() == [0, 1]
    assert io.map_image_index(shard, "with_finding", 5).tolist() == [0, 2]


#: a validated config: the replicates are the schema's defaults (inceptionv3 2, densenet121 1, unet 2, retinanet 2)
CFG = with_defaults({
    "seed": 5,
    "datasets": {"p": {"kind": "siim", "images_dir": "img", "rle_csv": "rle.csv"},
                 "q": {"kind": "synthetic", "task": "detection"}},
})


def test_model_ids_follow_the_task():
    assert plan.model_ids(CFG, "p") == ["inceptionv3_1", "inceptionv3_2", "densenet121_1", "unet_1", "unet_2"]
    assert plan.model_ids(CFG, "q") == ["inceptionv3_1", "inceptionv3_2", "densenet121_1", "retinanet_1", "retinanet_2"]
    assert plan.arch_of("inceptionv3-shuffled_1") == "inceptionv3"
    cfg = with_defaults({**CFG, "models": {"label_shuffled": True, "densenet121": {"replicates": 0}, "unet": {"replicates": 1}}})
    assert plan.model_ids(cfg, "p") == ["inceptionv3_1", "inceptionv3_2", "inceptionv3-shuffled_1", "unet_1"]


def randomization(**block):
    """A validated config (schema defaults filled) with ``block`` as its randomization settings."""
    return with_defaults({"datasets": {"p": {"kind": "synthetic"}}, "randomization": block})


def test_cascade_has_the_papers_twelve_states():
    states = ["original"] + plan.randomization_states(randomization(repeats=1))
    assert len(states) == 12
    assert states[:3] == ["original", "cascade-logits", "cascade-mixed10"]
    assert states[-1] == "cascade-mixed1" == plan.fully_randomized_state(randomization())
    assert plan.randomization_states(randomization(cascade_to_stem=True, repeats=1))[-1] == "cascade-stem"
    both = plan.randomization_states(randomization(independent=True, repeats=1))
    assert len(both) == 22 and "indep-mixed5" in both
    # the schema's default: three cascade runs (the released plots' mean and spread), 3 x 11 states
    assert len(plan.randomization_states(randomization())) == 33


def test_seeds_are_stable_distinct_and_overridable():
    s1 = plan.model_seed(CFG, "p", "inceptionv3_1")
    assert s1 == plan.model_seed(CFG, "p", "inceptionv3_1")
    assert s1 != plan.model_seed(CFG, "p", "inceptionv3_2") != plan.model_seed(CFG, "q", "inceptionv3_2")
    assert plan.derive_seed(5, "p", "inceptionv3_1") == s1
    cfg = {**CFG, "models": {**CFG["models"], "inceptionv3": {"replicates": 2, "seeds": [11, 12]}}}
    assert plan.model_seed(cfg, "p", "inceptionv3_2") == 12
