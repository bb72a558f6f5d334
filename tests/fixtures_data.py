"""Helpers that write tiny DICOM / PNG / CSV fixtures (SIIM-, RSNA- and folder-style) into tmp_path."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from saliency_audit.data.rle import rle_encode

#: Header values that must never reach any output.
SECRET_NAME = "SECRETNAME^PATIENT"
SECRET_ID = "SECRET-PATIENT-ID-4711"
SECRET_BIRTH = "19010203"


def jpeg_bytes(arr_uint8, quality=95) -> bytes:
    buf = _io.BytesIO()
    Image.fromarray(np.asarray(arr_uint8, np.uint8), mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def write_dicom(
    path,
    arr,
    *,
    photometric="MONOCHROME2",
    bits_stored=None,
    signed=False,
    slope=None,
    intercept=None,
    window=None,
    voi_lut=None,
    jpeg=False,
    pixel_data=True,
    patient_id=SECRET_ID,
):
    """Write a single-frame grayscale DICOM (explicit VR little endian, or JPEG Baseline).

    window: (center, width); voi_lut: (first_mapped, bits, list of entries); jpeg: store the
    uint8 ``arr`` as Pillow JPEG bytes wrapped with ``pydicom.encaps.encapsulate``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(arr)
    uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.PatientName = SECRET_NAME
    ds.PatientID = patient_id
    ds.PatientBirthDate = SECRET_BIRTH
    ds.Modality = "CR"
    ds.Rows, ds.Columns = arr.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    alloc = 8 if arr.dtype.itemsize == 1 else 16
    ds.BitsAllocated = alloc
    ds.BitsStored = bits_stored or alloc
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        first, bits, entries = voi_lut
        item = Dataset()
        item.add_new(0x00283002, "US", [len(entries), first, bits])  # LUT Descriptor
        item.add_new(0x00283006, "US", [int(v) for v in entries])  # LUT Data
        ds.VOILUTSequence = Sequence([item])
    if pixel_data:
        if jpeg:
            ds.PixelData = encapsulate([jpeg_bytes(arr)])
            ds["PixelData"].VR = "OB"
            ds["PixelData"].is_undefined_length = True
        else:
            ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def smooth_image(h=64, w=64, seed=0) -> np.ndarray:
    """A smooth uint8 test image (compresses well with JPEG)."""
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 2.0, 2)
    img = 128 + 60 * np.sin(a * xx / w * np.pi) * np.cos(b * yy / h * np.pi) + 20 * seed % 40
    return np.clip(img, 0, 255).astype(np.uint8)


def write_png(path, arr):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr)).save(path)
    return path


