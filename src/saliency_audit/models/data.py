"""tf.data pipelines that stream shard files (one shard in memory at a time).

A split is a list of shard ``.npz`` files (:mod:`saliency_audit.io`). Training reads them through a
Python generator: the shard order is re-permuted every epoch from a seeded generator, images are
shuffled across shards with a seeded ``shuffle`` buffer, and only uint8 images sit in the buffer;
the released code's scaling (``x / 127.5 - 1``, copied to 3 channels, exactly
:func:`saliency_audit.data.prepare.to_model_input`) is applied per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import io
from ..data.prepare import to_model_input
from ..errors import InputError
from ..plan import derive_seed

#: a target function: (shard arrays, index of the image in the shard) -> target array of one image
TargetFn = Callable[[dict, int], np.ndarray]


def read_key(path, key):
    """Read one array of a shard (cheap: only that member is decompressed)."""
    return io.read_npz(path, required=(key,), keys=(key,))[key]


def split_labels(paths: Sequence) -> np.ndarray:
    """Image labels of a split, in shard order (reads only the ``labels`` arrays)."""
    if not paths:
        return np.zeros(0, np.int8)
    return np.concatenate([read_key(p, "labels").astype(np.int8) for p in paths])


def label_target(shard: dict, i: int) -> np.ndarray:
    return np.asarray([shard["labels"][i]], np.float32)


def mask_target(shard: dict, i: int) -> np.ndarray:
    return shard["masks"][i][..., None].astype(np.float32)


def _image_generator(paths, target_fn, seed, select=None, labels=None):
    """A generator factory; every call (= every epoch) permutes the shard order anew (seeded)."""
    counter = [0]
    offsets = np.cumsum([0] + [len(read_key(p, "labels")) for p in paths]) if labels is not None else None

    def gen():
        epoch = counter[0]
        counter[0] += 1
        order = np.arange(len(paths))
        if seed is not None:
            order = np.random.default_rng(derive_seed(seed, "shard-order", epoch)).permutation(len(paths))
        for k in order:
            shard = io.read_shard(paths[k])
            if labels is not None:  # label-randomization: substitute the (shuffled) split labels
                shard = dict(shard, labels=labels[offsets[k] : offsets[k + 1]])
            idx = np.arange(len(shard["ids"])) if select is None else select(shard)
            for i in idx:
                yield shard["images"][i], target_fn(shard, int(i))

    return gen


def _scale(images, targets):
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    return tf.repeat(x[..., None], 3, axis=-1), targets


def _from_generator(gen, image_size, target_shape):
    import tensorflow as tf

    sig = (
        tf.TensorSpec((image_size, image_size), tf.uint8),
        tf.TensorSpec(target_shape, tf.float32),
    )
    return tf.data.Dataset.from_generator(gen, output_signature=sig)


def make_dataset(
    paths: Sequence,
    target_fn: TargetFn,
    target_shape: tuple,
    image_size: int,
    batch_size: int,
    seed: int | None = None,
    buffer_size: int = 256,
    labels: np.ndarray | None = None,
    balanced: bool = False,
    steps: int | None = None,
):
    """A batched ``tf.data.Dataset`` of (images float32 (B,S,S,3) in [-1,1], targets).

    Parameters
    ----------
    paths : shard files of one split.
    target_fn, target_shape : the per-image target and its shape.
    seed : ``None`` = fixed order, no shuffling (evaluation); else seeded shuffling per epoch.
    labels : replaces the shards' labels (label-randomization test), in shard order.
    balanced : draw positive and negative images with equal probability (U-Net training,
        Arun et al.: "balanced sampling"); an epoch is then ``steps`` batches.
    """
    import tensorflow as tf

    paths = [str(p) for p in paths]
    if not paths:
        raise InputError("no shard files given for a dataset")
    if balanced:
        if seed is None or steps is None:
            raise ValueError("balanced sampling needs a seed and a number of steps")
        all_labels = split_labels(paths)
        if all_labels.min() == all_labels.max():
            balanced = False  # one class only: nothing to balance
    if balanced:
        parts = []
        for cls in (1, 0):
            gen = _image_generator(paths, target_fn, derive_seed(seed, "class", cls), select=lambda s, c=cls: np.flatnonzero(s["labels"] == c))
            ds = _from_generator(gen, image_size, target_shape).repeat()
            parts.append(ds.shuffle(buffer_size, seed=derive_seed(seed, "buffer", cls), reshuffle_each_iteration=True))
        ds = tf.data.Dataset.sample_from_datasets(parts, weights=[0.5, 0.5], seed=derive_seed(seed, "balance"))
        ds = ds.take(steps * batch_size)
    else:
        ds = _from_generator(_image_generator(paths, target_fn, seed, labels=labels), image_size, target_shape)
        if seed is not None:
            ds = ds.shuffle(buffer_size, seed=derive_seed(seed, "buffer"), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(_scale, num_parallel_calls=1, deterministic=True)
    n = steps if balanced else int(np.ceil(sum(len(read_key(p, "labels")) for p in paths) / batch_size))
    return ds.apply(tf.data.experimental.assert_cardinality(n)).prefetch(2)


def predict_images(model, images_uint8: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Model outputs for uint8 images (N,S,S), in chunks (scaled by :func:`to_model_input`)."""
    outs = []
    for start in range(0, len(images_uint8), batch_size):
        x = to_model_input(np.asarray(images_uint8[start : start + batch_size]))
        outs.append(np.asarray(model.predict_on_batch(x)))
    if not outs:
        return np.zeros((0,) + tuple(model.output_shape[1:]), np.float32)
    return np.concatenate(outs).astype(np.float32)


def predict_split(model, paths: Sequence, score_fn: Callable, batch_size: int = 32):
    """Per-image scores and labels of a split: ``score_fn(model_outputs) -> (n,)``, shard by shard."""
    scores, labels = [], []
    for p in paths:
        shard = io.read_shard(p)
        scores.append(np.asarray(score_fn(predict_images(model, shard["images"], batch_size)), np.float64))
        labels.append(shard["labels"].astype(int))
    if not scores:
        return np.zeros(0), np.zeros(0, int)
    return np.concatenate(scores), np.concatenate(labels)
