"""Atomic file writing and the on-disk formats shared by every stage.

Every output is written to a temporary file beside its destination and moved into place with
``os.replace`` (atomic on POSIX), so a killed job never leaves a half-written file under its final
name. Readers check the keys they need and report a truncated/corrupt file by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import ShardError

#: Columns of the manifest CSV, in order (followed by ``confounder``: True where a synthetic
#: image carries the device/marker confounder; False for real data).
MANIFEST_COLUMNS = ["image_id", "split", "label", "has_finding", "shard", "source"]
#: Arrays in every data shard file.
SHARD_KEYS = ("ids", "images", "masks", "labels", "has_finding", "boxes")
SPLITS = ("train", "val", "test")
#: The four criteria of Arun et al. (Radiology: AI 2021), in the paper's order: each one's tidy score
#: table is ``scores/{criterion}.csv`` (:data:`saliency_audit.paths.SCORES`), written by the
#: criteria stage (:mod:`.metrics`) and read by the statistics (:mod:`.stats`).
CRITERIA = ("utility", "randomization", "repeatability", "reproducibility")
#: Columns of a tidy score table, in order: one row per (image, map or pair of maps, metric);
#: columns a criterion does not use are empty (:mod:`saliency_audit.metrics.tables`).
SCORE_COLUMNS = ["dataset", "criterion", "method", "model_a", "model_b", "state", "image_id", "metric", "value"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{''.join(path.suffixes)}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_npz(path, **arrays):
    """Write a compressed ``.npz`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def read_npz(path, required=(), keys=None):
    """Read the arrays ``keys`` (default: every array) of an ``.npz`` into memory, checking
    ``required`` keys are present. Only the members read are decompressed.

    Raises
    ------
    ShardError
        When the file is missing, truncated, corrupt or lacks a required key.
    """
    path = Path(path)
    if not path.exists():
        raise ShardError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            data = {k: z[k] for k in names if keys is None or k in keys}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise ShardError(f"{path}: truncated or corrupt npz file ({exc})") from exc
    missing = [k for k in required if k not in names]
    if missing:
        raise ShardError(f"{path}: missing arrays {missing}; has {sorted(names)}")
    return data


def write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_csv(path, df, **kwargs):
    """Write a pandas DataFrame as CSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, **kwargs)


def shard_name(split, shard):
    return f"{split}_{int(shard):03d}"


def read_shard(path):
    """Read a data shard (see :data:`SHARD_KEYS`)."""
    return read_npz(path, required=SHARD_KEYS)


def map_image_index(shard, images: str, max_images: int | None):
    """Indices of a test shard's images that get maps: ``saliency.images`` (with_finding | all)
    selects, ``saliency.max_images`` keeps the first ones of those (shard order is image-id order;
    None: all of them).

    ``shard``: a test shard, or the manifest rows of one (in manifest order: the shard's order);
    only its ``has_finding`` is read. Saliency maps and localizer maps are stored for exactly these
    images, in shard order.
    """
    if images == "all":
        idx = np.arange(len(shard["has_finding"]))
    else:
        idx = np.flatnonzero(np.asarray(shard["has_finding"], bool))
    return idx if max_images is None else idx[: int(max_images)]
