"""Plain U-Net segmentation baseline (Ronneberger et al. 2015; Arun et al. 2021, Methods).

Arun et al.: base U-Net, no pretraining, focal + dice loss, Adam lr 1e-4, batch 4, balanced
positive/negative sampling, ReduceLROnPlateau x0.1 after 3 epochs without val-loss decrease,
early stopping patience 15. The output map is the per-pixel sigmoid; the image score is "the mean
non-zero cell value in this output (if it exists, otherwise 0)".
"""

from __future__ import annotations

import numpy as np


def build_unet(image_size: int, base_filters: int = 32, depth: int = 4, seed: int | None = None):
    """U-Net: ``depth`` down/up levels of two 3x3 conv + ReLU, ``base_filters`` doubling per level.

    Input (N,S,S,3) in [-1,1]; output ``mask`` (N,S,S,1) sigmoid. Inputs whose side is not a
    multiple of 2**depth are zero-padded at the bottom/right inside the model and cropped back.
    """
    import keras
    from keras import layers

    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    unit = 2**depth
    padded = int(np.ceil(image_size / unit) * unit)
    pad = padded - image_size
    inp = keras.Input((image_size, image_size, 3), name="image")
    x = layers.ZeroPadding2D(((0, pad), (0, pad)), name="pad")(inp) if pad else inp

    def block(x, f, name):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
        return layers.Conv2D(f, 3, padding="same", activation="relu", name=f"{name}_conv2")(x)

    skips = []
    for d in range(depth):
        x = block(x, base_filters * 2**d, f"down{d}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{d}")(x)
    x = block(x, base_filters * 2**depth, "bottom")
    for d in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**d, 2, strides=2, name=f"up{d}_tconv")(x)
        x = layers.Concatenate(name=f"up{d}_concat")([x, skips[d]])
        x = block(x, base_filters * 2**d, f"up{d}")
    x = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    if pad:
        x = layers.Cropping2D(((0, pad), (0, pad)), name="crop")(x)
    return keras.Model(inp, x, name="unet")


def focal_dice_loss(y_true, y_pred, gamma: float = 2.0, alpha: float = 0.25, smooth: float = 1.0):
    """Binary focal loss (Lin et al. 2017) + soft Dice loss (Milletari et al. 2016).

    Focal loss is averaged per image; the Dice term is computed over the whole batch (as in
    segmentation_models' DiceLoss), so the half of a balanced batch with empty masks does not
    by itself drive the network to predict nothing. Returned per image (Keras averages the batch).
    """
    from keras import ops

    y_true = ops.cast(y_true, "float32")
    p = ops.clip(ops.cast(y_pred, "float32"), 1e-7, 1 - 1e-7)
    p_t = y_true * p + (1 - y_true) * (1 - p)
    a_t = y_true * alpha + (1 - y_true) * (1 - alpha)
    focal = -a_t * ops.power(1 - p_t, gamma) * ops.log(p_t)
    focal = ops.mean(ops.reshape(focal, (ops.shape(focal)[0], -1)), axis=1)
    dice = 1 - (2 * ops.sum(y_true * p) + smooth) / (ops.sum(y_true) + ops.sum(p) + smooth)
    return focal + dice


def unet_maps(outputs: np.ndarray) -> np.ndarray:
    """(N,S,S,1) sigmoid outputs -> (N,S,S) float32 maps in [0,1]."""
    return np.asarray(outputs, np.float32)[..., 0]


def unet_image_scores(outputs: np.ndarray) -> np.ndarray:
    """Image score = mean of the non-zero sigmoid cells, 0 if none (Arun et al., Methods)."""
    maps = unet_maps(outputs).reshape(len(outputs), -1)
    nz = maps > 0
    counts = nz.sum(axis=1)
    sums = np.where(nz, maps, 0).sum(axis=1, dtype=np.float64)
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
