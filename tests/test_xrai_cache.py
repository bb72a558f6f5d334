"""XRAI regions computed once per image: the region matrix equals PAIR-equal segments, the
per-shard file round-trips, and a stored entry is used for exactly the image it came from."""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from saliency_audit.saliency import xrai


def _images(n, size=48, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        g = gaussian_filter(rng.uniform(0, 1, (size, size)), 2)
        out.append(np.repeat(((g - g.min()) / (g.max() - g.min()) * 2 - 1)[..., None], 3, axis=-1))
    return np.stack(out).astype(np.float32)


@pytest.fixture(autouse=True)
def empty_memo(monkeypatch):
    monkeypatch.setattr(xrai, "_REGIONS", {})


def test_region_matrix_rows_are_the_segments_and_rank_the_same():
    im = _images(1)[0]
    masks = xrai.segments(im)
    mat = xrai.region_matrix(im)
    assert mat.shape == (len(masks), im.shape[0] * im.shape[1]) and len(masks) > 6
    assert all(np.array_equal(mat[i].toarray().ravel(), m.ravel()) for i, m in enumerate(masks))
    attr = gaussian_filter(np.random.default_rng(1).normal(size=im.shape[:2]), 1)
    np.testing.assert_array_equal(xrai.rank_regions(attr, mat), xrai.rank_regions(attr, masks))


def test_regions_file_round_trip(tmp_path):
    x = _images(3)
    path = tmp_path / "test_000.npz"
    xrai.write_regions(path, ["a", "b", "c"], x)
    stored = xrai.read_regions(path)
    assert list(stored) == [xrai.image_key(im) for im in x]
    for im in x:
        a, b = stored[xrai.image_key(im)], xrai.segments(im)
        assert a.shape[0] == len(b)
        assert all(np.array_equal(a[i].toarray().ravel(), m.ravel()) for i, m in enumerate(b))


def test_preloaded_regions_skip_segmentation_for_the_same_image_only(tmp_path, monkeypatch):
    x = _images(2, seed=3)
    attr = gaussian_filter(np.random.default_rng(2).normal(size=x.shape[1:]), 1)
    fresh = [xrai.xrai_map(im, attr) for im in x]
    path = tmp_path / "test_000.npz"
    xrai.write_regions(path, ["a", "b"], x)
    monkeypatch.setattr(xrai, "_REGIONS", {})
    assert xrai.preload_regions(path) == 2
    assert xrai.preload_regions([]) == 0  # a job without XRAI regions input

    calls = []
    real = xrai.segments
    monkeypatch.setattr(xrai, "segments", lambda im, *a: calls.append(1) or real(im, *a))
    for im, ref in zip(x, fresh):
        np.testing.assert_array_equal(xrai.xrai_map(im, attr), ref)
    assert calls == []
    other = x[0].copy()
    other[0, 0, 0] += 0.5  # one pixel differs: not the stored image
    xrai.xrai_map(other, attr)
    assert calls == [1]
