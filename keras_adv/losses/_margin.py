"""Per-sample attack losses on logits: cross-entropy and the C&W margin."""

from keras import ops

from keras_adv import _signature
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import LossFn
from keras_adv._types import Tensor
from keras_adv._types import TensorLike


def cross_entropy(labels: TensorLike, logits: TensorLike) -> Tensor:
    """Per-sample softmax cross-entropy `-log softmax(logits)[label]`.

    Args:
        labels: Int tensor of shape `(batch,)`.
        logits: Float tensor of shape `(batch, classes)`.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import cross_entropy
    >>> ce = cross_entropy(np.array([1]), np.array([[0.0, 0.0]]))
    >>> round(float(ce[0]), 4)  # log 2
    0.6931
    """
    return ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)


def margin_loss(labels: TensorLike, logits: TensorLike) -> Tensor:
    """Per-sample Carlini-Wagner margin `max_{j != y} z_j - z_y`.

    Positive exactly when the sample is misclassified away from `y`;
    maximising it is the untargeted C&W objective (without the confidence
    clamp), and minimising it with `y` the target is the targeted one.

    Args:
        labels: Int tensor of shape `(batch,)`.
        logits: Float tensor of shape `(batch, classes)`.

    Returns:
        Float tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import margin_loss
    >>> np.asarray(margin_loss(np.array([0]), np.array([[2.0, 3.0, -1.0]])))
    array([1.], dtype=float32)

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017,
        [arXiv:1608.04644](https://arxiv.org/abs/1608.04644).
    """
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    one_hot = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    true_logit = ops.sum(logits * one_hot, axis=-1)
    other = ops.max(logits - 1e9 * one_hot, axis=-1)
    return other - true_logit


_ATTACK_LOSSES: dict[str, LossFn] = {
    "ce": cross_entropy,
    "margin": margin_loss,
}


def register_attack_loss(name: str, fn: LossFn) -> None:
    """Registers `fn(labels, logits) -> (batch,)` as attack loss `name`.

    Registered names can be passed as `loss=name` to every attack and are
    stored by name in attack configs (so they stay serialisable).

    Args:
        name: Lower-case string key.
        fn: Callable `(labels, logits) -> per-sample loss`.

    Example:

    >>> from keras import ops
    >>> from keras_adv import losses
    >>> def neg_logit(labels, logits):
    ...     return -ops.take_along_axis(
    ...         logits, ops.expand_dims(labels, -1), axis=-1)[:, 0]
    >>> losses.register_attack_loss("neg_logit", neg_logit)
    >>> losses.get("neg_logit") is neg_logit
    True
    """
    if not isinstance(name, str) or not name or name != name.lower():
        raise ValueError(
            _invalid("name", "a non-empty lower-case string", name)
        )
    if not callable(fn):
        raise TypeError(_invalid("fn", "a callable", fn))
    _ATTACK_LOSSES[name] = fn


def get(identifier: AttackLoss | Config) -> LossFn:
    """Returns the attack loss `(labels, logits) -> (batch,)` for `identifier`.

    Like `keras.losses.get` for attack objectives: a registered name
    (`"ce"`, `"margin"`, or one added with `register_attack_loss`), a
    callable, or the serialised form of a function registered with
    `keras.saving.register_keras_serializable`.

    Args:
        identifier: String, callable or serialised-function dict.

    Returns:
        A callable mapping int labels `(batch,)` and float32 logits
        `(batch, classes)` to a per-sample loss that an untargeted attack
        maximises.

    Raises:
        ValueError: for an unknown name or an unsupported type.

    Example:

    >>> from keras_adv import losses
    >>> losses.get("margin") is losses.margin_loss
    True
    """
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ATTACK_LOSSES:
            return _ATTACK_LOSSES[key]
        raise ValueError(
            _invalid("loss", f"one of {sorted(_ATTACK_LOSSES)}", identifier)
        )
    if isinstance(identifier, dict):
        import keras

        fn = keras.saving.deserialize_keras_object(identifier)
        if callable(fn):
            return fn
    elif callable(identifier):
        return identifier
    raise ValueError(
        _invalid(
            "loss",
            f"one of {sorted(_ATTACK_LOSSES)} or a callable "
            "(labels, logits) -> per-sample loss",
            identifier,
        )
    )


def serialize(loss: AttackLoss) -> str | Config:
    """The config form of an attack loss: its name, or a serialised function.

    Raises:
        ValueError: for a callable that is neither registered here nor with
            `keras.saving.register_keras_serializable` (lambdas and closures
            cannot be saved).
    """
    if isinstance(loss, str):
        return loss.lower()
    for name, fn in _ATTACK_LOSSES.items():
        if fn is loss:
            return name
    import keras

    name = keras.saving.get_registered_name(loss)
    if keras.saving.get_registered_object(name) is loss:
        return keras.saving.serialize_keras_object(loss)
    # While a graph signature is read, the callable enters by identity:
    # only saving needs a serialisable loss.
    token = _signature.callable_token(loss)
    if token is not None:
        return token
    raise ValueError(
        f"The attack loss {loss!r} cannot be serialised. Register it with "
        "`keras_adv.losses.register_attack_loss(name, fn)` or "
        "`keras.saving.register_keras_serializable()`."
    )


def _invalid(name: str, expected: str, received: object) -> str:
    from keras_adv import _validation

    return _validation.invalid(name, expected, received)
