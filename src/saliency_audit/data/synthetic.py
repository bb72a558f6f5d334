"""Synthetic chest-radiograph phantoms with exact lesion ground truth (the embedded demo data).

Each image is generated from its own seeds, ``plan.derive_seed(seed, dataset, index[, part])``, so
any image can be made alone, in any order, by any shard job, with the same bytes every time. The
anatomy, the lesion, the device and the detector noise draw from separate streams, so
``SyntheticPhantomGenerator.generate(index, label=0)`` is the lesion-free twin of a positive: the
same radiograph except at the lesion (a counterfactual for checking what a saliency map sees).

The phantom is a frontal (PA) radiograph in display convention (air dark, bone bright): body
outline with soft-tissue fall-off, two lung fields with branching *lung markings* (vessels
radiating from the hila and tapering toward the pleura), mediastinum, spine, heart shadow,
hemidiaphragms with costophrenic angles, posterior ribs and clavicles, detector blur and noise.
Two findings (tasks) are simulated:

* ``segmentation`` - a pneumothorax-like finding: a crescent along the apical or lateral pleural
  surface of one lung in which the lung markings are absent and the lung is more lucent, bounded
  medially by a thin bright visceral pleural line (the radiographic signs of pneumothorax; SIIM-ACR
  masks outline the air). The mask is the crescent, exact to the pixel.
* ``detection`` - a pneumonia-like finding: 1-3 patches of airspace opacity within the lungs, each
  with its bounding box (as in RSNA Pneumonia); the mask is the union of the boxes.

An optional *confounder* (a radiopaque chest-tube-like device, never touching the lesion) is drawn
in a chosen fraction of positives and of negatives, for hidden-stratification studies
(Oakden-Rayner et al., "Hidden stratification causes clinically meaningful failures in machine
learning for medical imaging", CHIL 2020: chest drains in pneumothorax data).
In *semi-synthetic* mode (``backgrounds``: a folder of normal frontal radiographs) the lesion is
drawn into a real image instead of the phantom anatomy, inside that image's own lung field as
estimated by :func:`.backgrounds.estimate_lung_field` (placements that leave it are re-drawn and
counted); each file serves one image while there are enough files, and the manifest keeps each
file's images in one split. The pneumothorax removes only the fine lung-marking layer and darkens
the air space by a smooth offset (ribs and clavicles stay); the pneumonia opacity raises the local
level towards the surrounding soft tissue and never above it. The real image is not blurred or
re-noised unless ``background_detector``. See docs/synthetic.md.

Dataset keys (``datasets.<name>``): ``n_images``, ``prevalence``, ``lesion_size`` [min, max]
(fraction of the image side: the crescent's extent along the pleura / a patch's diameter),
``contrast`` [min, max] (fraction of the lung-to-soft-tissue intensity difference by which the
lesion changes the image), ``occult`` (fraction of the positives whose lesion is radiographically
occult: labelled and masked, but not drawn, as a pneumothorax seen on CT only), ``noise`` (standard deviation of the additive noise, in [0, 1] intensity
units), ``confounder`` {positives, negatives} (fractions), ``backgrounds`` (folder),
``background_detector`` (bool), ``image_size``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from ..errors import InputError
from ..plan import derive_seed, image_size, task
from .backgrounds import assign_backgrounds, estimate_lung_field, list_backgrounds, lung_markings, read_background
from .base import Sample, Source, box_mask, register

log = logging.getLogger(__name__)

#: Lung-to-soft-tissue intensity difference of the phantom: the unit of ``contrast``.
LUNG_DELTA = 0.30
DEFAULTS = {
    "n_images": 320,
    "prevalence": 0.5,
    "lesion_size": [0.18, 0.30],
    "contrast": [0.25, 0.45],
    "noise": 0.02,
    "background_detector": False,
    "occult": 0.0,
}
#: Placement draws per lesion on a real background before the image is given up as unusable; after
#: every 10 rejected draws the lesion is shrunk by ``SHRINK`` (a small lung field takes a smaller one).
MAX_DRAWS = 50
SHRINK = 0.9


@dataclass
class Phantom:
    """One generated image with everything a test needs to check it.

    image : float64 (S, S) in [0, 1]; mask : bool (S, S) (detection: union of boxes);
    boxes : float32 (k, 4) x, y, w, h in pixels (integers); lungs : bool (S, S) lung field;
    lesion : bool (S, S) pixels the finding changed (pneumothorax: the crescent; pneumonia: opacity
    above 15 % of its peak); device : bool (S, S) confounder pixels (empty without one);
    markings : float (S, S) the lung-marking (vessel) layer added to the image.
    """

    image: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    lungs: np.ndarray
    lesion: np.ndarray
    device: np.ndarray
    label: int
    confounder: bool
    markings: np.ndarray | None = None
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# dataset-level draws (cheap: no pixels)


def assign_labels(n: int, prevalence: float, seed: int) -> np.ndarray:
    """Exactly ``round(n * prevalence)`` positives at seeded random positions (int8 0/1)."""
    n_pos = int(round(n * prevalence))
    lab = np.zeros(n, np.int8)
    lab[np.random.default_rng(seed).permutation(n)[:n_pos]] = 1
    return lab


def assign_confounder(labels: np.ndarray, frac_pos: float, frac_neg: float, seed: int) -> np.ndarray:
    """Exactly ``round(n_pos * frac_pos)`` positives and ``round(n_neg * frac_neg)`` negatives."""
    rng = np.random.default_rng(seed)
    out = np.zeros(len(labels), bool)
    for value, frac in ((1, frac_pos), (0, frac_neg)):
        idx = np.flatnonzero(labels == value)
        k = int(round(len(idx) * frac))
        out[rng.permutation(idx)[:k]] = True
    return out


# ---------------------------------------------------------------------------------------------
# geometry helpers


def _smooth(mask: np.ndarray, sigma: float) -> np.ndarray:
    return ndi.gaussian_filter(mask.astype(np.float64), sigma) if sigma > 0 else mask.astype(np.float64)


def _splat(shape, pts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Accumulate weighted points (x, y in pixels) onto a canvas with bilinear weights."""
    h, w = shape
    canvas = np.zeros(h * w + 1, np.float64)
    x, y = pts[:, 0] - 0.5, pts[:, 1] - 0.5
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = np.where(ok, yi * w + xi, h * w)
        canvas += np.bincount(idx, weights * wt, minlength=h * w + 1)
    return canvas[:-1].reshape(h, w)


