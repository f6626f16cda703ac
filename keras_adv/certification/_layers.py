"""Per-layer bound rules (`_plan` reads a model into them).

Each rule knows two things about its layer, both in float32 from
float32 copies of the layer's weights (read when the bounds are computed,
so a model that trains is followed):

- `interval(bounds)`: an elementwise interval `(lower, upper)` of the
  layer's outputs from intervals of its inputs (interval bound
  propagation, IBP). Affine layers use the centre/radius form
  `W c + b +- |W| r`, monotone non-decreasing ones `(f(l), f(u))`.
- `backward(a, bounds)`: for CROWN, the coefficients `a @ J` of a linear
  function `a . y` of the layer's outputs pulled back to its inputs, and
  the constant the pull-back adds (affine layers: exact; ReLU and leaky
  ReLU: the linear relaxation of Zhang et al. 2018, from the IBP bounds of
  their inputs). A rule without a CROWN form has `crown = False`.

"""

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NoReturn

import keras
import tensorflow as tf
from keras import ops

from keras_adv._types import Interval
from keras_adv._types import Tensor

#: Monotone non-decreasing activation functions, by the name Keras gives
#: them. `relu` and `leaky_relu` also have a CROWN relaxation.
MONOTONE_ACTIVATIONS = (
    "celu",
    "elu",
    "exponential",
    "hard_sigmoid",
    "hard_tanh",
    "leaky_relu",
    "linear",
    "log_sigmoid",
    "relu",
    "relu6",
    "selu",
    "sigmoid",
    "softplus",
    "softsign",
    "tanh",
)
_FINAL_ONLY = ("softmax", "log_softmax")
_ACTIVATIONS = {
    keras.activations.get(name): name
    for name in MONOTONE_ACTIVATIONS + _FINAL_ONLY
}
#: Layers that are the identity at inference.
_IDENTITY_LAYERS = (
    keras.layers.ActivityRegularization,
    keras.layers.AlphaDropout,
    keras.layers.Dropout,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.Identity,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
)
_POOLING = {
    keras.layers.MaxPooling1D: "max",
    keras.layers.MaxPooling2D: "max",
    keras.layers.MaxPooling3D: "max",
    keras.layers.AveragePooling1D: "average",
    keras.layers.AveragePooling2D: "average",
    keras.layers.AveragePooling3D: "average",
}
_GLOBAL_POOLING = {
    keras.layers.GlobalMaxPooling1D: "max",
    keras.layers.GlobalMaxPooling2D: "max",
    keras.layers.GlobalMaxPooling3D: "max",
    keras.layers.GlobalAveragePooling1D: "average",
    keras.layers.GlobalAveragePooling2D: "average",
    keras.layers.GlobalAveragePooling3D: "average",
}
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
SUPPORTED = (
    "Dense, Conv1D/2D/3D, BatchNormalization (inference), Rescaling, "
    "Normalization, Flatten, Reshape, Max/AveragePooling1D/2D/3D, "
    "Global{Max,Average}Pooling1D/2D/3D, Add, Subtract, Average, Maximum, "
    "Minimum, Concatenate, ReLU, LeakyReLU, ELU, Activation and the "
    f"activations {', '.join(MONOTONE_ACTIVATIONS)}, Dropout-like layers "
    "(identity at inference), InputLayer, nested Sequential and "
    "Functional models; a final softmax is dropped"
)


def _f32(value: Any) -> Tensor:
    return ops.cast(ops.convert_to_tensor(value), "float32")


def _describe(layer: keras.layers.Layer) -> str:
    return f"layer {layer.name!r} ({type(layer).__name__})"


def unsupported(
    layer: keras.layers.Layer, why: str = "keras_adv has no bound rule for it"
) -> NotImplementedError:
    """The error for a layer that cannot be bounded (names the layer)."""
    return NotImplementedError(
        f"Cannot bound {_describe(layer)}: {why}. Supported: {SUPPORTED}. "
        "Bounds are never approximated silently: rebuild the model from "
        "supported layers."
    )


def _sum_trailing(tensor: Tensor) -> Tensor:
    """Sums every axis after the first two `(batch, spec, ...)`."""
    axes = tuple(range(2, len(tensor.shape)))
    return ops.sum(tensor, axis=axes) if axes else tensor


# -------------------------------------------------------------- rule bases
class Rule:
    """A layer's bound rule. `crown`: whether it has a backward form."""

    crown = True

    def __init__(self, layer: keras.layers.Layer) -> None:
        self.layer = layer
        self.description = _describe(layer)

    def interval(self, bounds: Sequence[Interval]) -> Interval:
        raise NotImplementedError

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        raise NotImplementedError


