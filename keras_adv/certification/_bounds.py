"""Sound bounds on a classifier's logits over an Lp ball: IBP and CROWN-IBP.

`interval_bounds` propagates an interval for every neuron through the
model (interval bound propagation, Gowal et al. 2018): about two forward
passes. `margin_bounds` bounds the margins `z_y - z_j` from below, either
with the same intervals and the last Dense layer folded into the margin
(`method="ibp"`), or with a backward linear-relaxation pass from the
margin through the network (CROWN, Zhang et al. 2018) that relaxes each
ReLU with the IBP bounds of its input (`method="crown_ibp"`, Zhang et al.
2020), or with CROWN bounds for those inputs too (`method="crown"`: one
backward pass per ReLU neuron, for small fully connected models).
`verified_mask` and `verified_accuracy` turn the margins into a proof per
sample: every margin's lower bound is positive, so no input in the ball
changes the prediction from `y`.

All the math is float32, from float32 copies of the weights, whatever the
dtype policy. Under `mixed_float16` the bounds are those of the float32
network with the model's weights; the model's float16 outputs may differ
from it by float16 rounding (about 1e-3 relative), which a certificate
with a margin that small does not cover. In float32 the bounds are sound
up to float32 rounding. One compiled function per model and setting; eps
is a tensor argument (changing it never retraces).
"""

from typing import overload

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _names
from keras_adv import _validation
from keras_adv._outputs import sparse_labels
from keras_adv._types import Array
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.certification import _bounder
from keras_adv.certification._bounder import METHODS
from keras_adv.certification._bounder import NORMS


@overload
def _settings(
    norm: Norm, value_range: ValueRange | None
) -> tuple[Norm, tuple[float, float] | None, None]: ...
@overload
def _settings(
    norm: Norm, value_range: ValueRange | None, method: str
) -> tuple[Norm, tuple[float, float] | None, str]: ...
def _settings(
    norm: Norm, value_range: ValueRange | None, method: str | None = None
) -> tuple[Norm, tuple[float, float] | None, str | None]:
    norm = _validation.check_choice("norm", norm, NORMS)
    if value_range is not None:
        value_range = _validation.check_value_range(value_range)
    if method is not None:
        # The old spelling "crown-ibp" keeps working (keras_adv._names).
        known = _names.canonical(method, METHODS, _names.CERTIFY_ALIASES)
        method = _validation.check_choice("method", known or method, METHODS)
    return norm, value_range, method


def _inputs(
    bounder: _bounder.Bounder,
    x: Array,
    eps: Eps,
    value_range: ValueRange | None,
) -> tuple[Tensor, Tensor]:
    """`(x, eps)` as float32 tensors, checked when called eagerly."""
    if not tf.executing_eagerly():
        x = ops.cast(x, "float32")
        return x, ops.cast(ops.convert_to_tensor(eps), "float32")
    x = _validation.check_x(x)
    if tuple(x.shape[1:]) != bounder.input_shape and None not in (
        bounder.input_shape
    ):
        raise ValueError(
            _validation.invalid(
                "x",
                f"a batch of inputs of shape (batch, "
                f"{', '.join(map(str, bounder.input_shape))}) for model "
                f"{bounder.name!r}",
                f"an array of shape {tuple(x.shape)}",
            )
        )
    if value_range is not None:
        _validation.check_value_range_of(x, value_range)
    eps = _validation.check_eps(eps)
    eps = tf.cast(tf.convert_to_tensor(eps), tf.float32)
    if len(eps.shape) == 1 and eps.shape[0] != x.shape[0]:
        raise ValueError(
            _validation.invalid(
                "eps",
                f"a scalar or shape ({x.shape[0]},) matching x",
                tuple(eps.shape),
            )
        )
    # One signature for scalar and per-sample radii: one trace.
    return ops.cast(x, "float32"), tf.broadcast_to(eps, tf.shape(x)[:1])


def _labels(bounder: _bounder.Bounder, y: Array, x: Tensor) -> Tensor:
    if tf.executing_eagerly():
        y = _validation.check_label_shape(y, x)
        _validation.check_label_values(y, bounder.classes)
    return sparse_labels(y)


