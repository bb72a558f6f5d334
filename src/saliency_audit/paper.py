"""Every setting where the paper's text, the authors' released code and this workflow may differ.

One place for the values of Arun et al., "Assessing the Trustworthiness of Saliency Maps for
Localizing Abnormalities in Medical Imaging", Radiology: AI 2021 (text and supplement), and of
their released scripts (github QTIM-Lab/Assessing-Saliency-Maps: map generation and plotting only).
The report's "Deviations from the paper" table (:func:`deviations`, rule ``deviations``) and the
three-column table of ``docs/protocol.md`` (:func:`protocol_table`; a test checks they agree) are
generated from :data:`SETTINGS`, never written by hand.

No TensorFlow. Layer: beside :mod:`.metrics` and :mod:`.stats`, above :mod:`.saliency`, whose
TensorFlow-free registry gives the saliency methods' parameter defaults (pyproject.toml's
import-linter contract).

Run ``python -m saliency_audit.paper`` to print the protocol table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from .plan import image_size
from .saliency.cost import PUBLISHED_SPLITS

#: Shown when the paper or the released code does not state a value.
NOT_STATED = None
DEVIATION_COLUMNS = [
    "key", "setting", "paper", "released", "this_run", "differs_from_paper", "differs_from_released", "note",
]  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """One setting: the config key, the paper's and the released code's values, our default and why.

    ``paper`` / ``released`` are comparable values (None: not stated / not released) and
    ``paper_text`` / ``released_text`` what the table shows; ``value(config, dataset)`` reads this
    run's value from the validated config, in the same form as ``paper`` / ``released``.
    """

    key: str
    label: str
    paper: Any
    released: Any
    value: Callable[[dict, str], Any]
    ours: str
    why: str
    paper_text: str = ""
    released_text: str = ""

    def show_paper(self) -> str:
        return self.paper_text or _show(self.paper)

    def show_released(self) -> str:
        return self.released_text or _show(self.released)


def _show(v) -> str:
    if v is None:
        return "not stated"
    if isinstance(v, tuple):
        return " / ".join(map(_show, v))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _get(config: dict, dotted: str):
    """The value at ``a.b.c`` of the validated config (None when absent)."""
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def key(dotted: str) -> Callable[[dict, str], Any]:
    return lambda config, dataset: _get(config, dotted)


def method_param(method: str, name: str) -> Callable[[dict, str], Any]:
    """A saliency method's parameter with the registry's default filled in."""

    def value(config, dataset):
        from .saliency.registry import resolve_params  # TensorFlow-free

        return resolve_params(method, (_get(config, "saliency.params") or {}).get(method))[name]

    return value


def _image_size(config, dataset):
    return image_size(config, dataset)


def _data(config, dataset):
    return (config["datasets"].get(dataset) or {}).get("kind")


def _split(config, dataset):
    """train:val:test in percent, or the split file's name (the published ones: 81:9:10)."""
    split_file = (config["datasets"].get(dataset) or {}).get("split_file")
    if split_file:
        name = Path(split_file).name
        return "81:9:10" if name in PUBLISHED_SPLITS.values() else f"file {name}"
    fr = config["split"]["fractions"]
    return ":".join(f"{100 * f / sum(fr):.0f}" for f in fr)


def _map_images(config, dataset):
    cap = config["saliency"]["max_images"]
    return "all" if cap is None else f"first {cap} per test shard"


def _sig(config, dataset):
    return f"{method_param('SIG', 'samples')(config, dataset)} x {method_param('SIG', 'steps')(config, dataset)}"


def _cascade(config, dataset):
    """The cascade states with maps, as the paper lists them (every block: logits ... mixed1)."""
    from .plan import randomization_states

    return ", ".join(s.split("-", 1)[1] for s in randomization_states(config) if s.startswith("cascade-"))


#: the paper's cascade (Figure 3: logits, mixed10 ... mixed1)
PAPER_CASCADE = ", ".join(["logits"] + [f"mixed{i}" for i in range(10, 0, -1)])


