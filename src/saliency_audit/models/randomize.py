"""Model-parameter randomization (Adebayo et al. 2018, "Sanity checks for saliency maps";
Arun et al. 2021, cascading randomization of InceptionV3).

Blocks of InceptionV3 (from the top): ``logits`` (every layer after ``mixed10``: pooling + the
Dense logit), ``mixed10`` ... ``mixed1`` (block ``mixed{i}`` = the layers that compute ``mixed{i}``
from ``mixed{i-1}``'s output), and the optional ``stem`` (every layer up to and including
``mixed0``). Block membership is read from the model graph, not from layer-name patterns.

States (see :func:`saliency_audit.plan.randomization_states`): ``original`` (the trained model),
``cascade-<block>`` (that block and every block above it re-initialised), ``cascade<r>-<block>``
(the same in cascade repeat r >= 2, drawn from other seeds), ``indep-<block>`` (that block alone).
Seeds: block ``b`` of repeat 1 is seeded by ``plan.derive_seed(seed_base, b)``, of repeat r >= 2
by ``plan.derive_seed(plan.derive_seed(seed_base, 'repeat', r), b)``; so within a repeat a block
gets the same new weights in every state. BatchNorm moving mean/variance are kept (Adebayo et al.).

Re-initialisation (``randomization.initializer``):

``truncated_normal`` (Adebayo et al.'s released code)
    kernels from a normal truncated at two standard deviations of the untruncated normal, with
    standard deviation (after truncation) ``sqrt(2 / fan_in)`` (He et al. 2015); biases and
    BatchNorm beta set to 0, gamma to 1. What we found in github:adebayoj/sanity_checks_saliency
    (read at commit 3e24048): ``reinitlayerlist`` in ``notebooks/inceptionv3_cascading_randomization.ipynb``
    re-runs each variable's own TF-slim initializer (``tf.initialize_variables``); in
    ``src/inception_v3.py`` those are ``slim.variance_scaling_initializer()`` for every convolution,
    the logits included (``inception_arg_scope``: TF 1.x defaults factor 2.0, FAN_IN,
    ``uniform=False``, i.e. ``truncated_normal(0, sqrt(1.3 * 2 / fan_in))``, whose standard
    deviation after the 2-sigma truncation is sqrt(2 / fan_in)), ``trunc_normal(0.01)`` and
    ``trunc_normal(0.001)`` for the two auxiliary-logit convolutions (not part of our cascade),
    and slim's zero bias / BatchNorm-beta initializers (``batch_norm_scale=False``: no gamma).
    Their MNIST CNN (``src/train_cnn_models.py``) used ``truncated_normal(stddev=0.1)``. Keras's
    ``VarianceScaling(2.0, 'fan_in', 'truncated_normal')`` draws the same distribution
    (its 1 / 0.8796 correction is TF 1.x's sqrt(1.3) to 0.3%).
``layer_default``
    each weight from its layer's own Keras initializer (glorot-uniform kernels, zero biases,
    ...), the behaviour of this package before the option existed.
"""

from __future__ import annotations

from ..errors import InputError
from ..plan import INCEPTION_CASCADE, INCEPTION_STEM, derive_seed, parse_state

#: weight attribute -> initializer attribute re-drawn on re-initialisation
REINIT_WEIGHTS = ("kernel", "bias", "gamma", "beta", "depthwise_kernel", "pointwise_kernel", "embeddings")
#: weights drawn from the truncated normal under ``initializer: truncated_normal``
KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")
#: ``randomization.initializer`` values
INITIALIZERS = ("truncated_normal", "layer_default")
BLOCK_ORDER = {"inceptionv3": INCEPTION_CASCADE + [INCEPTION_STEM]}


def _ancestors(model, name: str) -> set[str]:
    """Names of the layers the output of layer ``name`` depends on (itself included)."""
    seen, stack = set(), [model.get_layer(name)]
    while stack:
        layer = stack.pop()
        if layer.name in seen:
            continue
        seen.add(layer.name)
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                stack.append(t._keras_history[0])
    return seen


