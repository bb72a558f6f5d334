"""The maps index of a BYOM dataset and its mapping onto the pipeline's internal model roles.

Config (``datasets.<name>.maps``)::

    maps:
      index_csv: maps/index.csv      # image_id, method, path[, model][, state][, finding]
      interpolation: bilinear        # nearest | bilinear | bicubic (resize to the ground truth)
      rescale: auto                  # auto | minmax | none (at import; see importer)
      models: {primary: densenet-s1, replicate: densenet-s2, other: resnet50-s1, localizer: [unet-a, unet-b]}
      states: [top-block, all-blocks]  # optional: order of the randomization cascade

Relative ``path`` values are taken relative to the index CSV's folder. Rows without a ``model``
column (or with an empty model) belong to the primary model; an empty or ``original`` state is the
trained model; other states are randomized states of the primary model (internal name
``cascade-<label>``: the statistics treat them as a cascade in the order of ``maps.states``, or of
first appearance in the index, the last being the fully randomized model).

Internal roles (what :mod:`saliency_audit.metrics.criteria` reads from :mod:`saliency_audit.plan`):
primary = ``inceptionv3_1`` (utility, randomization, both sides' model_a), replicate =
``inceptionv3_2`` (repeatability), other = ``densenet121_1`` (reproducibility), localizer =
``unet_1``, ``unet_2`` (``retinanet_*`` for a detection task), whose maps are the ``PRED`` high
baseline whatever their method column says. :func:`layout` gives the user's label of each
internal id so tables can be read back.

This module is read at parse time (the Snakefile calls it through :mod:`.plan`): it reads one small
CSV, never the map files. It sits in the lowest layers, below :mod:`.plan` (which asks it what a
BYOM dataset holds) and above :mod:`.architectures` and :mod:`.readers`; :mod:`.byom` (the map
importer) re-exports it as ``saliency_audit.byom.index``.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .architectures import localizer
from .errors import InputError
from .readers import read_labels_csv

ROLES = ("primary", "replicate", "other", "localizer")
ROLE_IDS = {"primary": "inceptionv3_1", "replicate": "inceptionv3_2", "other": "densenet121_1"}
#: Method and state labels become path components and table values.
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
RESERVED_METHODS = ("AVG",)
ORIGINAL = "original"


def slug(text: str) -> str:
    """``'Lung Lesion'`` -> ``'Lung-Lesion'`` (a dataset name's characters: letters, digits, '-', '_')."""
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-")


def expand_datasets(config: dict) -> dict:
    """Replace each dataset with a ``findings`` list by one dataset per finding (in place).

    ``chexloc: {kind: chexlocalize, findings: [Atelectasis, Lung Lesion], ...}`` becomes
    ``chexloc-Atelectasis`` and ``chexloc-Lung-Lesion``, each with ``finding`` set: every finding is
    scored as a separate dataset (its own manifest, shards, scores, statistics), as CheXlocalize
    evaluates each pathology separately (Saporta et al., Nat. Mach. Intell. 2022).
    """
    out = {}
    for name, ds in config["datasets"].items():
        findings = ds.get("findings")
        if not findings:
            out[name] = ds
            continue
        for f in findings:
            new = f"{name}-{slug(f)}"
            if new in config["datasets"] or new in out:
                raise InputError(f"datasets.{name}.findings: dataset name {new!r} (for {f!r}) is already used")
            d = copy.deepcopy(ds)
            d.pop("findings")
            d["finding"] = f
            out[new] = d
    config["datasets"] = out
    return config


def index_path(ds_cfg: dict) -> Path:
    return Path(ds_cfg["maps"]["index_csv"])


def read_index(name: str, ds_cfg: dict) -> pd.DataFrame:
    """The index rows of this dataset (filtered to its ``finding``), checked; adds ``_line``.

    Columns: image_id, method, path (resolved), model (label, '' = primary), state ('' ->
    original), finding. Raises :class:`InputError` naming the file and row.
    """
    path = index_path(ds_cfg)
    if not path.is_file():
        raise InputError(f"datasets.{name}.maps.index_csv: {path} not found")
    st = path.stat()
    return _read_index(str(path), st.st_mtime_ns, st.st_size, ds_cfg.get("finding")).copy()


@functools.lru_cache(maxsize=64)
def _read_index(path: str, _mtime, _size, finding) -> pd.DataFrame:
    df = read_labels_csv(
        path,
        ("image_id", "method", "path"),
        what="maps index",
        expected="columns image_id, method, path and optionally model, state, finding",
        keep_default_na=False,
    )
    for c in ("model", "state"):
        if c not in df.columns:
            df[c] = ""
    if "finding" not in df.columns:
        df["finding"] = df["task"] if "task" in df.columns else ""
    if finding is not None:
        if not (df["finding"] != "").any():
            raise InputError(
                f"{path}: the dataset has finding {finding!r} but the index has no finding (or task) column"
            )
        df = df[df["finding"] == finding]
        if df.empty:
            raise InputError(f"{path}: no rows with finding {finding!r}")
    if df.empty:
        raise InputError(f"{path}: maps index has no rows")
    for c in ("image_id", "method", "path"):
        bad = df[df[c] == ""]
        if len(bad):
            raise InputError(f"{path}: row {bad['_line'].iloc[0]}: empty {c}")
    base = Path(path).parent
    df["path"] = [p if Path(p).is_absolute() else str(base / p) for p in df["path"]]
    df["state"] = df["state"].replace("", ORIGINAL)
    return df.reset_index(drop=True)


def _internal_state(label: str) -> str:
    if label == ORIGINAL or label.startswith(("cascade-", "indep-")):
        return label
    return f"cascade-{label}"


def layout(name: str, ds_cfg: dict) -> dict:
    """What the maps index holds, in internal terms (cached per index file and config).

    Returns
    -------
    dict
        ``labels``: internal model id -> user label; ``model_ids``: internal ids (classifiers in
        role order, then localizers); ``localizers``; ``methods`` (classifier methods, index
        order); ``states`` (internal randomization states, cascade order); ``state_labels``;
        ``triples``: sorted list of (model, state, method) with maps; ``rows``: the index with
        internal ``model_id``, ``state_id`` and ``method_id`` columns.
    """
    key = json.dumps(ds_cfg, sort_keys=True, default=str)
    path = index_path(ds_cfg)
    if not path.is_file():
        raise InputError(f"datasets.{name}.maps.index_csv: {path} not found")
    st = path.stat()
    return _layout(name, key, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _layout(name: str, key: str, _mtime, _size) -> dict:
    ds_cfg = json.loads(key)
    mcfg = ds_cfg["maps"]
    df = read_index(name, ds_cfg)
    where = f"{index_path(ds_cfg)}"
    roles = dict(mcfg.get("models") or {})
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise InputError(f"datasets.{name}.maps.models: unknown role(s) {unknown}; expected {list(ROLES)}")
    locs = roles.get("localizer") or []
    locs = [locs] if isinstance(locs, str) else list(locs)
    if len(locs) > 2:
        raise InputError(f"datasets.{name}.maps.models.localizer: at most 2 localizer models, got {locs}")
    labels_in_index = list(dict.fromkeys(df["model"]))
    if "primary" not in roles:
        named = [m for m in labels_in_index if m not in locs and m not in roles.values()]
        if len(named) > 1:
            raise InputError(
                f"{where}: models {named} in the index; say which is which in datasets.{name}.maps.models "
                f"(roles {list(ROLES)})"
            )
        roles["primary"] = named[0] if named else ""
    label_to_id = {}
    for role in ("primary", "replicate", "other"):
        if role in roles:
            label_to_id[str(roles[role])] = ROLE_IDS[role]
    arch = localizer(ds_cfg)
    for i, lab in enumerate(locs):
        label_to_id[str(lab)] = f"{arch}_{i + 1}"
    if "" in labels_in_index and "" not in label_to_id:
        label_to_id[""] = ROLE_IDS["primary"] if roles["primary"] in ("", None) else None
    stray = [m for m in labels_in_index if label_to_id.get(m) is None]
    if stray:
        line = df.loc[df["model"] == stray[0], "_line"].iloc[0]
        raise InputError(
            f"{where}: row {line}: model {stray[0]!r} has no role in datasets.{name}.maps.models "
            f"(roles: {json.dumps(roles)}); expected one of {sorted(k for k in label_to_id if k)}"
        )
    df["model_id"] = [label_to_id[m] for m in df["model"]]
    is_loc = df["model_id"].str.startswith(arch + "_")
    bad = df[~df["method"].map(lambda m: bool(LABEL.match(m))) | df["method"].isin(RESERVED_METHODS)]
    if len(bad):
        r = bad.iloc[0]
        raise InputError(
            f"{where}: row {r['_line']}: method {r['method']!r}; expected letters, digits, '.', '_', '+', '-' "
            f"(not {list(RESERVED_METHODS)})"
        )
    bad = df[~is_loc & (df["method"] == "PRED")]
    if len(bad):
        raise InputError(
            f"{where}: row {bad['_line'].iloc[0]}: method PRED is reserved for localizer models "
            f"(datasets.{name}.maps.models.localizer)"
        )
    df["method_id"] = np.where(is_loc, "PRED", df["method"])
    bad = df[~df["state"].map(lambda s: bool(LABEL.match(s)))]
    if len(bad):
        raise InputError(f"{where}: row {bad['_line'].iloc[0]}: state {bad['state'].iloc[0]!r} is not a valid label")
    rnd = df[df["state"] != ORIGINAL]
    wrong = rnd[rnd["model_id"] != ROLE_IDS["primary"]]
    if len(wrong):
        r = wrong.iloc[0]
        raise InputError(
            f"{where}: row {r['_line']}: state {r['state']!r} for model {r['model']!r}; randomized states are "
            "read for the primary model only (other models: state empty or 'original')"
        )
    found = list(dict.fromkeys(rnd["state"]))
    order = [str(s) for s in (mcfg.get("states") or found)]
    if set(order) != set(found):
        raise InputError(
            f"datasets.{name}.maps.states: {order} must list exactly the index's randomized states {found}"
        )
    df["state_id"] = [_internal_state(s) for s in df["state"]]
    dup = df.duplicated(["image_id", "model_id", "state_id", "method_id"], keep=False)
    if dup.any():
        d = df[dup]
        r = d.iloc[0]
        lines = d[(d["image_id"] == r["image_id"]) & (d["model_id"] == r["model_id"])]["_line"].tolist()
        raise InputError(
            f"{where}: rows {lines}: image {r['image_id']!r} has more than one map for model {r['model']!r}, "
            f"state {r['state']!r}, method {r['method']!r}"
        )
    ids = [ROLE_IDS[r] for r in ("primary", "replicate", "other") if ROLE_IDS[r] in set(df["model_id"])]
    loc_ids = [f"{arch}_{i + 1}" for i in range(len(locs)) if f"{arch}_{i + 1}" in set(df["model_id"])]
    triples = sorted(set(zip(df["model_id"], df["state_id"], df["method_id"])))
    return {
        "labels": {v: (k or "primary") for k, v in label_to_id.items() if v},
        "model_ids": ids + loc_ids,
        "localizers": loc_ids,
        "methods": list(dict.fromkeys(df.loc[~is_loc, "method_id"])),
        "states": [_internal_state(s) for s in order],
        "state_labels": {_internal_state(s): s for s in order},
        "triples": triples,
        "rows": df,
    }
