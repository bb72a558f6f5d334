"""A SIIM-style DICOM dataset made from synthetic phantoms, with patient data in every header.

The tiny end-to-end run ingests it through the ``siim`` source (JPEG-compressed DICOM + Kaggle RLE),
so one run proves both the real-data path and that no header value leaks into any output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom

from fixtures_data import SECRET_BIRTH, SECRET_ID, SECRET_NAME, write_dicom
from saliency_audit.data.rle import rle_encode
from saliency_audit.data.synthetic import SyntheticSource

SECRET_INSTITUTION = "SECRET GENERAL HOSPITAL OF NOWHERE"
SECRET_BURNED_IN = "BURNED-IN SECRET ANNOTATION 0xC0FFEE"
SECRETS = [SECRET_NAME, SECRET_ID, SECRET_BIRTH, SECRET_INSTITUTION, SECRET_BURNED_IN, "SECRETNAME"]


def make_phi_siim(root, ds_cfg: dict, seed: int, size: int) -> dict:
    """Write phantoms of ``ds_cfg`` (a synthetic segmentation dataset) as SIIM-style DICOM + RLE.

    Returns the ``siim`` dataset config pointing at them.
    """
    root = Path(root)
    cfg = {"seed": seed, "image_size": size, "datasets": {"phi": dict(ds_cfg, kind="synthetic", task="segmentation")}}
    src = SyntheticSource("phi", cfg["datasets"]["phi"], cfg)
    rows = []
    for i, rec in enumerate(src.records().itertuples(index=False)):
        sample = src.load(rec.image_id)
        image_id = f"1.2.826.0.1.3680043.8.498.{1000 + i}"
        path = write_dicom(root / "dicom" / image_id[-2:] / f"{image_id}.dcm",
                           np.round(sample.image * 255).astype(np.uint8), jpeg=True)
        ds = pydicom.dcmread(path)
        ds.InstitutionName = SECRET_INSTITUTION
        block = ds.private_block(0x0011, "SALIENCY-AUDIT TEST", create=True)
        block.add_new(0x01, "LT", SECRET_BURNED_IN)
        ds.save_as(path, enforce_file_format=True)
        rle = rle_encode(sample.mask) if sample.mask.any() else "-1"
        rows.append({"ImageId": image_id, " EncodedPixels": rle})
    pd.DataFrame(rows).to_csv(root / "train-rle.csv", index=False)
    return {"kind": "siim", "images_dir": str(root / "dicom"), "rle_csv": str(root / "train-rle.csv")}
