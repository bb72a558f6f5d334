"""Kaggle SIIM-ACR relative RLE: hand-computed cases and the challenge's own mask_functions.py."""

import numpy as np
import pytest

from saliency_audit.data.rle import rle_decode, rle_encode
from saliency_audit.errors import InputError


# --- the SIIM-ACR challenge's mask_functions.py (verbatim logic), as the independent reference ---
def kaggle_rle2mask(rle, width, height):
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts = array[0::2]
    lengths = array[1::2]
    current_position = 0
    for index, start in enumerate(starts):
        current_position += start
        mask[current_position : current_position + lengths[index]] = 255
        current_position += lengths[index]
    return mask.reshape(width, height)


def kaggle_mask2rle(img, width, height):
    rle = []
    lastColor = 0
    currentPixel = 0
    runStart = -1
    runLength = 0
    for x in range(width):
        for y in range(height):
            currentColor = img[x][y]
            if currentColor != lastColor:
                if currentColor == 255:
                    runStart = currentPixel
                    runLength = 1
                else:
                    rle.append(str(runStart))
                    rle.append(str(runLength))
                    runStart = -1
                    runLength = 0
                    currentPixel = 0
            elif runStart > -1:
                runLength += 1
            lastColor = currentColor
            currentPixel += 1
    return " ".join(rle)


def test_hand_computed_decode():
    # 3 rows x 4 columns, column-major pixel order: index = col * 3 + row.
    # "1 2 3 1": run at 1..2 (col 0, rows 1-2); next starts 3 after the end (3) -> pixel 6 (col 2, row 0)
    m = rle_decode("1 2 3 1", height=3, width=4)
    expected = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0]], bool)
    assert m.dtype == bool and m.shape == (3, 4)
    np.testing.assert_array_equal(m, expected)
    assert rle_encode(expected) == "1 2 3 1"


@pytest.mark.parametrize("s", ["-1", " -1", "-1 ", ""])
def test_no_finding(s):
    m = rle_decode(s, 5, 7)
    assert m.shape == (5, 7) and not m.any()
    assert rle_encode(m) == "-1"


def _masks():
    rng = np.random.default_rng(0)
    out = [
        np.ones((4, 6), bool),  # one run ending at the very last pixel
        np.eye(5, 3, dtype=bool),  # single pixels in several columns
        np.zeros((3, 3), bool),
    ]
    last = np.zeros((6, 4), bool)
    last[-1, -1] = True
    first = np.zeros((6, 4), bool)
    first[0, 0] = True
    out += [last, first]
    for h, w in [(7, 11), (16, 9), (32, 32)]:
        out.append(rng.random((h, w)) < 0.3)
        blob = np.zeros((h, w), bool)
        blob[h // 4 : 3 * h // 4, w // 3 : w - 1] = True  # a rectangle spanning several rows and columns
        out.append(blob)
    return out


@pytest.mark.parametrize("mask", _masks())
def test_round_trip(mask):
    h, w = mask.shape
    s = rle_encode(mask)
    np.testing.assert_array_equal(rle_decode(s, h, w), mask)


@pytest.mark.parametrize("mask", _masks())
def test_matches_challenge_mask_functions(mask):
    h, w = mask.shape
    s = rle_encode(mask)
    if mask.any():
        # the challenge reads masks as rle2mask(rle, width, height).T
        ref = kaggle_rle2mask(s, w, h).T > 0
        np.testing.assert_array_equal(rle_decode(s, h, w), ref)
        # its encoder drops a run that ends on the last pixel; elsewhere it agrees with ours
        if not mask.T.reshape(-1)[-1]:
            assert kaggle_mask2rle((mask.T * 255).astype(int), w, h) == s


def test_multiple_rows_of_one_image_hand_written():
    """SIIM gives one RLE row per lesion; rows written by hand (not by our encoder), one overlapping
    another, decode to the hand-set pixels, as the challenge's rle2mask(...).T reads them.
    8 x 8, column-major index = col * 8 + row; each start is relative to the previous run's end."""
    rows = {
        "9 2 6 2 6 2": (slice(1, 3), slice(1, 4)),  # rows 1-2 of columns 1-3: pixels 9, 17, 25 (+1)
        "37 2 6 2 6 2 6 2": (slice(5, 7), slice(4, 8)),  # rows 5-6 of columns 4-7
        "26 2": (slice(2, 4), slice(3, 4)),  # rows 2-3 of column 3: overlaps the first lesion at (2, 3)
    }
    union = np.zeros((8, 8), bool)
    expected = np.zeros((8, 8), bool)
    for rle, (r, c) in rows.items():
        hand = np.zeros((8, 8), bool)
        hand[r, c] = True
        got = rle_decode(rle, 8, 8)
        np.testing.assert_array_equal(got, hand, err_msg=rle)
        np.testing.assert_array_equal(got, kaggle_rle2mask(rle, 8, 8).T > 0, err_msg=rle)
        union |= got
        expected[r, c] = True
    assert union.sum() == 6 + 8 + 2 - 1
    np.testing.assert_array_equal(union, expected)


@pytest.mark.parametrize(
    "s, words",
    [
        ("1 2 3", "odd number"),
        ("1 x", "not '-1' or space-separated integers"),
        ("1 0", "length <= 0"),
        ("-2 3", "negative offset"),
        ("10 5", "beyond the 3x4 image"),  # ends at pixel 15 > 12
        ("0 12 1 1", "beyond the 3x4 image"),
    ],
)
def test_bad_rle(s, words):
    with pytest.raises(InputError, match=words):
        rle_decode(s, 3, 4)


def test_exact_fit_is_allowed():
    assert rle_decode("0 12", 3, 4).all()
