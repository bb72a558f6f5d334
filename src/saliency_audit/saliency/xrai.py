"""XRAI's segmentation and greedy region ranking, equal to PAIR's (saliency 0.2.1) but faster.

Kapishnikov et al. (2019), arXiv:1906.02825, Algorithm 1, as implemented in PAIR
``saliency.core.xrai``: Felzenszwalb segments at 6 scales of the image resized to 224 x 224 and
rescaled to [-1, 1], each segment dilated by a disk of radius 5, then regions are added greedily by
attribution density over the not-yet-covered pixels (``min_pixel_diff`` 50).

Two exact speed-ups over PAIR's code (results agree to float rounding; tests compare them):

- each segment is dilated inside its bounding box padded by the radius, not over the full image;
- the greedy loop evaluates every remaining region at once with a sparse region x pixel matrix
  (count and attribution sum over uncovered pixels are two sparse mat-vec products), instead of
  two full-image boolean operations per region and iteration.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from skimage import segmentation
from skimage.morphology import dilation, disk
from skimage.transform import resize

SCALES = [50, 100, 150, 250, 500, 1200]
SIGMAS = [0.8]
RESIZE = (224, 224)
VALUE_RANGE = [-1.0, 1.0]
MIN_SEGMENT_SIZE = 150


def segments(im: np.ndarray, dilation_rad: int = 5) -> list[np.ndarray]:
    """PAIR ``_get_segments_felzenszwalb(im)``: a list of boolean (H, W) region masks."""
    from saliency.core.xrai import _normalize_image

    shape = im.shape[:2]
    small = _normalize_image(im, VALUE_RANGE, RESIZE)
    masks = []
    footprint = disk(dilation_rad) if dilation_rad else None
    for scale in SCALES:
        for sigma in SIGMAS:
            seg = segmentation.felzenszwalb(small, scale=scale, sigma=sigma, min_size=MIN_SEGMENT_SIZE)
            seg = resize(seg, shape, order=0, preserve_range=True, mode="constant", anti_aliasing=False).astype(int)
            for label in range(seg.min(), seg.max() + 1):
                masks.append(_dilate(seg == label, footprint, dilation_rad))
    return masks


def _dilate(mask, footprint, r):
    if footprint is None or not mask.any():
        return mask
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(rows[0] - r, 0), min(rows[-1] + r + 1, mask.shape[0])
    c0, c1 = max(cols[0] - r, 0), min(cols[-1] + r + 1, mask.shape[1])
    out = np.zeros_like(mask)
    out[r0:r1, c0:c1] = dilation(mask[r0:r1, c0:c1], footprint=footprint)
    return out


def rank_regions(attr: np.ndarray, masks: list[np.ndarray], min_pixel_diff: int = 50) -> np.ndarray:
    """PAIR ``XRAI._xrai(attr, segs)`` (algorithm ``full``, area threshold 1.0): the XRAI map.

    Each pixel gets the attribution density of the region that first covered it in the greedy
    order; pixels no region covers get the mean attribution over all of them.
    """
    h, w = attr.shape
    out = np.full(attr.shape, -np.inf)
    if not masks:
        out[:] = attr.mean()
        return out
    flat = np.stack([m.ravel() for m in masks])
    mat = sparse.csr_matrix(flat.astype(np.float64))
    a = attr.ravel().astype(np.float64)
    current = np.zeros(h * w, bool)
    remaining = np.ones(len(masks), bool)
    while True:
        free = (~current).astype(np.float64)
        cnt = mat @ free
        gsum = mat @ (a * free)
        remaining &= cnt >= min_pixel_diff
        if not remaining.any():
            break
        gain = np.where(remaining, gsum / np.where(cnt > 0, cnt, 1), -np.inf)
        best = int(np.argmax(gain))  # first maximum, as PAIR's strict '>' scan
        diff = flat[best] & ~current
        out.ravel()[diff] = gain[best]
        current |= flat[best]
        remaining[best] = False
    uncovered = out == -np.inf
    if uncovered.any():
        out[uncovered] = attr[uncovered].mean()
    return out


def xrai_map(im: np.ndarray, attr: np.ndarray) -> np.ndarray:
    """XRAI map of one image (H, W, C) from its IG attribution (H, W, C): channels merged by max
    (PAIR ``_attr_aggregation_max``), then :func:`segments` and :func:`rank_regions`."""
    a = attr.max(axis=-1) if attr.ndim == 3 else attr
    return rank_regions(a, segments(im))
