"""What a configuration asks for: datasets' tasks, model ids, seeds, randomization states.

Pure Python with no TensorFlow import: the Snakefile calls it at parse time on every cluster job.
One of the lowest layers: it reads the architecture facts (:mod:`.architectures`) and a BYOM
dataset's maps index (:mod:`.maps_index`), and nothing above them.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .architectures import (  # noqa: F401  (callers read these through plan)
    CLASSIFIERS,
    LOCALIZER_FOR_TASK,
    TASK_OF_KIND,
    arch_of,
    is_classifier,
    localizer,
    task,
)
from .errors import InputError
from .maps_index import layout as _maps_layout

#: InceptionV3 blocks from the top, as re-initialised by the cascading randomization test.
INCEPTION_CASCADE = ["logits"] + [f"mixed{i}" for i in range(10, 0, -1)]
INCEPTION_STEM = "stem"
#: The classifier whose maps are audited for randomization, repeatability and reproducibility.
PRIMARY = "inceptionv3_1"


def job_priority(job: str, model: str | None = None) -> int:
    """Snakemake ``priority`` of a job: which ready job takes free cores or a free ``gpu`` slot first.

    ``job``: ``data`` (manifest, shards, XRAI's segments: every later job waits on them), or a
    TensorFlow job: ``train`` or ``maps`` of ``model``, or ``states`` (the primary model's maps of
    every randomization state). The data first; then the longest chain: the primary model's
    training, then its states job (the run's longest job); the other classifiers' trainings, then
    their maps; the localizers' short jobs last, so they fill the end of a run rather than a long
    job running alone at the end. In the demo, without it the states job of one dataset waited
    15 minutes behind other trainings and ran alone for the last 3 (2 cores, ``--resources gpu=2``).
    """
    if job == "data":
        return 5
    if job == "states":
        return 4
    if not is_classifier(model):
        return 0
    if job == "train":
        return 3 if model == PRIMARY else 2
    return 1


def derive_seed(base: int, *keys) -> int:
    """A stable 31-bit seed from the top-level seed and any keys (same inputs, same seed)."""
    text = ":".join([str(int(base))] + [str(k) for k in keys])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def is_byom(ds_cfg: dict) -> bool:
    """A dataset that brings its own maps (``maps:`` block): no training, no map making."""
    return bool(ds_cfg.get("maps"))


def all_test(ds_cfg: dict) -> bool:
    """Every image in ``test``: the dataset's ``all_test`` (default: on for BYOM datasets)."""
    return bool(ds_cfg.get("all_test", is_byom(ds_cfg)))


def _byom_layout(config: dict, dataset: str):
    """The BYOM layout of ``dataset`` (:func:`saliency_audit.maps_index.layout`), or None."""
    ds_cfg = config["datasets"][dataset]
    if not is_byom(ds_cfg):
        return None
    return _maps_layout(dataset, ds_cfg)


def byom_datasets(config: dict) -> list[str]:
    return [d for d, c in config["datasets"].items() if is_byom(c)]


def trained_datasets(config: dict) -> list[str]:
    """Datasets whose models are trained and whose maps are made here (not BYOM)."""
    return [d for d, c in config["datasets"].items() if not is_byom(c)]


def dataset_regex(names: list[str]) -> str:
    """A wildcard constraint matching exactly ``names`` (a never-matching pattern when empty)."""
    return "|".join(names) if names else "(?!x)x"


def has_avg(config: dict, dataset: str) -> bool:
    """The AVG baseline (mean train+val mask) exists: not for BYOM / all-test datasets."""
    ds_cfg = config["datasets"][dataset]
    return not is_byom(ds_cfg) and not all_test(ds_cfg)


def methods(config: dict, dataset: str | None = None) -> list[str]:
    """Saliency methods of a dataset: a BYOM dataset's index, else ``saliency.methods`` (the schema
    fills in the paper's eight: :data:`saliency_audit.saliency.registry.PAPER_METHODS`)."""
    lay = _byom_layout(config, dataset) if dataset is not None else None
    if lay is not None:
        return list(lay["methods"])
    return list(config["saliency"]["methods"])


def has_maps(config: dict, dataset: str, model: str, state: str, method: str) -> bool:
    """Whether a maps file exists in the plan (always, except for a BYOM index's gaps)."""
    lay = _byom_layout(config, dataset)
    return lay is None or (model, state, method) in set(lay["triples"])


def image_size(config: dict, dataset: str) -> int:
    """Side of the square model input of ``dataset``: its own ``image_size`` or the run's."""
    return int(config["datasets"][dataset].get("image_size", config["image_size"]))


def model_ids(config: dict, dataset: str) -> list[str]:
    """All trained model ids of a dataset: ``{arch}_{replicate}`` (replicates count from 1).

    A BYOM dataset's ids are the internal roles its maps index fills (:mod:`saliency_audit.byom`).
    """
    lay = _byom_layout(config, dataset)
    if lay is not None:
        return list(lay["model_ids"])
    models = config["models"]  # validated: every architecture's replicates (schema defaults 2, 1, 2, 2)
    ids = []
    for arch in CLASSIFIERS:
        ids += [f"{arch}_{r}" for r in range(1, models[arch]["replicates"] + 1)]
    if models["label_shuffled"]:
        ids.append("inceptionv3-shuffled_1")
    loc = localizer(config["datasets"][dataset])
    ids += [f"{loc}_{r}" for r in range(1, models[loc]["replicates"] + 1)]
    return ids


def model_seed(config: dict, dataset: str, model_id: str) -> int:
    """Replicate seed: an explicit ``models.<arch>.seeds[r-1]`` or one derived from ``seed``."""
    arch = arch_of(model_id)
    rep = int(model_id.rsplit("_", 1)[1])
    seeds = config["models"][arch].get("seeds") or []  # no schema default: absent = derived
    if "-shuffled" not in model_id and len(seeds) >= rep:
        return int(seeds[rep - 1])
    return derive_seed(config["seed"], dataset, model_id)


def _cascade_blocks(config: dict) -> list[str]:
    """The blocks whose cascade states get maps, top first (``randomization.blocks``: a subset that
    must include the cascade's last block, the fully randomized model; None: every block)."""
    rnd = config["randomization"]
    blocks = INCEPTION_CASCADE + ([INCEPTION_STEM] if rnd["cascade_to_stem"] else [])
    chosen = rnd["blocks"]
    if chosen is None:
        return blocks
    unknown = sorted(set(chosen) - set(blocks))
    if unknown or blocks[-1] not in chosen:
        raise InputError(
            f"randomization.blocks: {list(chosen)} must be blocks of the cascade {blocks} and include its "
            f"last block {blocks[-1]!r} (the fully randomized model)"
            + (f"; not in the cascade: {unknown}" if unknown else "")
        )
    return [b for b in blocks if b in chosen]


def cascade_state(block: str, repeat: int = 1) -> str:
    """The name of cascade ``repeat``'s state that has re-initialised down to ``block``:
    ``cascade-<block>`` for repeat 1 (the name and seed of a single-run cascade), else
    ``cascade<r>-<block>``."""
    return f"cascade-{block}" if int(repeat) == 1 else f"cascade{int(repeat)}-{block}"


#: ``cascade-b``, ``cascade<r>-b`` (r >= 2, no leading zero) or ``indep-b``
_STATE = re.compile(r"(?:(cascade)([2-9]|[1-9][0-9]+)?|(indep))-(.+)")


def parse_state(state: str) -> tuple[str, int, str | None]:
    """``(mode, repeat, block)`` of a model state: ``original`` -> ('original', 1, None),
    ``cascade-mixed5`` -> ('cascade', 1, 'mixed5'), ``cascade2-mixed5`` -> ('cascade', 2, 'mixed5'),
    ``indep-mixed5`` -> ('indep', 1, 'mixed5'). Raises :class:`ValueError` on any other form
    (a BYOM label such as ``cascade-top`` parses: the block is not checked here)."""
    if state == "original":
        return "original", 1, None
    m = _STATE.fullmatch(state)
    if m is None:
        raise ValueError(f"model state {state!r}: expected original, cascade-<block>, cascade<r>-<block> (r >= 2) or indep-<block>")
    return m.group(1) or m.group(3), int(m.group(2) or 1), m.group(4)


def cascade_states(config: dict, dataset: str | None = None) -> list[list[str]]:
    """The cascades: one list per repeat (``randomization.repeats``), each in cascade order (top
    first, fully randomized last). Repeat 1 is ``cascade-<block>``, repeat r >= 2
    ``cascade<r>-<block>`` (an independent re-draw of the same cascade; the released plots average
    three). Empty without ``randomization.cascade``. A BYOM dataset has one cascade: its index's."""
    lay = _byom_layout(config, dataset) if dataset is not None else None
    if lay is not None:
        states = [s for s in lay["states"] if s.startswith("cascade-")]
        return [states] if states else []
    rnd = config["randomization"]  # validated: the schema fills cascade (true) and repeats (3)
    if not rnd["cascade"]:
        return []
    blocks = _cascade_blocks(config)
    return [[cascade_state(b, r) for b in blocks] for r in range(1, int(rnd["repeats"]) + 1)]


def randomization_states(config: dict, dataset: str | None = None) -> list[str]:
    """Model states of the primary InceptionV3 beyond ``original``.

    ``cascade-<block>`` re-initialises that block and every block above it (Adebayo et al. 2018;
    Arun et al. 2021), ``cascade<r>-<block>`` the same in cascade repeat r >= 2
    (:func:`cascade_states`); ``indep-<block>`` re-initialises that block alone (not repeated).
    With ``dataset`` a BYOM dataset, its maps index's states (in the configured cascade order).
    """
    lay = _byom_layout(config, dataset) if dataset is not None else None
    if lay is not None:
        return list(lay["states"])
    states = [s for run in cascade_states(config) for s in run]
    if config["randomization"]["independent"]:
        states += [f"indep-{b}" for b in _cascade_blocks(config)]
    return states


def fully_randomized_states(config: dict, dataset: str | None = None) -> list[str]:
    """The last state of each cascade repeat (everything re-initialised), repeat 1 first."""
    return [run[-1] for run in cascade_states(config, dataset) if run]


def fully_randomized_state(config: dict, dataset: str | None = None) -> str | None:
    """The last state of cascade repeat 1 (everything re-initialised), or None without a cascade."""
    full = fully_randomized_states(config, dataset)
    return full[0] if full else None


def map_models(config: dict, dataset: str) -> list[tuple[str, str]]:
    """(model_id, state) pairs that get saliency maps (BYOM: classifier pairs in the index)."""
    lay = _byom_layout(config, dataset)
    if lay is not None:
        loc = set(lay["localizers"])
        return list(dict.fromkeys((m, s) for m, s, _ in _ordered(lay) if m not in loc))
    pairs = []
    for mid in model_ids(config, dataset):
        if is_classifier(mid):
            pairs.append((mid, "original"))
    if PRIMARY in model_ids(config, dataset):
        pairs += [(PRIMARY, s) for s in randomization_states(config)]
    return pairs


def _ordered(lay: dict):
    """BYOM triples ordered: models by role, ``original`` first then the cascade, methods by index."""
    mo = {m: i for i, m in enumerate(lay["model_ids"])}
    so = {s: i for i, s in enumerate(["original"] + lay["states"])}
    me = {m: i for i, m in enumerate(lay["methods"] + ["PRED"])}
    return sorted(lay["triples"], key=lambda t: (mo[t[0]], so[t[1]], me[t[2]]))


def package_hash(subpackage: str) -> str:
    """Hash of a subpackage's source: a rule's params carry it so code changes rerun the rule."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    files = sorted((root / subpackage).rglob("*.py")) if (root / subpackage).is_dir() else []
    # the lowest layers, which every subpackage may import
    lowest = ("io.py", "plan.py", "errors.py", "architectures.py", "maps_index.py", "readers.py", "paths.py")
    files += [root / f for f in lowest]
    for f in files:
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