def _partners(config, dataset):
    return f"{_get(config, 'randomization.threshold_partners')} per image"


def _weights(arch):
    def value(config, dataset):
        w = _get(config, f"models.{arch}.weights")
        return "imagenet" if w == "imagenet" else ("none" if w == "none" else "file")

    return value


_ARCH = {"inceptionv3": "InceptionV3", "densenet121": "DenseNet121", "unet": "U-Net", "retinanet": "RetinaNet"}
_PARAM = {
    "replicates": "replicates", "lr": "learning rate", "epochs": "max epochs", "patience": "early-stopping patience",
    "batch_size": "batch size", "bn_momentum": "BatchNorm momentum", "base_filters": "filters of the first level",
    "lr_schedule": "learning-rate schedule",
}  # fmt: skip
_PAPER = "the paper's (supplement)"
_KERAS = "not stated (Keras default)"
#: Training settings: (architecture, parameter, paper value, our default, why, paper text); the
#: released code has no training.
_TRAINING = (
    ("inceptionv3", "replicates", 2, "2", "the paper's: the audited model and its replicate", ""),
    ("densenet121", "replicates", 1, "1", "the paper's (reproducibility)", ""),
    ("unet", "replicates", 2, "2", "two, for the high baseline of repeatability", ""),
    ("retinanet", "replicates", 2, "2", "two, for the high baseline of repeatability", ""),
    ("inceptionv3", "lr", 1.0e-4, "1e-4", _PAPER, ""),
    ("inceptionv3", "epochs", 20, "20", _PAPER, ""),
    ("inceptionv3", "patience", 4, "4", _PAPER, ""),
    ("inceptionv3", "batch_size", NOT_STATED, "16", "not stated anywhere; a common size", ""),
    ("inceptionv3", "bn_momentum", NOT_STATED, "null (Keras 0.99)", "Keras' default", _KERAS),
    ("inceptionv3", "lr_schedule", NOT_STATED, "constant", "the paper states Adam at one lr and early stopping, no schedule",
     "not stated (Adam, early stopping)"),
    ("densenet121", "lr", 7.0e-5, "7e-5", _PAPER, ""),
    ("densenet121", "epochs", 30, "30", _PAPER, ""),
    ("densenet121", "patience", 5, "5", _PAPER, ""),
    ("densenet121", "batch_size", NOT_STATED, "16", "not stated anywhere; a common size", ""),
    ("densenet121", "bn_momentum", NOT_STATED, "null (Keras 0.99)", "Keras' default", _KERAS),
    ("densenet121", "lr_schedule", NOT_STATED, "constant", "the paper states Adam at one lr and early stopping, no schedule",
     "not stated (Adam, early stopping)"),
    ("unet", "lr", 1.0e-4, "1e-4", _PAPER, ""),
    ("unet", "epochs", 75, "75", _PAPER, ""),
    ("unet", "patience", 15, "15", _PAPER, ""),
    ("unet", "batch_size", 4, "4", _PAPER, ""),
    ("unet", "base_filters", NOT_STATED, "32", "the paper says only 'base U-Net'", "not stated (base U-Net)"),
    ("retinanet", "lr", 1.0e-4, "1e-4", _PAPER, ""),
    ("retinanet", "epochs", NOT_STATED, "30", "not stated; as DenseNet121", ""),
    ("retinanet", "patience", NOT_STATED, "5", "not stated; as DenseNet121", ""),
    ("retinanet", "batch_size", 4, "4", _PAPER, ""),
)

