"""The model-to-logits adapter shared by attacks, training and evaluation.

Every attack, adversarial-training objective and evaluation in keras_adv
sees a classifier through `ModelLogits`: `x -> float32 logits`, whatever
the model outputs (logits, probabilities or log-probabilities) and whatever
its dtype policy, plus an input gradient that does not underflow under
`mixed_float16`.
"""

from collections.abc import Callable

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._outputs import check_classifier_outputs
from keras_adv._outputs import looks_like_probabilities
from keras_adv._outputs import output_kind
from keras_adv._types import Tensor
from keras_adv._types import TensorLike

_TINY = 1e-30


class ModelLogits:
    """A classifier seen as `x -> float32 logits`, with a safe input gradient.

    Probability outputs are turned into log-probabilities, which equal the
    logits up to a per-sample constant (so softmax, cross-entropy, margins
    and every attack are unchanged). Whether the outputs are logits comes
    from `from_logits`, else from the model's structure (`output_kind`),
    else it is decided per batch inside the graph (rows that are
    non-negative and sum to 1 are probabilities).

    Args:
        model: A Keras model with a single output `(batch, classes)`.
        from_logits: True, False or None (infer). An explicit value that
            contradicts the model's structure raises `ValueError`.
        training: Bool, the `training` flag of the forward passes.
            Defaults to `False`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.attacks import ModelLogits
    >>> model = keras.Sequential([keras.Input((2,)),
    ...                           keras.layers.Dense(3, "softmax")])
    >>> adapter = ModelLogits(model)
    >>> adapter.from_logits
    False
    >>> logits = adapter(np.ones((1, 2), "float32"))
    >>> probs = np.asarray(keras.ops.softmax(logits))
    >>> bool(np.allclose(probs, model(np.ones((1, 2))), atol=1e-6))
    True
    """

    def __init__(
        self,
        model: keras.Model,
        from_logits: bool | None = None,
        training: bool = False,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(
                _validation.invalid("model", "a keras.Model", model)
            )
        kind = output_kind(model)
        if from_logits is not None:
            from_logits = _validation.check_bool("from_logits", from_logits)
            if from_logits and kind == "probabilities":
                raise ValueError(
                    "The model ends in a softmax (it outputs probabilities) "
                    "but from_logits=True was given. Pass from_logits=False "
                    "or from_logits=None (infer)."
                )
            if not from_logits and kind == "logits":
                raise ValueError(
                    "The model's last layer is a linear Dense layer (it "
                    "outputs logits) but from_logits=False was given. Pass "
                    "from_logits=True or from_logits=None (infer)."
                )
        elif kind is not None:
            from_logits = kind == "logits"
        self.model = model
        self.from_logits = from_logits
        self.training = _validation.check_bool("training", training)
        self.low_precision = model.dtype_policy.compute_dtype in (
            "float16",
            "bfloat16",
        )

    def forward(self, x: TensorLike) -> Tensor:
        """Raw model outputs (in the model's compute dtype)."""
        return check_classifier_outputs(self.model(x, training=self.training))

    def head(self, outputs: TensorLike) -> Tensor:
        """Float32 logits from raw outputs."""
        outputs = ops.cast(outputs, "float32")
        if self.from_logits is True:
            return outputs
        log_probs = ops.log(ops.maximum(outputs, _TINY))
        if self.from_logits is False:
            return log_probs
        return ops.where(looks_like_probabilities(outputs), log_probs, outputs)

    def __call__(self, x: TensorLike) -> Tensor:
        return self.head(self.forward(x))

    def value_and_input_gradient(
        self, objective_fn: Callable[[Tensor], Tensor], x: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Per-sample `objective_fn(logits)` and its gradient w.r.t. `x`.

        For float32 models this is one tape. Under `mixed_float16` the
        gradient of the objective w.r.t. the outputs is computed in float32,
        rescaled per sample to a maximum magnitude of 1 before it enters the
        float16 backward pass (so it cannot underflow or overflow), and the
        input gradient is scaled back in float32. Per-sample rescaling is
        exact for models that treat samples independently (inference mode).
        Non-finite gradient entries become 0.

        Args:
            objective_fn: Maps float32 logits to a per-sample objective.
            x: Float32 input tensor.

        Returns:
            `(objective, grad)`: shapes `(batch,)` and that of `x`.
        """
        if not self.low_precision:
            with tf.GradientTape() as tape:
                tape.watch(x)
                objective = objective_fn(self(x))
                total = ops.sum(objective)
            grad = tape.gradient(
                total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return objective, ops.where(ops.isfinite(grad), grad, 0.0)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = self.forward(x)
        outputs32 = ops.cast(outputs, "float32")
        with tf.GradientTape() as head_tape:
            head_tape.watch(outputs32)
            objective = objective_fn(self.head(outputs32))
            total = ops.sum(objective)
        out_grad = head_tape.gradient(total, outputs32)
        scale = ops.max(ops.abs(out_grad), axis=-1, keepdims=True)
        scale = ops.maximum(scale, 1e-30)
        grad = tape.gradient(
            outputs,
            x,
            output_gradients=ops.cast(out_grad / scale, outputs.dtype),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grad = ops.cast(grad, "float32")
        grad = ops.where(ops.isfinite(grad), grad, 0.0)
        expand = [-1] + [1] * (len(x.shape) - 1)
        return objective, grad * ops.reshape(scale, expand)
