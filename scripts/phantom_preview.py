"""Write a PNG contact sheet of synthetic or semi-synthetic images (positives outlined, negatives).

Usage:
  python scripts/phantom_preview.py [--config config.yaml] [--out /tmp/phantoms.png] [--n 6]
  python scripts/phantom_preview.py --backgrounds DIR --positives-only --n 8 --out sheet.png
  python scripts/phantom_preview.py --make-backgrounds DIR [--n-backgrounds 40]

``--backgrounds`` draws every synthetic dataset of the config into the radiographs of DIR
(semi-synthetic mode, docs/synthetic.md); ``--make-backgrounds`` writes lesion-free phantoms there
as stand-in radiographs (320 px PNG, seed 99). For each dataset the script prints the lesion
placements rejected for leaving the estimated lung field, the mean intensity change inside the
lesions against each image's lesion-free twin, and the share of lesion pixels above the image's
own 90th percentile.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from saliency_audit.data.synthetic import SyntheticSource  # noqa: E402


def make_backgrounds(folder, n: int, size: int = 320, seed: int = 99) -> None:
    """``n`` lesion-free phantoms (8-bit PNG) in ``folder``: stand-ins for normal radiographs."""
    from PIL import Image

    cfg = {"seed": seed, "image_size": size, "datasets": {"bg": {"kind": "synthetic", "n_images": n, "prevalence": 0.0}}}
    src = SyntheticSource("bg", cfg["datasets"]["bg"], cfg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for i in src.records().image_id:
        Image.fromarray(np.round(src.phantom(i).image * 255).astype(np.uint8)).save(folder / f"normal-{i}.png")
    print(f"wrote {n} lesion-free phantoms to {folder}")


def lesion_stats(src, ids) -> dict:
    """Mean intensity change inside the lesion against the lesion-free twin, and the share of lesion
    pixels above the image's own 90th percentile, over the positives ``ids``."""
    change, bright = [], []
    for image_id in ids:
        ph = src.phantom(image_id)
        twin = src.generator.generate(src.index(image_id), label=0)
        change.append((ph.image - twin.image)[ph.lesion].mean())
        bright.append((ph.image[ph.lesion] > np.percentile(ph.image, 90)).mean())
    return {"change": float(np.mean(change)), "sd": float(np.std(change)), "above_p90": float(np.mean(bright))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--out", default="/tmp/phantoms.png")
    ap.add_argument("--n", type=int, default=6, help="images per row")
    ap.add_argument("--size", type=int, default=None, help="override image_size")
    ap.add_argument("--confounder", type=float, default=None, help="confounder fraction (both classes)")
    ap.add_argument("--backgrounds", default=None, help="folder of normal radiographs (semi-synthetic mode)")
    ap.add_argument("--positives-only", action="store_true", help="one row of positives per dataset")
    ap.add_argument("--stats", type=int, default=0, help="positives per dataset for the printed lesion statistics")
    ap.add_argument("--no-outline", action="store_true")
    ap.add_argument("--dpi", type=int, default=110)
    ap.add_argument("--make-backgrounds", default=None, help="write lesion-free phantoms to this folder and stop")
    ap.add_argument("--n-backgrounds", type=int, default=40)
    args = ap.parse_args()
    if args.make_backgrounds:
        make_backgrounds(args.make_backgrounds, args.n_backgrounds)
        return
    config = yaml.safe_load(open(args.config))
    if args.size:
        config["image_size"] = args.size
    names = [n for n, d in config["datasets"].items() if d["kind"] == "synthetic"]
    rows = []
    for name in names:
        if args.confounder is not None:
            config["datasets"][name]["confounder"] = {"positives": args.confounder, "negatives": args.confounder}
        if args.backgrounds:
            config["datasets"][name]["backgrounds"] = args.backgrounds
        src = SyntheticSource(name, config["datasets"][name], config)
        rec = src.records()
        pos = rec[rec.label == 1].image_id.tolist()
        rows.append((name, pos[: args.n], src))
        if not args.positives_only:
            rows.append((name, rec[rec.label == 0].image_id[: args.n].tolist(), src))
        if args.stats:
            s = lesion_stats(src, pos[: args.stats])
            print(
                f"{name}: mean intensity change inside lesions {s['change']:+.4f} (sd {s['sd']:.4f}) over "
                f"{min(args.stats, len(pos))} positives; lesion pixels above the image's 90th percentile {s['above_p90']:.1%}"
            )
    fig, axes = plt.subplots(len(rows), args.n, figsize=(2.2 * args.n, 2.3 * len(rows)))
    axes = np.atleast_2d(axes)
    for r, (name, ids, src) in enumerate(rows):
        for c in range(args.n):
            ax = axes[r, c]
            ax.axis("off")
            if c >= len(ids):
                continue
            ph = src.phantom(ids[c])
            ax.imshow(ph.image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if ph.label and not args.no_outline:
                if len(ph.boxes):
                    for x, y, w, h in ph.boxes:
                        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="r", lw=0.6, ls="--"))
                else:
                    ax.contour(ph.mask, levels=[0.5], colors="r", linewidths=0.5, linestyles="--")
            extra = f" c={ph.info.get('contrast', 0):.2f}" if ph.label else ""
            ax.set_title(f"{name} {ids[c]}{extra}{' D' if ph.confounder else ''}", fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out, dpi=args.dpi)
    for name, _, src in rows[:: 1 if args.positives_only else 2]:
        note = src.summary()
        if note:
            print(note)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
