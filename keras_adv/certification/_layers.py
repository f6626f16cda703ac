"""Per-layer bound rules, and the walk of a Keras model into them.

A model is read once into a flat list of nodes `(rule, input ids, output
id)` in topological order, nested Sequential and Functional models
inlined. Each rule knows two things about its layer, both in float32 from
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

The rules match layers by exact class: a subclass may change `call`, so it
is refused by name like every other layer without a rule, never
approximated.
"""

import math

import keras
import tensorflow as tf
from keras import ops

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


def _f32(value):
    return ops.cast(ops.convert_to_tensor(value), "float32")


def _describe(layer):
    return f"layer {layer.name!r} ({type(layer).__name__})"


def unsupported(layer, why="keras_adv has no bound rule for it"):
    """The error for a layer that cannot be bounded (names the layer)."""
    return NotImplementedError(
        f"Cannot bound {_describe(layer)}: {why}. Supported: {SUPPORTED}. "
        "Bounds are never approximated silently: rebuild the model from "
        "supported layers."
    )


def _sum_trailing(tensor):
    """Sums every axis after the first two `(batch, spec, ...)`."""
    axes = tuple(range(2, len(tensor.shape)))
    return ops.sum(tensor, axis=axes) if axes else tensor


# -------------------------------------------------------------- rule bases
class Rule:
    """A layer's bound rule. `crown`: whether it has a backward form."""

    crown = True

    def __init__(self, layer):
        self.layer = layer
        self.description = _describe(layer)

    def interval(self, bounds):
        raise NotImplementedError

    def backward(self, a, bounds):
        raise NotImplementedError


class Affine(Rule):
    """`y = linear(x...) + offset`; subclasses write `linear`.

    `linear_abs` applies `|linear|` (the same map with absolute weights) to
    non-negative radii; by default `linear` itself, right for maps with
    non-negative weights (pooling, reshapes, sums). `offset` is None or a
    tensor broadcasting to one sample's output shape.
    """

    def linear(self, *xs):
        raise NotImplementedError

    def linear_abs(self, *rs):
        return self.linear(*rs)

    def offset(self):
        return None

    def interval(self, bounds):
        centres = [(lo + up) / 2.0 for lo, up in bounds]
        radii = [(up - lo) / 2.0 for lo, up in bounds]
        centre = self.linear(*centres)
        offset = self.offset()
        if offset is not None:
            centre = centre + offset
        radius = ops.maximum(self.linear_abs(*radii), 0.0)
        return centre - radius, centre + radius

    def backward(self, a, bounds):
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

    def _constant(self, a):
        offset = self.offset()
        return None if offset is None else _sum_trailing(a * offset)


class Elementwise(Affine):
    """`y = x * scale + shift` with per-sample broadcast `scale`, `shift`."""

    def scale_shift(self, rank):
        raise NotImplementedError

    def interval(self, bounds):
        (lo, up) = bounds[0]
        scale, shift = self.scale_shift(len(lo.shape))
        centre = (lo + up) / 2.0 * scale + shift
        radius = (up - lo) / 2.0 * ops.abs(scale)
        return centre - radius, centre + radius

    def backward(self, a, bounds):
        scale, shift = self.scale_shift(len(bounds[0][0].shape))
        return [a * scale], _sum_trailing(a * shift)


# ------------------------------------------------------------ affine rules
class Dense(Affine):
    def __init__(self, layer):
        super().__init__(layer)
        if layer.quantization_mode is not None:
            raise unsupported(layer, "quantized weights")

    def kernel(self):
        return _f32(self.layer.kernel)

    def bias(self):
        return _f32(self.layer.bias) if self.layer.use_bias else None

    def linear(self, x):
        return ops.matmul(x, self.kernel())

    def linear_abs(self, r):
        return ops.matmul(r, ops.abs(self.kernel()))

    def offset(self):
        return self.bias()

    def backward(self, a, bounds):
        return [ops.matmul(a, ops.transpose(self.kernel()))], self._constant(a)

    def l2_radius(self):
        """Per-unit L2 norms of the kernel's columns (the dual norm)."""
        return ops.sqrt(ops.sum(ops.square(self.kernel()), axis=0))


