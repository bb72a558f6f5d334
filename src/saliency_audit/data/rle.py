"""Kaggle SIIM-ACR relative run-length encoding of pneumothorax masks.

The SIIM-ACR Pneumothorax challenge (``train-rle.csv``, column ``EncodedPixels``) stores each mask
as space-separated integer pairs over the *column-major* (transposed) flattened mask: the first
number of a pair is the offset of the run's start from the end of the previous run (from pixel 0
for the first run), the second is the run length. ``-1`` means no finding. This is the encoding of
the challenge's ``mask_functions.py`` (``rle2mask(rle, width, height).T`` and ``mask2rle``), as used by
Arun et al. (Radiology: AI 2021) for the SIIM masks.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: The ``EncodedPixels`` value of an image without a finding.
NO_FINDING = "-1"


def rle_numbers(rle_string) -> np.ndarray:
    """Parse an RLE string into an (n, 2) int64 array of (relative offset, length) pairs.

    ``-1`` (and an empty string) give an empty array. Raises :class:`InputError` (without a file
    name; callers add it) when the string is not pairs of non-negative integers with positive lengths.
    """
    s = str(rle_string).strip()
    if s in ("", NO_FINDING):
        return np.zeros((0, 2), np.int64)
    try:
        nums = np.array([int(t) for t in s.split()], dtype=np.int64)
    except ValueError:
        raise InputError(f"EncodedPixels {_short(s)!r} is not '-1' or space-separated integers") from None
    if len(nums) % 2:
        raise InputError(f"EncodedPixels has an odd number ({len(nums)}) of integers; expected (offset, length) pairs")
    pairs = nums.reshape(-1, 2)
    if (pairs[:, 0] < 0).any():
        raise InputError("EncodedPixels has a negative offset; expected offsets >= 0")
    if (pairs[:, 1] <= 0).any():
        raise InputError("EncodedPixels has a run of length <= 0; expected lengths >= 1")
    return pairs


def rle_decode(rle_string, height: int, width: int) -> np.ndarray:
    """Decode a Kaggle relative RLE string into a bool mask of shape (height, width).

    Parameters
    ----------
    rle_string : str
        ``-1`` (no finding) or pairs ``offset length`` where ``offset`` counts from the end of the
        previous run over the column-major flattened mask.
    height, width : int
        Shape of the image the mask belongs to (1024 x 1024 for SIIM-ACR).

    Raises
    ------
    InputError
        When the string is malformed or its runs end beyond ``height * width`` pixels (the RLE
        does not belong to an image of this size).
    """
    pairs = rle_numbers(rle_string)
    n = int(height) * int(width)
    flat = np.zeros(n, bool)
    if len(pairs):
        ends = np.cumsum(pairs[:, 0] + pairs[:, 1])
        starts = ends - pairs[:, 1]
        if ends[-1] > n:
            raise InputError(
                f"EncodedPixels decodes to {int(ends[-1])} pixels, beyond the {height}x{width} image "
                f"({n} pixels); expected runs inside the image"
            )
        # runs never overlap (offsets >= 0), so a +1/-1 difference array marks them exactly
        d = np.zeros(n + 1, np.int32)
        np.add.at(d, starts, 1)
        np.add.at(d, ends, -1)
        flat = np.cumsum(d[:-1]) > 0
    return flat.reshape(width, height).T


def rle_encode(mask) -> str:
    """Encode a 2-D mask (nonzero = finding) in Kaggle relative RLE form; ``-1`` when empty.

    Inverse of :func:`rle_decode`: ``rle_decode(rle_encode(m), *m.shape) == (m != 0)``. Unlike the
    challenge's ``mask2rle`` this also closes a run that ends at the last pixel.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InputError(f"rle_encode: expected a 2-D mask, got shape {m.shape}")
    flat = (m.T.reshape(-1) != 0).astype(np.int8)
    if not flat.any():
        return NO_FINDING
    edges = np.diff(np.concatenate([[0], flat, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    prev_end = np.concatenate([[0], ends[:-1]])
    pairs = np.stack([starts - prev_end, ends - starts], axis=1)
    return " ".join(str(int(v)) for v in pairs.reshape(-1))


def _short(s: str, n: int = 40) -> str:
    return s if len(s) <= n else s[:n] + "..."
