"""Names and tasks of the model architectures: TensorFlow-free facts every layer may read.

The lowest layer (beside :mod:`.errors`): :mod:`.plan`, the BYOM maps index (:mod:`.maps_index`),
the data sources and the models all read these, so they live below all of them.
"""

from __future__ import annotations

CLASSIFIERS = ("inceptionv3", "densenet121")
LOCALIZER_FOR_TASK = {"segmentation": "unet", "detection": "retinanet"}
TASK_OF_KIND = {"siim": "segmentation", "rsna": "detection", "chexlocalize": "segmentation"}
#: Every architecture a model id may name (the config's ``models.<arch>`` blocks).
ARCHITECTURES = CLASSIFIERS + tuple(LOCALIZER_FOR_TASK.values())


def task(ds_cfg: dict) -> str:
    """segmentation or detection, from the kind (siim/rsna) or the dataset's own ``task``."""
    if ds_cfg["kind"] in TASK_OF_KIND:
        return TASK_OF_KIND[ds_cfg["kind"]]
    return ds_cfg.get("task", "segmentation")


def localizer(ds_cfg: dict) -> str:
    return LOCALIZER_FOR_TASK[task(ds_cfg)]


def arch_of(model_id: str) -> str:
    """``inceptionv3-shuffled_1`` -> ``inceptionv3``."""
    return model_id.rsplit("_", 1)[0].split("-")[0]


def is_classifier(model_id: str) -> bool:
    return arch_of(model_id) in CLASSIFIERS
