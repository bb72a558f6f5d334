"""Checks of a configuration that the JSON schema cannot express (registry names, paths)."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError
from .plan import TASK_OF_KIND

#: Dataset names become folders (``results/<name>/``) and wildcard values; the schema's
#: ``datasets.propertyNames`` pattern is the same.
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_dataset_names(config: dict) -> None:
    """Raise :class:`InputError` saying which characters a dataset name may hold (before the schema,
    whose message would only quote the pattern)."""
    for name in (config.get("datasets") or {}):
        if not DATASET_NAME.match(str(name)):
            raise InputError(
                f"datasets.{name}: invalid dataset name {str(name)!r}; use letters, digits, '-' and '_', "
                "starting with a letter or digit"
            )


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
