"""Compatibility shims for the reference libraries, applied at run time (site-packages untouched).

PAIR ``saliency.core.guided_ig`` (0.2.1) calls ``np.quantile(..., interpolation='lower')``; the
``interpolation`` keyword was removed in numpy 2.4 (renamed ``method`` in numpy 1.22). The shim
gives that module a namespace whose ``quantile`` translates the keyword and otherwise forwards to
numpy; nothing else changes.
"""

from __future__ import annotations

import types

import numpy as np


def _quantile(a, q, *args, interpolation=None, **kwargs):
    if interpolation is not None:
        kwargs.setdefault("method", interpolation)
    return np.quantile(a, q, *args, **kwargs)


class _NumpyShim(types.ModuleType):
    def __getattr__(self, name):
        return getattr(np, name)


def patch_guided_ig():
    """Make PAIR's Guided IG run on numpy >= 2.4; returns the patched module (idempotent)."""
    from saliency.core import guided_ig

    if not isinstance(guided_ig.np, _NumpyShim):
        shim = _NumpyShim("numpy_quantile_shim")
        shim.quantile = _quantile
        guided_ig.np = shim
    return guided_ig
