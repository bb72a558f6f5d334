"""Read precomputed maps (npy, npz, PNG, TIFF), resize them onto the ground truth, write map files.

One imported maps file has exactly the layout of the saliency stage's: ``ids`` (str) and ``maps``
(float32, N x S x S) for the test images :func:`saliency_audit.io.map_image_index` selects, in shard
order, so the criteria stage scores them unchanged.

Resizing: every map is resized to the shard's S x S grid (the ground truth's, after the data stage
resized masks/boxes to ``image_size``) with :func:`skimage.transform.resize`, ``mode='edge'`` and
pixel-centre alignment: ``bilinear`` (order 1) equals PyTorch's
``F.interpolate(mode='bilinear', align_corners=False)`` when upsampling, as CheXlocalize resizes its
Grad-CAM maps; ``nearest`` (order 0) and ``bicubic`` (order 3) are the alternatives. Downsampling with
order > 0 applies scikit-image's Gaussian anti-aliasing first.

Rescaling at import (``maps.rescale``): ``auto`` min-max scales maps of methods outside the saliency
registry (whose ``released`` normalization would otherwise treat them as probabilities and clip
them) and leaves registry methods (``GCAM``, ``IG``, ...) and localizer ``PRED`` maps raw; ``minmax``
scales every non-PRED map; ``none`` keeps every map raw. A constant map scales to all zeros.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.transform import resize

from .. import io
from ..errors import InputError

log = logging.getLogger(__name__)

INTERPOLATION = {"nearest": 0, "bilinear": 1, "bicubic": 3}
RESCALE = ("auto", "minmax", "none")
ARRAY_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


def load_map(path, what: str = "") -> np.ndarray:
    """One map as a 2-D float64 array.

    ``.npy``; ``.npz`` (its only array, or the array named ``map``); ``.png``/``.tif``/``.tiff``
    (one channel; 8/16-bit or float TIFF). Leading axes of length 1 (e.g. a PyTorch ``(1, 1, H, W)``
    map) are dropped; anything else that is not 2-D is an error.
    """
    path = Path(path)
    where = f"{what}: " if what else ""
    if not path.is_file():
        raise InputError(f"{where}map file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.files)
                if len(keys) == 1:
                    arr = z[keys[0]]
                elif "map" in keys:
                    arr = z["map"]
                else:
                    raise InputError(f"{where}{path}: npz holds {keys}; expected one array or one named 'map'")
        elif suffix in IMAGE_SUFFIXES:
            from PIL import Image

            with Image.open(path) as im:
                if im.mode not in ("L", "I", "I;16", "I;16B", "I;16L", "F", "1"):
                    raise InputError(
                        f"{where}{path}: image mode {im.mode}; expected a one-channel (grayscale, 16-bit or float) map"
                    )
                arr = np.asarray(im)
        else:
            raise InputError(
                f"{where}{path}: unknown map format {suffix!r}; expected one of {ARRAY_SUFFIXES + IMAGE_SUFFIXES}"
            )
    except InputError:
        raise
    except Exception as exc:  # numpy/PIL raise many kinds on corrupt files
        raise InputError(f"{where}{path}: unreadable map ({type(exc).__name__}: {exc})") from None
    arr = np.asarray(arr)
    while arr.ndim > 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        raise InputError(f"{where}{path}: map of shape {tuple(np.asarray(arr).shape)}; expected a 2-D map (H, W)")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{where}{path}: map dtype {arr.dtype} is not numeric")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise InputError(f"{where}{path}: map has NaN or infinite values")
    if min(arr.shape) < 1:
        raise InputError(f"{where}{path}: empty map of shape {arr.shape}")
    return arr


def resize_map(m: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize a 2-D map to ``size`` x ``size`` (see the module docstring for the conventions)."""
    if interpolation not in INTERPOLATION:
        raise InputError(f"maps.interpolation: {interpolation!r}; expected one of {list(INTERPOLATION)}")
    m = np.asarray(m, dtype=np.float64)
    if m.shape == (size, size):
        return m.copy()
    order = INTERPOLATION[interpolation]
    down = m.shape[0] > size or m.shape[1] > size
    return resize(m, (size, size), order=order, mode="edge", anti_aliasing=bool(down and order > 0),
                  preserve_range=True)


