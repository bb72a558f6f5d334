"""The four criteria of Arun et al. (Radiology: AI 2021) on one test shard, and their gathering.

1. **utility** (Sec. "Localization utility", Table S2): each map as a pixel classifier of the
   mask/box mask of each test image with a finding; AUPRC, AP, AUROC (:mod:`.utility`). Maps: every
   classifier's trained maps, the fully randomized InceptionV3's maps, the localizer replicates'
   output (method ``PRED``) and the mean train+val mask (model ``avg``, method ``AVG``).
2. **randomization** (cascading model-parameter randomization, Adebayo et al. 2018): similarity of
   the trained InceptionV3's map and the map at every randomized state (every repeat of the
   cascade). The degradation threshold per method (:func:`randomization_thresholds`, gather step)
   is, as in the released code, the mean similarity over ``randomization.threshold_partners``
   seeded partners (other test images) of *every* test image with maps, with a bootstrap CI over
   images; PASS when the fully randomized mean (per image, the mean over the repeats' fully
   randomized states) falls below it.
3. **repeatability**: inceptionv3_1 vs inceptionv3_2; 4. **reproducibility**: inceptionv3_1 vs
   densenet121_1. Both carry the localizer replicates' similarity (``PRED``, unet_1 vs unet_2 or
   retinanet_1 vs retinanet_2) as the high baseline; the low baseline (``criteria.low_baseline_ssim``)
   is a constant that the statistics stage uses.

A *plan* (plain dicts, JSON-able) lists the map files of one shard and criterion; the Snakemake
input function and the script use the same plan, so inputs and work never disagree.
"""

from __future__ import annotations

import logging
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io, paths, plan, resample
from ..errors import InputError, ShardError
from ..io import CRITERIA
from . import similarity, tables
from .localization import localization_scores
from .utility import CONSTANT, constant_maps, utility_scores

log = logging.getLogger(__name__)

#: Methods whose maps are already in [0, 1] (localizer output, mean mask): no normalization.
UNNORMALIZED_METHODS = ("PRED", "AVG")


# ---------------------------------------------------------------------------------------------
# settings and plans (no arrays: called by the Snakefile at parse time)


