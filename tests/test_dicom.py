"""DICOM / PNG reading: the DICOM grayscale pipeline against hand-computed values, decoding of
JPEG Baseline, and bad files stopping with an InputError that names the file (and no header value)."""

import io

import numpy as np
import pytest
from PIL import Image

from fixtures_data import SECRET_ID, SECRET_NAME, jpeg_bytes, smooth_image, write_dicom, write_png
from saliency_audit.data.dicom import read_dicom, read_image, read_mask, read_raster
from saliency_audit.errors import InputError


def test_uncompressed_8bit_is_value_over_255(tmp_path):
    a = smooth_image(64, 64, 1)
    x = read_dicom(write_dicom(tmp_path / "a.dcm", a))
    assert x.dtype == np.float64 and x.shape == (64, 64)
    np.testing.assert_array_equal(x, a / 255.0)


def test_jpeg_baseline_decodes_like_pillow(tmp_path):
    a = smooth_image(64, 64, 2)
    x = read_dicom(write_dicom(tmp_path / "j.dcm", a, jpeg=True))
    ref = np.asarray(Image.open(io.BytesIO(jpeg_bytes(a))), np.float64) / 255.0  # same bytes, decoded by Pillow
    np.testing.assert_array_equal(x, ref)
    assert np.abs(x - a / 255.0).max() < 0.03  # and close to the original (JPEG q=95 on a smooth image)


def test_monochrome1_is_inverted(tmp_path):
    a = smooth_image(32, 48, 3)
    x = read_dicom(write_dicom(tmp_path / "m1.dcm", a, photometric="MONOCHROME1"))
    np.testing.assert_allclose(x, 1.0 - a / 255.0, atol=1e-12)
    assert x.shape == (32, 48)


def test_rescale_then_linear_window(tmp_path):
    # DICOM PS3.3 C.11.1 (rescale) then C.11.2.1.2.1 (LINEAR window), written out by hand
    a = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)
    slope, intercept, c, w = 2.0, -1000.0, 3000.0, 4001.0
    x = read_dicom(write_dicom(tmp_path / "w.dcm", a, bits_stored=12, slope=slope, intercept=intercept, window=(c, w)))
    v = a * slope + intercept
    expected = np.clip((v - (c - 0.5)) / (w - 1) + 0.5, 0.0, 1.0)
    np.testing.assert_allclose(x, expected, atol=1e-12)
    assert 0.0 < expected.mean() < 1.0 and (expected == 0).any() and (expected == 1).any()


def test_voi_lut_sequence(tmp_path):
    # VOI LUT (PS3.3 C.11.2.1.1): first mapped value 100, 8-bit entries; below -> entry 0, above -> last
    a = (np.arange(64 * 64).reshape(64, 64) % 600).astype(np.uint16)
    entries = (np.sqrt(np.linspace(0, 1, 300)) * 200 + 20).astype(int)  # a gamma-like LUT, 20..220
    x = read_dicom(write_dicom(tmp_path / "lut.dcm", a, bits_stored=12, voi_lut=(100, 8, entries)))
    idx = np.clip(a.astype(int) - 100, 0, len(entries) - 1)
    expected = (entries[idx] - entries.min()) / (entries.max() - entries.min())
    np.testing.assert_allclose(x, expected, atol=1e-12)


def test_deep_image_without_voi_is_min_max_scaled(tmp_path):
    a = (200 + np.arange(32 * 32).reshape(32, 32) * 3).astype(np.uint16)
    x = read_dicom(write_dicom(tmp_path / "d.dcm", a, bits_stored=12))
    np.testing.assert_allclose(x, (a - a.min()) / (a.max() - a.min()), atol=1e-12)


def test_read_image_dispatch_and_png(tmp_path):
    a = smooth_image(20, 30, 4)
    np.testing.assert_array_equal(read_image(write_png(tmp_path / "a.png", a)), a / 255.0)
    a16 = a.astype(np.uint16) * 257
    p16 = tmp_path / "a16.png"
    Image.fromarray(a16).save(p16)
    np.testing.assert_allclose(read_raster(p16), a16 / 65535.0, atol=1e-12)
    rgb = np.stack([a, a, a], -1)
    np.testing.assert_array_equal(read_image(write_png(tmp_path / "rgb.png", rgb)), a / 255.0)
    # a DICOM without extension is recognised by its DICM prefix
    p = write_dicom(tmp_path / "noext.dcm", a)
    p.rename(tmp_path / "noext")
    np.testing.assert_array_equal(read_image(tmp_path / "noext"), a / 255.0)
    m = np.zeros((20, 30), np.uint8)
    m[2:5, 3:9] = 255
    np.testing.assert_array_equal(read_mask(write_png(tmp_path / "m.png", m)), m > 0)


def _assert_clean(exc, path):
    msg = str(exc.value)
    assert str(path) in msg
    for secret in (SECRET_NAME, SECRET_ID, "SECRETNAME"):
        assert secret not in msg


