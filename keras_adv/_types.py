"""Type aliases of the public signatures (annotations only, no behaviour).

Each alias says what the code accepts, not more: the checks in
`keras_adv._validation` decide at run time. TensorFlow and Keras ship no
type information, so a type checker sees their classes as `Any`; the
aliases still tell readers and editors what to pass.
"""

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import TypeAlias

import keras
import numpy as np
import tensorflow as tf

#: What `keras.ops` returns (TensorFlow backend): a `tf.Tensor`.
Tensor: TypeAlias = tf.Tensor

#: A batch of data: a NumPy array or a TensorFlow tensor (eager, or
#: symbolic inside a traced function).
Array: TypeAlias = np.ndarray | tf.Tensor

#: Anything `keras.ops` computes on: an `Array`, a variable, or a symbolic
#: `keras.KerasTensor` while a functional model is built.
TensorLike: TypeAlias = (
    np.ndarray | tf.Tensor | tf.Variable | keras.Variable | keras.KerasTensor
)

#: Elementwise bounds `(lower, upper)` of a tensor (two tensors of its
#: shape).
Interval: TypeAlias = tuple[tf.Tensor, tf.Tensor]

#: A radius: a number >= 0, a per-sample `(batch,)` array, or a variable
#: (that a schedule changes without retracing).
Eps: TypeAlias = (
    float
    | Sequence[float]
    | np.ndarray
    | tf.Tensor
    | tf.Variable
    | keras.Variable
)

#: A seed: an int, a stateless `(2,)` int tensor or array, or a
#: `keras.random.SeedGenerator` (advances on each draw).
Seed: TypeAlias = int | np.ndarray | tf.Tensor | keras.random.SeedGenerator

#: The valid input range `(low, high)` with `low < high` (a list, as in a
#: loaded config, is accepted too).
ValueRange: TypeAlias = tuple[float, float] | list[float]

#: The norm of an Lp-ball threat model (matched case-insensitively).
Norm: TypeAlias = Literal["linf", "l2"]

#: A per-sample loss `(labels, logits) -> (batch,)`.
LossFn: TypeAlias = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

#: A classifier seen as `x -> float32 logits` (e.g. a
#: `keras_adv.attacks.ModelLogits`).
LogitsFn: TypeAlias = Callable[[tf.Tensor], tf.Tensor]

#: An attack loss: a registered name (`"ce"`, `"margin"`, `"dlr"`, ...) or
#: a `LossFn`.
AttackLoss: TypeAlias = str | LossFn

#: A static shape: ints, None for an unknown dimension.
Shape: TypeAlias = tuple[int | None, ...]

#: A JSON-serialisable `get_config()` dict.
Config: TypeAlias = dict[str, Any]
