"""A compact RetinaNet detection baseline in Keras 3 (Lin et al. 2017, "Focal loss for dense
object detection"; Arun et al. 2021 used yhenon/pytorch-retinanet with a ResNet101 backbone).

Equivalent structure at laptop scale: a small ResNet-style backbone trained from scratch (strides
8 and 16), a two-level FPN (P3, P4), shared classification and box subnets, 9 anchors per location
(3 scales x 3 aspect ratios), focal loss (alpha 0.25, gamma 2) on the single "finding" class and
smooth-L1 box regression on positive anchors (IoU >= 0.5; < 0.4 negative; each ground-truth box
also claims its best anchor). Decoding: sigmoid scores, box deltas with variances (0.1, 0.1, 0.2,
0.2), score threshold and NMS. The pixel heatmap (Arun et al.): every pixel gets the highest score
of the detected boxes with score > 0.01 that cover it.

The model outputs raw per-anchor predictions (N, A, 5) = [class logit, dx, dy, dw, dh]; anchors are
recomputed from the input size (:func:`anchors_for`), so ``model.keras`` holds standard layers only.
"""

from __future__ import annotations

import numpy as np

STRIDES = (8, 16)
#: anchor side at scale 1 per level, as a fraction of the image side
ANCHOR_FRACTIONS = (0.125, 0.25)
SCALES = (1.0, 2 ** (1 / 3), 2 ** (2 / 3))
RATIOS = (0.5, 1.0, 2.0)
VARIANCES = np.array([0.1, 0.1, 0.2, 0.2], np.float32)
NUM_ANCHORS = len(SCALES) * len(RATIOS)
PRIOR = 0.01


def padded_size(image_size: int) -> int:
    return int(np.ceil(image_size / STRIDES[-1]) * STRIDES[-1])


def anchors_for(image_size: int) -> np.ndarray:
    """Anchors (A, 4) as x1, y1, x2, y2 in pixels, ordered level, row, column, anchor (= model output order)."""
    p = padded_size(image_size)
    out = []
    for stride, frac in zip(STRIDES, ANCHOR_FRACTIONS):
        f = p // stride
        base = frac * image_size
        wh = np.array([(base * s * np.sqrt(1 / r), base * s * np.sqrt(r)) for s in SCALES for r in RATIOS], np.float32)
        cy, cx = np.meshgrid((np.arange(f) + 0.5) * stride, (np.arange(f) + 0.5) * stride, indexing="ij")
        c = np.stack([cx.ravel(), cy.ravel()], 1)[:, None, :]  # (f*f, 1, 2)
        half = wh[None] / 2
        out.append(np.concatenate([c - half, c + half], -1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (n,4) and b (m,4), x1 y1 x2 y2."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area = lambda x: np.prod(np.clip(x[:, 2:] - x[:, :2], 0, None), axis=-1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-9)


def encode(anchors: np.ndarray, gt_xywh: np.ndarray, pos_iou=0.5, neg_iou=0.4) -> np.ndarray:
    """Per-anchor training targets (A, 5): class (1 positive, 0 negative, -1 ignore) and box deltas."""
    t = np.zeros((len(anchors), 5), np.float32)
    gt_xywh = np.asarray(gt_xywh, np.float32).reshape(-1, 4)
    if not len(gt_xywh):
        return t
    gt = np.concatenate([gt_xywh[:, :2], gt_xywh[:, :2] + gt_xywh[:, 2:]], 1)
    iou = iou_matrix(anchors, gt)
    match = iou.argmax(1)
    best = iou.max(1)
    cls = np.where(best >= pos_iou, 1.0, np.where(best < neg_iou, 0.0, -1.0))
    best_anchor = iou.argmax(0)
    cls[best_anchor] = 1.0
    match[best_anchor] = np.arange(len(gt))
    g = gt[match]
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2
    gw, gh = np.maximum(g[:, 2] - g[:, 0], 1e-3), np.maximum(g[:, 3] - g[:, 1], 1e-3)
    gx, gy = g[:, 0] + gw / 2, g[:, 1] + gh / 2
    d = np.stack([(gx - ax) / aw, (gy - ay) / ah, np.log(gw / aw), np.log(gh / ah)], 1) / VARIANCES
    t[:, 0] = cls
    t[:, 1:] = np.where(cls[:, None] == 1, d, 0)
    return t


def decode(anchors: np.ndarray, deltas: np.ndarray, image_size: int) -> np.ndarray:
    """Box deltas (A,4) -> boxes x1 y1 x2 y2 clipped to the image."""
    d = np.asarray(deltas, np.float32) * VARIANCES
    aw, ah = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    ax, ay = anchors[:, 0] + aw / 2, anchors[:, 1] + ah / 2
    cx, cy = ax + d[:, 0] * aw, ay + d[:, 1] * ah
    w, h = aw * np.exp(np.clip(d[:, 2], -10, 10)), ah * np.exp(np.clip(d[:, 3], -10, 10))
    return np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), 0, image_size)