def interval_bounds(
    model: keras.Model,
    x: Array,
    eps: Eps,
    norm: Norm = "linf",
    value_range: ValueRange | None = (0.0, 1.0),
) -> tuple[Tensor, Tensor]:
    """Sound elementwise bounds of a model's logits over a ball (IBP).

    For every input `x'` with `||x' - x|| <= eps` inside `value_range`,
    `lower <= model(x') <= upper`, propagated layer by layer through the
    model in inference mode (interval bound propagation): affine layers map
    an interval's centre `c` and radius `r` to `W c + b` and `|W| r`,
    monotone activations and max pooling map its ends. The cost is about
    two forward passes. A model that ends in a softmax is bounded before
    it: the bounds are on the logits. The math is float32, from float32
    copies of the weights, whatever the dtype policy (under
    `mixed_float16`, the bounds of the float32 network with the model's
    weights; its float16 outputs differ by float16 rounding).

    Supported: Sequential and Functional models (nested ones too) of
    `Dense`, `Conv1D`/`Conv2D`/`Conv3D`, `BatchNormalization` (running
    statistics), `Rescaling`, `Normalization`, `Flatten`, `Reshape`, max,
    average and global pooling, `Add`, `Subtract`, `Average`, `Maximum`,
    `Minimum`, `Concatenate`, `ReLU`, `LeakyReLU`, `ELU`, `Activation`,
    monotone activations (relu, leaky_relu, relu6, elu, selu, celu,
    sigmoid, hard_sigmoid, tanh, hard_tanh, softplus, softsign,
    exponential, log_sigmoid, linear) and layers that are the identity at
    inference (`Dropout`, `GaussianNoise`, ...). Any other layer raises
    `NotImplementedError` naming it.

    Args:
        model: A built Sequential or Functional Keras model with one input
            and one output.
        x: Float array or tensor, a batch of inputs in `value_range`.
        eps: Float >= 0 or a per-sample `(batch,)` array: the radius.
        norm: `"linf"` or `"l2"`. For `"l2"` the intervals start from the
            ball's bounding box, with the first Dense or convolution layer
            bounded over the ball itself (its dual norm). Defaults to
            `"linf"`.
        value_range: Pair `(low, high)` the inputs stay in, or None (no
            clipping). Defaults to `(0.0, 1.0)`.

    Returns:
        `(lower, upper)`: float32 tensors of the shape of the logits.

    Raises:
        NotImplementedError: for a layer without a sound rule (named).
        ValueError: for a subclassed, unbuilt or multi-input model, a bad
            `norm`, `eps` or `value_range`, or `x` outside `value_range`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import interval_bounds
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(
    ...     2, kernel_initializer="ones", bias_initializer="zeros")])
    >>> lower, upper = interval_bounds(model, np.full((1, 2), 0.5), eps=0.1)
    >>> np.asarray(lower).round(4), np.asarray(upper).round(4)
    (array([[0.8, 0.8]], dtype=float32), array([[1.2, 1.2]], dtype=float32))

    Reference:
        Gowal et al., "On the Effectiveness of Interval Bound Propagation
        for Training Verifiably Robust Models", 2018,
        [arXiv:1810.12715](https://arxiv.org/abs/1810.12715).
    """
    norm, value_range, _ = _settings(norm, value_range)
    bounder = _bounder.bounder(model)
    x, eps = _inputs(bounder, x, eps, value_range)
    if tf.executing_eagerly():
        return bounder.function("interval", None, norm, value_range)(x, eps)
    return bounder.interval(x, eps, norm, value_range)


def margin_bounds(
    model: keras.Model,
    x: Array,
    y: Array,
    eps: Eps,
    method: str = "ibp",
    norm: Norm = "linf",
    value_range: ValueRange | None = (0.0, 1.0),
) -> Tensor:
    """Lower bounds of the margins `z_y - z_j` over a ball, per class `j`.

    For every input `x'` in the ball around `x` (see `interval_bounds`),
    `z_y(x') - z_j(x') >= bounds[:, j]`; the column of `y` is 0.

    - `"ibp"`: interval bounds, with the last Dense layer folded into the
      margin (`(w_y - w_j) . h + b_y - b_j` bounded over the interval of
      its input `h`: Gowal et al.'s elision of the last layer).
    - `"crown_ibp"`: also a backward pass from the margin to the input
      that replaces each ReLU by linear lower and upper lines valid on the
      IBP interval of its input (CROWN's relaxation with IBP intermediate
      bounds, Zhang et al. 2020); the larger of the two bounds is
      returned, so it is never looser than `"ibp"`. About one backward
      pass per class on top of IBP. Supports Dense, convolutions, ReLU and
      leaky ReLU (slope <= 1), batch normalization, rescaling,
      normalization, average pooling, reshapes, Add, Subtract, Average and
      Concatenate; other layers (max pooling, sigmoid, tanh, ...) raise
      `NotImplementedError` naming them (use `"ibp"`).
    - `"crown"`: as `"crown_ibp"`, with every ReLU's input bounded by CROWN
      too (intersected with IBP): one backward pass per ReLU neuron, for
      small fully connected models.

    Args:
        model: A built Sequential or Functional Keras classifier.
        x: Float array or tensor, a batch of inputs in `value_range`.
        y: Labels: ints `(batch,)` or `(batch, 1)`, or one-hot rows.
        eps: Float >= 0 or a per-sample `(batch,)` array.
        method: `"ibp"`, `"crown_ibp"` or `"crown"`. Defaults to `"ibp"`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)` or None. Defaults to `(0.0, 1.0)`.

    Returns:
        Float32 tensor of shape `(batch, classes)`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import margin_bounds
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
    ...     2, kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]),
    ...     bias_initializer=keras.initializers.Constant([-0.5, 0.5]))])
    >>> x = np.array([[0.9]], "float32")  # z_0 - z_1 = 2 x - 1 = 0.8
    >>> np.asarray(margin_bounds(model, x, [0], eps=0.1)).round(4)
    array([[0. , 0.6]], dtype=float32)

    Reference:
        Zhang et al., "Towards Stable and Efficient Training of Verifiably
        Robust Neural Networks", ICLR 2020,
        [arXiv:1906.06316](https://arxiv.org/abs/1906.06316); Zhang et
        al., "Efficient Neural Network Robustness Certification with
        General Activation Functions", NeurIPS 2018,
        [arXiv:1811.00866](https://arxiv.org/abs/1811.00866).
    """
    norm, value_range, method = _settings(norm, value_range, method)
    bounder = _bounder.bounder(model, method)
    bounder.check_classes()
    x, eps = _inputs(bounder, x, eps, value_range)
    y = _labels(bounder, y, x)
    if tf.executing_eagerly():
        fn = bounder.function("margins", method, norm, value_range)
        return fn(x, y, eps)
    return bounder.margins(x, y, eps, method, norm, value_range)


