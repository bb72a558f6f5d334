"""Train/val/test splits: stratified and seeded, or read from a published split file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..errors import InputError


def stratified_split(ids, labels, fractions=(0.81, 0.09, 0.10), seed=0) -> pd.Series:
    """Assign train/val/test stratified by label (sklearn ``train_test_split`` twice).

    The paper split 81:9:10 stratified by label (SIIM 8646/961/1068). Returns a Series indexed
    by image id. Classes too small to stratify fall back to an unstratified split.
    """
    ids = np.asarray(ids)
    labels = np.asarray(labels)
    fr = np.asarray(fractions, float) / np.sum(fractions)
    n = len(ids)
    n_test = max(1, int(round(fr[2] * n)))
    n_val = max(1, int(round(fr[1] * n)))
    if n_test + n_val >= n:
        raise InputError(f"{n} images are too few for a train/val/test split with fractions {list(fractions)}")

    def split(x, y, size, seed):
        strat = y if np.min(np.unique(y, return_counts=True)[1]) >= 2 and len(np.unique(y)) > 1 else None
        try:
            return train_test_split(x, y, test_size=size, random_state=seed, stratify=strat)
        except ValueError:
            return train_test_split(x, y, test_size=size, random_state=seed, stratify=None)

    rest_x, test_x, rest_y, _ = split(ids, labels, n_test, seed)
    train_x, val_x, _, _ = split(rest_x, rest_y, n_val, seed + 1)
    out = pd.Series("train", index=pd.Index(ids, name="image_id"), name="split")
    out[val_x] = "val"
    out[test_x] = "test"
    return out


def read_split_file(path, ids) -> pd.Series:
    """Splits from a published file (``Image_ID, Split``; an unnamed index column is ignored).

    The paper's files (``resources/splits/pneumothorax_splits.csv``: SIIM 8646/961/1068 train/val/test;
    ``pneumonia_splits.csv``: RSNA 12039/1338/1486, ids ``<patientId>.png``) are reproduced exactly.
    Image ids are matched as written and without a file extension (``.png/.jpg/.jpeg/.dcm``).
    Every image must appear in the file; ids in the file without an image are ignored (the paper's
    files cover the filtered datasets). An id listed twice with different splits is an error.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: split file is empty; expected columns Image_ID, Split") from None
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read split file ({exc})") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing_cols = {"Image_ID", "Split"} - set(df.columns)
    if missing_cols:
        raise InputError(f"{path}: split file needs columns Image_ID, Split; missing {sorted(missing_cols)}")
    raw = df["Image_ID"].fillna("").str.strip()
    split = df["Split"].fillna("").str.strip().str.lower()
    bad = ~split.isin(["train", "val", "test"]) | (raw == "")
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{path}: row {row + 2}: Image_ID {df['Image_ID'].iloc[row]!r}, Split {df['Split'].iloc[row]!r}; "
            "expected an id and one of train/val/test"
        )
    stripped = raw.str.replace(r"\.(png|jpg|jpeg|dcm)$", "", regex=True, case=False)
    ext = (stripped != raw).to_numpy()
    lines = np.arange(len(df)) + 2
    table = pd.DataFrame(
        {
            "key": np.concatenate([raw.to_numpy(str), stripped.to_numpy(str)[ext]]),
            "split": np.concatenate([split.to_numpy(str), split.to_numpy(str)[ext]]),
            "line": np.concatenate([lines, lines[ext]]),
        }
    )
    table = table.sort_values("line", kind="stable")
    first = table.drop_duplicates("key")
    clash = table.merge(first, on="key", suffixes=("", "_first"))
    clash = clash[clash["split"] != clash["split_first"]]
    if len(clash):
        c = clash.iloc[0]
        raise InputError(
            f"{path}: row {c['line']}: image {c['key']!r} is {c['split']!r} but row {c['line_first']} says "
            f"{c['split_first']!r}; expected one split per image"
        )
    mapping = pd.Series(first["split"].values, index=first["key"].values)
    ids = pd.Index(ids, name="image_id")
    absent = ids.difference(mapping.index)
    if len(absent):
        raise InputError(
            f"{path}: {len(absent)} images have no split, e.g. {list(absent[:3])}; "
            "the split file must list every image of the dataset"
        )
    return pd.Series(mapping.loc[ids].values, index=ids, name="split")


def grouped_split(ids, labels, groups, fractions=(0.81, 0.09, 0.10), seed=0) -> pd.Series:
    """Like :func:`stratified_split`, with every group's images in one split.

    With one image per group this *is* :func:`stratified_split` (same call, same result).
    Otherwise the groups are split by :func:`stratified_split`, stratified by their share of
    positives (rounded to 0, 1/2 or 1), so the split fractions hold for groups, and for images
    when groups are of (nearly) equal size. Used for semi-synthetic data, where a group is the
    background radiograph that several images are drawn on (no radiograph in two splits).
    """
    ids, labels, groups = np.asarray(ids), np.asarray(labels), np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    if len(uniq) == len(ids):
        return stratified_split(ids, labels, fractions, seed)
    share = np.bincount(inv, labels.astype(float)) / np.bincount(inv)
    try:
        by_group = stratified_split(uniq, np.round(2 * share).astype(int), fractions, seed)
    except InputError:
        raise InputError(
            f"{len(uniq)} groups (background files) are too few for a train/val/test split with fractions "
            f"{list(fractions)}: every group's images stay in one split; add files"
        ) from None
    return pd.Series(by_group.loc[groups].values, index=pd.Index(ids, name="image_id"), name="split")


def groups_in_several_splits(groups, split) -> list:
    """Groups (e.g. background files) whose images are in more than one split."""
    df = pd.DataFrame({"group": np.asarray(groups), "split": np.asarray(split)})
    n = df.groupby("group")["split"].nunique()
    return sorted(n.index[n > 1].tolist())