#: The settings, in the order of the tables.
# fmt: off
SETTINGS: tuple[Setting, ...] = (
    Setting("datasets.*.kind", "data", ("siim", "rsna"), ("siim", "rsna"), _data, "siim / rsna (the demo: synthetic phantoms)",
            "the real data need a Kaggle account; the demo runs anywhere",
            paper_text="SIIM-ACR Pneumothorax, RSNA Pneumonia", released_text="not released (maps of SIIM/RSNA)"),
    Setting("split.fractions", "train:val:test split", "81:9:10", "81:9:10", _split, "81:9:10",
            "the paper's, stratified by label (a dataset's split_file replaces it)",
            paper_text="81:9:10 stratified by label", released_text="81:9:10 (split files)"),
    Setting("image_size", "input image size", NOT_STATED, 320, _image_size, "320",
            "the released code's; the paper states only a 10 x 10 final feature map",
            paper_text="not stated (10 x 10 final feature map)"),
    *(
        Setting(f"models.{arch}.{name}", f"{_ARCH[arch]} {_PARAM[name]}", value, NOT_STATED, key(f"models.{arch}.{name}"),
                ours, why, paper_text=paper_text, released_text="training not released")
        for arch, name, value, ours, why, paper_text in _TRAINING
    ),
    Setting("models.inceptionv3.weights", "InceptionV3 initial weights", "imagenet", NOT_STATED,
            _weights("inceptionv3"), "imagenet", "the paper's (random init when unavailable, stated)",
            released_text="training not released"),
    Setting("models.densenet121.weights", "DenseNet121 initial weights", "imagenet", NOT_STATED,
            _weights("densenet121"), "imagenet", "the paper's", released_text="training not released"),
    Setting("saliency.max_images", "test images with a finding that get maps", "all", NOT_STATED, _map_images,
            "all", "the paper's: every test image with a finding (saliency.images) is mapped and scored",
            paper_text="all", released_text="not stated"),
    Setting("saliency.target", "explained output", NOT_STATED, "predicted", key("saliency.target"),
            "positive (the positive-class logit)",
            "one fixed output for every image, so maps of one image are comparable across models and states",
            paper_text="not stated ('the model's output')",
            released_text="predicted (argmax logit of a 2-unit softmax head)"),
    Setting("saliency.noise", "SmoothGrad noise across maps", NOT_STATED, "independent", key("saliency.noise"),
            "independent (seeded, fresh per model, state, method, image)",
            "as released (common noise inflates SG/SIG similarity), but seeded so runs repeat",
            released_text="independent (fresh, unseeded, per map)"),
    Setting("saliency.params.SG.samples", "SmoothGrad samples", 25, 25, method_param("SG", "samples"), "25",
            "the paper's and the released code's"),
    Setting("saliency.params.SG.noise", "SmoothGrad noise sd / (max - min)", 0.15, 0.15, method_param("SG", "noise"),
            "0.15", "the paper's and the released code's"),
    Setting("saliency.params.IG.steps", "Integrated Gradients steps", 25, 10, method_param("IG", "steps"), "25",
            "the paper's text"),
    Setting("saliency.params.IG.baseline", "Integrated Gradients baseline", "black", "black",
            method_param("IG", "baseline"), "black", "both (the released code's -1 is a black pixel)",
            released_text="black (-1 on the model's input scale)"),
    Setting("saliency.params.SIG", "SmoothGrad-IG samples x steps", NOT_STATED, "25 x 10", _sig, "25 x 25",
            "SmoothGrad's samples over the paper's IG steps; cost = samples x steps"),
    Setting("saliency.params.XRAI.steps", "XRAI integration steps", NOT_STATED, 100, method_param("XRAI", "steps"),
            "100", "PAIR's default, which the released code used", paper_text="not stated (PAIR defaults)",
            released_text="100 (PAIR XRAIParameters default)"),
    Setting("saliency.cam_normalization", "Grad-CAM / Guided Grad-CAM scaling", NOT_STATED, "released",
            key("saliency.cam_normalization"), "minmax",
            "min-max scaling keeps every map on [0, 1] without the 99th-percentile clip of a CAM",
            released_text="released (GCAM / max, then the 99th-percentile clip; GGCAM = product of clipped maps)"),
    Setting("randomization.initializer", "re-initialisation of randomized layers", "truncated_normal", NOT_STATED,
            key("randomization.initializer"), "truncated_normal (He, sd sqrt(2 / fan_in))",
            "the paper's, after Adebayo et al.'s code (slim variance-scaling truncated normal)",
            released_text="randomized checkpoints not released"),
    Setting("randomization.repeats", "cascade repeats", NOT_STATED, 3, key("randomization.repeats"), "3",
            "the released plots average three cascade runs (dir1-dir3)"),
    Setting("randomization.blocks", "cascade states with maps", PAPER_CASCADE, PAPER_CASCADE, _cascade,
            PAPER_CASCADE, "every block, as the paper's Figure 3", paper_text="every block (logits, mixed10 ... mixed1)",
            released_text="every block"),
    Setting("randomization.threshold_partners", "degradation-threshold pairs", "50 in all", "50 per image",
            _partners, "50 per image (n x 50 pairs), with a bootstrap CI",
            "as released: 50 pairs in all have a standard error above the paper's margins",
            paper_text="50 random pairs in all",
            released_text="50 per image (randint bug: the last image never drawn)"),
    Setting("criteria.ssim_data_range", "SSIM data_range", NOT_STATED, 2.0, key("criteria.ssim_data_range"), "1",
            "the maps are in [0, 1]; data_range 2 (scikit-image's float default) is in the sensitivity table",
            released_text="2 (scikit-image's float default, implied)"),
    Setting("utility.auprc", "AUPRC form", NOT_STATED, "trapezoid", lambda config, dataset: "trapezoid",
            "trapezoid in Table 2; average precision beside it and in the sensitivity table",
            "the released code's auc(recall, precision); a constant map scores (1 + prevalence) / 2 on it",
            paper_text="not stated ('area under the precision-recall curve')"),
)
# fmt: on