def verified_mask(
    model: keras.Model,
    x: Array,
    y: Array,
    eps: Eps,
    method: str = "ibp",
    norm: Norm = "linf",
    value_range: ValueRange | None = (0.0, 1.0),
) -> Tensor:
    """Per sample: proven that every input in the ball is classified `y`.

    True where every margin lower bound of `margin_bounds` is positive: no
    perturbation within `eps` (in `value_range`) changes the predicted
    class from `y`, a proof, not an attack's failure. A sample misclassified
    at `x` itself is never verified. False is no proof of the opposite:
    the bound may be loose (untrained models and large eps give no
    verified sample at all).

    Args:
        model: A built Sequential or Functional Keras classifier.
        x: Float array or tensor, a batch of inputs in `value_range`.
        y: Labels: ints `(batch,)` or `(batch, 1)`, or one-hot rows.
        eps: Float >= 0 or a per-sample `(batch,)` array.
        method: `"ibp"`, `"crown_ibp"` or `"crown"` (see `margin_bounds`).
            Defaults to `"ibp"`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)` or None. Defaults to `(0.0, 1.0)`.

    Returns:
        Bool tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import verified_mask
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
    ...     2, kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]),
    ...     bias_initializer=keras.initializers.Constant([-0.5, 0.5]))])
    >>> x = np.array([[0.9], [0.6], [0.1]], "float32")  # class 0 if x > 0.5
    >>> np.asarray(verified_mask(model, x, [0, 0, 1], eps=0.2))
    array([ True, False,  True])
    """
    margins = margin_bounds(model, x, y, eps, method, norm, value_range)
    y = sparse_labels(y)
    others = ops.where(ops.one_hot(y, margins.shape[-1]) > 0, np.inf, margins)
    return ops.min(others, axis=-1) > 0.0


def verified_accuracy(
    model: keras.Model,
    x: Array,
    y: Array,
    eps: Eps,
    method: str = "ibp",
    norm: Norm = "linf",
    value_range: ValueRange | None = (0.0, 1.0),
    batch_size: int = 128,
) -> float:
    """The fraction of samples verified at `eps` (see `verified_mask`).

    A lower bound on the robust accuracy against any attack within `eps`
    (an attack such as AutoAttack gives the upper bound). Runs eagerly,
    batch by batch, one compiled graph for all batches.

    Args:
        model: A built Sequential or Functional Keras classifier.
        x: Float array, inputs in `value_range`.
        y: Labels: ints `(n,)` or `(n, 1)`, or one-hot rows.
        eps: Float >= 0.
        method: `"ibp"`, `"crown_ibp"` or `"crown"`. Defaults to `"ibp"`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)` or None. Defaults to `(0.0, 1.0)`.
        batch_size: Int >= 1. Defaults to `128`.

    Returns:
        Float in `[0, 1]`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import verified_accuracy
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
    ...     2, kernel_initializer=keras.initializers.Constant([[1.0, -1.0]]),
    ...     bias_initializer=keras.initializers.Constant([-0.5, 0.5]))])
    >>> x = np.array([[0.9], [0.6], [0.1], [0.45]], "float32")
    >>> verified_accuracy(model, x, [0, 0, 1, 1], eps=0.2)
    0.5
    """
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if not _validation._is_number(eps):
        raise ValueError(
            _validation.invalid("eps", "a number >= 0 (one radius)", eps)
        )
    x = np.asarray(x)
    y = np.asarray(y)
    _validation.check_same_length(x, y, "y")
    if len(x) == 0:
        raise ValueError(_validation.invalid("x", "at least one sample", 0))
    verified = 0
    for start in range(0, len(x), batch_size):
        mask = verified_mask(
            model,
            x[start : start + batch_size],
            y[start : start + batch_size],
            eps,
            method,
            norm,
            value_range,
        )
        verified += int(np.sum(np.asarray(mask)))
    return verified / len(x)