def _segments_to_points(p0: np.ndarray, p1: np.ndarray, w: np.ndarray, step: float = 0.5):
    """Sample points every ``step`` px along segments p0->p1 (arrays k x 2), weights per point."""
    length = np.linalg.norm(p1 - p0, axis=1)
    n = np.maximum(1, np.ceil(length / step).astype(int))
    seg = np.repeat(np.arange(len(p0)), n)
    start = np.repeat(np.cumsum(n) - n, n)
    t = (np.arange(n.sum()) - start + 0.5) / n[seg]
    pts = p0[seg] + (p1[seg] - p0[seg]) * t[:, None]
    return pts, w[seg] * (length / n)[seg]


class _Anatomy:
    """Random phantom anatomy on an S x S grid (normalized coordinates x, y in [0, 1])."""

    def __init__(self, rng: np.random.Generator, size: int):
        self.S = S = size
        c = (np.arange(S) + 0.5) / S
        self.y, self.x = c[:, None], c[None, :]
        self.cx = 0.5 + rng.uniform(-0.02, 0.02)
        self.bw = rng.uniform(0.39, 0.45)  # body half-width
        self.lungs = []
        for side in (-1, 1):  # -1: patient's right lung (image left)
            lung = {
                "side": side,
                "xc": self.cx + side * rng.uniform(0.195, 0.215),
                "a": rng.uniform(0.145, 0.165),  # half-width at the widest level
                "top": rng.uniform(0.10, 0.15),
                "bottom": rng.uniform(0.70, 0.76) + (0.03 if side == 1 else 0.0),  # right dome higher
                "dome": rng.uniform(0.05, 0.08),
            }
            self.lungs.append(lung)
        self.heart = {
            "xc": self.cx + rng.uniform(0.04, 0.06),
            "yc": rng.uniform(0.64, 0.67),
            "ax": rng.uniform(0.19, 0.22),
            "ay": rng.uniform(0.12, 0.14),
            "tilt": rng.uniform(0.35, 0.55),
        }

    # lung fields -------------------------------------------------------------------------------
    def lung_parts(self, lung):
        """(field, lateral-apical half-space) boolean masks of one lung.

        The second mask ignores the medial and diaphragmatic borders: its distance transform is
        the distance to the costal (apical/lateral) pleura.
        """
        x, y, s = self.x, self.y, lung["side"]
        top, bot = lung["top"], lung["bottom"]
        yc = top + 0.42 * (bot - top)  # widest level
        b = yc - top
        t = np.clip((y - top) / (bot - top), 0, 1)
        a_lat = lung["a"] * (0.72 + 0.42 * t)  # widening downwards, ending in the costophrenic angle
        a_med = lung["a"] * (0.80 + 0.15 * t)
        dx = (x - lung["xc"]) * s  # > 0 lateral
        dyn = np.clip((yc - y) / b, 0, None)  # > 0 above the widest level
        lat = (np.clip(dx, 0, None) / a_lat) ** 2.2 + dyn**2 < 1
        med = (np.clip(-dx, 0, None) / a_med) ** 2.2 + dyn**2.6 < 1
        # hemidiaphragm: dome highest medially-central, lowest at the costophrenic angle
        u = (x - (lung["xc"] - s * 0.02)) / (lung["a"] * 1.15)
        diaphragm = bot - lung["dome"] * np.clip(1 - u**2, 0, None) + 0.04 * np.clip(dx / lung["a"] - 0.6, 0, None)
        above = (y > top) & (y < diaphragm)
        field_ = lat & med & above
        field_ &= ~self.heart_mask(margin=0.0)  # heart borders: mostly left, a little right
        # lateral-apical region: everything medial/below the costal pleura counts as inside
        half = (lat & med) | ((y >= yc) & (dx <= 0))
        return field_, half | field_

    def heart_mask(self, margin=0.0):
        """Cardiac silhouette: an ellipse tilted so that the apex points down and to the patient's left."""
        h = self.heart
        ca, sa = np.cos(h["tilt"]), np.sin(h["tilt"])
        u = (self.x - h["xc"]) * ca + (self.y - h["yc"]) * sa
        v = -(self.x - h["xc"]) * sa + (self.y - h["yc"]) * ca
        return (u / (h["ax"] + margin)) ** 2 + (v / (h["ay"] + margin)) ** 2 < 1


