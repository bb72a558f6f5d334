"""The saliency method registry: declarative metadata only, importable without TensorFlow.

The Snakefile imports :data:`METHOD_NAMES` from here at parse time (through
:mod:`saliency_audit.config`), so this module must stay free of TensorFlow and of the method
implementations; :func:`get_method` imports an implementation lazily when a job needs it.

Each :class:`MethodSpec` declares

- ``name``: the id used in configs, paths and tables (``GRAD``, ``SG``, ...);
- ``kind``: ``gradient`` (input-gradient maps: summed |.| over channels, released normalization
  clips at the 99th percentile), ``cam`` (class-activation maps, min-max), ``region`` (XRAI,
  min-max) or ``perturbation`` (occlusion, min-max);
- ``defaults``: every parameter with its default (config ``saliency.params.<METHOD>.<key>``);
- ``gradients(params)``: the number of input-gradient (forward + backward) evaluations per image
  (the cost model the benchmark compares against);
- ``forwards(params, image_size)``: forward-only model evaluations per image (occlusion's patch
  positions, Score-CAM's masked inputs; 0 for the rest);
- ``segments``: the method segments each image (XRAI; its cost per image depends on the image
  size, :func:`saliency_audit.saliency.cost.segmentation_seconds`);
- ``impl``: ``module:Class`` of the implementation in this subpackage;
- ``paper``: whether Arun et al. (2021) used it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

from ..errors import InputError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    kind: str
    impl: str
    gradients: Callable[[dict], int]
    defaults: dict = field(default_factory=dict)
    paper: bool = True
    reference: str = ""
    forwards: Callable[[dict, int], int] = lambda p, size: 0
    segments: bool = False


_IG_BASELINE = "black"  # model-input value of a black pixel (uint8 0 -> -1.0)
#: channels of the Grad-CAM layer Score-CAM masks with when ``max_channels`` is 0 (all): InceptionV3's
#: ``mixed10`` has 2048 (DenseNet121's ``relu`` 1024; the larger one bounds the cost)
_SCORECAM_CHANNELS = 2048


def _occlusion_positions(p: dict, size: int) -> int:
    """Patch positions of :class:`.methods.Occlusion` on an image of side ``size`` (same arithmetic)."""
    patch = max(1, int(round(p["size"] * size)))
    stride = max(1, int(round(p["stride"] * patch)))
    return len(range(0, max(size - patch, 0) + 1, stride)) ** 2

_SPECS = [
    MethodSpec("GRAD", "Vanilla gradient", "gradient", "methods:Gradient", lambda p: 1,
               reference="Simonyan et al. 2014, arXiv:1312.6034"),
    MethodSpec("SG", "SmoothGrad", "gradient", "methods:SmoothGrad", lambda p: p["samples"],
               defaults={"samples": 25, "noise": 0.15, "magnitude": True},
               reference="Smilkov et al. 2017, arXiv:1706.03825; PAIR GetSmoothedMask"),
    MethodSpec("IG", "Integrated Gradients", "gradient", "methods:IntegratedGradients", lambda p: p["steps"],
               defaults={"steps": 25, "baseline": _IG_BASELINE},
               reference="Sundararajan et al. 2017, arXiv:1703.01365, eq. 3"),
    MethodSpec("SIG", "SmoothGrad over Integrated Gradients", "gradient", "methods:SmoothIntegratedGradients",
               lambda p: p["samples"] * p["steps"],
               defaults={"samples": 25, "steps": 25, "noise": 0.15, "magnitude": True, "baseline": _IG_BASELINE},
               reference="Smilkov et al. 2017 over Sundararajan et al. 2017"),
    MethodSpec("GCAM", "Grad-CAM", "cam", "methods:GradCam", lambda p: 1,
               reference="Selvaraju et al. 2017, arXiv:1610.02391, eq. 1-2"),
    MethodSpec("XRAI", "XRAI", "region", "methods:Xrai", lambda p: 2 * p["steps"],
               # steps: PAIR's XRAIParameters default (100), which the released code used
               defaults={"steps": 100, "algorithm": "full"}, segments=True,
               reference="Kapishnikov et al. 2019, arXiv:1906.02825; PAIR saliency.core.XRAI"),
    MethodSpec("GBP", "Guided backpropagation", "gradient", "methods:GuidedBackprop", lambda p: 1,
               reference="Springenberg et al. 2015, arXiv:1412.6806"),
    MethodSpec("GGCAM", "Guided Grad-CAM", "gradient", "methods:GuidedGradCam", lambda p: 2,
               reference="Selvaraju et al. 2017, section 3.1"),
    # beyond the paper
    MethodSpec("GCAMPP", "Grad-CAM++", "cam", "methods:GradCamPlusPlus", lambda p: 1, paper=False,
               reference="Chattopadhay et al. 2018, arXiv:1710.11063 (exp-score closed form)"),
    MethodSpec("SCORECAM", "Score-CAM", "cam", "methods:ScoreCam", lambda p: 1, paper=False,
               defaults={"max_channels": 0},
               forwards=lambda p, size: p["max_channels"] or _SCORECAM_CHANNELS,
               reference="Wang et al. 2020, arXiv:1910.01279"),
    MethodSpec("GIG", "Guided Integrated Gradients", "gradient", "methods:GuidedIG", lambda p: p["steps"],
               defaults={"steps": 25, "fraction": 0.25, "max_dist": 0.02, "baseline": _IG_BASELINE}, paper=False,
               reference="Kapishnikov et al. 2021, arXiv:2106.09788; PAIR saliency.core.GuidedIG"),
    MethodSpec("BLURIG", "Blur Integrated Gradients", "gradient", "methods:BlurIG", lambda p: p["steps"],
               defaults={"steps": 25, "max_sigma": 50.0, "grad_step": 0.01, "sqrt": False}, paper=False,
               reference="Xu et al. 2020, arXiv:2004.03383; PAIR saliency.core.BlurIG"),
    MethodSpec("OCC", "Occlusion", "perturbation", "methods:Occlusion", lambda p: 0, paper=False,
               defaults={"size": 0.125, "stride": 0.5, "value": 0.0}, forwards=_occlusion_positions,
               reference="Zeiler & Fergus 2014, arXiv:1311.2901"),
]

#: name -> spec, in the paper's order (paper methods first).
METHODS: dict[str, MethodSpec] = {s.name: s for s in _SPECS}
#: Every accepted method id (the config check and the schema description use this list).
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
#: The eight methods of Arun et al. (2021).
PAPER_METHODS: tuple[str, ...] = tuple(s.name for s in _SPECS if s.paper)
#: Channel reductions of gradient-type maps (the inputs are 3 identical gray channels).
CHANNEL_REDUCTIONS = ("abs_sum", "sum")


def spec(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"saliency method {name!r} is unknown; known: {list(METHOD_NAMES)}") from None


def resolve_params(name: str, params: dict | None = None) -> dict:
    """The method's defaults updated with ``params``; an unknown key raises :class:`InputError`."""
    s = spec(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(s.defaults))
    if unknown:
        raise InputError(
            f"saliency.params.{name}.{unknown[0]}: unknown parameter of {name}; "
            f"known: {sorted(s.defaults) or 'none'}"
        )
    out = dict(s.defaults)
    out.update(params)
    for key, default in s.defaults.items():
        value = out[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise InputError(f"saliency.params.{name}.{key}: expected true/false, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and (not isinstance(value, int) or value < 0):
            raise InputError(f"saliency.params.{name}.{key}: expected a non-negative integer, got {value!r}")
        if isinstance(default, float) and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"saliency.params.{name}.{key}: expected a number, got {value!r}")
    for key in ("samples", "steps"):
        if key in out and out[key] < 1:
            raise InputError(f"saliency.params.{name}.{key}: must be >= 1, got {out[key]}")
    if "baseline" in out and out["baseline"] not in ("black", "zero", "white"):
        raise InputError(f"saliency.params.{name}.baseline: expected black, zero or white, got {out['baseline']!r}")
    if name == "XRAI" and out["algorithm"] not in ("full", "fast"):
        raise InputError(f"saliency.params.XRAI.algorithm: expected full or fast, got {out['algorithm']!r}")
    return out


def gradient_count(name: str, params: dict | None = None) -> int:
    """Input-gradient evaluations per image of method ``name`` at ``params`` (defaults filled in)."""
    return int(spec(name).gradients(resolve_params(name, params)))


def forward_count(name: str, image_size: int, params: dict | None = None) -> int:
    """Forward-only model evaluations per image of method ``name`` at ``params`` on ``image_size`` px."""
    return int(spec(name).forwards(resolve_params(name, params), image_size))


def check_saliency_config(config: dict) -> None:
    """Validate ``config['saliency']``: method names, per-method parameter keys and values."""
    sal = config.get("saliency", {}) or {}
    for key in ("methods",):
        unknown = [m for m in sal.get(key, []) or [] if m not in METHODS]
        if unknown:
            raise InputError(f"saliency.{key}: unknown method(s) {unknown}; known: {list(METHOD_NAMES)}")
    for name, params in (sal.get("params") or {}).items():
        if name not in METHODS:
            raise InputError(f"saliency.params.{name}: unknown method; known: {list(METHOD_NAMES)}")
        if not isinstance(params, dict):
            raise InputError(f"saliency.params.{name}: expected a mapping of parameters, got {params!r}")
        resolve_params(name, params)
    red = sal.get("channel_reduction", "abs_sum")
    if red not in CHANNEL_REDUCTIONS:
        raise InputError(f"saliency.channel_reduction: expected one of {CHANNEL_REDUCTIONS}, got {red!r}")


def get_method(name: str, params: dict | None = None, **options):
    """Instantiate method ``name`` (imports TensorFlow): ``get_method('SG', {'samples': 10})``."""
    s = spec(name)
    module, cls = s.impl.split(":")
    mod = importlib.import_module(f"{__package__}.{module}")
    return getattr(mod, cls)(name=name, params=resolve_params(name, params), **options)