class Convolution(Affine):
    def __init__(self, layer):
        super().__init__(layer)
        if layer.quantization_mode is not None:
            raise unsupported(layer, "quantized weights")

    def conv(self, x, kernel):
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

    def linear(self, x):
        return self.conv(x, _f32(self.layer.kernel))

    def linear_abs(self, r):
        return self.conv(r, ops.abs(_f32(self.layer.kernel)))

    def offset(self):
        if not self.layer.use_bias:
            return None
        rank = self.layer.rank
        if self.layer.data_format == "channels_last":
            shape = (1,) * rank + (self.layer.filters,)
        else:
            shape = (self.layer.filters,) + (1,) * rank
        return ops.reshape(_f32(self.layer.bias), shape)

    def l2_radius_for(self, x):
        """Per-output L2 norms of the weights each output sees in `x`."""
        squared = ops.square(_f32(self.layer.kernel))
        return ops.sqrt(ops.maximum(self.conv(ops.ones_like(x), squared), 0))


class BatchNormalization(Elementwise):
    """Inference mode: `gamma * (x - mean) / sqrt(var + eps) + beta`."""

    def scale_shift(self, rank):
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

    def __init__(self, layer):
        super().__init__(layer)
        if layer.mean is None:
            raise unsupported(layer, "it is not built (no mean and variance)")

    def scale_shift(self, rank):
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
    def scale_shift(self, rank):
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

    def linear(self, x):
        layer = self.layer
        return ops.average_pool(
            x,
            pool_size=layer.pool_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format=layer.data_format,
        )


class GlobalAverage(Affine):
    def linear(self, x):
        return ops.mean(
            x, axis=_spatial_axes(self.layer, x), keepdims=_keep(self.layer)
        )


class Flatten(Affine):
    def linear(self, x):
        rank = len(x.shape)
        if self.layer.data_format == "channels_first" and rank > 2:
            x = ops.transpose(x, (0,) + tuple(range(2, rank)) + (1,))
        size = math.prod(x.shape[1:])
        return ops.reshape(x, (-1, size))


class Reshape(Affine):
    def linear(self, x):
        return ops.reshape(
            x, (ops.shape(x)[0],) + tuple(self.layer.target_shape)
        )


class Sum(Affine):
    """`Add` and `Average` (non-negative weights)."""

    def linear(self, *xs):
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        if isinstance(self.layer, keras.layers.Average):
            total = total / float(len(xs))
        return total

    def backward(self, a, bounds):
        if isinstance(self.layer, keras.layers.Average):
            a = a / float(len(bounds))
        return [a] * len(bounds), None


class Subtract(Affine):
    def linear(self, x, z):
        return x - z

    def linear_abs(self, r, s):
        return r + s

    def backward(self, a, bounds):
        return [a, -a], None


class Concatenate(Affine):
    def linear(self, *xs):
        return ops.concatenate(xs, axis=self.layer.axis)

    def backward(self, a, bounds):
        axis = self.layer.axis % len(bounds[0][0].shape)
        sizes = [int(lo.shape[axis]) for lo, _ in bounds]
        cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return list(ops.split(a, cuts, axis=axis + 1)), None


# --------------------------------------------------------- monotone rules
class Monotone(Rule):
    """A map non-decreasing in every input: `(f(l...), f(u...))`."""

    crown = False

    def __init__(self, layer, fn, reason="it has no CROWN relaxation here"):
        super().__init__(layer)
        self.fn = fn
        self.reason = reason

    def interval(self, bounds):
        return (
            self.fn(*[lo for lo, _ in bounds]),
            self.fn(*[up for _, up in bounds]),
        )

    def backward(self, a, bounds):
        raise unsupported(self.layer, f"CROWN: {self.reason}")


class LeakyReLU(Monotone):
    """`max(x, slope * x)` with `0 <= slope <= 1`, and its CROWN relaxation.

    On an interval `[l, u]` with `l < 0 < u` the upper line is the chord
    through `(l, slope * l)` and `(u, u)`; the lower line goes through the
    origin with the slope of the larger side (1 if `u > -l`, else
    `slope`): CROWN's adaptive choice. Stable neurons are exact.
    """

    crown = True

    def __init__(self, layer, slope):
        super().__init__(
            layer,
            lambda x: (
                keras.activations.leaky_relu(x, negative_slope=slope)
                if slope
                else keras.activations.relu(x)
            ),
        )
        self.slope = float(slope)

    def backward(self, a, bounds):
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

    def interval(self, bounds):
        raise unsupported(self.layer, "a softmax inside the model")

    backward = interval


