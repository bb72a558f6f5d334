"""The settings of one model's training, read once from the validated config (no TensorFlow).

Every value comes from the config's ``models:`` block as the rule passes it
(``rules/common.smk: model_cfg``: the model's own section and the global switches), with the
schema's defaults filled in by Snakemake's ``validate()``; nothing here restates a default. A call
outside the workflow fills them the same way (:func:`saliency_audit.config.with_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..architectures import ARCHITECTURES, CLASSIFIERS
from ..errors import InputError

#: The keys each architecture's ``models.<arch>`` block holds (beyond replicates and seeds).
ARCH_KEYS = {
    **{a: ("lr", "epochs", "patience", "batch_size", "weights", "bn_momentum", "lr_schedule") for a in CLASSIFIERS},
    "unet": ("lr", "epochs", "patience", "batch_size", "plateau_patience", "plateau_factor", "base_filters", "depth"),
    "retinanet": ("lr", "epochs", "patience", "batch_size", "score_threshold"),
}
#: The switches of the ``models:`` block shared by every architecture.
GLOBAL_KEYS = ("mixed_precision", "jit_compile", "shuffle_buffer")


@dataclass(frozen=True)
class ModelSettings:
    """What one architecture trains with (``None``: the key does not apply to the architecture)."""

    arch: str
    lr: float
    epochs: int
    patience: int
    batch_size: int
    mixed_precision: bool
    jit_compile: bool
    shuffle_buffer: int
    weights: str | None = None  # classifiers
    bn_momentum: float | None = None  # classifiers; None keeps Keras' 0.99
    lr_schedule: str | None = None  # classifiers: constant or cosine
    plateau_patience: int | None = None  # U-Net
    plateau_factor: float | None = None  # U-Net
    base_filters: int | None = None  # U-Net
    depth: int | None = None  # U-Net
    score_threshold: float | None = None  # RetinaNet

    @classmethod
    def from_config(cls, arch: str, models_cfg: dict) -> "ModelSettings":
        """The settings of ``arch`` from a validated ``models:`` block; a missing key raises
        :class:`InputError` naming it (the block was not validated against the schema)."""
        if arch not in ARCHITECTURES:
            raise InputError(f"unknown model architecture {arch!r}; expected one of {list(ARCHITECTURES)}")
        if arch not in models_cfg:
            raise InputError(f"models.{arch}: missing; expected the validated config's block (schema defaults filled)")
        own = models_cfg[arch]
        values = {}
        for where, keys in ((own, ARCH_KEYS[arch]), (models_cfg, GLOBAL_KEYS)):
            for key in keys:
                if key not in where:
                    path = f"models.{arch}.{key}" if where is own else f"models.{key}"
                    raise InputError(
                        f"{path}: missing; expected the validated config (Snakemake's validate() fills the "
                        "schema's defaults; outside the workflow use saliency_audit.config.with_defaults)"
                    )
                values[key] = where[key]
        return cls(arch=arch, **values)

    def as_dict(self) -> dict:
        """The settings that apply to this architecture (``None`` fields of other architectures left out)."""
        keep = set(ARCH_KEYS[self.arch]) | set(GLOBAL_KEYS)
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in keep}