class SyntheticPhantomGenerator:
    """Generate phantom ``index`` of a dataset (pure function of the settings and the index)."""

    def __init__(self, name: str, cfg: dict, seed: int, size: int, labels: np.ndarray, confounder: np.ndarray,
                 occult: np.ndarray | None = None):
        self.name, self.cfg, self.seed, self.S = name, cfg, int(seed), int(size)
        self.task = task(cfg)
        self.labels, self.confounder = labels, confounder
        self.occult = np.zeros(len(labels), bool) if occult is None else occult
        self.lesion_size = cfg.get("lesion_size", DEFAULTS["lesion_size"])
        self.contrast = cfg.get("contrast", DEFAULTS["contrast"])
        self.noise = float(cfg.get("noise", DEFAULTS["noise"]))
        self.backgrounds = list_backgrounds(cfg["backgrounds"]) if cfg.get("backgrounds") else None
        self.background_detector = bool(cfg.get("background_detector", DEFAULTS["background_detector"]))
        if self.backgrounds is not None:
            self.background_of = assign_backgrounds(
                len(labels), len(self.backgrounds), derive_seed(self.seed, name, "backgrounds")
            )

    # -----------------------------------------------------------------------------------------
    def generate(self, index: int, label: int | None = None) -> Phantom:
        """Phantom ``index``; ``label`` overrides the drawn label (a counterfactual twin).

        Anatomy, lesion, device and detector each draw from their own seeded stream, so the twin
        with the other label is the same radiograph except for the lesion (and the device's path,
        which must avoid the lesion).
        """
        if self.backgrounds is not None:
            return self._generate_on_background(index, label)
        S = self.S
        stream = self._streams(index)
        rng = stream()
        px = S / 128.0  # pixel scale: widths and blurs are defined at 128 px
        an = _Anatomy(rng, S)
        parts = [an.lung_parts(lung) for lung in an.lungs]
        lungs = parts[0][0] | parts[1][0]
        lung_soft = _smooth(lungs, 0.7 * px)
        label = int(self.labels[index]) if label is None else int(label)

        vessels = self._vessels(rng, an, lung_soft, px)
        base = self._anatomy_image(rng, an, lung_soft, px)

        lesion = np.zeros((S, S), bool)
        boxes = np.zeros((0, 4), np.float32)
        info = {}
        img = base.copy()
        if label:
            rng, c, size = self._lesion_draw(stream, info)
            if self.task == "segmentation":
                drawn, drawn_vessels, lesion, extra = self._pneumothorax(rng, an, parts, img, vessels, c, size, px)
                info.update(extra)
                mask = lesion.copy()
            else:
                drawn, opacity, lesion, boxes = self._pneumonia(rng, an, lungs, lung_soft, img, c, size, px)
                drawn_vessels = vessels * (1 - np.clip(2.5 * c, 0, 1) * opacity)  # consolidation hides markings
                mask = box_mask(boxes, S).astype(bool)
            # an occult lesion keeps its label and mask but leaves the radiograph as it was
            info["occult"] = bool(self.occult[index])
            if not info["occult"]:
                img, vessels = drawn, drawn_vessels
        else:
            mask = np.zeros((S, S), bool)
        img = img + vessels

        device = np.zeros((S, S), bool)
        conf = bool(self.confounder[index])
        if conf:
            img, device = self._device(stream("device"), an, img, mask | lesion, px)

        img = self._detector(stream("detector"), img, px)
        return Phantom(img, mask, boxes, lungs, lesion, device, label, conf, vessels, info)

    def _lesion_draw(self, stream, info):
        """The lesion's random stream and its first draws: contrast and size (recorded in ``info``)."""
        rng = stream("lesion")
        c = rng.uniform(*self.contrast)
        size = rng.uniform(*self.lesion_size)
        info.update(contrast=c, size=size)
        return rng, c, size

    def _streams(self, index):
        def stream(*keys):
            return np.random.default_rng(derive_seed(self.seed, self.name, index, *keys))

        return stream

    def _detector(self, rng, img, px):
        """Detector model: slight blur (MTF), global exposure (gamma), signal-dependent noise."""
        S = img.shape[0]
        img = ndi.gaussian_filter(img, 0.5 * px)
        gamma = rng.uniform(0.9, 1.1)
        img = np.clip(img, 0, 1) ** gamma
        if self.noise > 0:
            n = rng.standard_normal((S, S))
            n = 0.75 * n + 0.25 * ndi.gaussian_filter(n, 1.5 * px) * 4.0
            img = img + self.noise * n * (0.6 + 0.8 * np.sqrt(np.clip(img, 0, 1)))
        return np.clip(img, 0.0, 1.0)

    # -----------------------------------------------------------------------------------------
    def _anatomy_image(self, rng, an: _Anatomy, lung_soft, px):
        x, y, S = an.x, an.y, an.S
        d = np.abs(x - an.cx)
        # body: chest with shoulders, neck at the top; soft-tissue thickness ~ elliptical section
        half_w = an.bw * np.clip(0.55 + 0.45 * np.sqrt(np.clip((y - 0.0) / 0.14, 0, 1)), 0, 1)
        half_w = np.where(y < 0.06, 0.11 + (half_w - 0.11) * np.clip((y - 0.0) / 0.06, 0, 1) ** 2, half_w)
        r = np.clip(1 - (d / half_w) ** 2, 0, 1)
        body = np.sqrt(r)
        img = 0.08 + 0.50 * body + 0.05 * np.clip(y - 0.7, 0, None) / 0.3 * body  # abdomen thicker
        # lungs: air lowers attenuation, most in the thick central part of each lung
        img = img - LUNG_DELTA * lung_soft * (0.35 + 0.65 * body)
        # mediastinum and spine
        spine = np.exp(-(((x - an.cx) / 0.040) ** 6)) * np.clip((y - 0.02) / 0.1, 0, 1)
        vert = 0.5 + 0.5 * np.cos(2 * np.pi * (y * rng.uniform(11.5, 13.5) + rng.uniform(0, 1)))
        img = img + spine * (0.06 + 0.03 * vert ** 4)
        trachea = np.exp(-(((x - an.cx) / 0.018) ** 4)) * (y > 0.03) * np.clip((0.36 - y) / 0.05, 0, 1)
        img = img - 0.07 * _smooth(trachea, 1.0 * px)
        heart = _smooth(an.heart_mask(), 2.5 * px)
        img = img + 0.07 * heart * (y < 0.8)
        # hila: denser vascular roots
        for lung in an.lungs:
            hx, hy = an.cx + lung["side"] * 0.085, 0.43 + rng.uniform(-0.02, 0.02)
            img = img + 0.06 * np.exp(-(((x - hx) / 0.035) ** 2 + ((y - hy) / 0.06) ** 2))
        # posterior ribs: arcs from the spine, rising then falling laterally; cortex brighter
        # posterior ribs: arcs from the spine, rising then falling laterally; cortex brighter.
        # rib k follows y = y0 + k * gap - 0.30 u + 2.0 u^2 (u: distance from the midline)
        u = np.abs(x - an.cx)
        n_ribs, y0, gap = 10, rng.uniform(0.09, 0.11), rng.uniform(0.060, 0.066)
        th = rng.uniform(0.014, 0.017)
        phase = (y + 0.30 * u - 2.0 * u**2 - y0) / gap
        k = np.round(phase)
        dy = (phase - k) * gap / th
        band = np.exp(-(dy**4)) * (1 + 0.6 * np.exp(-(((np.abs(dy) - 0.9) / 0.25) ** 2)))
        extent = np.clip((u - 0.03) / 0.03, 0, 1) * np.clip((an.bw * 0.98 - u) / 0.03, 0, 1)
        ribs = band * ((k >= 0) & (k < n_ribs)) * extent
        img = img + 0.035 * ribs * (0.5 + 0.5 * lung_soft)
        # clavicles
        yc = 0.165 - 0.22 * (u - 0.05) + 0.5 * (u - 0.05) ** 2 + rng.uniform(-0.01, 0.01)
        clav = np.exp(-(((y - yc) / 0.016) ** 4)) * np.clip((u - 0.04) / 0.02, 0, 1) * np.clip((0.33 - u) / 0.03, 0, 1)
        img = img + 0.09 * clav
        # gastric bubble under the left hemidiaphragm (sometimes)
        if rng.uniform() < 0.6:
            gx, gy = an.lungs[1]["xc"] + rng.uniform(-0.03, 0.05), an.lungs[1]["bottom"] + rng.uniform(0.04, 0.08)
            img = img - 0.10 * np.exp(-(((x - gx) / 0.05) ** 2 + ((y - gy) / 0.03) ** 4))
        # outside the body: air
        outside = _smooth(r <= 0, 1.5 * px)
        img = img * (1 - outside) + 0.04 * outside
        return img

    def _vessels(self, rng, an: _Anatomy, lung_soft, px):
        """Lung markings: branching vessel trees from each hilum, tapering toward the pleura."""
        S = an.S
        thick_pts, thick_w, thin_pts, thin_w = [], [], [], []
        for lung in an.lungs:
            s = lung["side"]
            hil = np.array([an.cx + s * 0.09, 0.43 + rng.uniform(-0.02, 0.02)])
            n0 = 9
            ang = np.linspace(-1.35, 1.45, n0) + rng.uniform(-0.12, 0.12, n0)  # from up to down, lateral
            theta = np.where(s > 0, ang, np.pi - ang)
            p = np.repeat(hil[None], n0, 0)
            length = rng.uniform(0.06, 0.08, n0)
            width = np.full(n0, 1.0)
            for gen in range(6):
                q = p + length[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)
                (thick_pts if gen < 2 else thin_pts).append(np.stack([p, q], 0))
                (thick_w if gen < 2 else thin_w).append(width)
                k = len(p)
                theta = np.repeat(theta, 2) + np.tile([-1, 1], k) * rng.uniform(0.25, 0.55, 2 * k)
                theta += rng.normal(0, 0.1, 2 * k)
                p = np.repeat(q, 2, 0)
                length = np.repeat(length, 2) * rng.uniform(0.72, 0.92, 2 * k)
                width = np.repeat(width, 2) * 0.8
        out = np.zeros((S, S))
        for pts, ws, sigma in ((thick_pts, thick_w, 1.1 * px), (thin_pts, thin_w, 0.6 * px)):
            seg = np.concatenate(pts, axis=1) * S
            w = np.concatenate(ws)
            p, wt = _segments_to_points(seg[0], seg[1], w, step=0.5)
            out += ndi.gaussian_filter(_splat((S, S), p, wt), sigma) * (sigma / 0.6)
        return 0.10 * np.clip(out, 0, 1.5) * lung_soft

    # -----------------------------------------------------------------------------------------
    def _pneumothorax(self, rng, an, parts, img, vessels, c, size, px):
        """Crescent of pleural air at the apex or lateral pleura of one lung + visceral pleural line."""
        S = an.S
        li = int(rng.integers(2))
        lung, (fld, half) = an.lungs[li], parts[li]
        s = lung["side"]
        where = "apex" if rng.uniform() < 0.4 else "lateral"
        rows, cols = np.nonzero(fld)
        if where == "apex":
            top_row = rows.min()
            # apex point: the costal pleura a little lateral of the lung's top
            xs = lung["xc"] + s * rng.uniform(0.0, 0.5) * lung["a"]
            col = int(np.clip(np.round(xs * S - 0.5), cols.min(), cols.max()))
            colrows = rows[cols == col]
            p0 = np.array([col, colrows.min() if len(colrows) else top_row], float)
        else:
            lo, hi = rows.min(), rows.max()
            row = int(lo + rng.uniform(0.22, 0.62) * (hi - lo))
            rc = cols[rows == row]
            p0 = np.array([rc.max() if s > 0 else rc.min(), row], float)
        extent = size * S
        R = extent / 2
        D = rng.uniform(0.28, 0.42) * extent  # depth at the centre of the crescent
        dist = ndi.distance_transform_edt(half)
        yy, xx = np.mgrid[0:S, 0:S]
        r2 = ((xx - p0[0]) ** 2 + (yy - p0[1]) ** 2) / R**2
        depth = D * np.clip(1 - r2, 0, None) ** 0.7
        crescent = fld & (dist < depth)
        if crescent.sum() < 3:  # degenerate (should not happen at sane sizes): take the nearest pixels
            crescent = fld & (r2 <= np.sort(r2[fld])[min(5, fld.sum() - 1)])
        soft = _smooth(crescent, 0.6 * px)
        # no lung markings beyond the visceral pleura; the air space is more lucent
        vessels = vessels * (1 - soft)
        img = img - c * LUNG_DELTA * 0.8 * soft
        # visceral pleural line: thin bright line along the crescent's inner border, fading at its tips
        w = 0.55 * px
        inside_margin = fld & (depth > 1.0)
        line = np.exp(-(((dist - depth - 0.5) / w) ** 2)) * inside_margin * np.clip(depth / (0.3 * D + 1e-9), 0, 1)
        img = img + c * LUNG_DELTA * 2.0 * line
        # the collapsed lung is slightly denser
        img = img + c * LUNG_DELTA * 0.12 * _smooth(fld & ~crescent & (dist < depth + 3 * px) & (depth > 0), 1.5 * px)
        # the mask: the pleural air and the visceral pleural line that bounds it
        mask = crescent | (fld & (line > 0.5))
        return img, vessels, mask, {"where": where, "lung": li, "p0": p0.tolist()}

    def _pneumonia(self, rng, an, lungs, lung_soft, img, c, size, px):
        """1-3 patches of airspace opacity inside the lungs; each patch's box (x, y, w, h)."""
        S = an.S
        k = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
        dist_in = ndi.distance_transform_edt(lungs)
        yy, xx = np.mgrid[0:S, 0:S]
        patches = []
        for j in range(k):
            diam = size * S * (1.0 if j == 0 else rng.uniform(0.6, 1.0))
            r = diam / 2
            ok = np.flatnonzero(dist_in.ravel() > max(0.35 * r, 1.5))
            if len(ok) == 0:
                ok = np.flatnonzero(lungs.ravel())
            ci = ok[rng.integers(len(ok))]
            cy, cx = divmod(int(ci), S)
            u, v = _ellipse(rng, xx - cx, yy - cy, r)
            patches.append(_patch(_patchy(rng, u, v, r, px) * lung_soft, lungs))
        total, lesion, boxes = _union(patches, lungs, (cx, cy))
        img = img + c * LUNG_DELTA * 3.0 * total
        return img, total, lesion, boxes

    # -----------------------------------------------------------------------------------------
    def _device(self, rng, an, img, avoid, px):
        """A radiopaque tube (chest-drain-like) entering through a lateral chest wall.

        Candidates are tried in a seeded order until one keeps >= 2 px from ``avoid`` (the lesion);
        the fallback is a marker disc in an upper corner, outside the body.
        """
        S = an.S
        keep_out = ndi.binary_dilation(avoid, iterations=max(2, int(round(2 * px)))) if avoid.any() else avoid
        for _ in range(12):
            s = rng.choice([-1, 1])
            ey = rng.uniform(0.55, 0.75)
            e = np.array([an.cx + s * (an.bw + 0.06), ey])
            tip = np.array([an.cx + s * rng.uniform(0.12, 0.25), rng.uniform(0.18, 0.40)])
            ctrl = np.array([an.cx + s * rng.uniform(0.28, 0.36), ey - rng.uniform(0.05, 0.15)])
            t = np.linspace(0, 1, int(3 * S))[:, None]
            curve = (1 - t) ** 2 * e + 2 * (1 - t) * t * ctrl + t**2 * tip
            p = curve * S
            canvas = _splat((S, S), p, np.full(len(p), 1.0 / 3.0 * S / S))
            tube = ndi.gaussian_filter(canvas, 0.8 * px)
            tube = tube / (tube.max() + 1e-12)
            dev = tube > 0.05
            if not (dev & keep_out).any():
                return img + 0.35 * tube, dev
        # fallback: a lead marker disc in an upper corner (never in a lung)
        cxm = 0.07 if rng.uniform() < 0.5 else 0.93
        disc = ((an.x - cxm) ** 2 + (an.y - 0.06) ** 2) < 0.03**2
        disc = disc & ~keep_out
        return img + 0.5 * _smooth(disc, 0.5 * px), disc

    # -----------------------------------------------------------------------------------------
    # semi-synthetic mode: lesions drawn into real radiographs

    def background_file(self, index: int) -> Path:
        """The background radiograph of image ``index`` (see :func:`.backgrounds.assign_backgrounds`)."""
        return self.backgrounds[int(self.background_of[index])]

    def _generate_on_background(self, index: int, label: int | None) -> Phantom:
        """Image ``index`` on its real background: the lesion inside the background's own lung field.

        The background is used as read (no blur, exposure change or noise unless
        ``background_detector``); ``contrast`` is a fraction of the background's own
        lung-to-soft-tissue difference (:attr:`.backgrounds.LungField.delta`).
        """
        S = self.S
        stream = self._streams(index)
        px = S / 128.0
        path = self.background_file(index)
        base = read_background(str(path), S)
        lf = _lung_field(str(path), S)
        markings = lung_markings(base, S / 256.0) * lf.field
        label = int(self.labels[index]) if label is None else int(label)
        img = np.array(base, np.float64)
        lesion, mask = np.zeros((S, S), bool), np.zeros((S, S), bool)
        boxes = np.zeros((0, 4), np.float32)
        info = {"background": path.name, "draws": 0, "rejected": 0}
        if label:
            rng, c, size = self._lesion_draw(stream, info)
            if self.task == "segmentation":
                img, markings, lesion, extra = _pneumothorax_on(rng, lf, img, markings, c, size, px, path)
                mask = lesion.copy()
            else:
                img, markings, lesion, boxes, extra = _pneumonia_on(rng, lf, img, markings, c, size, px, path)
                mask = box_mask(boxes, S).astype(bool)
            info.update(extra)
        device = np.zeros((S, S), bool)
        conf = bool(self.confounder[index])
        if conf:  # the device's path follows a template body outline (no estimate of the real one)
            img, device = self._device(stream("device"), _Anatomy(stream(), S), img, mask | lesion, px)
        if self.background_detector:
            img = self._detector(stream("detector"), img, px)
        img = np.clip(img, 0.0, 1.0)
        return Phantom(img, mask, boxes, lf.field, lesion, device, label, conf, markings, info)


