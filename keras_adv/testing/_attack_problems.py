"""The tiny deterministic problems and the runner of the attack checklist.

Private to `keras_adv.testing`: `attack_checks.AttackChecks` and
`_attack_checklist.AttackChecklist` build on these.
"""

import inspect
from collections.abc import Sequence
from typing import Any
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from keras_adv.attacks import Attack
from keras_adv.testing.models import linear_classifier

#: Radii of the success checks (inputs in [0.3, 0.7], 16 features).
DEFAULT_EPS = {"linf": 0.1, "l2": 0.4}
#: Radii of the bound checks (inputs in [0, 1]: the value range clips).
LARGE_EPS = {"linf": 0.3, "l2": 2.0}

_BATCH = 64
_FEATURES = 16
_CLASSES = 4


def hadamard_weights(
    features: int = _FEATURES, classes: int = _CLASSES
) -> np.ndarray:
    """Orthogonal +-1 class prototypes: columns from a Hadamard matrix.

    Every input coordinate pushes the classes equally hard, so an Lp-ball
    attack's success on `x @ W` is easy to predict.

    Args:
        features: Int, a power of two. Defaults to `16`.
        classes: Int < features. Defaults to `4`.

    Returns:
        Float32 array of shape `(features, classes)`.
    """
    h = np.ones((1, 1))
    while h.shape[0] < features:
        h = np.block([[h, h], [h, -h]])
    return h[1 : classes + 1].T.astype("float32")


class Problems:
    """The tiny deterministic classification problems of the checklist.

    * `hadamard`: the Hadamard linear model on inputs in [0.3, 0.7] (the
      ball never meets the value range): success rates are predictable.
    * `generic`: a linear model with generic Gaussian weights on inputs in
      [0, 1]: no gradient coordinate is exactly zero (so XLA and the
      default graph agree on signs) and large balls meet the value range.
    """

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        w = hadamard_weights()
        self.hadamard = linear_classifier(w)
        self.x = rng.uniform(0.3, 0.7, (_BATCH, _FEATURES)).astype("float32")
        self.y = np.argmax(self.x @ w, axis=1).astype("int32")
        shift = 1 + rng.integers(0, _CLASSES - 1, size=_BATCH)
        self.targets = ((self.y + shift) % _CLASSES).astype("int32")
        self.x_new = rng.uniform(0.3, 0.7, self.x.shape).astype("float32")
        self.y_new = np.argmax(self.x_new @ w, axis=1).astype("int32")
        w_generic = rng.normal(size=(_FEATURES, _CLASSES)).astype("float32")
        self.generic = linear_classifier(w_generic)
        self.x_generic = rng.uniform(0.0, 1.0, self.x.shape).astype("float32")
        self.y_generic = np.argmax(self.x_generic @ w_generic, axis=1).astype(
            "int32"
        )


class Runner:
    """Runs one attack instance on one model through one seeding path.

    `"eager"`: `attack(model, x, y, eps=eps)`, the attack's own
    `SeedGenerator` (the `seed` argument of `__call__` is ignored).
    `"stateless"`: `attack.perturb(..., seed=tf.constant(seed))` inside a
    user `tf.function` (optionally XLA-compiled), tensors for every
    argument.
    """

    def __init__(
        self,
        attack: Attack,
        model: keras.Model,
        path: Literal["eager", "stateless"],
        jit_compile: bool = False,
    ) -> None:
        self.attack = attack
        self.model = model
        self.path = path
        if path == "stateless":

            def run(
                x: tf.Tensor, y: tf.Tensor, eps: tf.Tensor, seed: tf.Tensor
            ) -> tf.Tensor:
                return attack.perturb(model, x, y, eps=eps, seed=seed)

            self.function = tf.function(run, jit_compile=jit_compile)

    def __call__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        eps: Any = None,
        seed: Sequence[int] = (1, 2),
    ) -> np.ndarray:
        if self.path == "eager":
            return np.asarray(self.attack(self.model, x, y, eps=eps))
        eps = self.attack.eps if eps is None else eps
        return np.asarray(
            self.function(
                tf.convert_to_tensor(x),
                tf.constant(y, tf.int32),
                tf.cast(tf.convert_to_tensor(eps), tf.float32),
                tf.constant(seed, tf.int32),
            )
        )

    def tracing_count(self) -> int:
        if self.path == "eager":
            return self.attack.tracing_count(self.model)
        return self.function.experimental_get_tracing_count()


def accepts(cls: type[Attack], name: str) -> bool:
    """Whether `cls(...)` takes the argument `name`."""
    parameters = inspect.signature(cls.__init__).parameters
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def lp_distance(
    norm: str | None, x: np.ndarray, x_adv: np.ndarray, attack: Attack
) -> np.ndarray:
    """Per-sample distance, computed here (not by the attack) for Lp norms."""
    delta = (np.asarray(x_adv, "float64") - np.asarray(x, "float64")).reshape(
        len(x), -1
    )
    if norm == "linf":
        return np.abs(delta).max(axis=1)
    if norm == "l2":
        return np.sqrt(np.square(delta).sum(axis=1))
    return np.asarray(attack.threat_model.distance(x, x_adv))


def predictions(model: keras.Model, x: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(model(x, training=False)), axis=-1)