def test_not_dicom(tmp_path):
    p = tmp_path / "junk.dcm"
    p.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(InputError, match="not a DICOM file") as e:
        read_dicom(p)
    _assert_clean(e, p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_dicom(tmp_path / "nope.dcm")


def test_no_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "nopix.dcm", smooth_image(16, 16), pixel_data=False)
    with pytest.raises(InputError, match="no pixel data") as e:
        read_dicom(p)
    _assert_clean(e, p)


def test_truncated_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "t.dcm", smooth_image(64, 64).astype(np.uint16) * 4, bits_stored=12)
    b = p.read_bytes()
    p.write_bytes(b[: len(b) - 2000])
    with pytest.raises(InputError, match=r"truncated or corrupt DICOM file \(the file ends inside element "
                       r"\(7FE0,0010\) \(6192 of 8192 bytes\)\); cannot decode the DICOM pixel data") as e:
        read_dicom(p)
    _assert_clean(e, p)


def test_corrupt_jpeg_pixel_data(tmp_path):
    p = write_dicom(tmp_path / "cj.dcm", smooth_image(64, 64), jpeg=True)
    b = bytearray(p.read_bytes())
    soi = b.find(b"\xff\xd8\xff")  # start of the JPEG stream inside the encapsulated pixel data
    b[soi : soi + 40] = b"\x00" * 40
    p.write_bytes(bytes(b))
    with pytest.raises(InputError, match="truncated or corrupt DICOM file: cannot decode the DICOM pixel data") as e:
        read_dicom(p)
    _assert_clean(e, p)


def _pixel_data_offset(b: bytes) -> int:
    """Offset of the (7FE0,0010) Pixel Data tag in a little-endian file."""
    at = b.rfind(b"\xe0\x7f\x10\x00")
    assert at > 0
    return at


def _header_cuts(b: bytes):
    """Cut points inside the header: in the file meta, in an element value, in an element header."""
    pix = _pixel_data_offset(b)
    return {"file meta": 200, "element value": 400, "element header": pix - 3}


@pytest.mark.parametrize("jpeg", [True, False], ids=["encapsulated-jpeg", "native"])
@pytest.mark.parametrize("where", ["pixel data", "pixel data, last byte", "file meta", "element value",
                                   "element header"])
def test_truncated_dicom_says_so(tmp_path, jpeg, where):
    """A file cut inside the pixel data (encapsulated JPEG Baseline or native) or inside the header
    says 'truncated or corrupt DICOM file', never 'no pixel data' (pydicom only warns, or drops the
    partial element silently)."""
    img = smooth_image(64, 64, 3)
    p = write_dicom(tmp_path / "full.dcm", img, jpeg=jpeg)
    full = p.read_bytes()
    assert np.abs(read_dicom(p) - img / 255.0).max() < 0.03  # the uncut file reads
    pix = _pixel_data_offset(full)
    cuts = {"pixel data": pix + (len(full) - pix) // 2, "pixel data, last byte": len(full) - 9, **_header_cuts(full)}
    if jpeg and where == "pixel data, last byte":
        cuts[where] = len(full) - 20  # inside the JPEG fragment (the last 8 bytes: the sequence delimiter)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(full[: cuts[where]])
    with pytest.raises(InputError, match=r"truncated or corrupt DICOM file") as e:
        read_dicom(cut)
    assert "no pixel data" not in str(e.value)
    _assert_clean(e, cut)


def test_cut_inside_the_sequence_delimiter_still_reads(tmp_path):
    """Only the encapsulated pixel data's closing delimiter lost: the image is whole and decodes."""
    img = smooth_image(64, 64, 3)
    p = write_dicom(tmp_path / "full.dcm", img, jpeg=True)
    ref = read_dicom(p)
    b = p.read_bytes()
    p.write_bytes(b[:-1])
    np.testing.assert_array_equal(read_dicom(p), ref)


def test_corrupt_png(tmp_path):
    p = tmp_path / "bad.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(InputError, match="unreadable or corrupt image") as e:
        read_image(p)
    assert str(p) in str(e.value)


def test_missing_decoder_is_not_called_corrupt(tmp_path, monkeypatch):
    """No decoder for the transfer syntax: 'cannot decode', without blaming the file."""
    import pydicom.dataset

    p = write_dicom(tmp_path / "j.dcm", smooth_image(32, 32), jpeg=True)

    def no_plugins(self):
        raise RuntimeError("Unable to decompress 'JPEG Baseline (Process 1)' pixel data because all plugins are "
                           "missing dependencies:\n\tpillow - requires pillow")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(no_plugins))
    with pytest.raises(InputError, match="cannot decode the DICOM pixel data") as e:
        read_dicom(p)
    assert "truncated or corrupt" not in str(e.value)
    _assert_clean(e, p)
