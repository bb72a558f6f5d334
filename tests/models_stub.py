"""Hand-made shards for the model tests: an easy task (bright disks or squares on noise)."""

import numpy as np

from saliency_audit import io


def make_split(rng, n, size, task="segmentation", contrast=90):
    labels = (np.arange(n) % 2).astype(np.int8)
    rng.shuffle(labels)
    yy, xx = np.mgrid[:size, :size]
    images = np.clip(rng.normal(90, 12, (n, size, size)), 0, 255)
    masks = np.zeros((n, size, size), np.uint8)
    boxes = []
    for i in range(n):
        if labels[i]:
            r = rng.uniform(0.12, 0.2) * size
            cx, cy = rng.uniform(r, size - r, 2)
            if task == "detection":
                x, y = cx - r, cy - r
                m = (xx + 0.5 >= x) & (xx + 0.5 <= x + 2 * r) & (yy + 0.5 >= y) & (yy + 0.5 <= y + 2 * r)
                boxes.append([i, x, y, 2 * r, 2 * r])
            else:
                m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            images[i][m] += contrast
            masks[i][m] = 1
    return dict(
        ids=np.array([f"img{i:04d}" for i in range(n)]),
        images=np.clip(images, 0, 255).astype(np.uint8),
        masks=masks,
        labels=labels,
        has_finding=labels.astype(bool),
        boxes=np.asarray(boxes, np.float32).reshape(-1, 5),
    )


def write_shards(root, counts, size, task="segmentation", seed=0, shard_size=16, contrast=90):
    """Write ``{split}_{k:03d}.npz`` shards; returns {split: [paths]}."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in counts.items():
        d = make_split(rng, n, size, task, contrast)
        out[split] = []
        for k, s in enumerate(range(0, n, shard_size)):
            sub = {key: v[s : s + shard_size] for key, v in d.items() if key != "boxes"}
            b = d["boxes"]
            sel = (b[:, 0] >= s) & (b[:, 0] < s + shard_size)
            sub["boxes"] = b[sel] - np.array([s, 0, 0, 0, 0], np.float32)
            p = f"{root}/{io.shard_name(split, k)}.npz"
            io.write_npz(p, **sub)
            out[split].append(p)
    return out
