"""What a person sees during and after a run: the maps job's bar and the time per stage."""

import os

import numpy as np
import pytest

from saliency_audit.progress import format_stage_times, stage_times

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(root, rel, s, cpu, end):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:00\t1\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    os.utime(path, (end, end))


def test_stage_times_from_benchmark_files(tmp_path):
    t0 = 1_000_000.0
    _bench(tmp_path, "ds/models/inceptionv3_1/train.tsv", 100, 150, t0 + 200)     # 100 .. 200
    _bench(tmp_path, "ds/models/unet_1/train.tsv", 50, 40, t0 + 260)              # 210 .. 260
    _bench(tmp_path, "ds/data/manifest.tsv", 5, 4, t0 + 60)                       # 55 .. 60
    _bench(tmp_path, "ds/maps/inceptionv3_1/original/all_methods_test_000.tsv", 30, "NA", t0 + 300)
    _bench(tmp_path, "report/software_versions.tsv", 2, 1, t0 + 400)
    _bench(tmp_path, "ds/data/shard_train_000.tsv", 9, 9, t0 - 10)                # an earlier run
    rows = stage_times(tmp_path, since=t0)
    assert [r["stage"] for r in rows] == ["data", "models", "maps", "report"]
    by = {r["stage"]: r for r in rows}
    assert by["models"] == dict(stage="models", jobs=2, wall_s=160.0, job_s=150.0, cpu_s=190.0)
    assert by["data"]["jobs"] == 1 and by["data"]["wall_s"] == 5.0
    assert by["maps"]["cpu_s"] == 0.0  # "NA" counts as unmeasured
    assert stage_times(tmp_path)[0] == dict(stage="data", jobs=2, wall_s=79.0, job_s=14.0, cpu_s=13.0)  # -19 .. 60
    text = format_stage_times(rows)
    assert "  models       2 jobs  wall  0:02:40  (job time 0:02:30, CPU 0:03:10)" in text.splitlines()
    assert format_stage_times([]) == "no benchmark files written by this run"


class _Bar:
    def __init__(self, total, desc, unit):
        self.total, self.desc, self.unit, self.n, self.postfix, self.closed = total, desc, unit, 0, [], False

    def update(self, k):
        self.n += k

    def set_postfix_str(self, s, refresh=True):
        self.postfix.append(s)

    def close(self):
        self.closed = True


def test_maps_bar_counts_gradient_evaluations_per_method_and_image():
    keras = pytest.importorskip("keras")
    from saliency_audit.saliency.run import shard_maps

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(2, 3, activation="relu", name="last_relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(1, name="logits")(keras.layers.GlobalAveragePooling2D()(h)))
    x = np.random.default_rng(0).uniform(-1, 1, (5, 8, 8, 3)).astype(np.float32)
    bars = []
    shard_maps(model, x, {"GRAD": {}, "SG": {"samples": 3}}, arch="small", seeds={"SG": 1}, batch_size=2,
               progress=lambda **kw: bars.append(_Bar(**kw)) or bars[-1], desc="m_1 original test_000")
    (bar,) = bars
    assert (bar.desc, bar.unit, bar.total) == ("m_1 original test_000", "grad", 5 * (1 + 3))
    assert bar.n == bar.total and bar.closed
    assert bar.postfix == ["GRAD 2/5 images", "GRAD 4/5 images", "GRAD 5/5 images",
                           "SG 2/5 images", "SG 4/5 images", "SG 5/5 images"]