# ------------------------------------------------------------- the rules
def _spatial_axes(layer, x):
    rank = len(x.shape)
    if layer.data_format == "channels_first":
        return tuple(range(2, rank))
    return tuple(range(1, rank - 1))


def _keep(layer):
    return bool(getattr(layer, "keepdims", False))


def _activation_rules(layer, fn):
    """Rules for an activation function (empty for `linear`)."""
    name = _ACTIVATIONS.get(fn)
    if name is None:
        label = getattr(fn, "__name__", repr(fn))
        raise unsupported(
            layer,
            f"activation {label!r} is not one of the monotone activations",
        )
    if name == "linear":
        return []
    if name in _FINAL_ONLY:
        return [Softmax(layer)]
    if name == "relu":
        return [LeakyReLU(layer, 0.0)]
    if name == "leaky_relu":
        return [LeakyReLU(layer, 0.2)]  # keras.activations' default slope
    return [Monotone(layer, fn, f"activation {name!r}")]


def _relu_layer_rules(layer):
    slope = float(layer.negative_slope)
    if slope < 0:
        raise unsupported(layer, "a negative slope (not monotone)")
    threshold = float(layer.threshold)
    if layer.max_value is None and threshold == 0.0 and slope <= 1.0:
        return [LeakyReLU(layer, slope)]
    max_value = layer.max_value

    def fn(x):
        return keras.activations.relu(
            x, negative_slope=slope, max_value=max_value, threshold=threshold
        )

    return [Monotone(layer, fn, "ReLU with max_value or threshold")]


def rules_for(layer):
    """The rules of one layer, in order; `[]` for an identity layer.

    Raises:
        NotImplementedError: naming the layer, if it has no sound rule.
    """
    kind = type(layer)
    if kind in _IDENTITY_LAYERS or kind is keras.layers.InputLayer:
        return []
    if kind is keras.layers.Dense:
        return [Dense(layer)] + _activation_rules(layer, layer.activation)
    if kind in _CONVOLUTIONS:
        if layer.activation is None:
            return [Convolution(layer)]
        return [Convolution(layer)] + _activation_rules(layer, layer.activation)
    if kind is keras.layers.Activation:
        return _activation_rules(layer, layer.activation)
    if kind is keras.layers.ReLU:
        return _relu_layer_rules(layer)
    if kind is keras.layers.LeakyReLU:
        slope = float(layer.negative_slope)
        if slope < 0:
            raise unsupported(layer, "a negative slope (not monotone)")
        if slope <= 1:
            return [LeakyReLU(layer, slope)]
        return [
            Monotone(
                layer,
                lambda x: keras.activations.leaky_relu(x, negative_slope=slope),
                "a slope above 1",
            )
        ]
    if kind is keras.layers.ELU:
        alpha = float(layer.alpha)
        if alpha < 0:
            raise unsupported(layer, "a negative alpha (not monotone)")
        return [
            Monotone(layer, lambda x: keras.activations.elu(x, alpha), "ELU")
        ]
    if kind is keras.layers.Softmax:
        return [Softmax(layer)]
    if kind is keras.layers.BatchNormalization:
        return [BatchNormalization(layer)]
    if kind is keras.layers.Normalization:
        return [Normalization(layer)]
    if kind is keras.layers.Rescaling:
        return [Rescaling(layer)]
    if kind is keras.layers.Flatten:
        return [Flatten(layer)]
    if kind is keras.layers.Reshape:
        return [Reshape(layer)]
    if kind in _POOLING:
        if _POOLING[kind] == "average":
            return [Pooling(layer)]
        return [Monotone(layer, _max_pool(layer), "max pooling")]
    if kind in _GLOBAL_POOLING:
        if _GLOBAL_POOLING[kind] == "average":
            return [GlobalAverage(layer)]
        return [Monotone(layer, _global_max(layer), "max pooling")]
    if kind in (keras.layers.Add, keras.layers.Average):
        return [Sum(layer)]
    if kind is keras.layers.Subtract:
        return [Subtract(layer)]
    if kind is keras.layers.Concatenate:
        return [Concatenate(layer)]
    if kind in (keras.layers.Maximum, keras.layers.Minimum):
        reduce = ops.maximum if kind is keras.layers.Maximum else ops.minimum
        return [Monotone(layer, _fold(reduce), "element-wise max/min")]
    raise unsupported(layer)


