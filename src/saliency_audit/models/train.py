"""Training of the classifiers and the localizers, with seeded, streamed, early-stopped fits.

Arun et al. (2021), Methods: InceptionV3 (Adam lr 1e-4, <= 20 epochs, early stopping on validation
AUC, patience 4) and DenseNet121 (lr 7e-5, <= 30 epochs, patience 5), BCE on the logit; U-Net
(focal + dice, lr 1e-4, balanced sampling, ReduceLROnPlateau x0.1 after 3 epochs, early stopping
on validation loss); RetinaNet (lr 1e-4). Every setting comes from the config's ``models:`` block.

:func:`train_model` is the one loop every architecture shares; what differs (the model, the
training target, the loss, extra callbacks, the metrics it records) is the architecture's setup
function (:func:`_classifier_setup`, :func:`_unet_setup`, :func:`_retinanet_setup`), found with its
image score and early-stopping monitor in the registry (:mod:`saliency_audit.architectures`).

Determinism: ``keras.utils.set_random_seed`` + ``tf.config.experimental.enable_op_determinism``
and seeded tf.data shuffles, so one config gives identical weights and metrics on a CPU.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from .. import io
from ..architectures import get_arch
from ..errors import InputError
from ..plan import arch_of, derive_seed
from . import arch_function, data
from .classifiers import build_classifier, weights_source
from .retinanet import anchors_for, build_retinanet, encode, retinanet_loss
from .settings import ModelSettings
from .unet import build_unet, focal_dice_loss

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: object
    history: pd.DataFrame
    metrics: dict = field(default_factory=dict)


@dataclass
class Setup:
    """What an architecture's setup function hands the shared loop (:func:`train_model`)."""

    model: object
    train_ds: object
    val_ds: object  # None: validation metrics come from the EpochMetrics callback only
    loss: object
    callbacks: list  # beyond the epoch metrics and early stopping
    info: dict  # recorded in the model's metrics


def configure_runtime(seed: int, threads: int | None = None, mixed_precision: bool = False) -> None:
    """Seed every generator, make TensorFlow ops deterministic, set threads and the dtype policy."""
    import keras
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        except RuntimeError:  # TensorFlow already initialised in this process
            pass
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")


def auroc(labels, scores) -> float:
    """sklearn ``roc_auc_score``; NaN when the split holds one class only."""
    labels = np.asarray(labels).astype(int)
    if len(np.unique(labels)) < 2:
        return float("nan")
    return float(roc_auc_score(labels, np.asarray(scores, np.float64)))


def classifier_scores(outputs):
    return np.asarray(outputs, np.float64)[:, 0]


def score_fn(arch: str):
    """Image-level score of a model's outputs (for AUROC): the registry's ``score`` of ``arch``."""
    return arch_function(arch, "score")


class EpochMetrics:
    """Keras callback factory: validation metrics after every epoch, logged and recorded."""

    @staticmethod
    def make(arch, val_paths, batch_size, model_id):
        import keras

        scorer = score_fn(arch)
        classifier = get_arch(arch).role == "classifier"

        class _EpochMetrics(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.rows = []

            def on_epoch_end(self, epoch, logs=None):
                logs = logs if logs is not None else {}
                scores, labels = data.predict_split(self.model, val_paths, scorer, batch_size)
                if classifier:  # BCE of the logits (the training loss) on the val split
                    z, y = scores, labels.astype(np.float64)
                    logs["val_loss"] = float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))
                auc = auroc(labels, scores)
                if np.isnan(auc):
                    log.warning("%s: the validation split holds one class only; val_auc set to 0.5", model_id)
                    auc = 0.5
                logs["val_auc"] = auc
                logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
                self.rows.append(row)
                log.info("%s epoch %d: %s", model_id, epoch + 1, ", ".join(f"{k}={v:.5g}" for k, v in row.items() if k != "epoch"))

        return _EpochMetrics()