class Affine(Rule):
    """`y = linear(x...) + offset`; subclasses write `linear`.

    `linear_abs` applies `|linear|` (the same map with absolute weights) to
    non-negative radii; by default `linear` itself, right for maps with
    non-negative weights (pooling, reshapes, sums). `offset` is None or a
    tensor broadcasting to one sample's output shape.
    """

    def linear(self, *xs: Tensor) -> Tensor:
        raise NotImplementedError

    def linear_abs(self, *rs: Tensor) -> Tensor:
        return self.linear(*rs)

    def offset(self) -> Tensor | None:
        return None

    def interval(self, bounds: Sequence[Interval]) -> Interval:
        centres = [(lo + up) / 2.0 for lo, up in bounds]
        radii = [(up - lo) / 2.0 for lo, up in bounds]
        centre = self.linear(*centres)
        offset = self.offset()
        if offset is not None:
            centre = centre + offset
        radius = ops.maximum(self.linear_abs(*radii), 0.0)
        return centre - radius, centre + radius

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        """`a @ J` by the transpose of `linear` (a vector-Jacobian product).

        `a` is `(batch, spec, *output)`; batch and spec are merged so that
        `linear` sees an ordinary batch, and its gradient at zero (it is
        linear: any point gives the same) with `a` as the output gradient
        is the pull-back.
        """
        spec = ops.shape(a)[1]
        out_shape = tuple(a.shape[2:])
        flat = ops.reshape(a, (-1,) + out_shape)
        zeros = [
            tf.zeros(
                tf.concat([tf.shape(flat)[:1], tf.shape(lo)[1:]], axis=0),
                "float32",
            )
            for lo, _ in bounds
        ]
        with tf.GradientTape() as tape:
            for z in zeros:
                tape.watch(z)
            out = self.linear(*zeros)
        grads = tape.gradient(
            out,
            zeros,
            output_gradients=flat,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        pulled = [
            ops.reshape(g, (-1, spec) + tuple(lo.shape[1:]))
            for g, (lo, _) in zip(grads, bounds)
        ]
        return pulled, self._constant(a)

    def _constant(self, a: Tensor) -> Tensor | None:
        offset = self.offset()
        return None if offset is None else _sum_trailing(a * offset)


class Elementwise(Affine):
    """`y = x * scale + shift` with per-sample broadcast `scale`, `shift`."""

    def scale_shift(self, rank: int) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def interval(self, bounds: Sequence[Interval]) -> Interval:
        (lo, up) = bounds[0]
        scale, shift = self.scale_shift(len(lo.shape))
        centre = (lo + up) / 2.0 * scale + shift
        radius = (up - lo) / 2.0 * ops.abs(scale)
        return centre - radius, centre + radius

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        scale, shift = self.scale_shift(len(bounds[0][0].shape))
        return [a * scale], _sum_trailing(a * shift)


# ------------------------------------------------------------ affine rules
class Dense(Affine):
    def __init__(self, layer: keras.layers.Layer) -> None:
        super().__init__(layer)
        if layer.quantization_mode is not None:
            raise unsupported(layer, "quantized weights")

    def kernel(self) -> Tensor:
        return _f32(self.layer.kernel)

    def bias(self) -> Tensor | None:
        return _f32(self.layer.bias) if self.layer.use_bias else None

    def linear(self, x: Tensor) -> Tensor:
        return ops.matmul(x, self.kernel())

    def linear_abs(self, r: Tensor) -> Tensor:
        return ops.matmul(r, ops.abs(self.kernel()))

    def offset(self) -> Tensor | None:
        return self.bias()

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        return [ops.matmul(a, ops.transpose(self.kernel()))], self._constant(a)

    def l2_radius(self, scale_sq: Tensor | None = None) -> Tensor:
        """Per-unit L2 norms of the kernel's columns (the dual norm), each
        input coordinate weighted by `scale_sq` (its squared scale; None
        for 1)."""
        squared = ops.square(self.kernel())
        if scale_sq is None:
            return ops.sqrt(ops.sum(squared, axis=0))
        return ops.sqrt(ops.maximum(ops.matmul(scale_sq, squared), 0.0))


class Convolution(Affine):
    def __init__(self, layer: keras.layers.Layer) -> None:
        super().__init__(layer)
        if layer.quantization_mode is not None:
            raise unsupported(layer, "quantized weights")

    def conv(self, x: Tensor, kernel: Tensor) -> Tensor:
        """The layer's convolution (as its `call`, causal padding too)."""
        layer = self.layer
        padding = layer.padding
        if padding == "causal":  # Conv1D: pad on the left, then "valid"
            left = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            pads = [[0, 0], [left, 0], [0, 0]]
            if layer.data_format == "channels_first":
                pads = [[0, 0], [0, 0], [left, 0]]
            x, padding = ops.pad(x, pads), "valid"
        return ops.conv(
            x,
            kernel,
            strides=list(layer.strides),
            padding=padding,
            dilation_rate=layer.dilation_rate,
            data_format=layer.data_format,
        )

    def linear(self, x: Tensor) -> Tensor:
        return self.conv(x, _f32(self.layer.kernel))

    def linear_abs(self, r: Tensor) -> Tensor:
        return self.conv(r, ops.abs(_f32(self.layer.kernel)))

    def offset(self) -> Tensor | None:
        if not self.layer.use_bias:
            return None
        rank = self.layer.rank
        if self.layer.data_format == "channels_last":
            shape = (1,) * rank + (self.layer.filters,)
        else:
            shape = (self.layer.filters,) + (1,) * rank
        return ops.reshape(_f32(self.layer.bias), shape)

    def l2_radius_for(
        self, x: Tensor, scale_sq: Tensor | None = None
    ) -> Tensor:
        """Per-output L2 norms of the weights each output sees in `x`, each
        input coordinate weighted by `scale_sq` (its squared scale, shaped
        like `x`; None for 1)."""
        squared = ops.square(_f32(self.layer.kernel))
        weights = ops.ones_like(x) if scale_sq is None else scale_sq
        return ops.sqrt(ops.maximum(self.conv(weights, squared), 0))


class BatchNormalization(Elementwise):
    """Inference mode: `gamma * (x - mean) / sqrt(var + eps) + beta`."""

    def scale_shift(self, rank: int) -> tuple[Tensor, Tensor]:
        layer = self.layer
        inv = ops.rsqrt(_f32(layer.moving_variance) + layer.epsilon)
        scale = inv * _f32(layer.gamma) if layer.scale else inv
        shift = -_f32(layer.moving_mean) * scale
        if layer.center:
            shift = shift + _f32(layer.beta)
        axis = layer.axis % rank
        shape = [1] * (rank - 1)
        shape[axis - 1] = -1
        return ops.reshape(scale, shape), ops.reshape(shift, shape)


class Normalization(Elementwise):
    """`(x - mean) / max(sqrt(var), epsilon)`, or its inverse."""

    def __init__(self, layer: keras.layers.Layer) -> None:
        super().__init__(layer)
        if layer.mean is None:
            raise unsupported(layer, "it is not built (no mean and variance)")

    def scale_shift(self, rank: int) -> tuple[Tensor, Tensor]:
        mean = _f32(self.layer.mean)
        std = ops.maximum(
            ops.sqrt(_f32(self.layer.variance)), keras.config.epsilon()
        )
        if self.layer.invert:
            scale, shift = std, mean
        else:
            scale = 1.0 / std
            shift = -mean * scale
        per_sample = tuple(mean.shape[1:]) if len(mean.shape) == rank else None
        if per_sample is not None:
            scale = ops.reshape(scale, per_sample)
            shift = ops.reshape(shift, per_sample)
        return scale, shift


class Rescaling(Elementwise):
    def scale_shift(self, rank: int) -> tuple[Tensor, Tensor]:
        scale = _f32(self.layer.scale)
        offset = _f32(self.layer.offset)
        if (
            len(scale.shape) > 0
            and keras.config.image_data_format() == "channels_first"
        ):
            scale = ops.reshape(
                scale, tuple(scale.shape) + (1,) * (3 - len(scale.shape))
            )
        return scale, offset


class Pooling(Affine):
    """Average pooling (its weights are non-negative)."""

    def linear(self, x: Tensor) -> Tensor:
        layer = self.layer
        return ops.average_pool(
            x,
            pool_size=layer.pool_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format=layer.data_format,
        )


class GlobalAverage(Affine):
    def linear(self, x: Tensor) -> Tensor:
        return ops.mean(
            x, axis=_spatial_axes(self.layer, x), keepdims=_keep(self.layer)
        )


class Flatten(Affine):
    def linear(self, x: Tensor) -> Tensor:
        rank = len(x.shape)
        if self.layer.data_format == "channels_first" and rank > 2:
            x = ops.transpose(x, (0,) + tuple(range(2, rank)) + (1,))
        size = math.prod(x.shape[1:])
        return ops.reshape(x, (-1, size))


class Reshape(Affine):
    def linear(self, x: Tensor) -> Tensor:
        return ops.reshape(
            x, (ops.shape(x)[0],) + tuple(self.layer.target_shape)
        )


class Sum(Affine):
    """`Add` and `Average` (non-negative weights)."""

    def linear(self, *xs: Tensor) -> Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        if isinstance(self.layer, keras.layers.Average):
            total = total / float(len(xs))
        return total

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        if isinstance(self.layer, keras.layers.Average):
            a = a / float(len(bounds))
        return [a] * len(bounds), None


class Subtract(Affine):
    def linear(self, x: Tensor, z: Tensor) -> Tensor:
        return x - z

    def linear_abs(self, r: Tensor, s: Tensor) -> Tensor:
        return r + s

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        return [a, -a], None


class Concatenate(Affine):
    def linear(self, *xs: Tensor) -> Tensor:
        return ops.concatenate(xs, axis=self.layer.axis)

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        axis = self.layer.axis % len(bounds[0][0].shape)
        sizes = [int(lo.shape[axis]) for lo, _ in bounds]
        cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return list(ops.split(a, cuts, axis=axis + 1)), None


# --------------------------------------------------------- monotone rules
class Monotone(Rule):
    """A map non-decreasing in every input: `(f(l...), f(u...))`."""

    crown = False

    def __init__(
        self,
        layer: keras.layers.Layer,
        fn: Callable[..., Tensor],
        reason: str = "it has no CROWN relaxation here",
    ) -> None:
        super().__init__(layer)
        self.fn = fn
        self.reason = reason

    def interval(self, bounds: Sequence[Interval]) -> Interval:
        return (
            self.fn(*[lo for lo, _ in bounds]),
            self.fn(*[up for _, up in bounds]),
        )

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        raise unsupported(self.layer, f"CROWN: {self.reason}")


class LeakyReLU(Monotone):
    """`max(x, slope * x)` with `0 <= slope <= 1`, and its CROWN relaxation.

    On an interval `[l, u]` with `l < 0 < u` the upper line is the chord
    through `(l, slope * l)` and `(u, u)`; the lower line goes through the
    origin with the slope of the larger side (1 if `u > -l`, else
    `slope`): CROWN's adaptive choice. Stable neurons are exact.
    """

    crown = True

    def __init__(self, layer: keras.layers.Layer, slope: float) -> None:
        super().__init__(
            layer,
            lambda x: (
                keras.activations.leaky_relu(x, negative_slope=slope)
                if slope
                else keras.activations.relu(x)
            ),
        )
        self.slope = float(slope)

    def backward(
        self, a: Tensor, bounds: Sequence[Interval]
    ) -> tuple[list[Tensor], Tensor | None]:
        lo, up = bounds[0]
        lo, up = ops.expand_dims(lo, 1), ops.expand_dims(up, 1)
        slope = self.slope
        active, inactive = lo >= 0.0, up <= 0.0
        unstable = ops.logical_not(ops.logical_or(active, inactive))
        width = ops.where(unstable, up - lo, 1.0)
        upper_slope = ops.where(
            unstable,
            (up - slope * lo) / width,
            ops.where(active, 1.0, slope),
        )
        upper_intercept = ops.where(unstable, up - upper_slope * up, 0.0)
        lower_slope = ops.where(
            active,
            1.0,
            ops.where(ops.logical_and(unstable, up > -lo), 1.0, slope),
        )
        positive, negative = ops.maximum(a, 0.0), ops.minimum(a, 0.0)
        pulled = positive * lower_slope + negative * upper_slope
        return [pulled], _sum_trailing(negative * upper_intercept)


class Softmax(Rule):
    """Allowed only as the model's last operation, where it is dropped."""

    crown = False

    def interval(self, bounds: Sequence[Interval]) -> NoReturn:
        raise unsupported(self.layer, "a softmax inside the model")

    def backward(self, a: Tensor, bounds: Sequence[Interval]) -> NoReturn:
        raise unsupported(self.layer, "a softmax inside the model")


# --------------------------------------------------------------- helpers
def _spatial_axes(layer: keras.layers.Layer, x: Tensor) -> tuple[int, ...]:
    rank = len(x.shape)
    if layer.data_format == "channels_first":
        return tuple(range(2, rank))
    return tuple(range(1, rank - 1))


def _keep(layer: keras.layers.Layer) -> bool:
    return bool(getattr(layer, "keepdims", False))
