"""Real radiographs as backgrounds of the semi-synthetic mode (``backgrounds:`` of a synthetic dataset).

* :func:`list_backgrounds` lists the folder (names only: cheap enough for Snakemake's parse time).
* :func:`assign_backgrounds` gives each image a background file, without replacement while there
  are enough files, otherwise as evenly as possible (each file ``floor`` or ``ceil(n / files)``
  times); the manifest then splits by file, so no radiograph is in two splits.
* :func:`read_background` reads one file as a display-ready [0, 1] image (DICOM grayscale pipeline,
  PNG/JPEG through Pillow) at the dataset's size.
* :func:`estimate_lung_field` finds the two lung fields of a frontal radiograph with classical image
  processing (below); the lesions are placed inside it.
* :func:`lung_markings` is the fine bright-line (vessel) layer that a pneumothorax removes.

Only the standard library and numpy are imported at module level; scipy and scikit-image are
imported by the functions that need them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}


def list_backgrounds(folder) -> list[Path]:
    """Image files (PNG/JPEG/DICOM by suffix) directly in ``folder``, sorted by name. No pixels read."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"backgrounds: {folder} is not a folder of radiographs")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"backgrounds: {folder} has no PNG/JPEG/DICOM files")
    return files


def assign_backgrounds(n_images: int, n_files: int, seed: int) -> np.ndarray:
    """Background file index of each image (int64, length ``n_images``).

    Concatenated seeded permutations of the files, cut at ``n_images``: with ``n_files >=
    n_images`` every image has its own file (drawn without replacement); with fewer files each is
    used ``floor(n_images / n_files)`` or one more times, never more.
    """
    rng = np.random.default_rng(seed)
    reps = -(-n_images // n_files)
    return np.concatenate([rng.permutation(n_files) for _ in range(reps)])[:n_images].astype(np.int64)


@functools.lru_cache(maxsize=64)
def read_background(path: str, size: int) -> np.ndarray:
    """A radiograph as float64 (size, size) in [0, 1], display convention (air dark, bone bright).

    Read with :func:`saliency_audit.data.dicom.read_image` (DICOM: modality and VOI transforms,
    MONOCHROME1 inverted; PNG/JPEG/TIFF through Pillow), then resized with anti-aliasing (bilinear).
    The array is cached; callers must not modify it.
    """
    from skimage.transform import resize

    from .dicom import read_image

    arr = np.asarray(read_image(path), np.float64)
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a grayscale image, got shape {arr.shape}")
    out = np.clip(resize(arr, (size, size), order=1, anti_aliasing=True), 0.0, 1.0)
    out.flags.writeable = False
    return out


@dataclass(frozen=True)
class LungField:
    """Lung-field estimate of one frontal radiograph.

    lungs : tuple of two bool (S, S) masks, the image-left lung first (the patient's right lung
    on a PA view); field : their union; lung_level : median intensity inside the lungs;
    tissue_level : 75th percentile of the intensity of the tissue around them (a ring 2 %-6 % of the side
    outside the lungs, inside the body: chest wall, mediastinum, heart, diaphragm): the density a
    consolidated lung can reach.
    """

    lungs: tuple
    field: np.ndarray
    lung_level: float
    tissue_level: float

    @property
    def delta(self) -> float:
        """Lung-to-soft-tissue intensity difference (the unit of ``contrast`` on this background)."""
        return max(self.tissue_level - self.lung_level, 0.05)


def estimate_lung_field(image: np.ndarray, name: str = "background") -> LungField:
    """Two lung fields of a frontal chest radiograph by smoothing, Otsu threshold and morphology.

    Steps (scikit-image / scipy.ndimage), with lengths in fractions of the image side S:

    1. Gaussian smoothing (sigma 0.6 % of S) to suppress noise and lung markings;
    2. body: three-class Otsu thresholds (multi-Otsu; Otsu, IEEE Trans. SMC 1979; Liao et al.,
       J. Inf. Sci. Eng. 2001) of the whole image; pixels below the lower one that are connected to
       the image border are outside air, the rest (holes filled) is the body;
    3. Otsu's threshold ``t`` of the body's pixels splits dark (lungs, thin soft tissue) from
       bright (mediastinum, heart, abdomen, bone); a second Otsu threshold of the dark class splits
       the darkest part (lung) from dim soft tissue (chest wall, shoulders);
    4. markers for a watershed of the Sobel gradient (marker-controlled watershed, Beucher &
       Meyer 1993): *not lung* = outside air, the outer 4 % of the body, the bright class and a
       vertical band of +-3 % of S around the body's centre column (mediastinum and spine: no lung
       there on a frontal view; this also cuts the trachea and main bronchi); *lung* = the dark
       class outside those, eroded by a disk of 4 % of S (then 3 %, 5 %, 2 % if the result is not
       plausible), its largest component on each side of the centre column;
    5. each lung's basin is kept within 2 % of S of its seed's reach and of the darkest class,
       thin appendages are cut (opening, disk 3 %), then it is closed (disk 1.6 %), its holes
       filled and each row filled between its outermost pixels (hilar vessels inside are lung);
    6. plausibility: each lung must cover 2 %-30 % of the image and span at least 25 % of its
       height, else the next seed erosion is tried.

    How it fails: on radiographs that are not frontal chest views (lateral, abdomen: usually an
    error, sometimes a wrong pair of regions); on lungs joined to the outside air or to dim soft
    tissue over a wide band (very lean patients, tight crops: the lung is cut or spills into the
    shoulder or chest wall); on large effusions, consolidations or collapse (not normal
    backgrounds). It is conservative where the lung is brighter than the second threshold: the
    medial lung next to the hila and heart, the lung behind the heart and below the domes of the
    diaphragm, and an apex crossed by bright clavicles and first ribs are often left out. On the
    phantom backgrounds of the tests the Dice overlap with the true lung fields is about 0.8, and
    about 8 % of pneumothorax and 1 % of pneumonia lesion pixels fall outside the true lungs.

    Raises
    ------
    InputError
        No plausible pair of lung fields; the message names ``name`` (the background file).
    """
    from scipy import ndimage as ndi
    from skimage.filters import gaussian, sobel, threshold_multiotsu, threshold_otsu
    from skimage.morphology import disk
    from skimage.segmentation import clear_border, watershed

    img = np.asarray(image, np.float64)
    S = img.shape[0]
    g = gaussian(img, 0.006 * S, preserve_range=True)
    low = g < threshold_multiotsu(g, 3)[0]
    air = low & ~clear_border(low)
    body = ndi.binary_fill_holes(~air)
    if body.sum() < 0.2 * S**2:
        body = np.ones_like(body)
    cols = np.flatnonzero(body.any(0))
    centre = 0.5 * (cols[0] + cols[-1] + 1)
    t = threshold_otsu(g[body])
    midline = np.abs(np.arange(S) + 0.5 - centre)[None, :] < 0.03 * S
    dark = (g < t) & ~midline
    darker = ndi.binary_dilation(g < threshold_otsu(g[body & (g < t)]), disk(max(1, int(round(0.02 * S)))))
    # not lung: outside air, the outer 4 % of the body (skin, chest wall), the bright class, the midline
    other = ~ndi.binary_erosion(body, disk(max(1, int(round(0.04 * S))))) | (g > t) | midline
    relief = sobel(g)
    found = None
    for r in (0.04, 0.03, 0.05, 0.02):
        lab, n = ndi.label(ndi.binary_erosion(dark & ~other, disk(max(1, int(round(r * S))))))
        if n < 2:
            continue
        areas = np.bincount(lab.ravel(), minlength=n + 1)
        cx = ndi.center_of_mass(np.ones_like(lab), lab, np.arange(1, n + 1))
        sides = []
        for left in (True, False):
            cand = [k + 1 for k in range(n) if (cx[k][1] < centre) == left]
            if cand:
                sides.append(max(cand, key=lambda k: areas[k]))
        if len(sides) < 2:
            continue
        markers = np.where(other, 1, 0)
        markers[lab == sides[0]], markers[lab == sides[1]] = 2, 3
        basins = watershed(relief, markers)
        reach = disk(max(1, int(round((r + 0.02) * S))))  # at most 2 % beyond the un-eroded core
        lungs = tuple(
            _fill_lung(_main_part((basins == k) & darker & ndi.binary_dilation(lab == j, reach), lab == j, S), S)
            for k, j in zip((2, 3), sides)
        )
        if all(_plausible(lung, S) for lung in lungs):
            found = lungs
            break
    if found is None:
        raise InputError(
            f"{name}: no lung fields found (expected a normal frontal chest radiograph: two dark lung "
            "fields inside the body, air dark and bone bright)"
        )
    field_ = found[0] | found[1]
    near = ndi.binary_dilation(field_, disk(max(1, int(round(0.02 * S)))))
    ring = ndi.binary_dilation(field_, disk(max(2, int(round(0.06 * S))))) & ~near
    tissue = ring & body
    if tissue.sum() < 10:
        tissue = ~near
    return LungField(found, field_, float(np.median(img[field_])), float(np.percentile(img[tissue], 75)))


def _main_part(basin: np.ndarray, seed: np.ndarray, S: int) -> np.ndarray:
    """The basin without thin appendages (opening, disk 3 % of S): the part holding the seed."""
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    opened = ndi.binary_opening(basin, disk(max(1, int(round(0.03 * S)))))
    lab, n = ndi.label(opened)
    if n == 0:
        return basin & seed
    hits = np.bincount(lab[seed], minlength=n + 1)
    hits[0] = 0
    return lab == int(np.argmax(hits)) if hits.max() > 0 else basin & seed


def _fill_lung(comp: np.ndarray, S: int) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    out = ndi.binary_closing(np.pad(comp, 4), disk(max(1, int(round(0.016 * S)))))[4:-4, 4:-4]
    out = ndi.binary_fill_holes(out | comp)
    rows = np.flatnonzero(out.any(1))
    for r in rows:
        c = np.flatnonzero(out[r])
        out[r, c[0] : c[-1] + 1] = True
    return out


def _plausible(lung: np.ndarray, S: int) -> bool:
    frac = lung.sum() / S**2
    rows = np.flatnonzero(lung.any(1))
    return 0.02 <= frac <= 0.30 and (rows[-1] - rows[0] + 1) >= 0.25 * S


def lung_markings(image: np.ndarray, px: float) -> np.ndarray:
    """Lung markings (vessels) of a radiograph: the white top-hat of the lightly smoothed image.

    The grey opening by a disk of radius 3 px at 256 px (``px = S / 256``) removes bright
    structures narrower than about 7 px at 256 px - vessels and their branches - and keeps wider
    ones, ribs and clavicles with their edges (Serra, *Image Analysis and Mathematical Morphology*,
    1982: the top-hat transform). The smoothing (sigma 0.7 px) keeps the pixel noise out of the
    layer, so removing it does not smooth the image.
    """
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    g = ndi.gaussian_filter(np.asarray(image, np.float64), 0.7 * px)
    return g - ndi.grey_opening(g, footprint=disk(max(1, int(round(3 * px)))))
