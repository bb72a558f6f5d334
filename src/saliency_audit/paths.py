"""Where every stage's files live: the path templates the rules and the package share.

One lowest-layer module (no imports from the package) so a rule's ``output:`` and the package
function that plans the same file (a criterion's shard plan, a figure's inputs) spell it once.
Each template is a :meth:`str.format` string over ``results`` (the results folder, ``results`` in
the workflow) and the wildcards of the file. :func:`pattern` fills some fields and keeps the rest
as Snakemake wildcards (``{dataset}``), :func:`path` fills all of them.
"""

from __future__ import annotations

#: The manifest of a dataset (rules/data.smk): records, split, shard.
MANIFEST = "{results}/{dataset}/data/manifest.csv"
#: A preprocessed shard of one split (rules/data.smk).
SHARD = "{results}/{dataset}/data/shards/{split}_{shard}.npz"
#: The maps of one (model, state, method) on one test shard (saliency, localizer PRED, BYOM import).
MAPS = "{results}/{dataset}/maps/{model}/{state}/{method}/test_{shard}.npz"
#: A trained model, its training history and its test metrics (rules/models.smk: train_model).
MODEL = "{results}/{dataset}/models/{model}/model.keras"
HISTORY = "{results}/{dataset}/models/{model}/history.csv"
MODEL_METRICS = "{results}/{dataset}/models/{model}/metrics.json"
#: The AVG baseline: the mean train + val mask (rules/models.smk).
AVG_MAP = "{results}/{dataset}/models/avg/avg_map.npy"
#: One criterion's tidy scores of one test shard, and gathered over the shards (rules/criteria.smk).
SHARD_SCORES = "{results}/{dataset}/scores/{criterion}/test_{shard}.csv"
SCORES = "{results}/{dataset}/scores/{criterion}.csv"
#: The randomization degradation thresholds and their per-anchor-image pair means.
THRESHOLDS = "{results}/{dataset}/scores/randomization_thresholds.csv"
ANCHORS = "{results}/{dataset}/scores/randomization_threshold_anchors.csv"
#: Means and SDs of every gathered criterion.
SUMMARY = "{results}/{dataset}/scores/summary.csv"
#: The statistics (rules/report.smk, fit_stats): ``table`` is ``contrasts`` or ``models``.
STATS = "{results}/{dataset}/stats/{table}.csv"
#: A bring-your-own-maps dataset's model/state labels (rules/byom.smk).
BYOM_LABELS = "{results}/{dataset}/byom/labels.csv"


class _KeepMissing(dict):
    def __missing__(self, key):
        return "{" + key + "}"


def pattern(template: str, results: str = "results", **fields) -> str:
    """``template`` with ``results`` and ``fields`` filled; every other field stays a wildcard.

    >>> pattern(MAPS, "results", state="original", method="PRED")
    'results/{dataset}/maps/{model}/original/PRED/test_{shard}.npz'
    """
    return template.format_map(_KeepMissing(results=results, **fields))


def path(template: str, results: str = "results", **fields) -> str:
    """``template`` with every field filled (a missing one raises :class:`KeyError` naming it)."""
    return template.format(results=results, **fields)
