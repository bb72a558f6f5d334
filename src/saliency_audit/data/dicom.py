"""Reading radiographs: DICOM (pydicom) and PNG/JPEG (Pillow) into float (H, W) images in [0, 1].

DICOM pixels go through the standard grayscale pipeline of DICOM PS3.4 N.2.1 (pydicom's
implementation): stored values -> modality LUT / rescale slope & intercept (PS3.3 C.11.1) ->
VOI LUT or window centre/width (PS3.3 C.11.2) -> display, with MONOCHROME1 inverted so that
high values are always bright. Compressed transfer syntaxes decode through pydicom's pixel
decoders (JPEG Baseline, the transfer syntax of the Kaggle SIIM-ACR and RSNA files, through Pillow).

Only pixel-module attributes are read; no other header field (patient name, id, dates ...) is
read, logged or returned, and pydicom's own warnings are silenced while a file is read so that
they cannot echo header values into a log.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError

#: File name endings read as DICOM (other files are also read as DICOM when they carry the DICM prefix).
DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
#: File name endings read with Pillow.
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
IMAGE_SUFFIXES = DICOM_SUFFIXES + RASTER_SUFFIXES


@contextlib.contextmanager
def _quiet_pydicom():
    """Silence pydicom's warnings and log records (they may quote header values).

    Yields the list of caught warnings: they are only searched (:func:`_truncation`), never shown.
    """
    logger = logging.getLogger("pydicom")
    disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        logger.disabled = disabled


#: Preamble (128) + ``DICM`` (4) + the File Meta Information Group Length element (12 bytes).
_META_START = 144
#: Decoders pydicom lacks raise these (not a damaged file).
_NO_DECODER = ("missing dependencies", "no pixel data decoders", "not supported by numpy")


def _truncation(ds, path: Path, caught) -> str | None:
    """Where a DICOM file read by pydicom looks cut short or damaged, or None.

    pydicom reads a truncated file without an error: a cut inside encapsulated pixel data only
    warns ("End of file reached before delimiter") and drops the element; a cut inside an element
    of the header keeps a short value or drops a partial element header silently. Checked here:
    that warning, the File Meta group length against the file size, and the end of the last
    top-level element (defined length) against the file size. Called right after reading (the
    elements are still raw, with their file offsets); its answer is used only when the pixel data
    is missing or does not decode, so trailing padding after a good image is never flagged.
    """
    if any("end of file reached" in str(w.message).lower() for w in caught):
        return "the file ends inside the (encapsulated) pixel data"
    size = path.stat().st_size
    meta = getattr(ds, "file_meta", None)
    group_length = meta.get("FileMetaInformationGroupLength") if meta is not None else None
    if group_length in ("", b"") or (group_length is not None and size < _META_START + int(group_length)):
        return "the file ends inside the file meta header"
    tags = sorted(ds.keys())
    if not tags:
        return "no data element after the file meta header"
    last = ds.get_item(tags[-1])
    tell, length = getattr(last, "value_tell", None), getattr(last, "length", None)
    if tell is None or length is None or length == 0xFFFFFFFF:  # converted, or undefined length
        return None
    if tell + length > size:
        return f"the file ends inside element {last.tag} ({size - tell} of {length} bytes)"
    if tell + length < size:
        return f"the file ends inside the element header after {last.tag}"
    return None


def is_dicom(path) -> bool:
    """True for a DICOM file name ending or a file with the ``DICM`` prefix at byte 128."""
    path = Path(path)
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix.lower() in RASTER_SUFFIXES:
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def read_image(path) -> np.ndarray:
    """Read a DICOM or PNG/JPEG/TIFF radiograph as a float64 (H, W) array in [0, 1]."""
    return read_dicom(path) if is_dicom(path) else read_raster(path)


def read_dicom(path) -> np.ndarray:
    """Read a single-frame grayscale DICOM as a display-ready float64 (H, W) array in [0, 1].

    Steps (DICOM PS3.4 N.2.1; pydicom's ``apply_modality_lut`` and ``apply_windowing``):

    1. stored values (decoded from compressed transfer syntaxes by pydicom's decoders);
    2. modality LUT sequence, or rescale slope/intercept;
    3. VOI LUT sequence if present (PS3.3 C.11.2.1.1), else window centre/width (the first of
       several; LINEAR, LINEAR_EXACT or SIGMOID, PS3.3 C.11.2.1.2-3); the result is scaled from the
       VOI output range (window: pydicom's output range; LUT: the LUT's lowest and highest
       entries) to [0, 1];
    4. without a VOI transform: 8-bit images are scaled by their nominal range (stored values
       0..255 through the modality transform; identical to the PNG conversion of the Kaggle
       files), deeper images by their own min and max;
    5. MONOCHROME1 is inverted (``1 - x``).

    Raises
    ------
    InputError
        The file is missing, not DICOM, truncated or corrupt (``<file>: truncated or corrupt DICOM
        file (...)``: cut inside the header or the native / encapsulated pixel data, or pixel data
        that does not decode), has no pixel data, has no decoder, or is not a single 2-D grayscale
        frame. The message names the file and at most a tag number (no header values).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_modality_lut, apply_windowing

    path = Path(path)
    with _quiet_pydicom() as caught:
        try:
            ds = pydicom.dcmread(path)
        except FileNotFoundError:
            raise InputError(f"{path}: DICOM file not found") from None
        except InvalidDicomError:
            raise InputError(
                f"{path}: not a DICOM file (no 'DICM' prefix / file meta header); expected a DICOM image"
            ) from None
        except Exception as exc:  # truncated or corrupt headers raise many kinds of errors
            raise InputError(
                f"{path}: truncated or corrupt DICOM file (unreadable header: {type(exc).__name__}); "
                "expected a complete DICOM image"
            ) from None
        why = _truncation(ds, path, caught)  # before any element is converted (raw offsets)
        if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
            if why:
                raise InputError(f"{path}: truncated or corrupt DICOM file ({why}); expected a complete DICOM image")
            raise InputError(
                f"{path}: DICOM file has no pixel data (or the file is cut exactly before it); expected an image"
            )
        try:
            arr = ds.pixel_array
        except Exception as exc:  # missing decoder, truncated or corrupt pixel data
            detail = f"{type(exc).__name__}: {_pixel_error(exc)}"
            if why:
                raise InputError(
                    f"{path}: truncated or corrupt DICOM file ({why}); cannot decode the DICOM pixel data ({detail})"
                ) from None
            if any(k in str(exc).lower() for k in _NO_DECODER):
                raise InputError(
                    f"{path}: cannot decode the DICOM pixel data ({detail}); "
                    "expected an uncompressed or decodable (e.g. JPEG Baseline via Pillow) image"
                ) from None
            raise InputError(
                f"{path}: truncated or corrupt DICOM file: cannot decode the DICOM pixel data ({detail})"
            ) from None
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1:
            raise InputError(f"{path}: DICOM has {frames} frames; expected a single 2-D radiograph")
        if arr.ndim == 3 and int(ds.get("SamplesPerPixel", 1)) in (3, 4):
            # colour secondary captures: luminance of the (pydicom-converted) RGB values
            x = arr[..., :3].astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
            bits = int(ds.get("BitsStored", 8))
            return np.clip(x / (2**bits - 1), 0.0, 1.0)
        if arr.ndim != 2:
            raise InputError(f"{path}: DICOM pixel data has shape {arr.shape}; expected a 2-D grayscale image")
        try:
            x = apply_modality_lut(arr, ds)
            voi = _has_voi(ds)
            if voi == "lut":
                x, lo, hi = _apply_voi_lut_sequence(x, ds)
            elif voi == "window":
                x = apply_windowing(x, ds)
                lo, hi = apply_windowing(np.array([-np.inf, np.inf]), ds)  # the window's output range
            else:
                lo, hi = _nominal_range(ds, x)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        except Exception as exc:
            raise InputError(f"{path}: invalid modality/VOI LUT attributes ({type(exc).__name__}: {exc})") from None
    x = np.asarray(x, np.float64)
    out = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    out = np.clip(out, 0.0, 1.0)
    if photometric == "MONOCHROME1":
        out = 1.0 - out
    return out


def _pixel_error(exc) -> str:
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return msg[:200]


def _has_voi(ds) -> str | None:
    seq = ds.get("VOILUTSequence")
    if seq and seq[0].get("LUTDescriptor") is not None and seq[0].get("LUTData") is not None:
        return "lut"
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return "window"
    return None


def _apply_voi_lut_sequence(x, ds):
    """Apply the first VOI LUT (PS3.3 C.11.2.1.1); returns (values, lowest entry, highest entry).

    Values below the first mapped value take the first entry, values beyond the table the last.
    Written out here because pydicom 3.0's ``apply_voi`` indexes 8-bit LUTs with a uint8 array,
    which wraps around for tables of more than 256 entries (valid DICOM).
    """
    item = ds.VOILUTSequence[0]
    n, first, _bits = (int(v) for v in item.LUTDescriptor)
    n = n or 2**16
    data = item.LUTData
    if isinstance(data, (bytes, bytearray)):  # VR OW
        little = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        little = True if little is None else little.is_little_endian
        lut = np.frombuffer(bytes(data), dtype="<u2" if little else ">u2")
    else:
        lut = np.atleast_1d(np.asarray(data))
    lut = lut.astype(np.float64)[:n]
    if len(lut) < n:
        raise InputError(f"VOI LUT has {len(lut)} entries; its descriptor says {n}")
    idx = np.clip(np.rint(np.asarray(x, np.float64)).astype(np.int64) - first, 0, n - 1)
    return lut[idx], float(lut.min()), float(lut.max())


def _nominal_range(ds, x) -> tuple[float, float]:
    bits = int(ds.get("BitsStored", 8))
    if bits > 8:
        return float(np.min(x)), float(np.max(x))
    if int(ds.get("PixelRepresentation", 0)):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    from pydicom.pixels import apply_modality_lut

    lo, hi = apply_modality_lut(np.array([lo, hi]), ds)
    return float(min(lo, hi)), float(max(lo, hi))


def read_raster(path) -> np.ndarray:
    """Read a PNG/JPEG/TIFF image with Pillow as float64 (H, W) in [0, 1].

    8-bit images are divided by 255, 16-bit by 65535; colour images are converted to luminance
    (Pillow's ITU-R 601-2 ``convert("L")``).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "YCbCr", "PA"):
                arr = np.asarray(im.convert("L"), np.float64) / 255.0
            elif mode.startswith("I;16") or mode == "I":
                a = np.asarray(im).astype(np.float64)
                arr = a / (65535.0 if a.max() <= 65535 else a.max())
            elif mode == "F":
                arr = np.asarray(im, np.float64)
            else:
                raise InputError(f"{path}: unsupported image mode {mode!r}; expected grayscale or RGB")
    except FileNotFoundError:
        raise InputError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: unreadable or corrupt image file ({type(exc).__name__}: {exc})") from None
    if arr.ndim != 2:
        raise InputError(f"{path}: image has shape {arr.shape}; expected a 2-D grayscale image")
    return np.clip(arr, 0.0, 1.0)


def read_mask(path) -> np.ndarray:
    """Read a mask image (PNG/...; DICOM also accepted) as bool (H, W): nonzero = finding."""
    path = Path(path)
    if is_dicom(path):
        return read_dicom(path) > 0
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except FileNotFoundError:
        raise InputError(f"{path}: mask file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or corrupt mask file ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 3:
        arr = arr[..., :3].max(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    if arr.ndim != 2:
        raise InputError(f"{path}: mask has shape {arr.shape}; expected a 2-D image")
    return arr > 0
