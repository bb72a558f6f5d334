"""Manifest and shards: the one output shape of every data source.

Manifest CSV: ``image_id, split, label, has_finding, shard, source`` (see :mod:`saliency_audit.io`).
Shard ``{split}_{shard:03d}.npz``: ``ids`` (str), ``images`` (uint8, N x S x S, grayscale),
``masks`` (uint8 0/1, N x S x S), ``labels`` (int8), ``has_finding`` (bool), ``boxes`` (float32,
M x 5: image index in shard, x, y, width, height in pixels of the S x S image).

Images are stored as 8-bit grayscale at ``image_size``; :func:`to_model_input` applies the released
code's scaling (x / 127.5 - 1, copied to 3 channels) when a model reads them.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from skimage.transform import resize

from .. import io
from ..errors import InputError
from ..plan import all_test, derive_seed, image_size
from .base import RECORD_COLUMNS, Sample, box_mask, get_source
from .splits import grouped_split, groups_in_several_splits, read_split_file, stratified_split

log = logging.getLogger(__name__)


def stage_config(name: str, ds_cfg: dict, seed: int, **blocks) -> dict:
    """The part of a validated config the data stage reads for dataset ``name``, rebuilt from a
    rule's params: ``datasets.<name>``, ``seed`` and the top-level ``blocks`` given (the manifest:
    ``split``, ``shards`` and ``image_size``, which a source may read; a shard: ``image_size``). A job sees no other key, so its params are
    exactly what reruns it; a key it needs but was not given raises :class:`KeyError` naming it."""
    return {"seed": seed, "datasets": {name: ds_cfg}, **blocks}


def build_manifest(name: str, config: dict) -> pd.DataFrame:
    """Records of dataset ``name`` with split and shard assigned (no pixels read)."""
    ds = config["datasets"][name]
    rec = get_source(name, config).records()
    missing = [c for c in RECORD_COLUMNS if c not in rec.columns]
    if missing:
        raise InputError(f"dataset {name!r}: source returned no columns {missing}")
    if rec.empty:
        raise InputError(f"dataset {name!r}: no images left after reading and filtering the labels")
    dup = rec["image_id"].duplicated()
    if dup.any():
        raise InputError(f"dataset {name!r}: image id {rec['image_id'][dup].iloc[0]!r} appears twice")
    rec = rec.sort_values("image_id", kind="stable").reset_index(drop=True)
    if all_test(ds):  # BYOM: every image is a test image (no training)
        split = pd.Series("test", index=pd.Index(rec["image_id"], name="image_id"), name="split")
    elif ds.get("split_file"):
        split = read_split_file(ds["split_file"], rec["image_id"])
    else:
        fractions = config["split"]["fractions"]
        seed = derive_seed(config["seed"], name, "split")
        if "background" in rec:  # semi-synthetic: the split is decided per background file
            split = grouped_split(rec["image_id"], rec["label"], rec["background"], fractions, seed)
        else:
            # a source may stratify finer than by label (synthetic: occult positives apart, so every
            # split has its share of them and the test AUROC's ceiling does not depend on the draw)
            strata = rec["stratum"] if "stratum" in rec else rec["label"]
            split = stratified_split(rec["image_id"], strata, fractions, seed)
    rec["split"] = split.loc[rec["image_id"]].values
    if "background" in rec:
        _check_backgrounds(name, rec)
    size = config["shards"]["size"]
    rec["shard"] = 0
    for s in io.SPLITS:
        sel = rec["split"] == s
        rec.loc[sel, "shard"] = np.arange(sel.sum()) // size
    rec["label"] = rec["label"].astype(int)
    rec["has_finding"] = rec["has_finding"].astype(bool)
    # optional: the synthetic confounder (device/marker), for hidden-stratification analyses
    rec["confounder"] = rec["confounder"].astype(bool) if "confounder" in rec else False
    return rec[io.MANIFEST_COLUMNS + ["confounder"] + (["background"] if "background" in rec else [])]


def _check_backgrounds(name: str, rec: pd.DataFrame) -> None:
    """Log how many images share a background radiograph; no radiograph may be in two splits."""
    leak = groups_in_several_splits(rec["background"], rec["split"])
    if leak:
        raise InputError(
            f"dataset {name!r}: background {leak[0]!r} is drawn into images of several splits "
            f"({len(leak)} files); expected each background file in one split (check split_file)"
        )
    uses = rec["background"].value_counts()
    sharing = int(uses[uses > 1].sum())
    log.info(
        "%s: %d background files for %d images; %d images share their radiograph with another image "
        "(%d files used more than once, at most %d times), each file's images in one split; "
        "%d files in two splits",
        name, len(uses), len(rec), sharing, int((uses > 1).sum()), int(uses.max()), len(leak),
    )


def shard_ids(manifest: pd.DataFrame, split: str) -> list[int]:
    return sorted(manifest.loc[manifest["split"] == split, "shard"].unique().tolist())


def preprocess(sample: Sample, size: int, image_id: str = "?"):
    """Resize one sample to ``size`` x ``size``.

    Returns (image uint8, mask uint8 0/1, boxes float32 k x 4 in the new pixel grid). Images are
    resized with anti-aliased bilinear interpolation, masks with nearest neighbour, boxes scaled
    (Arun et al.: masks and boxes resized with the image).
    """
    img = np.asarray(sample.image, dtype=np.float64)
    if img.ndim != 2:
        raise InputError(f"image {image_id}: expected a 2-D grayscale image, got shape {img.shape}")
    mask = np.asarray(sample.mask)
    if mask.shape != img.shape:
        raise InputError(f"image {image_id}: mask shape {mask.shape} does not match image shape {img.shape}")
    h, w = img.shape
    out = resize(img, (size, size), order=1, anti_aliasing=True, preserve_range=True)
    out = np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)
    m = resize(mask.astype(np.uint8), (size, size), order=0, anti_aliasing=False, preserve_range=True)
    if mask.any() and not m.any():
        # a lesion thinner than the sampling step vanishes under nearest neighbour: keep every
        # output pixel whose block of input pixels holds lesion (max pooling) so the finding is kept
        m = max_pool_mask(mask, size)
        log.warning(
            "image %s: mask vanished under nearest-neighbour resizing to %d px; max-pooled instead", image_id, size
        )
    boxes = np.asarray(sample.boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        scale = np.array([size / w, size / h, size / w, size / h], np.float32)
        boxes = boxes * scale
        m = np.maximum(m, box_mask(boxes, size))
    return out, (m > 0).astype(np.uint8), boxes


def max_pool_mask(mask, size: int) -> np.ndarray:
    """``size`` x ``size`` 0/1 mask: output pixel (i, j) is 1 when any input pixel of its block
    (rows ``floor(i*H/size)`` up to the next block's first row, same for columns) is nonzero."""
    mask = np.asarray(mask) != 0
    h, w = mask.shape
    rows = np.floor(np.arange(size) * h / size).astype(int)
    cols = np.floor(np.arange(size) * w / size).astype(int)
    pooled = np.maximum.reduceat(np.maximum.reduceat(mask.astype(np.uint8), rows, axis=0), cols, axis=1)
    return pooled.astype(np.uint8)


def build_shard(name: str, config: dict, manifest: pd.DataFrame, split: str, shard: int, progress=None) -> dict:
    """Load, check and preprocess the images of one shard; returns the shard's arrays."""
    size = image_size(config, name)
    rows = manifest[(manifest["split"] == split) & (manifest["shard"] == shard)]
    if rows.empty:
        raise InputError(f"dataset {name!r}: shard {split}_{shard:03d} has no images in the manifest")
    source = get_source(name, config)
    images, masks, boxes = [], [], []
    it = rows.itertuples(index=False)
    if progress is not None:
        it = progress(it, total=len(rows), desc=f"{name} {split}_{shard:03d}", unit="img")
    for i, r in enumerate(it):
        img, m, b = preprocess(source.load(r.image_id), size, r.image_id)
        if r.has_finding and not m.any():
            raise InputError(
                f"{r.source}: image {r.image_id} is labelled with a finding but its mask/boxes are empty at {size} px"
            )
        if not r.has_finding and m.any():
            raise InputError(f"{r.source}: image {r.image_id} is labelled without a finding but has a mask/boxes")
        images.append(img)
        masks.append(m)
        boxes += [[i, *bb] for bb in b]
    summary = getattr(source, "summary", None)  # e.g. lesion placements rejected on real backgrounds
    if summary is not None and summary():
        log.info("%s", summary())
    return {
        "ids": rows["image_id"].to_numpy(dtype=str),
        "images": np.stack(images),
        "masks": np.stack(masks),
        "labels": rows["label"].to_numpy(np.int8),
        "has_finding": rows["has_finding"].to_numpy(bool),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 5),
    }


def to_model_input(images_uint8: np.ndarray) -> np.ndarray:
    """Released code's preprocessing: x / 127.5 - 1, grayscale copied to 3 channels (float32)."""
    x = images_uint8.astype(np.float32) / 127.5 - 1.0
    return np.repeat(x[..., None], 3, axis=-1)