def disk_mask(h, w, cy, cx, r) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def make_siim(root, n_pos=4, n_neg=4, size=64, jpeg=True, nested=True):
    """SIIM-style data: DICOMs named <ImageId>.dcm (nested study/series folders) + train-rle.csv.

    Positives get two RLE rows (two disks; the union is the mask). Returns (config dataset entry,
    dict image_id -> union mask).
    """
    root = Path(root)
    rows, masks = [], {}
    for i in range(n_pos + n_neg):
        iid = f"1.2.276.0.7230010.3.1.4.{1000 + i}"
        folder = root / "dicom-images-train" / (f"study{i}/series{i}" if nested else "")
        write_dicom(folder / f"{iid}.dcm", smooth_image(size, size, i), jpeg=jpeg)
        if i < n_pos:
            m1 = disk_mask(size, size, size // 3, size // 3 + i, size // 8)
            m2 = disk_mask(size, size, 2 * size // 3, 2 * size // 3, size // 10)
            rows += [(iid, " " + rle_encode(m1)), (iid, " " + rle_encode(m2))]
            masks[iid] = m1 | m2
        else:
            rows.append((iid, " -1"))
            masks[iid] = np.zeros((size, size), bool)
    csv = root / "train-rle.csv"
    pd.DataFrame(rows, columns=["ImageId", " EncodedPixels"]).to_csv(csv, index=False)
    return {"kind": "siim", "images_dir": str(root / "dicom-images-train"), "rle_csv": str(csv)}, masks


def make_rsna(root, size=64, jpeg=True):
    """RSNA-style data: <patientId>.dcm + stage_2_train_labels.csv + stage_2_detailed_class_info.csv.

    p0: two boxes (Lung Opacity), p1: one box, p2, p3: Normal, p4: No Lung Opacity / Not Normal.
    Returns (config dataset entry, dict patientId -> list of boxes).
    """
    root = Path(root)
    boxes = {
        "p0": [(4.0, 6.0, 10.0, 12.0), (30.0, 20.0, 16.0, 20.0)],
        "p1": [(10.5, 10.5, 20.0, 30.0)],
        "p2": [],
        "p3": [],
        "p4": [],
    }
    classes = {
        "p0": "Lung Opacity",
        "p1": "Lung Opacity",
        "p2": "Normal",
        "p3": "Normal",
        "p4": "No Lung Opacity / Not Normal",
    }
    lab, cls = [], []
    for i, (pid, bb) in enumerate(boxes.items()):
        write_dicom(
            root / "stage_2_train_images" / f"{pid}.dcm", smooth_image(size, size, i), jpeg=jpeg, patient_id=pid
        )
        for b in bb or [None]:
            lab.append((pid, *(b if b else (np.nan,) * 4), int(bool(bb))))
            cls.append((pid, classes[pid]))
    labels = root / "stage_2_train_labels.csv"
    info = root / "stage_2_detailed_class_info.csv"
    pd.DataFrame(lab, columns=["patientId", "x", "y", "width", "height", "Target"]).to_csv(labels, index=False)
    pd.DataFrame(cls, columns=["patientId", "class"]).to_csv(info, index=False)
    cfg = {
        "kind": "rsna",
        "images_dir": str(root / "stage_2_train_images"),
        "labels_csv": str(labels),
        "class_info_csv": str(info),
    }
    return cfg, boxes


def make_folder(root, n_pos=6, n_neg=6, size=48, task="segmentation", fmt="png"):
    """Folder-style data: images (PNG, or DICOM for fmt="dcm") + labels.csv (+ mask PNGs or box columns).

    Returns (config dataset entry, dict image_id -> mask, dict image_id -> boxes).
    """
    root = Path(root)
    rows, masks, boxes = [], {}, {}
    for i in range(n_pos + n_neg):
        iid = f"img{i:03d}"
        rel = f"{iid}.{fmt}"
        img = smooth_image(size, size, i)
        if fmt == "dcm":
            write_dicom(root / "images" / rel, img)
        else:
            write_png(root / "images" / rel, img)
        pos = i < n_pos
        row = {"image_id": iid, "path": rel, "label": int(pos)}
        if task == "segmentation":
            m = disk_mask(size, size, size // 2, size // 2 - 3 + i, size // 6) if pos else np.zeros((size, size), bool)
            masks[iid] = m
            if pos:
                write_png(root / "masks" / f"{iid}_mask.png", (m * 255).astype(np.uint8))
                row["mask"] = f"../masks/{iid}_mask.png"  # relative paths are taken inside images_dir
            else:
                row["mask"] = ""
            rows.append(row)
        else:
            bb = [(4.0 + i, 5.0, 12.0, 10.0), (25.0, 20.0, 8.0, 14.0)] if pos else []
            boxes[iid] = bb
            for b in bb or [(np.nan,) * 4]:
                rows.append({**row, "x": b[0], "y": b[1], "w": b[2], "h": b[3]})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    cfg = {
        "kind": "folder",
        "task": task,
        "images_dir": str(root / "images"),
        "labels_csv": str(csv),
        "id_column": "image_id",
        "path_column": "path",
        "label_column": "label",
    }
    if task == "segmentation":
        cfg["mask_column"] = "mask"
    else:
        cfg["box_columns"] = ["x", "y", "w", "h"]
    return cfg, masks, boxes


def config_for(name, ds_cfg, image_size=32, shard_size=4, seed=3, fractions=(0.5, 0.25, 0.25)):
    return {
        "seed": seed,
        "image_size": image_size,
        "datasets": {name: ds_cfg},
        "split": {"fractions": list(fractions)},
        "shards": {"size": shard_size},
    }
