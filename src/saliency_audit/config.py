"""Checks of a configuration that the JSON schema cannot express (registry names, paths)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .plan import TASK_OF_KIND


def check_config(config: dict) -> None:
    """Raise :class:`InputError` naming the key when the config asks for something impossible."""
    for name, ds in config["datasets"].items():
        kind = ds["kind"]
        if kind in TASK_OF_KIND and ds.get("task") not in (None, TASK_OF_KIND[kind]):
            raise InputError(f"datasets.{name}.task: a {kind} dataset is {TASK_OF_KIND[kind]}, not {ds['task']}")
        for key in ("images_dir", "labels_csv", "rle_csv", "class_info_csv", "split_file", "backgrounds", "gt_json"):
            if ds.get(key) and not Path(ds[key]).exists():
                raise InputError(f"datasets.{name}.{key}: {ds[key]} does not exist")
    from .saliency.registry import check_saliency_config  # no TensorFlow import

    check_saliency_config(config)