SETTING_KEYS = tuple(s.key for s in SETTINGS)


def _differs(this, ref) -> bool | None:
    """True / False when the reference states a value, None when it does not."""
    if ref is None:
        return None
    if isinstance(ref, tuple):  # any of these
        return this not in ref
    if isinstance(ref, float) and isinstance(this, (int, float)) and not isinstance(this, bool):
        return abs(float(this) - ref) > 1e-12 * max(1.0, abs(ref))
    return this != ref


def deviations(config: dict, dataset: str) -> pd.DataFrame:
    """Each setting of :data:`SETTINGS`: paper | released | this run (from the validated config),
    flagged where this run differs (``differs_*``: True / False, empty when the source is silent)."""
    rows = []
    for s in SETTINGS:
        this = s.value(config, dataset)
        rows.append(
            [s.key, s.label, s.show_paper(), s.show_released(), "not set" if this is None else _show(this),
             _differs(this, s.paper), _differs(this, s.released), s.why]
        )  # fmt: skip
    return pd.DataFrame(rows, columns=DEVIATION_COLUMNS)


def deviations_markdown(df: pd.DataFrame, dataset: str) -> str:
    """The report's "Deviations from the paper" table: differing settings first, marked."""
    mark = {True: "**differs**", False: "same", None: "-"}
    lines = [
        f"# Deviations from the paper ({dataset})",
        "",
        "Generated from this run's resolved configuration against the values of Arun et al. (2021) and their "
        "released scripts (saliency_audit.paper); 'not stated': the source gives no value.",
        "",
        "| setting | key | paper | released code | this run | vs paper | vs released |",
        "|---|---|---|---|---|---|---|",
    ]
    d = df.assign(
        _o=[0 if (a is True or b is True) else 1 for a, b in zip(df["differs_from_paper"], df["differs_from_released"])]
    )
    for r in d.sort_values("_o", kind="stable").itertuples(index=False):
        lines.append(
            f"| {r.setting} | `{r.key}` | {r.paper} | {r.released} | {r.this_run} | "
            f"{mark[_flag(r.differs_from_paper)]} | {mark[_flag(r.differs_from_released)]} |"
        )
    n = int(sum(1 for a, b in zip(df["differs_from_paper"], df["differs_from_released"]) if a is True or b is True))
    return "\n".join(lines + ["", f"- {n} of {len(df)} settings differ from the paper or the released code."]) + "\n"


def _flag(v):
    return None if v is None or (isinstance(v, float) and v != v) else bool(v)