def _ellipse(rng, dx, dy, r):
    """Coordinates (u, v) of a randomly oriented ellipse of radii ``r`` x [0.75, 1.2] (u^2 + v^2 < 1 inside)."""
    ang = rng.uniform(0, np.pi)
    rx, ry = r * rng.uniform(0.75, 1.2), r * rng.uniform(0.75, 1.2)
    u = (dx * np.cos(ang) + dy * np.sin(ang)) / rx
    v = (-dx * np.sin(ang) + dy * np.cos(ang)) / ry
    return u, v


def _union(patches, lungs, centre):
    """(opacity: the maximum of the patches, lesion: the union of their supports, boxes float32 k x 4)
    of the non-empty patches; if every patch vanished (cannot happen with a lung field), the last
    centre's 3 x 3 pixels in the lungs and their box."""
    S = lungs.shape[0]
    total, lesion, boxes = np.zeros((S, S)), np.zeros((S, S), bool), []
    for opac, sup, box in (p for p in patches if p is not None):
        boxes.append(box)
        lesion |= sup
        total = np.maximum(total, opac)
    if not boxes:
        cx, cy = centre
        boxes.append([cx - 1, cy - 1, 3, 3])
        lesion[cy - 1 : cy + 2, cx - 1 : cx + 2] = True
        lesion &= lungs
    return total, lesion, np.asarray(boxes, np.float32).reshape(-1, 4)