@dataclass(frozen=True)
class ScoreSettings:
    """Every config setting that changes a score, read once from the validated config (schema
    defaults filled by Snakemake's ``validate()``; outside the workflow
    :func:`saliency_audit.config.with_defaults`). The rules' params carry :meth:`as_dict`; a job
    script rebuilds the settings with :meth:`from_dict`."""

    normalization: str  # saliency.normalization
    cam_normalization: str  # saliency.cam_normalization
    images: str  # saliency.images
    max_images: int | None  # saliency.max_images
    data_range: float  # criteria.ssim_data_range
    win_size: int  # criteria.ssim_win_size
    similarity: tuple[str, ...]  # criteria.similarity
    localization: bool  # criteria.localization: CheXlocalize's IoU and hit rate beside the utility metrics
    localization_thresholds: tuple  # criteria.localization_thresholds

    @classmethod
    def from_config(cls, config: dict) -> "ScoreSettings":
        """The settings of a validated config; a missing key raises :class:`InputError` naming it."""
        try:
            sal, crit = config["saliency"], config["criteria"]
            return cls(
                normalization=sal["normalization"],
                cam_normalization=sal["cam_normalization"],
                images=sal["images"],
                max_images=sal["max_images"],
                data_range=float(crit["ssim_data_range"]),
                win_size=int(crit["ssim_win_size"]),
                similarity=tuple(crit["similarity"]),
                localization=bool(crit["localization"]),
                localization_thresholds=tuple(crit["localization_thresholds"]),
            )
        except KeyError as exc:
            raise InputError(
                f"config key {exc.args[0]!r} missing; expected the validated config (Snakemake's validate() fills "
                "the schema's defaults; outside the workflow use saliency_audit.config.with_defaults)"
            ) from exc

    @classmethod
    def from_dict(cls, d: dict) -> "ScoreSettings":
        """The settings from :meth:`as_dict`'s form (a rule's params)."""
        names = [f.name for f in fields(cls)]
        if sorted(d) != sorted(names):
            raise InputError(f"score settings: keys {sorted(d)}; expected {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    def as_dict(self) -> dict:
        """JSON-able (lists, not tuples), in field order: what a rule's params carry."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def settings(config: dict) -> ScoreSettings:
    """:meth:`ScoreSettings.from_config` of ``config``."""
    return ScoreSettings.from_config(config)


def skipped(config: dict, dataset: str) -> dict[str, str]:
    """Criteria the config cannot compute, with the reason (the rest are computed)."""
    ids = plan.model_ids(config, dataset)
    out = {}
    if plan.PRIMARY not in ids or plan.fully_randomized_state(config, dataset) is None:
        out["randomization"] = "no cascading randomization of inceptionv3_1 in the config"
    if "inceptionv3_2" not in ids:
        out["repeatability"] = "fewer than 2 inceptionv3 replicates"
    if plan.PRIMARY not in ids or "densenet121_1" not in ids:
        out["reproducibility"] = "no inceptionv3_1 and densenet121_1 pair"
    return out


def active(config: dict, dataset: str) -> list[str]:
    skip = skipped(config, dataset)
    return [c for c in CRITERIA if c not in skip]


def _spec(dataset, model, state, method, shard, results):
    path = paths.path(paths.MAPS, results, dataset=dataset, model=model, state=state, method=method, shard=shard)
    return {"model": model, "state": state, "method": method, "path": path}


def _localizers(config, dataset):
    loc = plan.localizer(config["datasets"][dataset])
    return [m for m in plan.model_ids(config, dataset) if plan.arch_of(m) == loc]


def shard_plan(config: dict, dataset: str, criterion: str, shard: str, results: str = "results") -> dict:
    """The map files (and pairs of them) that ``criterion`` reads for one test shard."""
    if criterion not in CRITERIA:
        raise InputError(f"unknown criterion {criterion!r}; known: {list(CRITERIA)}")
    methods = plan.methods(config, dataset)
    locs = _localizers(config, dataset)
    out = {"criterion": criterion, "dataset": dataset, "shard_id": shard, "maps": [], "pairs": []}

    def have(model, state, method):  # a BYOM index may hold some methods for some models only
        return plan.has_maps(config, dataset, model, state, method)

    if criterion == "utility":
        full = plan.fully_randomized_state(config, dataset)
        for model, state in plan.map_models(config, dataset):
            if state == "original" or (model == plan.PRIMARY and state == full):
                out["maps"] += [
                    _spec(dataset, model, state, m, shard, results) for m in methods if have(model, state, m)
                ]
        out["maps"] += [_spec(dataset, loc, "original", "PRED", shard, results) for loc in locs]
        out["shard"] = paths.path(paths.SHARD, results, dataset=dataset, split="test", shard=shard)
        # no AVG baseline without train/val masks (BYOM / all-test datasets)
        out["avg"] = paths.path(paths.AVG_MAP, results, dataset=dataset) if plan.has_avg(config, dataset) else None
        return out
    if criterion in skipped(config, dataset):
        raise InputError(
            f"criterion {criterion} cannot be computed for {dataset}: {skipped(config, dataset)[criterion]}"
        )
    if criterion == "randomization":
        states = plan.randomization_states(config, dataset)
        for m in methods:
            if not have(plan.PRIMARY, "original", m):
                continue
            a = _spec(dataset, plan.PRIMARY, "original", m, shard, results)
            out["pairs"] += [
                {
                    "method": m,
                    "model_a": plan.PRIMARY,
                    "model_b": "",
                    "state": s,
                    "a": a,
                    "b": _spec(dataset, plan.PRIMARY, s, m, shard, results),
                }
                for s in states
                if have(plan.PRIMARY, s, m)
            ]
        return out
    other = "inceptionv3_2" if criterion == "repeatability" else "densenet121_1"
    for m in methods:
        if not (have(plan.PRIMARY, "original", m) and have(other, "original", m)):
            continue
        a = _spec(dataset, plan.PRIMARY, "original", m, shard, results)
        b = _spec(dataset, other, "original", m, shard, results)
        out["pairs"].append(
            {"method": m, "model_a": plan.PRIMARY, "model_b": other, "state": "original", "a": a, "b": b}
        )
    if len(locs) >= 2:  # high baseline: two localizer replicates
        a = _spec(dataset, locs[0], "original", "PRED", shard, results)
        b = _spec(dataset, locs[1], "original", "PRED", shard, results)
        out["pairs"].append(
            {"method": "PRED", "model_a": locs[0], "model_b": locs[1], "state": "original", "a": a, "b": b}
        )
    return out


def plan_inputs(p: dict) -> list[str]:
    """Every file a shard plan reads, without duplicates, in plan order."""
    files = [p[k] for k in ("shard", "avg") if p.get(k)]
    files += [s["path"] for s in p["maps"]]
    for pair in p["pairs"]:
        files += [pair["a"]["path"], pair["b"]["path"]]
    return list(dict.fromkeys(files))


def threshold_plan(config: dict, dataset: str, shards: list[str], results: str = "results") -> dict:
    """Trained-model map files of every test shard, per method, for the degradation thresholds,
    with the settings that change only the thresholds (partners per image, bootstrap resamples,
    the fully randomized state of each cascade repeat): the gather rule's params, not the shards'."""
    states = plan.randomization_states(config, dataset)
    methods = [  # a BYOM index may randomize some methods only
        m
        for m in plan.methods(config, dataset)
        if plan.has_maps(config, dataset, plan.PRIMARY, "original", m)
        and any(plan.has_maps(config, dataset, plan.PRIMARY, s, m) for s in states)
    ]
    return {
        "methods": {
            m: [_spec(dataset, plan.PRIMARY, "original", m, s, results)["path"] for s in shards] for m in methods
        },
        "seed": plan.derive_seed(config["seed"], dataset, "randomization-threshold-pairs"),
        "partners": int(config["randomization"]["threshold_partners"]),
        "resamples": int(config["stats"]["resamples"]),
        "states": plan.fully_randomized_states(config, dataset),
    }


# ---------------------------------------------------------------------------------------------
# maps


def default_normalizer():
    """``saliency_audit.saliency.normalize.normalize_maps(maps, method, mode)``."""
    try:
        from ..saliency.normalize import normalize_maps
    except ImportError as exc:
        raise InputError(f"map normalization is unavailable: saliency_audit.saliency.normalize ({exc})") from exc
    return normalize_maps


def read_map_ids(path) -> np.ndarray:
    """Only the ``ids`` array of a maps file (cheap: the maps are not decompressed)."""
    path = Path(path)
    if not path.exists():
        raise ShardError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            ids = np.asarray(z["ids"]).astype(str) if "ids" in z.files else None
            files = sorted(z.files)
    except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
        raise ShardError(f"{path}: truncated or corrupt npz file ({exc})") from exc
    if ids is None:
        raise ShardError(f"{path}: missing array 'ids'; has {files}")
    return ids


def read_maps(path) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` (str) and ``maps`` (N, S, S) of a maps file, checked for matching lengths."""
    d = io.read_npz(path, required=("ids", "maps"))
    ids, maps = np.asarray(d["ids"]).astype(str), np.asarray(d["maps"])
    if maps.ndim != 3 or len(ids) != len(maps):
        raise ShardError(f"{path}: expected maps (N, S, S) for {len(ids)} ids, got shape {maps.shape}")
    return ids, maps


def normalize(maps: np.ndarray, method: str, mode: str, normalizer=None, cam: str = "minmax") -> np.ndarray:
    """Maps in [0, 1] (float32) for metrics: the configured normalization, none for PRED/AVG."""
    if method in UNNORMALIZED_METHODS or len(maps) == 0:
        return np.asarray(maps, dtype=np.float32)
    if normalizer is not None:  # a stand-in (tests) takes (maps, method, mode)
        return np.asarray(normalizer(maps, method, mode))
    return np.asarray(default_normalizer()(maps, method, mode, cam))


class MapStack:
    """The maps of one file with their normalized form and per-metric features, computed once."""

    def __init__(self, path, method: str, cfg: ScoreSettings, normalizer=None, ids=None, maps=None):
        self.path, self.method, self.cfg, self._normalizer = str(path), method, cfg, normalizer
        self.ids, self.raw = (ids, maps) if maps is not None else read_maps(path)
        self._norm = None
        self._features = {}

    @property
    def normalized(self):
        if self._norm is None:
            self._norm = normalize(
                self.raw, self.method, self.cfg.normalization, self._normalizer, self.cfg.cam_normalization
            )
            if self._norm.shape != self.raw.shape:
                raise InputError(f"{self.path}: normalization changed the shape {self.raw.shape} -> {self._norm.shape}")
        return self._norm

    def features(self, metric):
        if metric not in self._features:
            norm = self.normalized if similarity.NEEDS.get(metric) == "normalized" else None
            try:
                self._features[metric] = similarity.features(metric, self.raw, norm, self.cfg.data_range)
            except InputError as exc:
                raise InputError(f"{self.path} ({self.method}): {exc}") from exc
        return self._features[metric]

    def subset(self, index):
        """A new stack of the maps at ``index`` (normalized form carried over, features recomputed)."""
        s = MapStack(self.path, self.method, self.cfg, self._normalizer, ids=self.ids[index], maps=self.raw[index])
        s._norm = self.normalized[index]
        return s


def compare_stacks(a: MapStack, b: MapStack, cfg: ScoreSettings, same_images: bool = True) -> dict[str, np.ndarray]:
    """Per-image similarity of two stacks of maps, for each configured metric.

    ``same_images``: both stacks must list the same image ids in the same order (checked).
    """
    if same_images and not np.array_equal(a.ids, b.ids):
        raise InputError(
            f"{b.path}: image ids differ from {a.path} (both must list the same test images in shard order)"
        )
    if a.raw.shape != b.raw.shape:
        raise InputError(f"{b.path}: maps shape {b.raw.shape} differs from {a.path} {a.raw.shape}")
    return {
        m: similarity.compare(m, a.features(m), b.features(m), cfg.data_range, cfg.win_size)
        for m in cfg.similarity
    }


# ---------------------------------------------------------------------------------------------
# per-shard scores


def utility_shard(p: dict, cfg: ScoreSettings, normalizer=None) -> pd.DataFrame:
    """Utility rows of one test shard (plan from :func:`shard_plan`)."""
    ds = p["dataset"]
    shard = io.read_shard(p["shard"])
    shard_ids = np.asarray(shard["ids"]).astype(str)
    masks = np.asarray(shard["masks"])
    sel = io.map_image_index(shard, cfg.images, cfg.max_images)
    has = np.asarray(shard["has_finding"], bool)
    keep = sel[has[sel] & masks[sel].any(axis=(1, 2))]
    dropped = sel[has[sel] & ~np.isin(sel, keep)]
    if len(dropped):
        log.warning(
            "%s: %d image(s) with a finding but an empty mask skipped: %s",
            p["shard"],
            len(dropped),
            list(shard_ids[dropped])[:5],
        )
    pos = {i: k for k, i in enumerate(shard_ids)}
    frames = []
    for spec in p["maps"]:
        ids, maps = read_maps(spec["path"])
        missing = [i for i in ids if i not in pos]
        if missing:
            raise InputError(f"{spec['path']}: image ids {missing[:3]} are not in the shard {p['shard']}")
        idx = np.array([pos[i] for i in ids], dtype=int)
        use = np.isin(idx, keep)
        norm = normalize(maps[use], spec["method"], cfg.normalization, normalizer, cfg.cam_normalization)
        values = _pixel_scores(norm, masks[idx[use]], cfg, what=spec["path"])
        frames.append(tables.rows(ds, "utility", spec["method"], spec["model"], "", spec["state"], ids[use], values))
    if p.get("avg"):
        avg = _read_avg(p["avg"], masks.shape[1:])
        values = _pixel_scores(avg, masks[keep], cfg, what=p["avg"])
        frames.append(tables.rows(ds, "utility", "AVG", "avg", "", "original", shard_ids[keep], values))
    return tables.concat(frames)


def _pixel_scores(maps, masks, cfg, what) -> dict:
    """Utility metrics of maps against masks, the 0/1 ``constant`` flag of each map, and the
    localization metrics when configured."""
    values = utility_scores(maps, masks, what=what)
    maps = np.asarray(maps)
    flags = constant_maps(maps[None] if maps.ndim == 2 else maps)  # one shared map (AVG): same flag for all
    values[CONSTANT] = np.broadcast_to(flags, (len(masks),)) if maps.ndim == 2 else flags
    if cfg.localization:
        values.update(localization_scores(maps, masks, cfg.localization_thresholds, what=what))
    return values


def _read_avg(path, shape):
    path = Path(path)
    if not path.exists():
        raise ShardError(f"{path}: file not found")
    try:
        avg = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ShardError(f"{path}: unreadable .npy ({exc})") from exc
    if avg.shape != tuple(shape):
        raise InputError(f"{path}: AVG map shape {avg.shape}, expected {tuple(shape)} (the image size)")
    return avg


def similarity_shard(p: dict, cfg: ScoreSettings, normalizer=None) -> pd.DataFrame:
    """Rows of a similarity criterion (randomization, repeatability, reproducibility) of one shard.

    Each maps file is read and its features computed once, kept while later pairs still need it.
    Besides the similarity metrics, each row set carries the 0/1 ``constant`` flag of map ``b`` (the
    randomized state's or the other model's map; map ``a``'s flag is in the utility rows).
    """
    uses = Counter(path for pair in p["pairs"] for path in (pair["a"]["path"], pair["b"]["path"]))
    cache: dict[str, MapStack] = {}
    frames = []
    for pair in p["pairs"]:
        stacks = []
        for side in ("a", "b"):
            spec = pair[side]
            if spec["path"] not in cache:
                cache[spec["path"]] = MapStack(spec["path"], spec["method"], cfg, normalizer)
            stacks.append(cache[spec["path"]])
        values = compare_stacks(stacks[0], stacks[1], cfg)
        values[CONSTANT] = constant_maps(stacks[1].normalized)  # the randomized / other model's map
        frames.append(
            tables.rows(
                p["dataset"],
                p["criterion"],
                pair["method"],
                pair["model_a"],
                pair["model_b"],
                pair["state"],
                stacks[0].ids,
                values,
            )
        )
        for side in ("a", "b"):
            path = pair[side]["path"]
            uses[path] -= 1
            if uses[path] <= 0:
                cache.pop(path, None)
    return tables.concat(frames)


def score_shard(p: dict, cfg: ScoreSettings, normalizer=None) -> pd.DataFrame:
    """The tidy score rows of one shard plan."""
    if p["criterion"] == "utility":
        return utility_shard(p, cfg, normalizer)
    return similarity_shard(p, cfg, normalizer)


# ---------------------------------------------------------------------------------------------
# degradation thresholds (gather step: maps of every test shard)


def partner_pairs(n: int, partners: int, seed: int) -> np.ndarray:
    """For every anchor image ``i`` in ``range(n)``, ``partners`` seeded partners ``j != i``.

    As the released code of Arun et al. (2021) (``plot_ssim_random_pairs``: 50 draws per image), but
    without its ``randint(high=len - 1)`` bug: every other image can be drawn, the anchor never.
    Partners of one anchor are distinct when ``partners <= n - 1``, drawn with replacement
    otherwise. Returns an int array (n * partners, 2) of (anchor, partner), anchor-major.
    """
    if n < 2 or partners < 1:
        return np.zeros((0, 2), dtype=int)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        k = rng.choice(n - 1, size=partners, replace=partners > n - 1)
        rows.append(np.column_stack([np.full(partners, i), k + (k >= i)]))  # skip the anchor itself
    return np.concatenate(rows).astype(int)


#: Pairs compared at once (bounds the memory of the paired feature copies).
PAIR_CHUNK = 128


def pair_similarity(files: list[str], method: str, cfg: ScoreSettings, partners: int, seed: int, normalizer=None):
    """Similarity of the seeded (anchor, partner) pairs of maps of different images (``files``).

    Every map of the trained model is read once and its features computed once; pairs are compared
    in chunks of :data:`PAIR_CHUNK`.

    Returns
    -------
    ids : array (n,) of the anchor images (shard order)
    pairs : int array (n * partners, 2) from :func:`partner_pairs`
    values : dict metric -> array (n * partners,) of per-pair similarity
    """
    stacks = [MapStack(p, method, cfg, normalizer) for p in files]
    stacks = [s for s in stacks if len(s.ids)]
    if not stacks:
        return np.zeros(0, dtype=str), np.zeros((0, 2), dtype=int), {m: np.zeros(0) for m in cfg.similarity}
    shapes = {s.raw.shape[1:] for s in stacks}
    if len(shapes) > 1:
        raise InputError(f"maps of {method} have different sizes across shards: {shapes}")
    allstack = MapStack(
        "threshold maps",
        method,
        cfg,
        normalizer,
        ids=np.concatenate([s.ids for s in stacks]),
        maps=np.concatenate([s.raw for s in stacks]),
    )
    allstack._norm = np.concatenate([s.normalized for s in stacks])
    pairs = partner_pairs(len(allstack.ids), partners, seed)
    values = {}
    for m in cfg.similarity:
        f = allstack.features(m)
        values[m] = np.concatenate(
            [np.zeros(0)]
            + [
                similarity.compare(m, f[c[:, 0]], f[c[:, 1]], cfg.data_range, cfg.win_size)
                for c in np.array_split(pairs, max(1, int(np.ceil(len(pairs) / PAIR_CHUNK))))
                if len(c)
            ]
        )
    return allstack.ids, pairs, values


def fully_randomized_per_image(scores: pd.DataFrame, states, primary: str = plan.PRIMARY) -> pd.DataFrame:
    """Per (method, metric, image): the mean similarity over the repeats' fully randomized ``states``.

    With ``randomization.repeats`` cascades, each image's fully randomized value is the mean over the
    repeats (the released plots average three cascade runs). Columns method, metric, image_id, value.
    """
    d = scores[scores["state"].isin(list(states)) & (scores["model_a"] == primary)]
    if d.empty:
        return pd.DataFrame(columns=["method", "metric", "image_id", "value"])
    return d.groupby(["method", "metric", "image_id"], sort=False)["value"].mean().reset_index()


def randomization_thresholds(tplan: dict, cfg: ScoreSettings, scores: pd.DataFrame, normalizer=None):
    """Degradation threshold per method and metric, with bootstrap CIs and PASS/FAIL.

    Arun et al. 2021 (released code): for every test image with maps, ``partners`` random partner
    images (:func:`partner_pairs`); the threshold is the mean similarity of the trained model's maps
    over all n x partners pairs. Its 95% CI is a percentile bootstrap over anchor images
    (``resamples`` seeded resamples; every anchor has the same number of pairs, so a resample's
    threshold is the mean of its anchors' pair means). The fully randomized mean is over images of
    the per-image mean over the repeats' fully randomized states, with the same kind of CI.
    A method passes when that mean is below the threshold.

    Returns
    -------
    thresholds : DataFrame with columns :data:`tables.THRESHOLD_COLUMNS`
    anchors : DataFrame with columns :data:`tables.ANCHOR_COLUMNS` (per anchor image: its number of
        pairs and their mean similarity; the verdict-stability bootstrap resamples these)
    """
    states = list(tplan["states"] or [])
    full = fully_randomized_per_image(scores, states)
    out, anchors = [], []
    for method, files in tplan["methods"].items():
        ids, pairs, values = pair_similarity(files, method, cfg, tplan["partners"], tplan["seed"], normalizer)
        if len(ids) and tplan["partners"] > len(ids) - 1:
            log.warning(
                "%s: %d partners asked but only %d other test images: partners drawn with replacement",
                method,
                tplan["partners"],
                len(ids) - 1,
            )
        for metric, v in values.items():
            amean = v.reshape(len(ids), -1).mean(axis=1) if len(v) else np.full(len(ids), np.nan)
            anchors.append(
                pd.DataFrame(
                    {"method": method, "metric": metric, "image_id": ids, "n_pairs": tplan["partners"], "mean": amean}
                )
            )
            thr = float(np.mean(v)) if len(v) else float("nan")
            lo, hi = resample.mean_ci(amean if len(v) else [], tplan["resamples"], tplan["seed"])
            r = full[(full["method"] == method) & (full["metric"] == metric)]["value"].to_numpy(float)
            rmean = float(r.mean()) if len(r) else float("nan")
            rlo, rhi = resample.mean_ci(r, tplan["resamples"], tplan["seed"])
            verdict = "NA" if np.isnan(thr) or np.isnan(rmean) else ("PASS" if rmean < thr else "FAIL")
            out.append(
                [method, metric, thr, lo, hi, len(ids), tplan["partners"], len(v), tplan["seed"],
                 ";".join(states), len(r), rmean, rlo, rhi, verdict]
            )  # fmt: skip
    anchors = pd.concat(anchors, ignore_index=True) if anchors else pd.DataFrame(columns=tables.ANCHOR_COLUMNS)
    return pd.DataFrame(out, columns=tables.THRESHOLD_COLUMNS), anchors[tables.ANCHOR_COLUMNS]
