"""The architecture registry: TensorFlow-free, one entry per ``models.<arch>`` block of the schema,
the names the other layers read derived from it, and its functions resolvable in the models package."""

import subprocess
import sys

import pytest
import yaml

from saliency_audit import architectures as A
from saliency_audit.config import SCHEMA
from saliency_audit.errors import InputError

SCHEMA_MODELS = yaml.safe_load(SCHEMA.read_text())["properties"]["models"]["properties"]


def test_every_models_block_of_the_schema_is_registered():
    blocks = [k for k, v in SCHEMA_MODELS.items() if v.get("type") == "object"]
    assert blocks == ["inceptionv3", "densenet121", "unet", "retinanet"]
    assert list(A.REGISTRY) == blocks == list(A.ARCHITECTURES)


def test_derived_names_are_the_registrys():
    assert A.CLASSIFIERS == ("inceptionv3", "densenet121")
    assert A.LOCALIZER_FOR_TASK == {"segmentation": "unet", "detection": "retinanet"}
    assert {a.name: (a.monitor, a.mode) for a in A.REGISTRY.values()} == {
        "inceptionv3": ("val_auc", "max"), "densenet121": ("val_auc", "max"),
        "unet": ("val_loss", "min"), "retinanet": ("val_loss", "min")}


def test_gradcam_layers_and_backbones_are_the_ones_the_code_used():
    """The values saliency/base.py and models/classifiers.py held before the registry."""
    from saliency_audit.models.classifiers import BACKBONES, MIN_SIZE
    from saliency_audit.saliency.base import GRADCAM_LAYERS
    from saliency_audit.stats.groups import LOCALIZER_LABEL

    assert GRADCAM_LAYERS == {"inceptionv3": "mixed10", "densenet121": "relu"}
    assert BACKBONES == {"inceptionv3": "InceptionV3", "densenet121": "DenseNet121"}
    assert MIN_SIZE == {"inceptionv3": 75, "densenet121": 32}
    assert LOCALIZER_LABEL == {"unet": "UNET", "retinanet": "RNET"}


def test_unknown_arch_is_named_with_the_known_ones():
    known = r"\['inceptionv3', 'densenet121', 'unet', 'retinanet'\]"
    with pytest.raises(InputError, match=rf"unknown model architecture 'vgg16'; expected one of {known}"):
        A.get_arch("vgg16")
    assert A.get_arch("unet").task == "segmentation"


def test_entries_are_frozen():
    with pytest.raises(AttributeError):
        A.get_arch("unet").monitor = "val_auc"


def test_the_registry_imports_no_tensorflow():
    code = "import sys, saliency_audit.architectures; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_every_named_function_resolves_in_the_models_package():
    pytest.importorskip("keras")
    from saliency_audit.models import arch_function, localizer_maps
    from saliency_audit.models import train as tr
    from saliency_audit.models.retinanet import retinanet_image_scores
    from saliency_audit.models.unet import unet_image_scores

    for arch, spec in A.REGISTRY.items():
        for field in ("setup", "score", "maps"):
            if getattr(spec, field) is None:
                assert spec.role == "classifier" and field == "maps"
                with pytest.raises(InputError, match="has no maps function"):
                    arch_function(arch, field)
            else:
                assert getattr(spec, field).startswith("saliency_audit.models") and callable(arch_function(arch, field))
    assert [tr.score_fn(a) for a in A.ARCHITECTURES] == [tr.classifier_scores, tr.classifier_scores,
                                                           unet_image_scores, retinanet_image_scores]
    with pytest.raises(InputError, match=r"'densenet121' is not a localizer \(unet or retinanet\)"):
        localizer_maps(None, "densenet121", [[[0]]])