def inception_blocks(model) -> dict[str, list[str]]:
    """Layer names of each InceptionV3 block: ``logits``, ``mixed10`` ... ``mixed1``, ``stem``."""
    try:
        anc = {i: _ancestors(model, f"mixed{i}") for i in range(11)}
    except ValueError as exc:
        raise InputError(f"model {model.name!r} has no InceptionV3 block layers mixed0..mixed10 ({exc})") from exc
    names = [layer.name for layer in model.layers]
    blocks = {"logits": [n for n in names if n not in anc[10]]}
    for i in range(10, 0, -1):
        blocks[f"mixed{i}"] = [n for n in names if n in anc[i] and n not in anc[i - 1]]
    blocks[INCEPTION_STEM] = [n for n in names if n in anc[0]]
    return blocks


def state_blocks(arch: str, state: str) -> list[str]:
    """Blocks re-initialised in ``state`` (top first); the repeat of a cascade does not change them."""
    if state == "original":
        return []
    order = BLOCK_ORDER.get(arch)
    if order is None:
        raise InputError(f"model randomization is defined for inceptionv3 only, not {arch!r} (state {state!r})")
    try:
        mode, _, block = parse_state(state)
    except ValueError:
        block = None
    if block not in order:
        raise InputError(
            f"unknown model state {state!r}; expected original, cascade-<block>, cascade<r>-<block> (r >= 2) "
            f"or indep-<block> with block in {order}"
        )
    return order[: order.index(block) + 1] if mode == "cascade" else [block]


def _seeded(initializer, seed: int):
    import keras

    init = keras.initializers.get(initializer)
    cfg = init.get_config()
    if "seed" in cfg:
        cfg["seed"] = int(seed)
    return init.__class__.from_config(cfg)


def _released_initializer(attr: str, seed: int):
    """``initializer: truncated_normal``: He truncated normal kernels, zero bias/beta, unit gamma."""
    import keras

    if attr in KERNELS:
        return keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal", seed=int(seed))
    return keras.initializers.Ones() if attr == "gamma" else keras.initializers.Zeros()


def reinit_layer(layer, seed: int, initializer: str) -> list[str]:
    """Re-draw a layer's weights (``initializer``: ``truncated_normal`` or ``layer_default``, see
    the module docstring), seeded by ``seed`` and the weight name; returns the re-drawn variable paths."""
    if initializer not in INITIALIZERS:
        raise InputError(f"randomization.initializer: expected one of {INITIALIZERS}, got {initializer!r}")
    done = []
    for attr in REINIT_WEIGHTS:
        var = getattr(layer, attr, None)
        init = getattr(layer, f"{attr}_initializer", None)
        if var is None or init is None or not hasattr(var, "assign"):
            continue
        wseed = derive_seed(seed, attr)
        fn = _seeded(init, wseed) if initializer == "layer_default" else _released_initializer(attr, wseed)
        var.assign(fn(tuple(var.shape), dtype=var.dtype))
        done.append(var.path)
    return done


def repeat_seed(seed_base: int, repeat: int) -> int:
    """The seed base of cascade repeat ``repeat``: ``seed_base`` itself for repeat 1."""
    return int(seed_base) if int(repeat) == 1 else derive_seed(seed_base, "repeat", int(repeat))


def apply_state(model, arch: str, state: str, seed_base: int, *, initializer: str):
    """Put ``model`` in randomization ``state`` (in place; returns it). ``original`` is a no-op.

    ``initializer``: ``truncated_normal`` or ``layer_default`` (config ``randomization.initializer``).
    Load a fresh copy of the trained model for every state: states are not undone.
    """
    blocks = state_blocks(arch, state)
    if not blocks:
        return model
    members = inception_blocks(model)  # state_blocks admits inceptionv3 only
    base = repeat_seed(seed_base, parse_state(state)[1])
    for block in blocks:
        bseed = derive_seed(base, block)
        # seeds follow the layer's position in its block, not its (build-order dependent) name
        for k, name in enumerate(members[block]):
            reinit_layer(model.get_layer(name), derive_seed(bseed, k), initializer)
    return model
