"""Real-data sources: SIIM-ACR Pneumothorax (``siim``), RSNA Pneumonia (``rsna``) and a generic
image folder with a labels CSV (``folder``).

Each source reads its labels once (cheap: CSV + a listing of the image folder, no pixels) and
checks them, so a bad row stops the manifest step with an :class:`~saliency_audit.errors.InputError`
naming the file, the row (CSV line number, header = line 1) and what was expected. Pixel-level
checks (RLE length, boxes inside the image, mask size) happen when an image is loaded for its shard.

Label/file matching: an image id in a labels file without an image file is an error for every
kind. An image file without a label row is an error for ``folder``; for ``siim``/``rsna`` it is
logged and skipped (documented: the Kaggle SIIM ``dicom-images-train`` folder holds 37 more DICOMs
than ``train-rle.csv`` labels, and the paper's 10675-image split covers only the labelled ones).
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..readers import read_labels_csv
from .base import RECORD_COLUMNS, Sample, Source, register
from .dicom import IMAGE_SUFFIXES, read_image, read_mask
from .rle import rle_decode, rle_numbers

log = logging.getLogger(__name__)

#: RSNA classes the paper kept (``stage_2_detailed_class_info.csv``): 14863 images.
RSNA_KEEP_CLASSES = ("Normal", "Lung Opacity")


# ----------------------------------------------------------------------------------------- helpers
def index_images(images_dir) -> dict[str, str]:
    """Image files under ``images_dir`` (recursive) keyed by file stem: ``{stem: path}``.

    Paths keep the form of ``images_dir`` as given (relative stays relative). Hidden files are
    skipped; two files with the same stem are an error (the image id would be ambiguous).
    """
    root = Path(images_dir)
    if not root.is_dir():
        raise InputError(f"{root}: images folder not found")
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith(".") or not f.lower().endswith(IMAGE_SUFFIXES):
                continue
            p = os.path.join(dirpath, f)
            stem = Path(f).stem
            if stem in out:
                raise InputError(f"{root}: two image files for id {stem!r}: {out[stem]} and {p}; expected one per id")
            out[stem] = p
    return out


def _examples(values, n=3) -> str:
    values = list(values)
    more = f" (and {len(values) - n} more)" if len(values) > n else ""
    return ", ".join(repr(v) for v in values[:n]) + more


def _check_ids_have_files(csv, ids, files: dict, kind: str):
    missing = [i for i in ids if i not in files]
    if missing:
        raise InputError(
            f"{csv}: {len(missing)} image id(s) have no image file in the images folder, e.g. {_examples(missing)}; "
            f"expected a file <id>.dcm (or .png/.jpg) for every labelled {kind} image"
        )


def _check_box(path, line, image_id, box, shape):
    x, y, w, h = (float(v) for v in box)
    H, W = shape
    if not (x >= 0 and y >= 0 and x + w <= W and y + h <= H):
        raise InputError(
            f"{path}: row {line}: image {image_id}: box x={x:g}, y={y:g}, w={w:g}, h={h:g} lies outside the "
            f"{W}x{H} (width x height) image; expected 0 <= x, x + w <= {W}, 0 <= y, y + h <= {H}"
        )


def _parse_box(path, line, image_id, values, names):
    try:
        box = [float(v) for v in values]
    except (TypeError, ValueError):
        raise InputError(
            f"{path}: row {line}: image {image_id}: box {names} = {list(values)} are not numbers"
        ) from None
    if not np.all(np.isfinite(box)):
        raise InputError(
            f"{path}: row {line}: image {image_id}: positive image with an empty box {names}; expected four numbers"
        )
    if box[2] <= 0 or box[3] <= 0:
        raise InputError(f"{path}: row {line}: image {image_id}: box width/height {box[2]:g}/{box[3]:g}; expected > 0")
    return box


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or pd.isna(v) or str(v).strip() == ""


def _records(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    df["label"] = df["label"].astype(int)
    df["has_finding"] = df["has_finding"].astype(bool)
    return df


class _LabelledSource(Source):
    """Shared behaviour: a cached per-image table ``{id: info}`` built once from the labels."""

    def _table(self) -> dict:
        raise NotImplementedError

    @cached_property
    def table(self) -> dict:
        table = self._table()
        if not table:
            raise InputError(f"dataset {self.name!r}: no images left after reading and filtering the labels")
        return table

    def info(self, image_id: str) -> dict:
        try:
            return self.table[image_id]
        except KeyError:
            raise InputError(
                f"dataset {self.name!r}: image {image_id!r} is not in the labels (stale manifest?)"
            ) from None

    def records(self) -> pd.DataFrame:
        return _records([(i, t["label"], t["label"] == 1, t["path"]) for i, t in self.table.items()])


# --------------------------------------------------------------------------------------------- SIIM
@register
class SiimSource(_LabelledSource):
    """SIIM-ACR Pneumothorax: DICOMs named ``<ImageId>.dcm`` (any depth under ``images_dir``) and
    ``train-rle.csv`` (``ImageId, EncodedPixels``; Kaggle relative column-major RLE, ``-1`` = no
    finding, several rows per image are unioned). Label = has_finding = any mask (Arun et al. 2021).
    """

    kind = "siim"

    @property
    def csv(self) -> Path:
        return Path(self.cfg.get("rle_csv") or self.cfg["labels_csv"])

    def _table(self) -> dict:
        df = read_labels_csv(self.csv, ["ImageId", "EncodedPixels"], "RLE CSV")
        table: dict[str, dict] = {}
        for iid, rle, line in zip(df["ImageId"], df["EncodedPixels"], df["_line"]):
            if _blank(iid):
                raise InputError(f"{self.csv}: row {line}: empty ImageId")
            if _blank(rle):
                raise InputError(f"{self.csv}: row {line}: image {iid}: empty EncodedPixels; expected '-1' or an RLE")
            try:
                pairs = rle_numbers(rle)
            except InputError as exc:
                raise InputError(f"{self.csv}: row {line}: image {iid}: {exc}") from None
            t = table.setdefault(iid, {"rles": [], "label": 0})
            if len(pairs):
                t["rles"].append((int(line), rle))
                t["label"] = 1
        files = index_images(self.cfg["images_dir"])
        _check_ids_have_files(self.csv, table, files, "SIIM")
        extra = len(set(files) - set(table))
        if extra:
            log.warning(
                "%s: %d image file(s) have no row in %s and are skipped", self.cfg["images_dir"], extra, self.csv
            )
        for iid, t in table.items():
            t["path"] = files[iid]
        return table

    def load(self, image_id: str) -> Sample:
        t = self.info(image_id)
        img = read_image(t["path"])
        mask = np.zeros(img.shape, bool)
        for line, rle in t["rles"]:
            try:
                mask |= rle_decode(rle, *img.shape)
            except InputError as exc:
                raise InputError(f"{self.csv}: row {line}: image {image_id} ({t['path']}): {exc}") from None
        return Sample(image=img, mask=mask)


# --------------------------------------------------------------------------------------------- RSNA
@register
class RsnaSource(_LabelledSource):
    """RSNA Pneumonia Detection: ``<patientId>.dcm`` and ``stage_2_train_labels.csv``
    (``patientId, x, y, width, height, Target``; one row per box, empty box for Target 0), filtered
    by ``stage_2_detailed_class_info.csv`` to ``keep_classes`` (default Normal + Lung Opacity, as in
    Arun et al. 2021: 14863 images). Label = has_finding = Target; boxes in image pixels.
    """

    kind = "rsna"
    BOX = ["x", "y", "width", "height"]

    @property
    def csv(self) -> Path:
        return Path(self.cfg["labels_csv"])

    def _table(self) -> dict:
        df = read_labels_csv(self.csv, ["patientId", *self.BOX, "Target"], "RSNA labels CSV")
        table: dict[str, dict] = {}
        for row in df.to_dict("records"):
            pid, line = row["patientId"], row["_line"]
            if _blank(pid):
                raise InputError(f"{self.csv}: row {line}: empty patientId")
            if row["Target"] not in ("0", "1"):
                raise InputError(f"{self.csv}: row {line}: patient {pid}: Target {row['Target']!r}; expected 0 or 1")
            target = int(row["Target"])
            t = table.setdefault(pid, {"label": target, "boxes": [], "line": line})
            if t["label"] != target:
                raise InputError(
                    f"{self.csv}: row {line}: patient {pid}: Target {target} disagrees with row {t['line']}"
                )
            values = [row[c] for c in self.BOX]
            if target == 1:
                t["boxes"].append((int(line), _parse_box(self.csv, line, pid, values, self.BOX)))
            elif not all(_blank(v) for v in values):
                raise InputError(
                    f"{self.csv}: row {line}: patient {pid}: Target 0 with a box {values}; expected empty x, y, width, height"
                )
        self._dropped: set = set()
        table = self._filter_classes(table)
        files = index_images(self.cfg["images_dir"])
        _check_ids_have_files(self.csv, table, files, "RSNA")
        extra = len(set(files) - set(table) - self._dropped)
        if extra:
            log.warning(
                "%s: %d image file(s) have no row in %s and are skipped", self.cfg["images_dir"], extra, self.csv
            )
        for pid, t in table.items():
            t["path"] = files[pid]
        return table

    def _filter_classes(self, table: dict) -> dict:
        info_csv = self.cfg.get("class_info_csv")
        if not info_csv:
            log.warning(
                "datasets.%s.class_info_csv is not set: no class filter, so every patient of %s is kept "
                "(\"No Lung Opacity / Not Normal\" ones as negatives); the paper keeps only %s "
                "(set class_info_csv to stage_2_detailed_class_info.csv to apply its filter)",
                self.name, self.csv, list(RSNA_KEEP_CLASSES),
            )
            return table
        keep = list(self.cfg.get("keep_classes") or RSNA_KEEP_CLASSES)
        info = read_labels_csv(info_csv, ["patientId", "class"], "RSNA class info CSV")
        cls: dict[str, tuple[str, int]] = {}
        for pid, c, line in zip(info["patientId"], info["class"], info["_line"]):
            if pid in cls and cls[pid][0] != c:
                raise InputError(
                    f"{info_csv}: row {line}: patient {pid}: class {c!r} disagrees with row {cls[pid][1]} ({cls[pid][0]!r})"
                )
            cls.setdefault(pid, (c, line))
        unknown = sorted(set(keep) - {c for c, _ in cls.values()})
        if unknown:
            raise InputError(
                f"{info_csv}: keep_classes {unknown} do not occur in the class column; "
                f"classes present: {sorted({c for c, _ in cls.values()})}"
            )
        missing = [p for p in table if p not in cls]
        if missing:
            raise InputError(
                f"{info_csv}: {len(missing)} patient(s) of {self.csv} have no class row, e.g. {_examples(missing)}"
            )
        for pid, t in table.items():
            c, line = cls[pid]
            if (c == "Lung Opacity" and t["label"] == 0) or (c == "Normal" and t["label"] == 1):
                raise InputError(
                    f"{info_csv}: row {line}: patient {pid}: class {c!r} but Target {t['label']} in {self.csv}"
                )
        out = {p: t for p, t in table.items() if cls[p][0] in keep}
        self._dropped = set(table) - set(out)
        log.info("%s: kept %d of %d patients with class in %s", info_csv, len(out), len(table), keep)
        if not out:
            raise InputError(f"{info_csv}: no patient has a class in keep_classes {keep}; the dataset would be empty")
        return out

    def load(self, image_id: str) -> Sample:
        t = self.info(image_id)
        img = read_image(t["path"])
        for line, box in t["boxes"]:
            _check_box(self.csv, line, image_id, box, img.shape)
        boxes = np.array([b for _, b in t["boxes"]], np.float32).reshape(-1, 4)
        return Sample(image=img, mask=np.zeros(img.shape, bool), boxes=boxes)


# ------------------------------------------------------------------------------------------- folder
@register
class FolderSource(_LabelledSource):
    """Any folder of PNG/JPEG/DICOM radiographs with a labels CSV.

    Config keys: ``labels_csv``; ``images_dir`` (relative image/mask paths are taken inside it,
    and every image file in it must have a label row); ``id_column`` (default ``image_id``; when
    absent the file stem of the path is the id); ``path_column`` (default ``path``; when absent the
    image is found in ``images_dir`` by id); ``label_column`` (default ``label``, 0/1);
    ``task: segmentation`` with ``mask_column`` (mask image paths, nonzero = finding; empty for
    negatives) or ``task: detection`` with ``box_columns`` ``[x, y, w, h]`` (pixels of the image;
    several rows per image = several boxes; empty for negatives). has_finding = label.
    """

    kind = "folder"

    @property
    def csv(self) -> Path:
        return Path(self.cfg["labels_csv"])

    def _resolve(self, p: str) -> str:
        d = self.cfg.get("images_dir")
        return str(Path(d) / p) if d and not os.path.isabs(p) else p

    def _table(self) -> dict:
        cfg, csv = self.cfg, self.csv
        task = cfg.get("task", "segmentation")
        id_col = cfg.get("id_column", "image_id")
        path_col = cfg.get("path_column", "path")
        label_col = cfg.get("label_column", "label")
        mask_col, box_cols = cfg.get("mask_column"), cfg.get("box_columns")
        if task == "segmentation" and not mask_col:
            raise InputError(f"datasets.{self.name}: a folder dataset with task segmentation needs mask_column")
        if task == "detection" and not box_cols:
            raise InputError(
                f"datasets.{self.name}: a folder dataset with task detection needs box_columns [x, y, w, h]"
            )
        df = read_labels_csv(csv, [label_col] + ([mask_col] if task == "segmentation" else list(box_cols)))
        has_id, has_path = id_col in df.columns, path_col in df.columns
        for key, col, present in (("id_column", id_col, has_id), ("path_column", path_col, has_path)):
            if key in cfg and not present:
                raise InputError(f"{csv}: no column {col!r} (datasets.{self.name}.{key}); has {list(df.columns)}")
        if not has_id and not has_path:
            raise InputError(
                f"{csv}: needs an id column {id_col!r} or a path column {path_col!r}; has {list(df.columns)}"
            )
        files = None
        if not has_path:
            if not cfg.get("images_dir"):
                raise InputError(
                    f"{csv}: without a path column {path_col!r}, images_dir is needed to find the images by id"
                )
            files = index_images(cfg["images_dir"])
        table: dict[str, dict] = {}
        for row in df.to_dict("records"):
            line = row["_line"]
            path = row[path_col] if has_path else None
            if has_path and _blank(path):
                raise InputError(f"{csv}: row {line}: empty {path_col!r}; expected an image file path")
            iid = row[id_col] if has_id else Path(path).stem
            if _blank(iid):
                raise InputError(f"{csv}: row {line}: empty {id_col!r}; expected an image id")
            if files is not None:
                if iid not in files:
                    raise InputError(f"{csv}: row {line}: image {iid!r} has no file in {cfg['images_dir']}")
                path = files[iid]
            else:
                path = self._resolve(path)
            lab = str(row[label_col]).strip().lower()
            if lab not in ("0", "1", "0.0", "1.0", "true", "false"):
                raise InputError(f"{csv}: row {line}: image {iid}: {label_col} {row[label_col]!r}; expected 0 or 1")
            label = int(lab in ("1", "1.0", "true"))
            t = table.setdefault(iid, {"label": label, "path": path, "line": line, "boxes": [], "mask": None})
            if t["label"] != label:
                raise InputError(f"{csv}: row {line}: image {iid}: {label_col} {label} disagrees with row {t['line']}")
            if t["path"] != path:
                raise InputError(
                    f"{csv}: row {line}: image {iid}: path {path} disagrees with row {t['line']} ({t['path']})"
                )
            if task == "segmentation":
                m = row[mask_col]
                if not _blank(m):
                    if t["mask"] not in (None, self._resolve(m)):
                        raise InputError(f"{csv}: row {line}: image {iid}: a second mask file; expected one per image")
                    t["mask"] = self._resolve(m)
                    t["mask_line"] = line
            else:
                values = [row[c] for c in box_cols]
                if all(_blank(v) for v in values):
                    if label == 1:
                        raise InputError(
                            f"{csv}: row {line}: image {iid}: label 1 with an empty box {list(box_cols)}; expected x, y, w, h"
                        )
                elif label == 0:
                    raise InputError(
                        f"{csv}: row {line}: image {iid}: label 0 with a box {values}; expected empty box columns"
                    )
                else:
                    t["boxes"].append((line, _parse_box(csv, line, iid, values, list(box_cols))))
        for iid, t in table.items():
            if task == "segmentation" and t["label"] == 1 and t["mask"] is None:
                raise InputError(f"{csv}: row {t['line']}: image {iid}: label 1 but no mask file in {mask_col!r}")
            if not os.path.isfile(t["path"]):
                raise InputError(f"{csv}: row {t['line']}: image {iid}: image file {t['path']} not found")
            if t["mask"] is not None and not os.path.isfile(t["mask"]):
                raise InputError(f"{csv}: row {t['mask_line']}: image {iid}: mask file {t['mask']} not found")
        if cfg.get("images_dir"):
            self._check_unlabelled(table)
        return table

    def _check_unlabelled(self, table: dict):
        used = {os.path.normpath(t["path"]) for t in table.values()}
        used |= {os.path.normpath(t["mask"]) for t in table.values() if t["mask"]}
        files = index_images(self.cfg["images_dir"])
        extra = sorted(p for p in files.values() if os.path.normpath(p) not in used)
        if extra:
            raise InputError(
                f"{self.cfg['images_dir']}: {len(extra)} image file(s) have no row in {self.csv}, e.g. {_examples(extra)}; "
                "expected a label row for every image in images_dir (move unlabelled files out)"
            )

    def load(self, image_id: str) -> Sample:
        t = self.info(image_id)
        img = read_image(t["path"])
        mask = np.zeros(img.shape, bool)
        if t["mask"] is not None:
            mask = read_mask(t["mask"])
            if mask.shape != img.shape:
                raise InputError(
                    f"{self.csv}: row {t['mask_line']}: image {image_id}: mask {t['mask']} is {mask.shape[1]}x{mask.shape[0]} "
                    f"but the image {t['path']} is {img.shape[1]}x{img.shape[0]}; expected the same size"
                )
        for line, box in t["boxes"]:
            _check_box(self.csv, line, image_id, box, img.shape)
        boxes = np.array([b for _, b in t["boxes"]], np.float32).reshape(-1, 4)
        return Sample(image=img, mask=mask, boxes=boxes)