def _max_pool(layer):
    def fn(x):
        return ops.max_pool(
            x,
            pool_size=layer.pool_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format=layer.data_format,
        )

    return fn


def _global_max(layer):
    def fn(x):
        return ops.max(x, axis=_spatial_axes(layer, x), keepdims=_keep(layer))

    return fn


def _fold(reduce):
    def fn(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = reduce(out, x)
        return out

    return fn


# ------------------------------------------------------------ the walk
class Node:
    """One rule applied to tensors `inputs` (ids), producing `output`."""

    __slots__ = ("inputs", "output", "rule")

    def __init__(self, rule, inputs, output):
        self.rule, self.inputs, self.output = rule, tuple(inputs), output


class Plan:
    """A model as nodes over tensor ids; id 0 is the model's input."""

    def __init__(self, model):
        self.nodes = []
        self._next = 1
        _check_readable(model)
        self.output = self._walk(model, 0)
        # A final softmax changes no margin and no argmax: the bounds are
        # on its inputs, the logits.
        while self.nodes and isinstance(self.nodes[-1].rule, Softmax):
            self.output = self.nodes.pop().inputs[0]
        for node in self.nodes:
            if isinstance(node.rule, Softmax):
                raise unsupported(
                    node.rule.layer, "a softmax before the model's end"
                )

    def _new_id(self):
        self._next += 1
        return self._next - 1

    def _add(self, layer, inputs):
        """Appends `layer`'s rules fed by `inputs`; returns the output id."""
        if isinstance(layer, keras.Model):
            if len(inputs) != 1:
                raise ValueError(
                    f"Cannot bound the nested model {layer.name!r} with "
                    f"{len(inputs)} inputs: one input is supported."
                )
            _check_readable(layer)
            return self._walk(layer, inputs[0])
        rules = rules_for(layer)
        if not rules:
            if len(inputs) != 1:
                raise unsupported(layer, "several inputs")
            return inputs[0]
        current = list(inputs)
        for rule in rules:
            output = self._new_id()
            self.nodes.append(Node(rule, current, output))
            current = [output]
        return current[0]

    def _walk(self, model, input_id):
        if isinstance(model, keras.Sequential):
            current = input_id
            for layer in model.layers:
                current = self._add(layer, [current])
            return current
        ids = {id(model.inputs[0]): input_id}
        for operation in model.operations:
            if isinstance(operation, keras.layers.InputLayer):
                continue
            if not isinstance(operation, keras.layers.Layer):
                raise NotImplementedError(
                    f"Cannot bound the operation {operation.name!r} "
                    f"({type(operation).__name__}) of model {model.name!r}: "
                    "it is a keras.ops call on symbolic tensors, not a "
                    "layer. Use layers (e.g. keras.layers.Add instead of "
                    "`x + y`)."
                )
            inputs = tf.nest.flatten(operation.input)
            outputs = tf.nest.flatten(operation.output)
            if len(outputs) != 1:
                raise unsupported(operation, "several outputs")
            try:
                sources = [ids[id(t)] for t in inputs]
            except KeyError:
                raise ValueError(
                    f"Cannot bound {_describe(operation)} in model "
                    f"{model.name!r}: its input is not produced inside the "
                    "model by one call of a layer (shared layers, called "
                    "more than once, are not supported)."
                ) from None
            ids[id(outputs[0])] = self._add(operation, sources)
        try:
            return ids[id(model.outputs[0])]
        except KeyError:
            raise ValueError(
                f"Cannot bound model {model.name!r}: its output is not "
                "produced by one call of its layers (shared layers are not "
                "supported)."
            ) from None


def _check_readable(model):
    """Raises unless `model` is a built one-input Sequential or Functional."""
    call = type(model).call
    owner = getattr(call, "__module__", "") or ""
    readable = isinstance(model, keras.Sequential) or hasattr(
        model, "operations"
    )
    if owner.split(".")[0] != "keras" or not readable:
        raise ValueError(
            f"Cannot bound model {model.name!r} ({type(model).__name__}): "
            "bounds read a Sequential or Functional model's layers, and a "
            "subclassed model's `call` can compute anything. Build it as a "
            "keras.Sequential or a Functional keras.Model."
        )
    if not model.built:
        raise ValueError(
            f"Cannot bound model {model.name!r}: it is not built. Give it "
            "a keras.Input or call it once on a batch."
        )
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs or len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Cannot bound model {model.name!r}: one input and one output "
            "are supported."
        )
