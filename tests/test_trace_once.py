"""saliency.run.model_maps: every randomization state from one loaded model and one trace equals
a fresh load + apply_state per state (what one job per state computes)."""

import numpy as np
import pytest

SIZE = 80
METHODS = {"GRAD": {}, "SG": {"samples": 2}, "GBP": {}, "GGCAM": {}}
STATES = ["original", "cascade-mixed9", "cascade2-mixed10"]
RANDOMIZATION = {"seed": 99, "initializer": "truncated_normal"}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from saliency_audit.models.classifiers import build_classifier

    path = tmp_path_factory.mktemp("trace_once") / "model.keras"
    build_classifier("inceptionv3", SIZE, "none", seed=3).save(path)
    return path


def _x():
    return np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype(np.float32)


def _seeds(state):
    return {"SG": 1000 + len(state)}


def test_one_trace_serves_every_state_with_the_maps_of_a_fresh_load(model_file):
    from saliency_audit.saliency.base import engine_for
    from saliency_audit.models import load_model
    from saliency_audit.models.randomize import apply_state
    from saliency_audit.saliency.run import model_maps, shard_maps

    x = _x()
    seeds = {s: _seeds(s) for s in STATES}
    once = dict(model_maps(model_file, "inceptionv3", STATES, x, METHODS, seeds=seeds,
                           randomization=RANDOMIZATION, batch_size=4))
    assert list(once) == STATES
    for state in STATES:
        fresh = load_model(model_file)  # what one job per state does: a fresh load, then the state
        if state != "original":
            apply_state(fresh, "inceptionv3", state, RANDOMIZATION["seed"], initializer=RANDOMIZATION["initializer"])
        ref = shard_maps(fresh, x, METHODS, arch="inceptionv3", seeds=seeds[state], batch_size=4)
        for method in METHODS:
            got, want = once[state][method], ref[method]
            assert got.shape == (2, SIZE, SIZE)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * float(np.abs(want).max()),
                                       err_msg=f"{state} {method}")
    # the states differ (the weights really changed between states, guided clone included)
    for method in ("GRAD", "GBP"):
        assert not np.allclose(once["original"][method], once["cascade-mixed9"][method])
        assert not np.allclose(once["cascade-mixed9"][method], once["cascade2-mixed10"][method])


def test_model_maps_traces_the_gradient_function_once(model_file):
    import gc

    from saliency_audit.saliency import base

    from saliency_audit.saliency.run import model_maps

    seen = []
    orig = base.GradientEngine._cam_fn

    def spy(self, shape, layer):
        fn = orig(self, shape, layer)
        seen.append(fn)
        return fn

    base.GradientEngine._cam_fn = spy
    try:
        states = STATES[:3]
        out = list(model_maps(model_file, "inceptionv3", states, _x(), {"GRAD": {}, "GCAM": {}},
                              seeds={s: {} for s in states}, randomization=RANDOMIZATION, batch_size=4))
    finally:
        base.GradientEngine._cam_fn = orig
        gc.collect()
    assert [s for s, _ in out] == states
    fns = {id(f): f for f in seen}
    assert len(fns) == 1, "one compiled function for every state"
    (fn,) = fns.values()
    assert fn.experimental_get_tracing_count() == 1