def minmax(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def needs_rescale(method: str, mode: str) -> bool:
    if mode not in RESCALE:
        raise InputError(f"maps.rescale: {mode!r}; expected one of {list(RESCALE)}")
    if method == "PRED" or mode == "none":
        return False
    if mode == "minmax":
        return True
    from ..saliency.registry import METHOD_NAMES  # TensorFlow-free

    return method not in METHOD_NAMES


def check_index_ids(rows: pd.DataFrame, dataset_ids, index_csv) -> None:
    """Every image id of the maps index must be an image of the dataset (else: which row)."""
    known = set(map(str, dataset_ids))
    bad = rows[~rows["image_id"].isin(known)]
    if len(bad):
        r = bad.iloc[0]
        raise InputError(
            f"{index_csv}: row {r['_line']}: image {r['image_id']!r} is not an image of the dataset "
            f"({len(bad)} such row(s)); expected ids as in the ground truth (e.g. {sorted(known)[:3]})"
        )


def warn_unneeded_missing(rows: pd.DataFrame, unneeded_ids, images: str, what: str) -> list[str]:
    """Warn, naming the index row, about each missing map file of an image that gets no map.

    Needed maps that are missing stop the job (:func:`load_map`, naming the row); a row of an
    image without a finding (``saliency.images: with_finding``) is not read, but its missing file
    still says which row, so a broken index is seen whole. Returns the messages.
    """
    out = []
    for image_id, path, line in rows.loc[rows["image_id"].isin(unneeded_ids), ["image_id", "path", "_line"]].itertuples(
        index=False
    ):
        if not Path(path).is_file():
            out.append(
                f"{what}: row {line}: image {image_id}: map file {path} not found (not needed: the image "
                f"gets no map with saliency.images = {images})"
            )
            log.warning("%s", out[-1])
    return out


def import_shard_maps(rows: pd.DataFrame, shard: dict, images: str, interpolation: str, rescale: str,
                      method: str, what: str = "maps index", max_images: int | None = None) -> dict:
    """The ``ids`` and ``maps`` of one maps file: one model, state and method, one test shard.

    Parameters
    ----------
    rows : index rows of one (model, state, method) (``image_id``, ``path``, ``_line``)
    shard : a test shard (:func:`saliency_audit.io.read_shard`)
    images : ``saliency.images`` (with_finding | all): which shard images get maps
    max_images : ``saliency.max_images``: at most this many of them, the first (None: all)
    method : the internal method id (decides ``auto`` rescaling)
    """
    ids = np.asarray(shard["ids"]).astype(str)
    size = int(np.asarray(shard["masks"]).shape[1])
    sel = io.map_image_index(shard, images, max_images)
    by_id = dict(zip(rows["image_id"], zip(rows["path"], rows["_line"])))
    missing = [i for i in ids[sel] if i not in by_id]
    if missing:
        raise InputError(
            f"{what}: {len(missing)} test image(s) have no {method} map, e.g. {missing[:3]}; "
            f"saliency.images = {images} needs a map for each"
        )
    warn_unneeded_missing(rows, set(ids) - set(ids[sel]), images, what)
    scale = needs_rescale(method, rescale)
    out = np.zeros((len(sel), size, size), np.float32)
    for k, i in enumerate(ids[sel]):
        path, line = by_id[i]
        m = resize_map(load_map(path, what=f"{what}: row {line}: image {i}"), size, interpolation)
        out[k] = minmax(m) if scale else m
    return {"ids": ids[sel], "maps": out}


def import_maps_file(dataset: str, ds_cfg: dict, manifest_path, shard_path, model: str, state: str,
                     method: str, images: str = "with_finding", max_images: int | None = None) -> dict:
    """Arrays of ``results/{dataset}/maps/{model}/{state}/{method}/test_{shard}.npz`` from the index.

    Checks first that every image id of the index is an image of the dataset (a mismatched id is
    an error naming the index row), then imports the maps of this shard.
    """
    from .index import index_path, layout

    lay = layout(dataset, ds_cfg)
    rows = lay["rows"]
    manifest = pd.read_csv(manifest_path, dtype={"image_id": str})
    check_index_ids(rows, manifest["image_id"], index_path(ds_cfg))
    sel = rows[(rows["model_id"] == model) & (rows["state_id"] == state) & (rows["method_id"] == method)]
    if sel.empty:
        raise InputError(f"{index_path(ds_cfg)}: no rows for model {model}, state {state}, method {method}")
    label = lay["labels"].get(model, model)
    mcfg = ds_cfg["maps"]
    return import_shard_maps(
        sel,
        io.read_shard(shard_path),
        images,
        mcfg["interpolation"],  # schema defaults: bilinear, auto
        mcfg["rescale"],
        method,
        what=f"{index_path(ds_cfg)} (model {label}, state {sel['state'].iloc[0]}, method {sel['method'].iloc[0]})",
        max_images=max_images,
    )


def labels_table(dataset: str, ds_cfg: dict) -> pd.DataFrame:
    """Internal ids and the user's labels: ``kind`` (model | state | method), ``internal``, ``label``."""
    from .index import layout

    lay = layout(dataset, ds_cfg)
    rows = [("model", k, v) for k, v in lay["labels"].items() if k in lay["model_ids"]]
    rows += [("state", k, v) for k, v in lay["state_labels"].items()]
    rows += [("method", m, m) for m in lay["methods"]]
    return pd.DataFrame(rows, columns=["kind", "internal", "label"])
