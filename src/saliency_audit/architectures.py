"""The model architectures: a TensorFlow-free registry every layer may read.

The lowest layer (beside :mod:`.errors`): :mod:`.plan`, the BYOM maps index (:mod:`.maps_index`),
the data sources, the models, the saliency methods and the statistics all read these facts, so
they live below all of them. One :class:`Architecture` per architecture holds its role, its
Grad-CAM layer, its smallest input, the validation metric its early stopping watches and the
dotted names of its functions in :mod:`saliency_audit.models` (resolved there, lazily, by
:func:`saliency_audit.models.arch_function`; nothing here imports TensorFlow or an upper layer).
Its training hyper-parameters are not here: they are the schema's defaults
(``schemas/config.schema.yaml``, ``models.<arch>``), read by :class:`saliency_audit.models.settings.ModelSettings`.

Arun et al. (Radiology: AI 2021), Methods: InceptionV3 and DenseNet121 classifiers (early stopping
on validation AUC; Grad-CAM on InceptionV3's ``mixed10``), U-Net segmentation and RetinaNet
detection localizers (early stopping on validation loss).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

#: the roles an architecture plays
ROLES = ("classifier", "localizer")
_MODELS = "saliency_audit.models"


@dataclass(frozen=True)
class Architecture:
    """The facts of one architecture (``None``: the field does not apply to its role).

    ``setup``, ``score`` and ``maps`` are ``"module:function"`` names in :mod:`saliency_audit.models`:
    ``setup(model_id, arch, settings, train_paths, val_paths, image_size, seed)`` builds the model and
    what its fit needs (:class:`saliency_audit.models.train.Setup`), ``score(outputs) -> (N,)`` the
    image-level score (for AUROC), ``maps(outputs, image_size, score_threshold) -> (N, S, S)`` a
    localizer's pixel maps.
    """

    name: str
    role: str  # classifier or localizer
    setup: str
    score: str
    monitor: str  # what early stopping watches: val_auc or val_loss
    mode: str  # max or min
    task: str | None = None  # localizers: segmentation or detection
    maps: str | None = None  # localizers
    label: str | None = None  # localizers: their name in tables and figures
    backbone: str | None = None  # classifiers: keras.applications constructor
    gradcam_layer: str | None = None  # classifiers: default Grad-CAM layer
    min_size: int | None = None  # classifiers: smallest input side the backbone accepts


def _classifier(name, backbone, gradcam_layer, min_size):
    return Architecture(name, "classifier", f"{_MODELS}.train:_classifier_setup", f"{_MODELS}.train:classifier_scores",
                        "val_auc", "max", backbone=backbone, gradcam_layer=gradcam_layer, min_size=min_size)


#: name -> facts. Grad-CAM: InceptionV3 ``mixed10`` (Arun et al.); DenseNet121 its final block
#: output, the ``relu`` after the last batch norm in keras.applications.
REGISTRY = {
    a.name: a
    for a in (
        _classifier("inceptionv3", "InceptionV3", "mixed10", 75),
        _classifier("densenet121", "DenseNet121", "relu", 32),
        Architecture("unet", "localizer", f"{_MODELS}.train:_unet_setup", f"{_MODELS}.unet:unet_image_scores",
                     "val_loss", "min", task="segmentation", maps=f"{_MODELS}:_unet_maps", label="UNET"),
        Architecture("retinanet", "localizer", f"{_MODELS}.train:_retinanet_setup",
                     f"{_MODELS}.retinanet:retinanet_image_scores", "val_loss", "min", task="detection",
                     maps=f"{_MODELS}:_retinanet_maps", label="RNET"),
    )
}

CLASSIFIERS = tuple(a.name for a in REGISTRY.values() if a.role == "classifier")
LOCALIZER_FOR_TASK = {a.task: a.name for a in REGISTRY.values() if a.role == "localizer"}
TASK_OF_KIND = {"siim": "segmentation", "rsna": "detection", "chexlocalize": "segmentation"}
#: Every architecture a model id may name (the config's ``models.<arch>`` blocks).
ARCHITECTURES = tuple(REGISTRY)


def get_arch(name: str) -> Architecture:
    """The facts of architecture ``name``; :class:`InputError` naming it and the known ones otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown model architecture {name!r}; expected one of {list(REGISTRY)}") from None


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
