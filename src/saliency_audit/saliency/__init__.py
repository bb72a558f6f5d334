"""Saliency maps: one interface, one registry (:mod:`.registry`, no TensorFlow), batched methods.

``get_method(name, params).compute(model, x)`` returns one raw 2-D map per image;
:func:`saliency_audit.saliency.normalize.normalize_maps` turns raw maps into [0, 1] maps for metrics.
"""

from .registry import METHOD_NAMES, METHODS, PAPER_METHODS, get_method, resolve_params  # noqa: F401
