"""The tidy score table shared by every criterion, its gathering and its summary.

One row per (image, map or pair of maps, metric): ``dataset, criterion, method, model_a, model_b,
state, image_id, metric, value``; columns a criterion does not use are empty (e.g. ``model_b`` of
utility rows). Per-shard tables are concatenated in shard order; the summary gives means and SDs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..io import SCORE_COLUMNS as COLUMNS

KEYS = ["criterion", "method", "model_a", "model_b", "state", "metric"]
SUMMARY_COLUMNS = ["dataset", *KEYS, "n", "mean", "sd"]
THRESHOLD_COLUMNS = [
    "method", "metric", "threshold", "ci_low", "ci_high", "n_images", "partners", "n_pairs", "seed", "states",
    "n_randomized", "randomized_mean", "randomized_ci_low", "randomized_ci_high", "verdict",
]  # fmt: skip
#: Per anchor image of the degradation threshold: its pairs' number and mean similarity.
ANCHOR_COLUMNS = ["method", "metric", "image_id", "n_pairs", "mean"]
_TEXT = [c for c in COLUMNS if c != "value"]


def rows(dataset, criterion, method, model_a, model_b, state, image_ids, values: dict) -> pd.DataFrame:
    """Tidy rows of one map (or pair of maps) over images: ``values`` maps metric -> array (N,)."""
    ids = [str(i) for i in image_ids]
    frames = []
    for metric, v in values.items():
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (len(ids),):
            raise InputError(f"{criterion}/{method}/{metric}: {v.shape[0]} values for {len(ids)} images")
        frames.append(
            pd.DataFrame(
                {
                    "dataset": dataset,
                    "criterion": criterion,
                    "method": method,
                    "model_a": model_a or "",
                    "model_b": model_b or "",
                    "state": state or "",
                    "image_id": ids,
                    "metric": metric,
                    "value": v,
                },
                columns=COLUMNS,
            )
        )
    return concat(frames)


def concat(frames) -> pd.DataFrame:
    """Concatenate tidy tables (an empty list gives an empty table with the exact columns)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "value" else object) for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def read_scores(path) -> pd.DataFrame:
    """Read a tidy score CSV, checking its columns are exactly :data:`COLUMNS`."""
    path = Path(path)
    try:
        df = pd.read_csv(
            path, dtype={c: str for c in _TEXT}, keep_default_na=False, na_values={"value": ["", "NaN", "nan"]}
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: unreadable score table ({exc})") from exc
    if list(df.columns) != COLUMNS:
        raise InputError(f"{path}: columns {list(df.columns)}, expected {COLUMNS}")
    return df


def gather(paths) -> pd.DataFrame:
    """Concatenate per-shard score tables in the given (shard) order."""
    return concat([read_scores(p) for p in paths])


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD (ddof 1) and count of non-NaN values per (dataset, criterion, method, models, state, metric)."""
    if scores.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    g = scores.groupby(["dataset", *KEYS], sort=False, dropna=False)["value"]
    out = g.agg(n="count", mean="mean", sd="std").reset_index()
    return out[SUMMARY_COLUMNS]
