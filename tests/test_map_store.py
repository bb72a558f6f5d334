"""The content-addressed store of map shards (saliency_audit.saliency.store): keys and files."""

from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from saliency_audit import io
from saliency_audit.saliency import store
from saliency_audit.saliency.store import MapStore, job_keys, map_key, method_keys, store_root


def test_key_is_sha256_of_sorted_compact_json():
    # independent reference: the canonical text written by hand
    expected = hashlib.sha256(b'{"a":{"x":1,"y":[2,3]},"b":null,"c":"SG"}').hexdigest()
    assert map_key(c="SG", b=None, a={"y": [2, 3], "x": 1}) == expected
    assert map_key(a={"x": np.int64(1), "y": np.array([2, 3])}, b=None, c="SG") == expected


def test_key_refuses_what_it_cannot_hash_canonically():
    with pytest.raises(TypeError, match="cannot hash"):
        map_key(a=object())
    with pytest.raises(ValueError):
        map_key(a=float("nan"))


@pytest.fixture
def job(tmp_path):
    """A maps job's key arguments with a model and a shard file on disk."""
    (tmp_path / "model.keras").write_bytes(b"model weights")
    (tmp_path / "test_000.npz").write_bytes(b"shard images")
    return dict(
        model=tmp_path / "model.keras",
        shard=tmp_path / "test_000.npz",
        state="cascade-mixed5",
        methods={"GRAD": {}, "SG": {"samples": 2, "noise": 0.15, "magnitude": True}, "GGCAM": {}},
        seeds={"SG": 123},
        randomization={"seed": 5, "initializer": "glorot_uniform"},
        images=["img-0", "img-2"],
        target="positive",
        channel_reduction="abs_sum",
        cam_normalization="minmax",
        gradcam_layer=None,
        dtype="float16",
        code={"saliency": "aaaa", "models": "bbbb"},
    )


#: one different value for each argument of method_keys (files: other contents, same paths)
CHANGES = {
    "state": "cascade-mixed4",
    "randomization": {"seed": 6, "initializer": "glorot_uniform"},
    "images": ["img-0"],  # saliency.max_images 1
    "target": "predicted",
    "channel_reduction": "sum",
    "gradcam_layer": "mixed9",
    "dtype": "float32",
    "code": {"saliency": "aaaa", "models": "cccc"},
}


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_every_setting_changes_every_key(job, field):
    before = method_keys(**job)
    after = method_keys(**{**job, field: CHANGES[field]})
    assert set(before) == set(after) == {"GRAD", "SG", "GGCAM"}
    assert all(before[m] != after[m] for m in before), field


@pytest.mark.parametrize("name", ["model", "shard"])
def test_file_contents_change_the_keys(job, name):
    before = method_keys(**job)
    path = job[name]
    path.write_bytes(b"other bytes!!")  # same path; the cache sees the new size and mtime
    after = method_keys(**job)
    assert all(before[m] != after[m] for m in before)
    path.write_bytes(b"model weights" if name == "model" else b"shard images")
    assert method_keys(**job) == before  # content, not time: the same bytes again hit


