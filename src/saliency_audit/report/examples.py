"""Inputs of the example figures (Fig 2c/d, 3b, S4): which files, and the arrays read from them.

The example images are the first ``report.example_images`` images of the first test shard that
have maps (``saliency.images``), in shard order: deterministic, and the same for every method.
Maps are normalized exactly as the scores were (``saliency_audit.metrics.criteria.normalize``:
the configured ``saliency.normalization`` and ``saliency.cam_normalization``; localizer ``PRED``
maps and the AVG map are used as they are).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import io, paths, plan
from ..errors import InputError

#: Figures that show the first localizer's maps (Fig 2c/d column, Fig S4 curve).
LOCALIZER_FIGURES = ("fig2_examples", "figS4_pr_curve")


def left_out_figures(config: dict, dataset: str) -> dict[str, str]:
    """Figures of :data:`LOCALIZER_FIGURES` left out for ``dataset``, with the reason (a line of the
    report): a dataset without a first localizer (a bring-your-own-maps index with no
    ``maps.models.localizer`` maps) has no ``PRED`` maps to show next to the saliency maps."""
    loc = f"{plan.localizer(config['datasets'][dataset])}_1"
    if loc in plan.model_ids(config, dataset):
        return {}
    why = (
        f"left out: dataset {dataset} has no localizer maps ({loc}; for bring-your-own maps, "
        f"datasets.{dataset}.maps.models.localizer), and this figure shows them next to the saliency maps"
    )
    return {f: why for f in LOCALIZER_FIGURES}


def overlay_files(s: dict, dataset: str, shard: str, results="results", methods=None) -> dict:
    """Files of Fig 2c/d and S4: the test shard, each method's maps, the localizer's, the AVG map."""
    methods = s["methods"] if methods is None else methods
    f = dict(dataset=dataset, shard=shard)
    return {
        "shard": paths.path(paths.SHARD, results, split="test", **f),
        "maps": {
            m: paths.path(paths.MAPS, results, model=s["primary"], state="original", method=m, **f) for m in methods
        },
        "localizer": paths.path(paths.MAPS, results, model=f"{s['localizer']}_1", state="original", method="PRED", **f),
        "avg": paths.path(paths.AVG_MAP, results, dataset=dataset) if s["has_avg"] else None,
    }


def randomization_files(s: dict, dataset: str, shard: str, results="results") -> dict:
    """Files of Fig 3b: the test shard and ``{method: {state: maps file}}`` for original + cascade."""
    f = dict(dataset=dataset, shard=shard)
    states = ["original"] + list(s["states"])
    return {
        "shard": paths.path(paths.SHARD, results, split="test", **f),
        "maps": {
            m: {st: paths.path(paths.MAPS, results, model=s["primary"], state=st, method=m, **f) for st in states}
            for m in _randomized(s)
        },
    }


def _randomized(s: dict) -> list[str]:
    """Methods with maps in every randomization state (:func:`saliency_audit.stats.run.settings`)."""
    return list(s["randomized_methods"])


def _get(inp, key):
    """``inp[key]`` of a dict or of Snakemake's named input (a Namedlist); a list for ``maps``;
    None for a missing ``avg`` (no AVG baseline for BYOM / all-test datasets)."""
    v = inp.get(key) if isinstance(inp, dict) else getattr(inp, key, None)
    if v is None and key != "avg":
        raise KeyError(f"input {key!r} missing")
    return list(v) if key == "maps" and not isinstance(v, str) else v


def overlay_files_from_input(inp, s: dict) -> dict:
    """The :func:`overlay_files` dict back from a rule's named input (maps in ``s['methods']`` order)."""
    maps = _get(inp, "maps")
    maps = [maps] if isinstance(maps, str) else maps
    return {
        "shard": _get(inp, "shard"),
        "maps": dict(zip(s["methods"], maps)),
        "localizer": _get(inp, "localizer"),
        "avg": _get(inp, "avg"),
    }


