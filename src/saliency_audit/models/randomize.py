"""Model-parameter randomization (Adebayo et al. 2018, "Sanity checks for saliency maps";
Arun et al. 2021, cascading randomization of InceptionV3).

Blocks of InceptionV3 (from the top): ``logits`` (every layer after ``mixed10``: pooling + the
Dense logit), ``mixed10`` ... ``mixed1`` (block ``mixed{i}`` = the layers that compute ``mixed{i}``
from ``mixed{i-1}``'s output), and the optional ``stem`` (every layer up to and including
``mixed0``). Block membership is read from the model graph, not from layer-name patterns.

States (see :func:`saliency_audit.plan.randomization_states`): ``original`` (the trained model),
``cascade-<block>`` (that block and every block above it re-initialised), ``indep-<block>`` (that
block alone). Re-initialisation draws each weight from its layer's own initializer (kernel, bias,
BatchNorm gamma/beta), seeded per block with ``plan.derive_seed(seed_base, block)`` so a block gets
the same new weights in every state; BatchNorm moving mean/variance are kept (Adebayo et al.).
"""

from __future__ import annotations

from ..errors import InputError
from ..plan import INCEPTION_CASCADE, INCEPTION_STEM, derive_seed

#: weight attribute -> initializer attribute re-drawn on re-initialisation
REINIT_WEIGHTS = ("kernel", "bias", "gamma", "beta", "depthwise_kernel", "pointwise_kernel", "embeddings")
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
    """Blocks re-initialised in ``state`` (top first)."""
    if state == "original":
        return []
    mode, _, block = state.partition("-")
    order = BLOCK_ORDER.get(arch)
    if order is None:
        raise InputError(f"model randomization is defined for inceptionv3 only, not {arch!r} (state {state!r})")
    if mode not in ("cascade", "indep") or block not in order:
        raise InputError(f"unknown model state {state!r}; expected original, cascade-<block> or indep-<block> with block in {order}")
    return order[: order.index(block) + 1] if mode == "cascade" else [block]


def _seeded(initializer, seed: int):
    import keras

    init = keras.initializers.get(initializer)
    cfg = init.get_config()
    if "seed" in cfg:
        cfg["seed"] = int(seed)
    return init.__class__.from_config(cfg)


def reinit_layer(layer, seed: int) -> list[str]:
    """Re-draw a layer's weights from its own initializers, seeded by ``seed`` and the weight name;
    returns the re-drawn variable paths."""
    done = []
    for attr in REINIT_WEIGHTS:
        var = getattr(layer, attr, None)
        init = getattr(layer, f"{attr}_initializer", None)
        if var is None or init is None or not hasattr(var, "assign"):
            continue
        value = _seeded(init, derive_seed(seed, attr))(tuple(var.shape), dtype=var.dtype)
        var.assign(value)
        done.append(var.path)
    return done


def apply_state(model, arch: str, state: str, seed_base: int):
    """Put ``model`` in randomization ``state`` (in place; returns it). ``original`` is a no-op.

    Load a fresh copy of the trained model for every state: states are not undone.
    """
    blocks = state_blocks(arch, state)
    if not blocks:
        return model
    members = inception_blocks(model)  # state_blocks admits inceptionv3 only
    for block in blocks:
        bseed = derive_seed(seed_base, block)
        # seeds follow the layer's position in its block, not its (build-order dependent) name
        for k, name in enumerate(members[block]):
            reinit_layer(model.get_layer(name), derive_seed(bseed, k))
    return model
