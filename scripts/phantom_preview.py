"""Write a PNG grid of synthetic phantoms (positives with mask/box outlines, negatives).

Usage: python scripts/phantom_preview.py [--config config.yaml] [--out /tmp/phantoms.png] [--n 6]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from saliency_audit.data.synthetic import SyntheticSource  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--out", default="/tmp/phantoms.png")
    ap.add_argument("--n", type=int, default=6, help="positives and negatives per dataset")
    ap.add_argument("--size", type=int, default=None, help="override image_size")
    ap.add_argument("--confounder", type=float, default=None, help="confounder fraction (both classes)")
    ap.add_argument("--no-outline", action="store_true")
    args = ap.parse_args()
    config = yaml.safe_load(open(args.config))
    if args.size:
        config["image_size"] = args.size
    names = [n for n, d in config["datasets"].items() if d["kind"] == "synthetic"]
    rows = []
    for name in names:
        if args.confounder is not None:
            config["datasets"][name]["confounder"] = {"positives": args.confounder, "negatives": args.confounder}
        src = SyntheticSource(name, config["datasets"][name], config)
        rec = src.records()
        pos = rec[rec.label == 1].image_id[: args.n].tolist()
        neg = rec[rec.label == 0].image_id[: args.n].tolist()
        rows.append((name, pos, src))
        rows.append((name, neg, src))
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
                        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, ec="r", lw=0.8))
                else:
                    ax.contour(ph.mask, levels=[0.5], colors="r", linewidths=0.6)
            extra = f" c={ph.info.get('contrast', 0):.2f}" if ph.label else ""
            ax.set_title(f"{name} {ids[c]}{extra}{' D' if ph.confounder else ''}", fontsize=6)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
