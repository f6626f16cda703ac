"""What a classifier outputs: logits or probabilities, and its labels.

The shared home of the output checks that attacks (`ModelLogits`),
training and evaluation all make: the kind of a model's outputs, whether
a batch of outputs looks like probabilities, the `(batch, classes)` shape
check, and label conversion to class ids.
"""

from typing import Any
from typing import Literal

import keras
import numpy as np
from keras import ops

from keras_adv._types import Tensor
from keras_adv._types import TensorLike

PROBABILITY_TOLERANCE = 1e-3


def output_kind(
    model: keras.Model,
) -> Literal["probabilities", "logits"] | None:
    """Returns `"probabilities"`, `"logits"` or None (unknown) for `model`.

    Read from public structure only: the last layer of a `Sequential`
    model, or, for a Functional model, its last layer when that layer
    produces the model's single output. Subclassed models give None; then
    pass `from_logits` explicitly or let the in-graph probability check
    decide.

    Args:
        model: A Keras model.

    Returns:
        `"probabilities"` for a final softmax, `"logits"` for a final linear
        `Dense` or a `log_softmax` activation (log-probabilities are
        logits), else None.

    Example:

    >>> import keras
    >>> from keras_adv._outputs import output_kind
    >>> output_kind(keras.Sequential([keras.Input((3,)),
    ...                               keras.layers.Dense(2, "softmax")]))
    'probabilities'
    """
    layer = _output_layer(model)
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return "probabilities"
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None)
    if name == "softmax":
        return "probabilities"
    if name == "log_softmax":
        return "logits"
    if isinstance(layer, keras.layers.Dense) and name in ("linear", None):
        return "logits"
    return None


def _output_layer(model: keras.Model) -> keras.layers.Layer | None:
    if isinstance(model, keras.Sequential):
        return model.layers[-1] if model.layers else None
    try:
        outputs = model.outputs
        layers = model.layers
    except (AttributeError, ValueError):
        return None
    if not outputs or len(outputs) != 1 or not layers:
        return None
    try:
        produced = layers[-1].output
    except (AttributeError, ValueError):  # unbuilt or shared layer
        return None
    return layers[-1] if produced is outputs[0] else None


def looks_like_probabilities(outputs: TensorLike) -> Tensor:
    """Graph-safe scalar bool: every row is non-negative and sums to 1."""
    outputs = ops.cast(outputs, "float32")
    row_sums = ops.sum(outputs, axis=-1)
    return ops.logical_and(
        ops.all(outputs >= 0.0),
        ops.all(ops.abs(row_sums - 1.0) < PROBABILITY_TOLERANCE),
    )


def looks_like_one_hot(outputs: TensorLike) -> bool:
    """Host-side: every row of `outputs` holds one 1 and zeros elsewhere.

    The outputs of a label-only model (an argmax turned into one-hot
    rows): scores that carry no signal for a score-based search.
    """
    outputs = np.asarray(outputs, dtype="float32")
    if outputs.ndim != 2 or outputs.size == 0:
        return False
    binary = np.all((outputs == 0.0) | (outputs == 1.0))
    return bool(binary and np.all(outputs.sum(axis=-1) == 1.0))


def check_classifier_outputs(outputs: Any) -> TensorLike:
    """Raises unless `outputs` is one tensor of shape `(batch, classes>=2)`."""
    if isinstance(outputs, dict):
        raise ValueError(
            "keras_adv needs a classifier with one output tensor of shape "
            "(batch, classes). Received: a model returning a dict with keys "
            f"{sorted(outputs)}. Wrap it so that it returns the logits "
            "tensor only."
        )
    if isinstance(outputs, list | tuple):
        raise ValueError(
            "keras_adv needs a classifier with one output tensor of shape "
            f"(batch, classes). Received: a model with {len(outputs)} "
            "outputs. Wrap it so that it returns the logits tensor only."
        )
    if len(outputs.shape) != 2 or (
        outputs.shape[-1] is not None and outputs.shape[-1] < 2
    ):
        raise ValueError(
            "keras_adv needs model outputs of shape (batch, classes) with "
            "classes >= 2 (logits or probabilities; for a binary task output "
            f"2 logits). Received: output shape {tuple(outputs.shape)}"
        )
    return outputs


def sparse_labels(y: TensorLike) -> Tensor:
    """Class ids as int32 `(batch,)` from `(batch,)`, `(batch, 1)` or one-hot.

    Graph-safe; no value checks (the attack's eager entry point and the
    training checks validate labels).

    Example:

    >>> import numpy as np
    >>> from keras_adv._outputs import sparse_labels
    >>> np.asarray(sparse_labels(np.eye(3)[[2, 0]]))
    array([2, 0], dtype=int32)
    """
    y = ops.convert_to_tensor(y)
    if len(y.shape) == 2 and y.shape[-1] not in (None, 1):
        y = ops.argmax(y, axis=-1)
    elif len(y.shape) == 2:
        y = ops.reshape(y, [-1])
    return ops.cast(y, "int32")
