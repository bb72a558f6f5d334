"""Scores of saliency maps: localization utility and map similarity, per criterion of Arun et al. 2021.

:mod:`.utility` (AUPRC, AP, AUROC of a map against a mask), :mod:`.similarity` (SSIM, Spearman,
HOG), :mod:`.criteria` (the four criteria on one test shard, degradation thresholds),
:mod:`.tables` (the tidy score table, gathering, summary). Metric functions are pure.
"""

from .similarity import SIMILARITY_METRICS
from .utility import METRICS as UTILITY_METRICS

__all__ = ["SIMILARITY_METRICS", "UTILITY_METRICS"]
