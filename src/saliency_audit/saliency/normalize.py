"""Map normalization before metrics (Arun et al. 2021, released code), a step separate from map making.

Stored maps are raw 2-D floats. Before utility and similarity metrics they are put on [0, 1]:

``released`` (default, the authors' released code)
    gradient-type maps (GRAD, SG, IG, SIG, GBP, GGCAM, ...): absolute value, then PAIR's
    ``VisualizeImageGrayscale`` scaling: ``clip((m - min) / (p99 - min), 0, 1)`` with ``p99`` the
    99th percentile of the map (the sum of |.| over channels already happened when the map was
    made, see ``saliency.channel_reduction``); CAM/region/perturbation maps (GCAM, XRAI, ...):
    min-max scaling; maps of methods outside the registry (localizer ``PRED`` maps, already
    probabilities) are clipped to [0, 1].
``minmax``
    ``(m - min) / (max - min)`` for every method.
``none``
    the raw map as float32 (not necessarily in [0, 1]).

``saliency.cam_normalization`` (``cam``) changes the ``released`` rule of GCAM and GGCAM only:

``minmax`` (default)
    as above: GCAM min-max, GGCAM (the raw product of GBP and Grad-CAM) clipped as a gradient map;
``released`` (the released code)
    GCAM divided by its max, tiled to 3 channels and visualised in grayscale, which equals the
    99th-percentile clip of the map (:func:`clip_p99`: the positive scalings cancel); GGCAM, made
    at map time as the product of the two visualised parts
    (:func:`saliency_audit.saliency.methods.released_ggcam`), min-max scaled.

A constant map (e.g. the all-zero Grad-CAM of a randomized model) normalizes to all zeros, never
NaN. When the 99th percentile equals the minimum (a map that is zero almost everywhere) the
maximum is used instead, so the few non-zero pixels keep their order.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .registry import METHODS

MODES = ("released", "minmax", "none")
#: ``saliency.cam_normalization`` values
CAM_NORMALIZATIONS = ("minmax", "released")


def _minmax(m: np.ndarray) -> np.ndarray:
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    out = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1), 0)
    return out.astype(np.float32)


def clip_p99(m: np.ndarray) -> np.ndarray:
    """PAIR ``VisualizeImageGrayscale`` of 2-D maps (N, S, S) (their channels already reduced):
    ``clip((|m| - min) / (p99 - min), 0, 1)``, per map; the maximum replaces a p99 equal to the min."""
    m = np.abs(m)
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = np.percentile(m, 99, axis=(1, 2), keepdims=True)
    hi = np.where(hi > lo, hi, m.max(axis=(1, 2), keepdims=True))
    span = hi - lo
    out = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1), 0)
    return np.clip(out, 0, 1).astype(np.float32)


def normalize_maps(maps, method: str, mode: str = "released", cam: str = "minmax") -> np.ndarray:
    """Normalize raw maps of one method to float32 in [0, 1] (``mode='none'``: raw float32).

    Parameters
    ----------
    maps : array (N, S, S) or (S, S)
        Raw 2-D maps as stored by the saliency rules.
    method : str
        Method id (``GRAD``, ``XRAI``, ...) choosing the released-code rule; ids outside the
        registry (``PRED``, ``AVG``) are treated as probability maps.
    mode : {'released', 'minmax', 'none'}
    cam : {'minmax', 'released'}
        ``saliency.cam_normalization``: the ``released`` rule of GCAM and GGCAM (module docstring).

    Returns
    -------
    numpy.ndarray
        float32, same shape as ``maps``; non-finite values are set to 0 first.
    """
    if mode not in MODES:
        raise InputError(f"saliency.normalization: expected one of {MODES}, got {mode!r}")
    if cam not in CAM_NORMALIZATIONS:
        raise InputError(f"saliency.cam_normalization: expected one of {CAM_NORMALIZATIONS}, got {cam!r}")
    m = np.asarray(maps, dtype=np.float64)
    single = m.ndim == 2
    if single:
        m = m[None]
    if m.ndim != 3:
        raise InputError(f"normalize_maps({method}): expected maps of shape (N, S, S), got {m.shape}")
    m = np.where(np.isfinite(m), m, 0.0)
    if mode == "none":
        out = m.astype(np.float32)
    elif mode == "minmax":
        out = _minmax(m)
    else:
        spec = METHODS.get(method)
        if spec is None:
            out = np.clip(m, 0, 1).astype(np.float32)
        elif cam == "released" and method in ("GCAM", "GGCAM"):
            out = clip_p99(m) if method == "GCAM" else _minmax(m)
        elif spec.kind == "gradient":
            out = clip_p99(m)
        else:
            out = _minmax(m)
    return out[0] if single else out