def test_a_copied_file_has_the_same_key(job, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    moved = shutil.copy(job["model"], tmp_path / "elsewhere" / "model.keras")
    assert method_keys(**{**job, "model": moved}) == method_keys(**job)


def test_a_methods_own_settings_change_only_its_key(job):
    before = method_keys(**job)
    sg = method_keys(**{**job, "methods": {**job["methods"], "SG": {**job["methods"]["SG"], "samples": 3}}})
    assert sg["SG"] != before["SG"] and sg["GRAD"] == before["GRAD"] and sg["GGCAM"] == before["GGCAM"]
    seed = method_keys(**{**job, "seeds": {"SG": 124}})
    assert seed["SG"] != before["SG"] and seed["GRAD"] == before["GRAD"]
    # cam_normalization is GGCAM's alone
    cam = method_keys(**{**job, "cam_normalization": "released"})
    assert cam["GGCAM"] != before["GGCAM"] and cam["GRAD"] == before["GRAD"] and cam["SG"] == before["SG"]
    # the same parameters in another key order (two configs) give the same keys
    reordered = {"SG": {"magnitude": True, "noise": 0.15, "samples": 2}, "GGCAM": {}, "GRAD": {}}
    assert method_keys(**{**job, "methods": reordered}) == before


def test_library_versions_are_part_of_the_key(job, monkeypatch):
    before = method_keys(**job)
    versions = {**store.library_versions(), "numpy": "0.0"}
    monkeypatch.setattr(store, "library_versions", lambda: versions)
    assert method_keys(**job)["GRAD"] != before["GRAD"]


def test_job_keys_of_every_state_and_method(job):
    """A job of two states (jobs.states_params): each key is its state's method_keys; the
    randomization is part of the randomized state's keys only."""
    params = dict(
        states=["original", "cascade-mixed5"], methods=job["methods"],
        seeds={"original": {"SG": 1}, "cascade-mixed5": {"SG": 2}}, randomization=job["randomization"],
        gradcam_layer=None, cam_normalization="minmax",
    )
    shared = {k: job[k] for k in ("model", "shard", "images", "target", "channel_reduction", "dtype", "code")}
    keys = job_keys(params, **shared)
    assert list(keys) == [(s, m) for s in params["states"] for m in job["methods"]]
    args = {**job, "state": "cascade-mixed5", "seeds": {"SG": 2}}
    assert {m: keys["cascade-mixed5", m] for m in job["methods"]} == method_keys(**args)
    assert {m: keys["original", m] for m in job["methods"]} == method_keys(
        **{**args, "state": "original", "seeds": {"SG": 1}, "randomization": None})
    other = job_keys({**params, "randomization": {"seed": 6, "initializer": "layer_default"}}, **shared)
    assert all((other[k] == keys[k]) == (k[0] == "original") for k in keys)


def test_store_root_is_beside_the_models_maps():
    out = "results/ds/maps/inceptionv3_1/original/SG/test_000.npz"
    assert store_root(out).as_posix() == "results/ds/maps/.store"
    with pytest.raises(ValueError, match="expected a maps file"):
        store_root("results/ds/scores/inceptionv3_1/original/SG/test_000.npz")


def _maps_file(path, value=1.0):
    io.write_npz(path, ids=np.array(["a", "b"]), maps=np.full((2, 4, 4), value, np.float32))
    return path


KEY = map_key(method="SG")


def test_put_then_get_hard_links_the_same_file(tmp_path):
    st = MapStore(tmp_path / "maps" / ".store")
    out = _maps_file(tmp_path / "maps" / "m" / "original" / "SG" / "test_000.npz")
    assert KEY not in st and not st.get(KEY, tmp_path / "x.npz") and not (tmp_path / "x.npz").exists()
    assert st.put(KEY, out) and KEY in st
    assert st.path(KEY) == tmp_path / "maps" / ".store" / KEY[:2] / f"{KEY}.npz"
    assert os.stat(st.path(KEY)).st_ino == os.stat(out).st_ino  # no extra disk
    # Snakemake deletes the job's outputs before rerunning it: the entry stays
    out.unlink()
    assert KEY in st
    assert st.get(KEY, out)
    assert os.stat(out).st_ino == os.stat(st.path(KEY)).st_ino
    np.testing.assert_array_equal(io.read_npz(out)["maps"], np.ones((2, 4, 4), np.float32))
    # entries are immutable: a second put of the key keeps the first file
    other = _maps_file(tmp_path / "other.npz", value=2.0)
    assert not st.put(KEY, other)
    np.testing.assert_array_equal(io.read_npz(st.path(KEY))["maps"], np.ones((2, 4, 4), np.float32))
    # rewriting an output replaces it (io.write_npz renames a new file): the entry is untouched
    _maps_file(out, value=3.0)
    np.testing.assert_array_equal(io.read_npz(st.path(KEY))["maps"], np.ones((2, 4, 4), np.float32))
    assert sorted(p.name for p in st.root.rglob("*")) == [KEY[:2], f"{KEY}.npz"]  # no temporaries


def test_copy_where_hard_links_fail(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    st = MapStore(tmp_path / "store")
    out = _maps_file(tmp_path / "a.npz")
    assert st.put(KEY, out)
    assert os.stat(st.path(KEY)).st_ino != os.stat(out).st_ino
    assert st.path(KEY).read_bytes() == out.read_bytes()
    back = tmp_path / "b.npz"
    assert st.get(KEY, back)
    assert back.read_bytes() == out.read_bytes() and os.stat(back).st_ino != os.stat(st.path(KEY)).st_ino


def test_a_failed_copy_leaves_no_entry_and_no_temporary(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    def partial_copy(src, dst):
        with open(dst, "wb") as fh:
            fh.write(open(src, "rb").read()[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", partial_copy)
    st = MapStore(tmp_path / "store")
    out = _maps_file(tmp_path / "a.npz")
    with pytest.raises(OSError, match="No space"):
        st.put(KEY, out)
    assert KEY not in st and not st.get(KEY, tmp_path / "b.npz")
    assert [p for p in st.root.rglob("*") if p.is_file()] == []
    # and a failed get leaves the output absent, not half-written
    monkeypatch.undo()
    assert st.put(KEY, out)
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", partial_copy)
    with pytest.raises(OSError, match="No space"):
        st.get(KEY, tmp_path / "b.npz")
    assert not (tmp_path / "b.npz").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "store"]


def test_keys_must_be_sha256_hex(tmp_path):
    with pytest.raises(ValueError, match="64 lowercase hex"):
        MapStore(tmp_path).path("../../etc")


def test_fetch_materializes_stored_outputs_and_lists_the_rest(tmp_path, caplog):
    st = MapStore(tmp_path / "maps" / ".store")
    pairs = [("original", "GRAD"), ("original", "SG"), ("cascade-logits", "GRAD"), ("cascade-logits", "SG")]
    keys = {p: map_key(state=p[0], method=p[1]) for p in pairs}
    outputs = {p: tmp_path / "maps" / "m" / p[0] / p[1] / "test_000.npz" for p in pairs}
    # a first job stored everything but cascade-logits' SG... (as if that one was never computed)
    for p in pairs[:3]:
        _maps_file(outputs[p])
    caplog.set_level("INFO", logger="saliency_audit.saliency.store")
    st.put_computed(keys, outputs, pairs[:3])
    assert [r.getMessage() for r in caplog.records] == [f"{outputs[p]}: computed (stored as {keys[p][:16]})" for p in pairs[:3]]
    # ... then the outputs are deleted (Snakemake does before a rerun) and a job asks for all four
    for p in pairs[:3]:
        outputs[p].unlink()
    caplog.clear()
    todo = st.fetch(keys, outputs)
    assert todo == {"original": [], "cascade-logits": ["SG"]}
    assert list(todo) == ["original", "cascade-logits"]  # the job's order of states
    assert all(outputs[p].is_file() for p in pairs[:3]) and not outputs[pairs[3]].exists()
    assert [r.getMessage() for r in caplog.records] == [f"{outputs[p]}: from store ({keys[p][:16]})" for p in pairs[:3]]


def test_model_maps_computes_only_what_the_store_lacks(tmp_path):
    """saliency.run.model_maps with ``todo`` (what MapStore.fetch left): only those (state, method)
    maps, equal to the same maps of a full job; nothing to do loads no model at all."""
    from saliency_audit.models.classifiers import build_classifier
    from saliency_audit.saliency.run import model_maps

    size, states = 80, ["original", "cascade-mixed10"]
    path = tmp_path / "model.keras"
    build_classifier("inceptionv3", size, "none", seed=3).save(path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    methods = {"GRAD": {}, "SG": {"samples": 2}}
    args = dict(seeds={s: {"SG": 5} for s in states}, randomization={"seed": 9, "initializer": "truncated_normal"})
    full = dict(model_maps(path, "inceptionv3", states, x, methods, **args))
    part = list(model_maps(path, "inceptionv3", states, x, methods, todo={"original": [], "cascade-mixed10": ["SG"]},
                           **args))
    assert [(s, list(m)) for s, m in part] == [("cascade-mixed10", ["SG"])]
    np.testing.assert_array_equal(part[0][1]["SG"], full["cascade-mixed10"]["SG"])
    assert not np.array_equal(full["original"]["SG"], full["cascade-mixed10"]["SG"])
    nothing = model_maps(tmp_path / "absent.keras", "inceptionv3", states, x, methods, todo=dict.fromkeys(states, []),
                         **args)
    assert list(nothing) == []