def box_heatmap(boxes: np.ndarray, scores: np.ndarray, size: int, threshold: float = 0.01) -> np.ndarray:
    """Pixel map: each pixel = the highest score of the boxes with score > threshold covering it, else 0.

    A pixel (row r, column c) is covered by box x1 y1 x2 y2 when its centre (c + 0.5, r + 0.5) lies
    inside the closed box (the convention of the shards' box masks). Arun et al., Methods.
    """
    out = np.zeros((size, size), np.float32)
    centres = np.arange(size) + 0.5
    for (x1, y1, x2, y2), s in zip(np.asarray(boxes, float).reshape(-1, 4), np.asarray(scores, float).ravel()):
        if s <= threshold:
            continue
        cols = (centres >= x1) & (centres <= x2)
        rows = (centres >= y1) & (centres <= y2)
        sub = np.ix_(rows, cols)
        out[sub] = np.maximum(out[sub], s)
    return out


def detect(raw: np.ndarray, image_size: int, score_threshold=0.01, iou_threshold=0.5, max_boxes=100, anchors=None):
    """Raw outputs (A,5) of one image -> (boxes x1y1x2y2 (k,4), scores (k,)) after threshold + NMS.
    ``anchors``: :func:`anchors_for` ``(image_size)``, computed once by callers looping over images."""
    import tensorflow as tf

    anchors = anchors_for(image_size) if anchors is None else anchors
    scores = 1 / (1 + np.exp(-raw[:, 0].astype(np.float64)))
    boxes = decode(anchors, raw[:, 1:], image_size)
    keep = scores > score_threshold
    boxes, scores = boxes[keep], scores[keep].astype(np.float32)
    if not len(scores):
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    idx = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, max_boxes, iou_threshold=iou_threshold).numpy()
    return boxes[idx], scores[idx]


def retinanet_maps(outputs: np.ndarray, image_size: int, score_threshold: float = 0.01) -> np.ndarray:
    """(N,A,5) raw outputs -> (N,S,S) float32 box-score heatmaps in [0,1]."""
    maps = np.zeros((len(outputs), image_size, image_size), np.float32)
    anchors = anchors_for(image_size)
    for i, raw in enumerate(outputs):
        boxes, scores = detect(raw, image_size, score_threshold, anchors=anchors)
        maps[i] = box_heatmap(boxes, scores, image_size, score_threshold)
    return maps


def retinanet_image_scores(outputs: np.ndarray) -> np.ndarray:
    """Image score = the highest box score (= the highest anchor score, which NMS always keeps)."""
    return 1 / (1 + np.exp(-np.asarray(outputs, np.float64)[..., 0].max(axis=1)))