def _patchy(rng, u, v, r, px):
    """A pneumonia patch: envelope ``exp(-rho^4)`` on the ellipse coordinates ``u, v``, made
    heterogeneous by coarse patches and fine acinar nodularity (std-normalized noise at two scales)."""
    env = np.exp(-((u**2 + v**2) ** 2))
    white = rng.standard_normal(u.shape)
    tex = 0.0
    for sigma, weight in ((max(r / 4, 1.0), 0.7), (1.0 * px, 0.4)):
        t = ndi.gaussian_filter(white, sigma)
        tex = tex + weight * (t - t.mean()) / (t.std() + 1e-12)
    return env * np.clip(0.75 + 0.35 * tex, 0, None)


def _patch(opac, lungs):
    """(opacity scaled to peak 1, its support: above 15 % of the peak and in the lungs, its box
    x, y, w, h), or None when nothing is left."""
    if opac.max() <= 0:
        return None
    opac = opac / opac.max()
    sup = (opac > 0.15) & lungs
    if not sup.any():
        return None
    rr, cc = np.nonzero(sup)
    return opac, sup, [cc.min(), rr.min(), cc.max() + 1 - cc.min(), rr.max() + 1 - rr.min()]


@functools.lru_cache(maxsize=64)
def _lung_field(path: str, size: int):
    return estimate_lung_field(read_background(path, size), path)


