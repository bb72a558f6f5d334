"""CheXlocalize ground truth (``kind: chexlocalize``): COCO compressed RLE segmentations per image and finding.

CheXlocalize (Saporta et al., Nat. Mach. Intell. 2022) publishes radiologist segmentations of 10
pathologies on CheXpert validation/test images as ``gt_segmentations_{val,test}.json``:
``{image_id: {finding: {"size": [h, w], "counts": "<COCO RLE string>"}}}`` (image ids such as
``patient64541_study1_view1_frontal``). A dataset of this kind scores one finding (``finding:``;
``findings: [...]`` in the config expands into one dataset per finding, see
:func:`saliency_audit.byom.index.expand_datasets`). has_finding = label = the mask is non-empty.

Images are optional (``images_dir``: ``<id>.<ext>`` anywhere below it, or CheXpert's
``patientX/studyY/viewZ_frontal.jpg`` layout); without them the shard stores black images of the
mask's size (the criteria need only masks and maps; report overlays are then blank).

The COCO RLE string decoder is :func:`coco_rle_counts` (a re-implementation of pycocotools'
``rleFrString``, ``maskApi.c``: 5 bits per character offset by 48, bit 0x20 = more characters follow,
bit 0x10 of the last character = negative; counts from the third on are stored as differences to
the count two before). Runs alternate background/foreground starting with background, over the
column-major (Fortran-order) flattened h x w mask.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from .base import RECORD_COLUMNS, Sample, Source, register
from .dicom import IMAGE_SUFFIXES, read_image

#: The ten CheXlocalize pathologies.
FINDINGS = (
    "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Lesion", "Airspace Opacity", "Edema",
    "Consolidation", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Support Devices",
)


def coco_rle_counts(counts: str) -> np.ndarray:
    """Decode a COCO compressed RLE ``counts`` string into run lengths (int64).

    Raises :class:`InputError` (no file name; callers add it) for characters outside the alphabet
    or a truncated value.
    """
    s = counts.encode() if isinstance(counts, str) else bytes(counts)
    cnts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            if p >= len(s):
                raise InputError("COCO RLE counts string ends inside a value")
            c = s[p] - 48
            if not 0 <= c < 64:
                raise InputError(f"COCO RLE counts has character {chr(s[p])!r} outside the RLE alphabet ('0'..'o')")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return np.asarray(cnts, dtype=np.int64)


def coco_rle_encode_counts(runs) -> str:
    """Inverse of :func:`coco_rle_counts` (pycocotools ``rleToString``); used by tests and tools."""
    runs = [int(r) for r in runs]
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def coco_rle_decode(rle: dict) -> np.ndarray:
    """A COCO RLE ``{"size": [h, w], "counts": str | list}`` as a bool (h, w) mask."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"expected a COCO RLE {{'size': [h, w], 'counts': ...}}, got {str(rle)[:80]!r}") from None
    runs = np.asarray(counts, np.int64) if isinstance(counts, list) else coco_rle_counts(counts)
    if (runs < 0).any():
        raise InputError("COCO RLE has a negative run length")
    if int(runs.sum()) != h * w:
        raise InputError(f"COCO RLE runs cover {int(runs.sum())} pixels; expected h*w = {h}*{w} = {h * w}")
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    return flat.reshape((h, w), order="F")


def _has_foreground(rle: dict) -> bool:
    counts = rle["counts"]
    runs = np.asarray(counts, np.int64) if isinstance(counts, list) else coco_rle_counts(counts)
    return bool((runs[1::2] > 0).any())


@register
class ChexlocalizeSource(Source):
    """CheXlocalize segmentations of one finding (module docstring). Config: ``gt_json``, ``finding``,
    optional ``images_dir``."""

    kind = "chexlocalize"

    @property
    def path(self) -> Path:
        return Path(self.cfg["gt_json"])

    @property
    def finding(self) -> str:
        f = self.cfg.get("finding")
        if not f:
            raise InputError(f"datasets.{self.name}: a chexlocalize dataset needs finding (or findings: [...])")
        return f

    @cached_property
    def gt(self) -> dict:
        if not self.path.is_file():
            raise InputError(f"{self.path}: CheXlocalize ground-truth JSON not found")
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.path}: unreadable JSON ({exc})") from None
        if not isinstance(data, dict) or not data:
            raise InputError(f"{self.path}: expected {{image_id: {{finding: rle}}}}")
        out = {}
        for iid, per in data.items():
            if not isinstance(per, dict) or self.finding not in per:
                have = sorted(per) if isinstance(per, dict) else type(per).__name__
                raise InputError(f"{self.path}: image {iid!r} has no {self.finding!r} segmentation; has {have}")
            out[str(iid)] = per[self.finding]
        return out

    @cached_property
    def images(self) -> dict:
        d = self.cfg.get("images_dir")
        if not d:
            return {}
        out = {}
        for dirpath, dirnames, filenames in os.walk(d, followlinks=True):
            dirnames.sort()
            for f in sorted(filenames):
                if not f.lower().endswith(IMAGE_SUFFIXES):
                    continue
                p = os.path.join(dirpath, f)
                rel = Path(os.path.relpath(p, d)).with_suffix("")
                for key in {rel.name, "_".join(rel.parts)}:  # <id>.jpg, or patientX/studyY/viewZ.jpg
                    out.setdefault(key, p)
        return out

    def records(self) -> pd.DataFrame:
        rows = []
        for iid, rle in self.gt.items():
            try:
                pos = _has_foreground(rle)
            except (InputError, KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{self.path}: image {iid}, {self.finding}: {exc}") from None
            rows.append((iid, int(pos), pos, str(self.path)))
        if self.cfg.get("images_dir"):
            missing = [i for i, *_ in rows if i not in self.images]
            if missing:
                raise InputError(
                    f"{self.cfg['images_dir']}: no image for {len(missing)} id(s) of {self.path}, e.g. {missing[:3]}"
                )
        df = pd.DataFrame(rows, columns=RECORD_COLUMNS)
        df["label"] = df["label"].astype(int)
        df["has_finding"] = df["has_finding"].astype(bool)
        return df

    def load(self, image_id: str) -> Sample:
        if image_id not in self.gt:
            raise InputError(f"{self.path}: image {image_id!r} is not in the ground truth (stale manifest?)")
        try:
            mask = coco_rle_decode(self.gt[image_id])
        except InputError as exc:
            raise InputError(f"{self.path}: image {image_id}, {self.finding}: {exc}") from None
        if self.images:
            img = read_image(self.images[image_id])
            if img.shape != mask.shape:
                raise InputError(
                    f"{self.path}: image {image_id}: mask size {mask.shape} differs from the image "
                    f"{self.images[image_id]} {img.shape}"
                )
        else:
            img = np.zeros(mask.shape, np.float64)
        return Sample(image=img, mask=mask)
