"""Bring your own maps (BYOM): score precomputed saliency maps without training or map making.

A dataset with a ``maps:`` block takes its maps from an index CSV (:mod:`.index`) instead of the
models and saliency stages; :mod:`.importer` resizes them onto the dataset's test shards and writes
them where the saliency stage would (``results/{ds}/maps/{model}/{state}/{method}/test_{shard}.npz``),
so the criteria, statistics and report stages run unchanged.
"""

from .index import (  # noqa: F401
    ROLES,
    expand_datasets,
    layout,
)
