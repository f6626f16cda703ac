"""Reading a Keras model into bound rules: `rules_for` and `Plan`.

A model is read once into a flat list of nodes `(rule, input ids, output
id)` in topological order, nested Sequential and Functional models
inlined, through public structure only (`model.layers`,
`model.operations`, `layer.input`, `layer.output`). The rules match
layers by exact class: a subclass may change `call`, so it is refused by
name like every other layer without a rule, never approximated.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_adv._types import Tensor
from keras_adv.certification._layers import _ACTIVATIONS
from keras_adv.certification._layers import _CONVOLUTIONS
from keras_adv.certification._layers import _FINAL_ONLY
from keras_adv.certification._layers import _GLOBAL_POOLING
from keras_adv.certification._layers import _IDENTITY_LAYERS
from keras_adv.certification._layers import _POOLING
from keras_adv.certification._layers import BatchNormalization
from keras_adv.certification._layers import Concatenate
from keras_adv.certification._layers import Convolution
from keras_adv.certification._layers import Dense
from keras_adv.certification._layers import Flatten
from keras_adv.certification._layers import GlobalAverage
from keras_adv.certification._layers import LeakyReLU
from keras_adv.certification._layers import Monotone
from keras_adv.certification._layers import Normalization
from keras_adv.certification._layers import Pooling
from keras_adv.certification._layers import Rescaling
from keras_adv.certification._layers import Reshape
from keras_adv.certification._layers import Rule
from keras_adv.certification._layers import Softmax
from keras_adv.certification._layers import Subtract
from keras_adv.certification._layers import Sum
from keras_adv.certification._layers import _describe
from keras_adv.certification._layers import _keep
from keras_adv.certification._layers import _spatial_axes
from keras_adv.certification._layers import unsupported


# ------------------------------------------------------------- the rules
def _activation_rules(
    layer: keras.layers.Layer, fn: Callable[..., Any]
) -> list[Rule]:
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


def _relu_layer_rules(layer: keras.layers.Layer) -> list[Rule]:
    slope = float(layer.negative_slope)
    if slope < 0:
        raise unsupported(layer, "a negative slope (not monotone)")
    threshold = float(layer.threshold)
    if layer.max_value is None and threshold == 0.0 and slope <= 1.0:
        return [LeakyReLU(layer, slope)]
    max_value = layer.max_value

    def fn(x: Tensor) -> Tensor:
        return keras.activations.relu(
            x, negative_slope=slope, max_value=max_value, threshold=threshold
        )

    return [Monotone(layer, fn, "ReLU with max_value or threshold")]


def rules_for(layer: keras.layers.Layer) -> list[Rule]:
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


def _max_pool(layer: keras.layers.Layer) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        return ops.max_pool(
            x,
            pool_size=layer.pool_size,
            strides=layer.strides,
            padding=layer.padding,
            data_format=layer.data_format,
        )

    return fn


def _global_max(layer: keras.layers.Layer) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        return ops.max(x, axis=_spatial_axes(layer, x), keepdims=_keep(layer))

    return fn


def _fold(
    reduce: Callable[[Tensor, Tensor], Tensor],
) -> Callable[..., Tensor]:
    def fn(*xs: Tensor) -> Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = reduce(out, x)
        return out

    return fn


# ------------------------------------------------------------ the walk
class Node:
    """One rule applied to tensors `inputs` (ids), producing `output`."""

    __slots__ = ("inputs", "output", "rule")

    def __init__(self, rule: Rule, inputs: Sequence[int], output: int) -> None:
        self.rule, self.inputs, self.output = rule, tuple(inputs), output


class Plan:
    """A model as nodes over tensor ids; id 0 is the model's input."""

    def __init__(self, model: keras.Model) -> None:
        self.nodes: list[Node] = []
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

    def _new_id(self) -> int:
        self._next += 1
        return self._next - 1

    def _add(self, layer: keras.layers.Layer, inputs: Sequence[int]) -> int:
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

    def _walk(self, model: keras.Model, input_id: int) -> int:
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


def _check_readable(model: keras.Model) -> None:
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