def build_retinanet(image_size: int, widths=(16, 32, 64, 128), fpn_channels: int = 64, seed: int | None = None):
    """The compact RetinaNet (see module docstring). Input (N,S,S,3) in [-1,1]; output (N,A,5)."""
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    p = padded_size(image_size)
    inp = keras.Input((image_size, image_size, 3), name="image")
    x = layers.ZeroPadding2D(((0, p - image_size), (0, p - image_size)), name="pad")(inp) if p != image_size else inp
    x = layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))

    def res_block(x, f, name):  # ResNet basic block with stride 2 and a projection shortcut
        y = layers.Conv2D(f, 3, strides=2, padding="same", use_bias=False, name=f"{name}_conv1")(x)
        y = layers.ReLU(name=f"{name}_relu1")(layers.BatchNormalization(name=f"{name}_bn1")(y))
        y = layers.Conv2D(f, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
        y = layers.BatchNormalization(name=f"{name}_bn2")(y)
        s = layers.Conv2D(f, 1, strides=2, use_bias=False, name=f"{name}_proj")(x)
        s = layers.BatchNormalization(name=f"{name}_proj_bn")(s)
        return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([y, s]))

    c2 = res_block(x, widths[1], "c2")  # stride 4
    c3 = res_block(c2, widths[2], "c3")  # stride 8
    c4 = res_block(c3, widths[3], "c4")  # stride 16
    p4 = layers.Conv2D(fpn_channels, 1, name="p4_lateral")(c4)
    p3 = layers.Add(name="p3_merge")([layers.Conv2D(fpn_channels, 1, name="p3_lateral")(c3), layers.UpSampling2D(2, name="p4_up")(p4)])
    p3 = layers.Conv2D(fpn_channels, 3, padding="same", name="p3_out")(p3)
    p4 = layers.Conv2D(fpn_channels, 3, padding="same", name="p4_out")(p4)
    prior = keras.initializers.Constant(-np.log((1 - PRIOR) / PRIOR))
    heads = {
        "cls": [layers.Conv2D(fpn_channels, 3, padding="same", activation="relu", name=f"cls_conv{i}") for i in range(2)]
        + [layers.Conv2D(NUM_ANCHORS, 3, padding="same", bias_initializer=prior, dtype="float32", name="cls_logits")],
        "box": [layers.Conv2D(fpn_channels, 3, padding="same", activation="relu", name=f"box_conv{i}") for i in range(2)]
        + [layers.Conv2D(NUM_ANCHORS * 4, 3, padding="same", dtype="float32", name="box_deltas")],
    }
    cls_out, box_out = [], []
    for level, feat in zip((3, 4), (p3, p4)):
        c, b = feat, feat
        for layer in heads["cls"]:
            c = layer(c)
        for layer in heads["box"]:
            b = layer(b)
        cls_out.append(layers.Reshape((-1, 1), name=f"cls_flat{level}")(c))
        box_out.append(layers.Reshape((-1, 4), name=f"box_flat{level}")(b))
    cls = layers.Concatenate(axis=1, name="cls_all")(cls_out)
    box = layers.Concatenate(axis=1, name="box_all")(box_out)
    out = layers.Concatenate(axis=-1, name="detections", dtype="float32")([cls, box])
    return keras.Model(inp, out, name="retinanet")


def retinanet_loss(y_true, y_pred, alpha: float = 0.25, gamma: float = 2.0, delta: float = 0.11):
    """Focal loss over non-ignored anchors + smooth-L1 over positive anchors, both divided by the
    number of positive anchors in the batch (Lin et al. 2017)."""
    from keras import ops

    y_true = ops.cast(y_true, "float32")
    y_pred = ops.cast(y_pred, "float32")
    cls_t, box_t = y_true[..., 0], y_true[..., 1:]
    logits, box_p = y_pred[..., 0], y_pred[..., 1:]
    pos = ops.cast(ops.equal(cls_t, 1.0), "float32")
    valid = ops.cast(ops.greater_equal(cls_t, 0.0), "float32")
    ce = ops.binary_crossentropy(pos, logits, from_logits=True)
    p = ops.sigmoid(logits)
    p_t = pos * p + (1 - pos) * (1 - p)
    a_t = pos * alpha + (1 - pos) * (1 - alpha)
    focal = ops.sum(a_t * ops.power(1 - p_t, gamma) * ce * valid)
    diff = ops.abs(box_t - box_p)
    sl1 = ops.where(diff < delta, 0.5 * diff**2 / delta, diff - 0.5 * delta)
    box = ops.sum(ops.sum(sl1, axis=-1) * pos)
    npos = ops.maximum(ops.sum(pos), 1.0)
    return (focal + box) / npos
