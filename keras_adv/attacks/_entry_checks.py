"""What an attack's entry points check before any graph runs.

`Attack` inherits these: the call's arguments (model, inputs, labels, eps),
the model once per attack (output shape, logits or probabilities against
`from_logits`, the number of classes for the label checks) and, at trace
time, the input and label types. The checks themselves live in
`keras_adv._validation`; this mixin applies them with the attack's state
(`self.targeted`, `self.from_logits`, `self._model_info`).
"""

import weakref
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._outputs import check_classifier_outputs
from keras_adv._outputs import looks_like_probabilities
from keras_adv._types import Eps
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.attacks._logits import ModelLogits

TARGETS_NEEDED = (
    "A targeted attack needs `y`: the target classes. Received: y=None"
)


class EntryChecks:
    """The entry checks of `Attack` (a mixin; see the module docstring)."""

    # Set by `Attack.__init__` (and `eps` is its property).
    targeted: bool
    from_logits: bool | None
    _model_info: "weakref.WeakKeyDictionary[keras.Model, dict[str, Any]]"
    eps: Eps

    def _check_call(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None,
        eps: Eps | None,
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        """The checks of a call's arguments; `(x, y, eps)` as tensors."""
        if not isinstance(model, keras.Model):
            raise TypeError(
                _validation.invalid("model", "a keras.Model", type(model))
            )
        x = _validation.check_x(x)
        if y is not None:
            y = _validation.check_label_shape(y, x)
        elif self.targeted:
            raise ValueError(TARGETS_NEEDED)
        return x, y, self._check_call_eps(eps, x)

    def _check_call_eps(self, eps: Eps | None, x: Tensor) -> Tensor:
        eps = self.eps if eps is None else _validation.check_eps(eps)
        # A plain float32 tensor (a variable is read): one trace for all.
        radius = tf.cast(tf.convert_to_tensor(eps), tf.float32)
        if len(radius.shape) == 1 and tf.executing_eagerly():
            if radius.shape[0] != x.shape[0]:
                raise ValueError(
                    _validation.invalid(
                        "eps",
                        f"a scalar or shape ({x.shape[0]},) matching x",
                        tuple(radius.shape),
                    )
                )
        return radius

    def _check_model_once(
        self, model: keras.Model, x: Tensor, y: Tensor | None
    ) -> None:
        """Eager, once per model: output shape and from_logits; labels."""
        info = self._model_info.get(model)
        if info is None:
            outputs = check_classifier_outputs(model(x[:32], training=False))
            outputs = ops.cast(outputs, "float32")
            looks_prob = bool(looks_like_probabilities(outputs))
            mode = ModelLogits(model, self.from_logits).from_logits
            if self.from_logits is True and looks_prob:
                raise ValueError(
                    "The model's outputs are probabilities (non-negative rows "
                    "summing to 1) but the attack has from_logits=True. Pass "
                    "from_logits=False or from_logits=None (infer)."
                )
            if self.from_logits is False and not looks_prob:
                raise ValueError(
                    "The attack has from_logits=False but the model's "
                    "outputs are not probabilities (rows must be "
                    "non-negative and sum to 1). Pass from_logits=True or "
                    "None (infer)."
                )
            info = {"num_classes": int(outputs.shape[-1])}
            if mode is not None:
                info["from_logits"] = mode
            self._model_info[model] = info
        if y is not None:
            # Labels are small: check them on the host before the attack.
            _validation.check_label_values(y, info["num_classes"])

    def _num_classes(self, model: keras.Model) -> int | None:
        """The model's number of classes if known without a forward pass.

        From the eager probe, or the static output shape of a built
        Functional or Sequential model; None otherwise (a subclassed model
        attacked only inside graphs: its labels are then not range-checked
        in the graph).
        """
        info = self._model_info.get(model)
        if info is not None:
            return info["num_classes"]
        try:
            classes = model.outputs[0].shape[-1]
        except (AttributeError, IndexError, TypeError, ValueError):
            return None
        return None if classes is None else int(classes)

    def check_input_types(
        self, x: TensorLike, y: TensorLike | None = None
    ) -> None:
        """Trace-time checks: float `x`, numeric labels (raise TypeError)."""
        _validation.check_x_dtype(x.dtype)
        if y is not None:
            _validation.check_label_dtype(ops.convert_to_tensor(y))
