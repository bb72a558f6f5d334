"""The source interface and the registry of source kinds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError

RECORD_COLUMNS = ["image_id", "label", "has_finding", "source"]


@dataclass
class Sample:
    """One image with its ground truth at the source's native resolution.

    image : float array (H, W) in [0, 1], display-ready (MONOCHROME1 already inverted).
    mask : bool array (H, W); for detection tasks the union of the boxes.
    boxes : float array (k, 4) of x, y, width, height in pixels of ``image``; empty for masks.
    """

    image: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))


def box_mask(boxes, size: int) -> np.ndarray:
    """Union of boxes (x, y, w, h in pixels) as a size x size 0/1 mask (pixel centres inside).

    A box too small to contain any pixel centre marks the pixel that contains its own centre, so
    a positive image never ends up with an empty box mask.
    """
    m = np.zeros((size, size), np.uint8)
    for x, y, w, h in np.asarray(boxes, float).reshape(-1, 4):
        x0, y0 = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        x1, y1 = int(np.ceil(x + w - 0.5)), int(np.ceil(y + h - 0.5))
        if x1 <= x0 or y1 <= y0:
            cx, cy = int(np.floor(x + w / 2)), int(np.floor(y + h / 2))
            x0, x1, y0, y1 = cx, cx + 1, cy, cy + 1
        m[max(y0, 0) : max(min(y1, size), 0), max(x0, 0) : max(min(x1, size), 0)] = 1
    return m


class Source:
    """Base class: a configured data source of one dataset."""

    kind: str = ""

    def __init__(self, name: str, cfg: dict, config: dict):
        self.name, self.cfg, self.config = name, cfg, config

    def records(self) -> pd.DataFrame:
        """One row per image: columns :data:`RECORD_COLUMNS`. Must be cheap (no pixel reads)."""
        raise NotImplementedError

    def load(self, image_id: str) -> Sample:
        """Read one image and its ground truth. Raises :class:`InputError` naming the file."""
        raise NotImplementedError


SOURCES: dict[str, type[Source]] = {}


def register(cls):
    SOURCES[cls.kind] = cls
    return cls


def get_source(name: str, config: dict) -> Source:
    """The source of dataset ``name`` of ``config``."""
    from . import chexlocalize, sources, synthetic  # noqa: F401  (register the kinds)

    cfg = config["datasets"][name]
    kind = cfg.get("kind")
    if kind not in SOURCES:
        raise InputError(f"dataset {name!r}: unknown kind {kind!r}; expected one of {sorted(SOURCES)}")
    return SOURCES[kind](name, cfg, config)