def _costal_border(fld: np.ndarray, side: int):
    """(costal, other) border pixels of one lung field on a frontal view.

    Costal: the lateral-most pixel of each row (``side``: +1 lateral is image right, -1 image left)
    and the top-most pixel of each column in the upper half of the lung (the apical dome), with
    their border neighbours; other: the mediastinal and diaphragmatic borders. Notches of an
    irregular medial border therefore never count as pleura a pneumothorax could start from.
    """
    border = fld & ~ndi.binary_erosion(fld, border_value=0)
    extreme = np.zeros_like(fld)
    rows = np.flatnonzero(fld.any(1))
    for r in rows:
        c = np.flatnonzero(fld[r])
        extreme[r, c[-1] if side > 0 else c[0]] = True
    mid = rows[0] + 0.5 * (rows[-1] - rows[0])
    for c in np.flatnonzero(fld.any(0)):
        r = int(np.argmax(fld[:, c]))
        if r < mid:
            extreme[r, c] = True
    costal = border & ndi.binary_dilation(extreme, np.ones((3, 3), bool))
    return costal, border & ~costal


def _pneumothorax_on(rng, lf, img, markings, c, size, px, path):
    """Pneumothorax on a real radiograph: a crescent of pleural air along the costal pleura.

    Placement: lung (either side), apical or lateral site, point ``p0`` on the lung field's costal
    border, extent ``size * S``, depth 0.28-0.42 of the extent. A draw is rejected and re-drawn
    when the crescent leaves the estimated lung field, runs into its mediastinal or diaphragmatic
    border (> 10 % of its pixels), or is smaller than 40 % of a crescent of that extent and depth
    along a straight pleura (the lung is too small there). After every 10 rejections the extent is
    shrunk by ``SHRINK``; after ``MAX_DRAWS`` the background is reported as unusable.

    Rendering, so that the anatomy stays: inside the crescent the lung-marking layer
    (:func:`.backgrounds.lung_markings`, fine bright lines) is removed and a smooth offset of
    ``0.8 c delta`` darkens the air space; ribs and clavicles, wider than the top-hat's disk, keep
    their edges. A thin bright visceral pleural line bounds the crescent, and the lung next to it
    is slightly denser (as in the phantom).
    """
    S = img.shape[0]
    yy, xx = np.mgrid[0:S, 0:S]
    borders = [_costal_border(fld, side) for fld, side in zip(lf.lungs, (-1, 1))]
    dists = [ndi.distance_transform_edt(~costal) for costal, _ in borders]
    rejected = 0
    for attempt in range(MAX_DRAWS):
        li = int(rng.integers(2))
        side, fld = (-1, 1)[li], lf.lungs[li]
        (costal, other), dist = borders[li], dists[li]
        where = "apex" if rng.uniform() < 0.4 else "lateral"
        pos = rng.uniform(0.0, 0.5) if where == "apex" else rng.uniform(0.22, 0.62)
        depth_frac = rng.uniform(0.28, 0.42)
        rows, cols = np.nonzero(fld)
        if where == "apex":  # the costal pleura a little lateral of the lung's top
            col = round(0.5 * (cols.min() + cols.max()) + side * pos * 0.5 * np.ptp(cols))
            col = int(np.clip(col, cols.min(), cols.max()))
            p0 = np.array([col, rows[cols == col].min()], float)
        else:
            row = int(rows.min() + pos * np.ptp(rows))
            rc = cols[rows == row]
            p0 = np.array([rc.max() if side > 0 else rc.min(), row], float)
        extent = size * S * SHRINK ** (attempt // 10)
        R, D = extent / 2, depth_frac * extent
        depth = D * np.clip(1 - ((xx - p0[0]) ** 2 + (yy - p0[1]) ** 2) / R**2, 0, None) ** 0.7
        crescent = fld & (ndi.gaussian_filter(dist - depth, 0.5 * px) < 0)
        n = crescent.sum()
        touching = (crescent & ndi.binary_dilation(other)).sum()
        if n >= 0.4 * 1.58 * D * R and touching <= 0.1 * n and not (crescent & ~lf.field).any():
            break
        rejected += 1
    else:
        raise InputError(
            f"{path}: no pneumothorax placement inside the estimated lung field after {MAX_DRAWS} draws "
            f"(lesion extent {size:.2f} of the image side); use smaller lesion_size or another background"
        )
    delta = lf.delta
    soft = _smooth(crescent, 0.6 * px)
    img = img - markings * soft - c * delta * 0.8 * soft
    markings = markings * (1 - soft)
    line = np.exp(-(((dist - depth - 0.5) / (0.55 * px)) ** 2)) * (fld & (depth > 1.0))
    line = line * np.clip(depth / (0.3 * D + 1e-9), 0, 1)
    img = img + c * delta * 2.0 * line
    img = img + c * delta * 0.12 * _smooth(fld & ~crescent & (dist < depth + 3 * px) & (depth > 0), 1.5 * px)
    mask = crescent | (fld & (line > 0.5))
    extra = {"where": where, "lung": li, "p0": p0.tolist(), "draws": rejected + 1, "rejected": rejected}
    return img, markings, mask, extra


def _pneumonia_on(rng, lf, img, markings, c, size, px, path):
    """Pneumonia on a real radiograph: 1-3 soft patches of airspace opacity inside the lung field.

    Placement: each patch's centre is drawn uniformly over the estimated lung field at least 0.35
    radii from its border (as in the phantom); a draw is
    rejected and re-drawn when less than 75 % of the patch's ellipse lies inside the field (after
    every 10 rejections the patch is shrunk by ``SHRINK``; after ``MAX_DRAWS``, an error). The
    opacity (the phantom's heterogeneous envelope, ``exp(-rho^4)``, times a soft lung weight) raises
    the local background level ``L`` (Gaussian, sigma 4 px at 128) towards the surrounding soft
    tissue ``T`` (:class:`.backgrounds.LungField`): ``+ min(3 c, 1) * opacity * max(T - L, 0)``, so
    the low-frequency density never exceeds the soft tissue around the lungs; ribs stay visible
    through it, and the lung markings fade with the opacity as in the phantom.
    """
    S = img.shape[0]
    yy, xx = np.mgrid[0:S, 0:S]
    fieldmask = lf.field
    lung_w = _smooth(fieldmask, 2.5 * px)  # a gradual margin where the estimate cuts a patch
    room = np.clip(lf.tissue_level - ndi.gaussian_filter(img, 4 * px), 0, None)
    depth_in = ndi.distance_transform_edt(fieldmask).ravel()
    k = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.20]))
    patches, draws, rejected = [], 0, 0
    for j in range(k):
        r0 = size * S * (1.0 if j == 0 else rng.uniform(0.6, 1.0)) / 2
        for attempt in range(MAX_DRAWS):
            draws += 1
            r = r0 * SHRINK ** (attempt // 10)
            candidates = np.flatnonzero(depth_in > max(0.35 * r, 1.5))
            if len(candidates) == 0:
                candidates = np.flatnonzero(depth_in > 0)
            cy, cx = divmod(int(candidates[rng.integers(len(candidates))]), S)
            u, v = _ellipse(rng, xx - cx, yy - cy, r)
            ellipse = u**2 + v**2 < 1
            if (ellipse & fieldmask).sum() >= 0.75 * ellipse.sum():
                break
            rejected += 1
        else:
            raise InputError(
                f"{path}: no pneumonia placement inside the estimated lung field after {MAX_DRAWS} draws "
                f"(patch diameter {2 * r / S:.2f} of the image side); use smaller lesion_size or another background"
            )
        patches.append(_patch(_patchy(rng, u, v, r, px) * lung_w, fieldmask))
    total, lesion, boxes = _union(patches, fieldmask, (cx, cy))
    hide = np.clip(2.5 * c, 0, 1) * total
    img = img + min(3.0 * c, 1.0) * total * room - hide * markings
    extra = {"draws": draws, "rejected": rejected}
    return img, markings * (1 - hide), lesion, boxes, extra

# ---------------------------------------------------------------------------------------------


@register
class SyntheticSource(Source):
    """Phantom chest radiographs (see the module docstring); ``kind: synthetic``."""

    kind = "synthetic"

    def __init__(self, name, cfg, config):
        super().__init__(name, cfg, config)
        self.seed = int(config["seed"])
        self.size = image_size(config, name)
        self.n = int(cfg.get("n_images", DEFAULTS["n_images"]))
        prev = float(cfg.get("prevalence", DEFAULTS["prevalence"]))
        for key in ("lesion_size", "contrast"):
            lo, hi = cfg.get(key, DEFAULTS[key])
            if not 0 <= lo <= hi:
                raise InputError(f"datasets.{name}.{key}: expected [min, max] with 0 <= min <= max, got {[lo, hi]}")
        self.labels = assign_labels(self.n, prev, derive_seed(self.seed, name, "labels"))
        conf = cfg.get("confounder") or {}
        self.confounded = assign_confounder(
            self.labels,
            float(conf.get("positives", 0.0)),
            float(conf.get("negatives", 0.0)),
            derive_seed(self.seed, name, "confounder"),
        )
        occult = float(cfg.get("occult", DEFAULTS["occult"]))
        if occult and cfg.get("backgrounds"):
            raise InputError(f"datasets.{name}.occult: occult lesions are drawn in phantoms only, not with backgrounds")
        self.occult = assign_confounder(self.labels, occult, 0.0, derive_seed(self.seed, name, "occult"))
        self.generator = SyntheticPhantomGenerator(
            name, cfg, self.seed, self.size, self.labels, self.confounded, occult=self.occult
        )
        self.placements = {"lesions": 0, "draws": 0, "rejected": 0}

    def image_id(self, index: int) -> str:
        return f"syn-{index:05d}"

    def index(self, image_id: str) -> int:
        try:
            i = int(str(image_id).removeprefix("syn-"))
        except ValueError:
            i = -1
        if not str(image_id).startswith("syn-") or not 0 <= i < self.n:
            raise InputError(f"synthetic:{self.name}: no image {image_id!r} (ids are syn-00000..syn-{self.n - 1:05d})")
        return i

    def records(self) -> pd.DataFrame:
        """One row per image; with ``backgrounds`` also ``background``, the file name each image is
        drawn on (the manifest keeps every file's images in one split)."""
        idx = np.arange(self.n)
        rec = pd.DataFrame(
            {
                "image_id": [self.image_id(i) for i in idx],
                "label": self.labels.astype(int),
                "has_finding": self.labels.astype(bool),
                "source": [f"synthetic:{self.name}:{i}" for i in idx],
                "confounder": self.confounded,
            }
        )
        if self.generator.backgrounds is not None:
            rec["background"] = [self.generator.background_file(i).name for i in idx]
        if self.occult.any():  # split stratum: 0 negative, 1 visible lesion, 2 occult lesion
            rec["stratum"] = self.labels.astype(int) + self.occult.astype(int)
        return rec

    def phantom(self, image_id: str) -> Phantom:
        """The full phantom (with lung field, lesion and device masks) of one image."""
        ph = self.generator.generate(self.index(image_id))
        if ph.label and self.generator.backgrounds is not None:
            self.placements["lesions"] += 1
            self.placements["draws"] += ph.info["draws"]
            self.placements["rejected"] += ph.info["rejected"]
            log.debug("%s: background %s, %d draws rejected", image_id, ph.info["background"], ph.info["rejected"])
        return ph

    def summary(self) -> str | None:
        """Lesion placement on real backgrounds so far: draws rejected outside the lung field."""
        p = self.placements
        if self.generator.backgrounds is None or not p["draws"]:
            return None
        return (
            f"{self.name}: {p['lesions']} lesions placed on real backgrounds; {p['rejected']} of {p['draws']} "
            f"placement draws rejected ({p['rejected'] / p['draws']:.1%}) for leaving the estimated lung field"
        )

    def load(self, image_id: str) -> Sample:
        ph = self.phantom(image_id)
        return Sample(image=ph.image, mask=ph.mask, boxes=ph.boxes)
