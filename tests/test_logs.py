"""TensorFlow's C++ start-up chatter stays out of job logs on a machine without a GPU (one place:
saliency_audit.smk.quiet_tensorflow, called when the Snakefile is read), while Python warnings and
errors still show."""

import os
import subprocess
import sys

import pytest
import yaml

from conftest import TINY, snakemake
from saliency_audit.smk import TF_LOG_MARK, has_gpu, quiet_tensorflow

CHATTER = ("failed call to cuInit", "use_unbounded_threadpool")


def clean_env():
    """This environment without any TensorFlow log setting (as a user's shell)."""
    drop = ("TF_CPP_MIN_LOG_LEVEL", TF_LOG_MARK, "CUDA_VISIBLE_DEVICES")
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_quiet_tensorflow_levels(monkeypatch):
    import saliency_audit.smk as smk

    env = {"CUDA_VISIBLE_DEVICES": ""}  # no GPU visible: C++ errors hidden too
    assert quiet_tensorflow(env) == "3" and env["TF_CPP_MIN_LOG_LEVEL"] == "3"
    user = {"TF_CPP_MIN_LOG_LEVEL": "0"}  # the user's own choice wins
    assert quiet_tensorflow(user) == "0" and TF_LOG_MARK not in user
    monkeypatch.setattr(smk.glob, "glob", lambda pattern: ["/dev/nvidia0"])
    inherited = {"TF_CPP_MIN_LOG_LEVEL": "3", TF_LOG_MARK: "3"}  # chosen on a CPU login node
    assert quiet_tensorflow(inherited) == "2"  # a GPU node chooses again: C++ errors show
    assert has_gpu({}) and not has_gpu({"CUDA_VISIBLE_DEVICES": "-1"})


SCRIPT = """
import warnings
{setup}
import numpy as np
import tensorflow as tf

x = np.zeros((8, 4), "float32")
m = tf.keras.Sequential([tf.keras.layers.Input((4,)), tf.keras.layers.Dense(1)])
m.compile("sgd", "mse")
m.fit(x, x[:, :1], epochs=1, verbose=0)
warnings.warn("a Python warning of the job")
raise RuntimeError("a Python error of the job")
"""


@pytest.mark.parametrize("quiet", [True, False], ids=["quiet_tensorflow", "control"])
def test_tensorflow_job_without_gpu_keeps_python_warnings_and_errors(quiet):
    setup = "from saliency_audit.smk import quiet_tensorflow; quiet_tensorflow()" if quiet else ""
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], capture_output=True, text=True,
                          env=clean_env(), timeout=600)
    assert proc.returncode != 0
    assert "UserWarning: a Python warning of the job" in proc.stderr
    assert "RuntimeError: a Python error of the job" in proc.stderr
    if quiet:
        assert not any(c in proc.stderr for c in CHATTER), proc.stderr[-3000:]
    elif not has_gpu(clean_env()):  # the control: without it, a CPU machine prints the cuInit failure
        assert "failed call to cuInit" in proc.stderr


@pytest.mark.slow
def test_training_job_log_has_no_tensorflow_chatter(tmp_path):
    """A real TensorFlow job of the workflow (a U-Net's training, whose tf.data pipeline made
    TensorFlow print the NodeDef line), run from a shell without TF_CPP_MIN_LOG_LEVEL."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"] = {"tiny-ptx": cfg["datasets"]["tiny-ptx"]}
    config = tmp_path / "one.yaml"
    config.write_text(yaml.safe_dump(cfg))
    proc = snakemake(tmp_path, "results/tiny-ptx/models/unet_1/metrics.json", configfile=config, env=clean_env())
    out = proc.stdout + proc.stderr
    assert "rule train_model:" in out and "val_loss" in out  # the job ran and its output is in the log
    assert not any(c in out for c in CHATTER), [line for line in out.splitlines() if any(c in line for c in CHATTER)]
    log = (tmp_path / "logs" / "tiny-ptx" / "models" / "unet_1" / "train.log").read_text()
    assert "saliency_audit.models.train INFO training unet_1" in log  # Python logging still goes to the log