def _box_target(anchors):
    def target(shard, i):
        b = shard["boxes"]
        return encode(anchors, b[b[:, 0] == i, 1:5] if len(b) else np.zeros((0, 4), np.float32))

    return target


def _classifier_setup(model_id, st, train_paths, val_paths, size, seed) -> Setup:
    """InceptionV3 / DenseNet121: BCE on the logit of the image label (permuted for ``-shuffled``)."""
    import keras

    batch, buffer = int(st.batch_size), int(st.shuffle_buffer)
    shuffled = "-shuffled" in model_id
    weights = weights_source(st.weights)
    model = build_classifier(st.arch, size, weights, seed)
    if st.bn_momentum is not None:  # from scratch on few steps: let BN statistics keep up
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = float(st.bn_momentum)
    labels = None
    if shuffled:  # label randomization (Adebayo et al. 2018): same images, permuted labels
        labels = np.random.default_rng(derive_seed(seed, "label-shuffle")).permutation(data.split_labels(train_paths))
    train_ds = data.make_dataset(train_paths, data.label_target, (1,), size, batch, seed=seed, buffer_size=buffer,
                                 labels=labels)
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    info = dict(weights=weights, label_shuffled=shuffled, bn_momentum=st.bn_momentum)
    return Setup(model, train_ds, None, loss, [], info)


def _unet_setup(model_id, st, train_paths, val_paths, size, seed) -> Setup:
    """U-Net: focal + dice on the masks, balanced sampling, ReduceLROnPlateau."""
    import keras

    batch, buffer = int(st.batch_size), int(st.shuffle_buffer)
    base_filters, depth = int(st.base_filters), int(st.depth)
    model = build_unet(size, base_filters, depth, seed)
    steps = int(np.ceil(len(data.split_labels(train_paths)) / batch))
    train_ds = data.make_dataset(train_paths, data.mask_target, (size, size, 1), size, batch, seed=seed,
                                 buffer_size=buffer, balanced=True, steps=steps)
    val_ds = data.make_dataset(val_paths, data.mask_target, (size, size, 1), size, batch)
    extra = [keras.callbacks.ReduceLROnPlateau("val_loss", factor=float(st.plateau_factor),
                                               patience=int(st.plateau_patience), verbose=0)]
    info = dict(weights="none", base_filters=base_filters, depth=depth)
    return Setup(model, train_ds, val_ds, focal_dice_loss, extra, info)


def _retinanet_setup(model_id, st, train_paths, val_paths, size, seed) -> Setup:
    """RetinaNet: focal + smooth-L1 on the anchors' encoded boxes."""
    batch, buffer = int(st.batch_size), int(st.shuffle_buffer)
    model = build_retinanet(size, seed=seed)
    anchors = anchors_for(size)
    target = _box_target(anchors)
    train_ds = data.make_dataset(train_paths, target, (len(anchors), 5), size, batch, seed=seed, buffer_size=buffer)
    val_ds = data.make_dataset(val_paths, target, (len(anchors), 5), size, batch)
    info = dict(weights="none", score_threshold=float(st.score_threshold))
    return Setup(model, train_ds, val_ds, retinanet_loss, [], info)


