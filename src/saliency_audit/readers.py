"""Readers of user-supplied CSV files (labels, RLE, the BYOM maps index): pandas only, no TensorFlow.

Lowest layer: the data sources and the BYOM maps index (read by :mod:`.plan` at parse time) share
this reader, so it sits below both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError


def read_labels_csv(path, required=(), what="labels CSV", expected=None, keep_default_na=True) -> pd.DataFrame:
    """Read a CSV as strings with stripped column names; adds ``_line`` (1-based line in the file).

    Column names are stripped (the Kaggle SIIM file has ``' EncodedPixels'``). Raises
    :class:`InputError` when the file is missing/unreadable or lacks a ``required`` column
    (``expected`` says what the file should hold). ``keep_default_na=False`` keeps texts such as
    ``NA`` as they are (empty cells become ``""``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        df = pd.read_csv(path, dtype=str, skipinitialspace=True, keep_default_na=keep_default_na)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: {what} is empty; expected {expected or 'a header row and one row per image'}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read {what} ({exc})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = f" (expected {expected})" if expected else ""
        raise InputError(f"{path}: {what} lacks column(s) {missing}; has {list(df.columns)}{hint}")
    for c in df.columns:
        df[c] = df[c].str.strip()
    df["_line"] = np.arange(len(df)) + 2
    return df
