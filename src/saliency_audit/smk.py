"""Glue for workflow scripts: send logging to the rule's log, show progress, fail with a clear message;
and the environment TensorFlow jobs start with (:func:`quiet_tensorflow`, set when the Snakefile is read)."""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sys

from .errors import InputError

#: Set next to TF_CPP_MIN_LOG_LEVEL when :func:`quiet_tensorflow` chose it (not the user): a job on
#: another machine (a Slurm GPU node, which inherits the submitting shell's environment) chooses again.
TF_LOG_MARK = "SALIENCY_AUDIT_TF_LOG_LEVEL"


def has_gpu(environ=os.environ) -> bool:
    """Whether this machine can show TensorFlow a CUDA GPU, without importing TensorFlow: an NVIDIA
    device node (``/dev/nvidia<k>``) and ``CUDA_VISIBLE_DEVICES`` not emptied (``''`` or ``-1``)."""
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*"))


def quiet_tensorflow(environ=os.environ) -> str:
    """Set ``TF_CPP_MIN_LOG_LEVEL`` for TensorFlow jobs started from this process; returns it.

    TensorFlow reads it once, when it is imported, so it is set in the environment the jobs inherit
    (``rules/common.smk`` calls this when the Snakefile is read, before any job starts). Without a
    GPU: 3, which hides the C++ start-up chatter of a CPU machine (``failed call to cuInit ...
    UNKNOWN ERROR (303)``, ``NodeDef mentions attribute use_unbounded_threadpool ...``: C++
    ERROR-level lines that are expected there); with a GPU: 2 (C++ errors still show). Python
    warnings and errors (``warnings``, ``logging``, tracebacks) are not C++ log lines and always
    show. A value the user set is kept.
    """
    current = environ.get("TF_CPP_MIN_LOG_LEVEL")
    if current is not None and environ.get(TF_LOG_MARK) != current:
        return current  # the user's own choice
    level = "2" if has_gpu(environ) else "3"
    environ["TF_CPP_MIN_LOG_LEVEL"] = environ[TF_LOG_MARK] = level
    return level


@contextlib.contextmanager
def rule_logging(snakemake):
    """Log to ``snakemake.log[0]`` (and stderr); turn an :class:`InputError` into a one-line error."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)
    log = logging.getLogger(f"saliency_audit.rule.{snakemake.rule}")
    log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        yield log
    except InputError as exc:
        log.error("%s", exc)
        sys.exit(f"ERROR in rule {snakemake.rule}: {exc}")


def progress(iterable=None, **kwargs):
    """A tqdm progress bar on stderr (shown in the console and in the job's log)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