def protocol_table() -> str:
    """The three-column table of docs/protocol.md: paper text | released code | our default and why."""
    lines = [
        "| setting (config key) | paper text | released code | our default and why |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        lines.append(f"| {s.label} (`{s.key}`) | {s.show_paper()} | {s.show_released()} | {s.ours}: {s.why} |")
    return "\n".join(lines) + "\n"


#: Arun et al. 2021, Table 2: (a) SIIM-ACR Pneumothorax (a segmentation task: U-Net baseline) and
#: (b) RSNA Pneumonia (detection: RetinaNet), in the columns of our ``tables/table2.csv``.
PAPER_TABLE2 = """\
task,method,Utility vs AVG,Utility vs localizer,Randomization,Repeatability vs 0.5,Repeatability vs localizer,Reproducibility vs 0.5,Reproducibility vs localizer
segmentation,GRAD,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL
segmentation,SG,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL
segmentation,IG,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL
segmentation,SIG,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL
segmentation,GCAM,FAIL,FAIL,PASS,FAIL,FAIL,FAIL,FAIL
segmentation,XRAI,PASS,FAIL,FAIL,PASS,FAIL,FAIL,FAIL
segmentation,GBP,FAIL,FAIL,PASS,FAIL,FAIL,FAIL,FAIL
segmentation,GGCAM,FAIL,FAIL,PASS,PASS,FAIL,FAIL,FAIL
detection,GRAD,FAIL,FAIL,PASS,FAIL,FAIL,FAIL,FAIL
detection,SG,FAIL,FAIL,PASS,FAIL,FAIL,FAIL,FAIL
detection,IG,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL,FAIL
detection,SIG,FAIL,FAIL,PASS,FAIL,FAIL,FAIL,FAIL
detection,GCAM,FAIL,FAIL,PASS,PASS,FAIL,PASS,FAIL
detection,XRAI,PASS,FAIL,FAIL,PASS,PASS,PASS,FAIL
detection,GBP,FAIL,FAIL,PASS,PASS,FAIL,FAIL,FAIL
detection,GGCAM,FAIL,FAIL,PASS,PASS,FAIL,PASS,FAIL
"""


def paper_table2(task: str) -> pd.DataFrame:
    """The paper's Table 2 of the dataset with ``task`` (segmentation: SIIM, detection: RSNA), by method."""
    import io

    t = pd.read_csv(io.StringIO(PAPER_TABLE2))
    return t[t["task"] == task].drop(columns="task").set_index("method")


def table2_agreement(ours: pd.DataFrame, task: str) -> pd.DataFrame:
    """Our Table 2 (``tables/table2.csv``, verdicts by method) cell by cell against the paper's of
    the same task: columns ``method, criterion, paper, ours, same``; cells either table lacks are left out."""
    paper = paper_table2(task)
    ours = ours.set_index("Method" if "Method" in ours.columns else ours.columns[0])
    rows = [
        dict(method=m, criterion=c, paper=paper.loc[m, c], ours=str(ours.loc[m, c]).split()[0])
        for m in paper.index if m in ours.index for c in paper.columns if c in ours.columns
    ]
    out = pd.DataFrame(rows, columns=["method", "criterion", "paper", "ours"])
    out["same"] = out["paper"] == out["ours"]
    return out


if __name__ == "__main__":  # pragma: no cover
    import sys

    if len(sys.argv) == 3:  # python -m saliency_audit.paper results/<ds>/tables/table2.csv segmentation
        agree = table2_agreement(pd.read_csv(sys.argv[1]), sys.argv[2])
        order = paper_table2(sys.argv[2])
        cell = [o if same else f"{o} (paper {p})" for o, p, same in agree[["ours", "paper", "same"]].values]
        print(agree.assign(cell=cell).pivot(index="method", columns="criterion", values="cell").reindex(index=order.index, columns=order.columns).to_markdown())
        print(f"{int(agree['same'].sum())} of {len(agree)} cells as the paper's Table 2 ({sys.argv[2]})")
    else:
        print(protocol_table(), end="")
