"""`OverfittingGuard`: stop when robust accuracy collapses (any objective)."""

from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import keras
import numpy as np
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack

_GuardT = TypeVar("_GuardT", bound="OverfittingGuard")


@register
class OverfittingGuard(keras.callbacks.Callback):
    """Stops training on catastrophic overfitting, like `EarlyStopping`.

    Single-step adversarial training (FGSM-RS and relatives) can overfit
    catastrophically: within one epoch the model becomes robust to the
    training attack only, and multi-step robust accuracy collapses (Wong,
    Rice and Kolter 2020). Every epoch from `start_epoch` on, the guard
    measures accuracy under `attack` (PGD-10 at eps 0.3 by default) on a
    fixed batch `data` (a training batch, as in the paper) and, when it
    falls more than `drop` below the previous epoch's, stops training
    and, with `restore_best_weights=True`, restores the weights of the
    previous epoch. It works with any objective and logs
    `guard_robust_accuracy` every epoch it runs.

    It fires when the accuracy under attack on `data` drops by more than
    `drop` (absolute, in [0, 1]) between two consecutive epochs; a steady
    decline by less than `drop` per epoch does not fire it.

    Args:
        data: `(x, y)` arrays: a fixed batch (e.g. 512 training samples).
        attack: The attack that measures robustness (use a multi-step
            attack with the training eps). Defaults to `PGD(eps=0.3,
            steps=10, seed=0)`.
        drop: Float in `(0, 1]`: the accuracy drop that counts as
            catastrophic. Defaults to `0.2`.
        restore_best_weights: Bool, restore the previous epoch's weights
            when it fires. Defaults to `True`.
        start_epoch: Int >= 0, first epoch to measure (e.g. the
            adversarial `start_epoch`). Defaults to `0`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> x = np.random.default_rng(0).uniform(size=(32, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> guard = keras_adv.callbacks.OverfittingGuard(
    ...     (x, y), keras_adv.attacks.PGD(eps=0.05, steps=3, seed=0))
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[guard])
    >>> len(history.history["guard_robust_accuracy"])
    2

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: Revisiting adversarial
        training", ICLR 2020,
        [arXiv:2001.03994](https://arxiv.org/abs/2001.03994).
    """

    def __init__(
        self,
        data: Sequence[ArrayLike],
        attack: Attack | None = None,
        drop: float = 0.2,
        restore_best_weights: bool = True,
        start_epoch: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(data, list | tuple) or len(data) != 2:
            raise ValueError(
                _validation.invalid("data", "a pair (x, y) of arrays", data)
            )
        x = np.array(data[0], copy=True)
        y = np.array(data[1], copy=True)
        if x.dtype.kind != "f":
            raise TypeError(
                _validation.invalid(
                    "data", "float inputs x", f"x of dtype {x.dtype}"
                )
            )
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                _validation.invalid(
                    "data",
                    "non-empty x and y of the same length",
                    (len(x), len(y)),
                )
            )
        self.x = x.astype("float32")
        self.y = y
        if attack is None:
            attack = PGD(eps=0.3, steps=10, seed=0)
        if not isinstance(attack, Attack):
            raise TypeError(
                _validation.invalid("attack", "a keras_adv Attack", attack)
            )
        self.attack = attack
        drop = _validation.check_number("drop", drop, minimum=0.0, strict=True)
        if drop > 1.0:
            raise ValueError(
                _validation.invalid("drop", "a number in (0, 1]", drop)
            )
        self.drop = drop
        self.restore_best_weights = _validation.check_bool(
            "restore_best_weights", restore_best_weights
        )
        self.start_epoch = _validation.check_int(
            "start_epoch", start_epoch, minimum=0
        )
        self.stopped_epoch: int | None = None
        self._previous: float | None = None
        self._weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.stopped_epoch = None
        self._previous = None
        self._weights = None

    def robust_accuracy(self) -> float:
        """Accuracy under `attack` on the guard batch (the current weights)."""
        x_adv = self.attack(self.model, self.x, self.y)
        logits = np.asarray(self.model(x_adv, training=False))
        labels = self.y.reshape(len(self.y), -1)
        labels = labels[:, 0] if labels.shape[1] == 1 else labels.argmax(1)
        return float(np.mean(logits.argmax(-1) == labels))

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if epoch < self.start_epoch:
            return
        accuracy = self.robust_accuracy()
        if logs is not None:
            logs["guard_robust_accuracy"] = accuracy
        previous = self._previous
        if previous is not None and accuracy < previous - self.drop:
            self.stopped_epoch = epoch
            if self.restore_best_weights and self._weights is not None:
                self.model.set_weights(self._weights)
            self.model.stop_training = True
            return
        self._previous = accuracy
        if self.restore_best_weights:
            self._weights = self.model.get_weights()

    def get_config(self) -> Config:
        """The configuration, with the guard batch as nested lists."""
        return {
            "data": [self.x.tolist(), self.y.tolist()],
            "attack": keras.saving.serialize_keras_object(self.attack),
            "drop": self.drop,
            "restore_best_weights": self.restore_best_weights,
            "start_epoch": self.start_epoch,
        }

    @classmethod
    def from_config(cls: type[_GuardT], config: Config) -> _GuardT:
        config = dict(config)
        x, y = config.pop("data")
        config["attack"] = keras.saving.deserialize_keras_object(
            config["attack"]
        )
        return cls((np.asarray(x, "float32"), np.asarray(y)), **config)