def randomization_files_from_input(inp, s: dict) -> dict:
    """The :func:`randomization_files` dict back from a rule's named input (method-major order)."""
    maps = _get(inp, "maps")
    maps = [maps] if isinstance(maps, str) else maps
    states = ["original"] + list(s["states"])
    methods = _randomized(s)
    if len(maps) != len(states) * len(methods):
        raise ValueError(f"{len(maps)} map files for {len(methods)} methods x {len(states)} states")
    it = iter(maps)
    return {"shard": _get(inp, "shard"), "maps": {m: {st: next(it) for st in states} for m in methods}}


def flat(files: dict) -> list[str]:
    """Every path in a (nested) file dict, for a rule's input."""
    out = []
    for v in files.values():
        out += flat(v) if isinstance(v, dict) else [v]
    return out


def _normalize(maps, method, mode, cam):
    from ..metrics.criteria import normalize

    return normalize(maps, method, mode, cam=cam)


def load_shard_examples(shard_path, s: dict, k: int):
    """ids, images, masks of the first ``k`` test images that have maps (``s``: the figure's settings)."""
    sh = io.read_shard(shard_path)
    idx = io.map_image_index(sh, s["images"], s["max_images"])[:k]
    return np.asarray(sh["ids"]).astype(str)[idx], sh["images"][idx], sh["masks"][idx]


def load_maps(path, ids, method, mode, cam):
    """Maps of ``ids`` (in that order) from a maps file, normalized as scored (``mode``:
    ``saliency.normalization``, ``cam``: ``saliency.cam_normalization``)."""
    from ..metrics.criteria import read_maps

    mids, maps = read_maps(path)
    pos = {i: n for n, i in enumerate(mids)}
    missing = [i for i in ids if i not in pos]
    if missing:
        raise InputError(f"{path}: no maps for images {missing[:5]} (has {len(mids)} images)")
    return _normalize(maps[[pos[i] for i in ids]], method, mode, cam)


def overlay_data(files: dict, s: dict, utility: pd.DataFrame | None, metric="auprc"):
    """Arrays of Fig 2c/d: images, masks, ``{column: maps}``, ``{column: utility per image}``."""
    from ..stats.groups import AVG, LOCALIZER_LABEL

    ids, images, masks = load_shard_examples(files["shard"], s, s["example_images"])
    loc = LOCALIZER_LABEL[s["localizer"]]
    maps, scores = {}, {}
    for m, path in files["maps"].items():
        maps[m] = load_maps(path, ids, m, s["normalization"], s["cam_normalization"])
        scores[m] = _lookup(utility, ids, metric, method=m, model_a=s["primary"], state="original")
    if files.get("avg"):
        avg = np.load(files["avg"]).astype(np.float32)
        maps[AVG] = np.broadcast_to(avg, images.shape)
        scores[AVG] = _lookup(utility, ids, metric, model_a="avg")
    maps[loc] = load_maps(files["localizer"], ids, "PRED", s["normalization"], s["cam_normalization"])
    scores[loc] = _lookup(utility, ids, metric, model_a=f"{s['localizer']}_1")
    return ids, images, masks, maps, scores


def _lookup(utility, ids, metric, **where):
    if utility is None:
        return np.full(len(ids), np.nan)
    d = utility[utility["metric"] == metric]
    for k, v in where.items():
        d = d[d[k] == v]
    vals = d.drop_duplicates("image_id").set_index("image_id")["value"]
    return np.array([vals.get(i, np.nan) for i in ids], float)


def randomization_data(files: dict, s: dict):
    """Arrays of Fig 3b: the first example image and ``{method: {state: map}}``."""
    ids, images, _ = load_shard_examples(files["shard"], s, 1)
    if not len(ids):
        return None, None, {}
    out = {
        m: {st: load_maps(p, ids, m, s["normalization"], s["cam_normalization"])[0] for st, p in by_state.items()}
        for m, by_state in files["maps"].items()
    }
    return ids[0], images[0], out