def train_model(
    model_id: str,
    train_paths,
    val_paths,
    test_paths,
    models_cfg: dict,
    image_size: int,
    seed: int,
    dataset: str = "",
    threads: int | None = None,
    verbose: int | None = None,
) -> TrainResult:
    """Train one model of ``plan.model_ids`` on the shards of a dataset and evaluate it on the test split.

    Parameters
    ----------
    model_id : e.g. ``inceptionv3_1``, ``inceptionv3-shuffled_1``, ``unet_2``, ``retinanet_1``.
    train_paths, val_paths, test_paths : shard files of the three splits.
    models_cfg : the validated config's ``models:`` block (the model's own section and the global
        switches, schema defaults filled), read once into :class:`~.settings.ModelSettings`.
    image_size : side of the shards' images.
    seed : the replicate seed (``plan.model_seed``).
    dataset : name recorded in the metrics.
    verbose : Keras progress display; default 1 on a terminal, else 2 (one line per epoch).
    """
    import keras

    arch = arch_of(model_id)
    st = ModelSettings.from_config(arch, models_cfg)
    size = int(image_size)
    if verbose is None:
        verbose = 1 if sys.stderr.isatty() else 2
    configure_runtime(seed, threads, st.mixed_precision)
    batch = int(st.batch_size)
    n_train = len(data.split_labels(train_paths))
    lr, epochs, patience = float(st.lr), int(st.epochs), int(st.patience)
    info = {"model": model_id, "arch": arch, "dataset": dataset, "seed": int(seed), "image_size": size, "lr": lr,
            "batch_size": batch, "max_epochs": epochs, "patience": patience}
    spec = get_arch(arch)
    setup = arch_function(arch, "setup")(model_id, st, train_paths, val_paths, size, seed)
    model, monitor, mode = setup.model, spec.monitor, spec.mode
    info.update(setup.info)

    rate = lr
    if st.lr_schedule == "cosine":  # from lr to 0 over every step of the epochs
        steps = int(setup.train_ds.cardinality().numpy())
        rate = keras.optimizers.schedules.CosineDecay(lr, decay_steps=max(1, epochs * steps))
    if st.lr_schedule is not None:  # classifiers
        info["lr_schedule"] = st.lr_schedule
    # XLA compilation of a 300-layer graph costs minutes on a small CPU; opt in on GPUs
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=setup.loss, jit_compile=bool(st.jit_compile))
    metrics_cb = EpochMetrics.make(arch, val_paths, batch, model_id)
    stop = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True)
    log.info("training %s (%s, %d train images, %s weights, seed %d): lr %g, <= %d epochs, patience %d on %s",
             model_id, arch, n_train, info.get("weights"), seed, lr, epochs, patience, monitor)
    model.fit(setup.train_ds, validation_data=setup.val_ds, epochs=epochs,
              callbacks=[metrics_cb, stop, *setup.callbacks], verbose=verbose, shuffle=False)
    history = pd.DataFrame(metrics_cb.rows)
    best = int(stop.best_epoch) + 1 if stop.best_weights is not None else len(history)
    scores, labels = data.predict_split(model, test_paths, score_fn(arch), batch)
    info.update(
        epochs_run=len(history),
        best_epoch=best,
        monitor=monitor,
        best_monitor=float(history[monitor].iloc[best - 1]),
        val_auroc=float(history["val_auc"].iloc[best - 1]),
        test_auroc=auroc(labels, scores),
        n_train=n_train,
        n_val=len(data.split_labels(val_paths)),
        n_test=len(labels),
        n_test_positive=int(labels.sum()),
        keras_version=keras.__version__,
    )
    log.info("%s: best epoch %d of %d, test AUROC %.4f", model_id, best, len(history), info["test_auroc"])
    return TrainResult(model, history, info)


def save_model(model, path) -> None:
    """Save a Keras model atomically (``.keras``)."""
    with io.atomic_path(path) as tmp:
        model.save(tmp)


def avg_map(paths, image_size: int | None = None) -> np.ndarray:
    """AVG baseline (Arun et al.): the mean of all masks (box masks for detection) of the given
    shards (train + val), float32 in [0, 1]; streamed one shard at a time."""
    total, n = None, 0
    for p in paths:
        m = data.read_key(p, "masks").astype(np.float64)
        if image_size is not None and m.shape[1:] != (image_size, image_size):
            raise InputError(f"{p}: masks are {m.shape[1:]}, expected {image_size}x{image_size}")
        total = m.sum(0) if total is None else total + m.sum(0)
        n += len(m)
    if not n:
        raise InputError("AVG map: no masks in the given shards")
    return (total / n).astype(np.float32)
