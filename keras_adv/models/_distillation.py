"""`Distillation`: a black box and how AdvGAN's surrogate learns from it."""

import warnings
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.attacks import BlackBox

_DistillationT = TypeVar("_DistillationT", bound="Distillation")

MODES = ("static", "dynamic")


def _default_optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=1e-3)


def surrogate_loss(answers: TensorLike, logits: TensorLike) -> Tensor:
    """Batch mean of the cross-entropy between answers and softmax(logits).

    Args:
        answers: Float `(batch, classes)`, the black box's probabilities or
            one-hot labels.
        logits: The surrogate's logits, `(batch, classes)`.

    Returns:
        A scalar.
    """
    return ops.mean(
        ops.categorical_crossentropy(answers, logits, from_logits=True)
    )


@register
class Distillation:
    """A black box and how an AdvGAN's surrogate is fitted to its answers.

    Passed to `keras_adv.models.AdvGAN(distillation=...)`, whose
    `target_model` is then a surrogate of the black box: a classifier the
    AdvGAN may differentiate, trained on the black box's answers (the
    cross-entropy between the answers and its softmax, `surrogate_loss`)
    with `optimizer`.

    * `AdvGAN.distill(x)` fits the surrogate once on the answers for `x`
      (static distillation, or the warm start of a dynamic one).
    * `mode="dynamic"` (the paper's) also queries the black box on `x` and
      `x_adv` at every `fit` step and takes one surrogate step on the
      answers, so the surrogate follows the black box where the generator
      takes it. `mode="static"`: `fit` never queries.

    The black box is not part of the configuration (it is a query
    function, often remote): after loading an AdvGAN, attach it with
    `advgan.distillation.black_box = box`. The optimizer is part of the
    configuration; its state is saved with the AdvGAN.

    Args:
        black_box: A `keras_adv.attacks.BlackBox`, or None to attach one
            later.
        mode: `"static"` or `"dynamic"`. Defaults to `"dynamic"`.
        optimizer: The surrogate's optimizer (instance, name or config).
            Defaults to `Adam(1e-3)`.

    Example:

    >>> import numpy as np, keras_adv
    >>> box = keras_adv.attacks.BlackBox(
    ...     lambda x: (x.mean(axis=1) > 0.5).astype("int64"), 2,
    ...     output="labels")
    >>> distillation = keras_adv.models.Distillation(box, mode="static")
    >>> distillation.dynamic
    False
    >>> config = distillation.get_config()  # no black box in it
    >>> keras_adv.models.Distillation.from_config(config).black_box is None
    True

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610) (dynamic
        distillation); Papernot et al., "Practical Black-Box Attacks against
        Machine Learning", AsiaCCS 2017,
        [arXiv:1602.02697](https://arxiv.org/abs/1602.02697).
    """

    def __init__(
        self,
        black_box: BlackBox | None = None,
        mode: Literal["static", "dynamic"] = "dynamic",
        optimizer: keras.optimizers.Optimizer | str | Config | None = None,
    ) -> None:
        self.black_box = black_box
        self.mode = _validation.check_choice("mode", mode, set(MODES))
        self.optimizer = keras.optimizers.get(
            _default_optimizer() if optimizer is None else optimizer
        )

    @property
    def black_box(self) -> BlackBox | None:
        """The `BlackBox`, or None until one is attached."""
        return self._black_box

    @black_box.setter
    def black_box(self, black_box: BlackBox | None) -> None:
        if black_box is not None and not isinstance(black_box, BlackBox):
            raise TypeError(
                _validation.invalid(
                    "black_box", "a keras_adv.attacks.BlackBox", black_box
                )
            )
        self._black_box = black_box

    @property
    def dynamic(self) -> bool:
        """Whether `fit` queries the black box: dynamic, with a black box."""
        return self.mode == "dynamic" and self.black_box is not None

    def build(self, variables: Sequence[keras.Variable]) -> None:
        """Builds the optimizer for the surrogate's `variables` (once)."""
        if not self.optimizer.built:
            self.optimizer.build(variables)

    def check_black_box(self, caller: str) -> None:
        """Raises a `ValueError` naming `caller` if no black box is set."""
        if self.black_box is None:
            raise ValueError(
                f"{caller} needs a black box: attach one with "
                "`advgan.distillation.black_box = "
                "keras_adv.attacks.BlackBox(fn, num_classes)`."
            )

    def update(
        self,
        logits: Callable[[Tensor], Tensor],
        variables: Sequence[keras.Variable],
        x: Tensor,
        answers: Tensor,
        apply_update: Callable[
            [
                tf.GradientTape,
                Tensor,
                Sequence[keras.Variable],
                keras.optimizers.Optimizer,
            ],
            None,
        ],
    ) -> dict[str, Tensor]:
        """One surrogate update on black-box `answers` (graph-safe).

        Args:
            logits: Callable `x -> logits`, the surrogate in training mode.
            variables: The surrogate's trainable variables.
            x: The batch the black box answered.
            answers: The answers, float `(batch, classes)`.
            apply_update: Callable `(tape, loss, variables, optimizer)`
                applying the gradients (`GAN.apply_update`: loss scaling
                and per-replica averaging).

        Returns:
            Dict `{"s_loss": scalar}`, the `surrogate_loss` before the
            update.
        """
        with tf.GradientTape() as tape:
            s_loss = surrogate_loss(answers, logits(x))
        apply_update(tape, s_loss, variables, self.optimizer)
        return {"s_loss": s_loss}

    def fit(
        self,
        step: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
        logits: Callable[[np.ndarray], TensorLike],
        x: ArrayLike,
        epochs: int = 5,
        batch_size: int = 64,
        seed: int | None = None,
        verbose: int = 0,
    ) -> dict[str, Any]:
        """Static distillation: fits the surrogate to the answers for `x`.

        Queries the black box once on every sample of `x` (counted), then
        calls `step(x_batch, answers_batch)` (one surrogate update, e.g. a
        compiled `AdvGAN.surrogate_step`, which calls `update`) on shuffled
        batches for `epochs`.
        Eager.

        Args:
            step: Callable `(x, answers) -> {"s_loss": scalar}`.
            logits: Callable `x -> logits`, the surrogate in inference
                mode (for the agreement).
            x: Float array of inputs.
            epochs: Int >= 1. Defaults to `5`.
            batch_size: Int >= 1. Defaults to `64`.
            seed: Int or None, seed of the shuffling.
            verbose: 0 or 1 (prints the loss per epoch). Defaults to `0`.

        Returns:
            Dict with the last epoch's mean `s_loss`, the surrogate's
            `agreement` with the black box's labels on `x`, and the black
            box's `queries`.
        """
        self.check_black_box("Distillation.fit")
        epochs = _validation.check_int("epochs", epochs, minimum=1)
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        x = np.asarray(x, "float32")
        # Set: check_black_box raised otherwise.
        answers = self.black_box.predict(x, batch_size=256)  # type: ignore[union-attr]
        rng = np.random.default_rng(seed)
        loss = 0.0
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            losses = []
            for i in range(0, len(x), batch_size):
                index = order[i : i + batch_size]
                losses.append(float(step(x[index], answers[index])["s_loss"]))
            loss = float(np.mean(losses))
            if verbose:
                print(f"distill epoch {epoch + 1}/{epochs}: s_loss {loss:.4f}")
        predicted = np.concatenate(
            [
                np.asarray(logits(x[i : i + 256])).argmax(-1)
                for i in range(0, len(x), 256)
            ]
        )
        return {
            "s_loss": loss,
            "agreement": float(np.mean(predicted == answers.argmax(-1))),
            "queries": self.black_box.query_count,  # type: ignore[union-attr]
        }

    def get_config(self) -> Config:
        """`mode` and `optimizer`; the black box is not configuration."""
        return {
            "mode": self.mode,
            "optimizer": keras.saving.serialize_keras_object(self.optimizer),
        }

    @classmethod
    def from_config(
        cls: type[_DistillationT], config: Config
    ) -> _DistillationT:
        config = dict(config)
        config["optimizer"] = keras.saving.deserialize_keras_object(
            config["optimizer"]
        )
        return cls(**config)

    def __repr__(self) -> str:
        return (
            f"Distillation(black_box={self.black_box!r}, mode={self.mode!r}, "
            f"optimizer={type(self.optimizer).__name__})"
        )


def from_arguments(
    distillation: Distillation | Literal["static", "dynamic"] | None,
    black_box: BlackBox | None,
    warn: bool = True,
) -> Distillation | None:
    """AdvGAN's `distillation` argument as a `Distillation` (or None).

    Accepts a `Distillation`, and the forms before 0.2, with a
    `DeprecationWarning` (`warn`): `black_box=BlackBox(...)` with
    `distillation` `"static"`, `"dynamic"` (the default) or None.

    Raises:
        TypeError: for a `black_box` that is not a `BlackBox`, or a
            `distillation` that is neither a `Distillation` nor a mode.
        ValueError: for an unknown mode, or a `Distillation` given with
            a separate `black_box`.
    """
    if isinstance(distillation, Distillation):
        if black_box is not None:
            raise ValueError(
                _validation.invalid(
                    "black_box",
                    "None when `distillation` is a Distillation (pass the "
                    "black box to it: Distillation(black_box, mode))",
                    black_box,
                )
            )
        return distillation
    if distillation is None and black_box is None:
        return None
    if distillation is not None and not isinstance(distillation, str):
        raise TypeError(
            _validation.invalid(
                "distillation",
                "a keras_adv.models.Distillation or None",
                distillation,
            )
        )
    if black_box is not None and not isinstance(black_box, BlackBox):
        raise TypeError(
            _validation.invalid(
                "black_box", "a keras_adv.attacks.BlackBox", black_box
            )
        )
    mode: Literal["static", "dynamic"] = "dynamic"
    if distillation is not None:
        mode = _validation.check_choice(
            "distillation", distillation, set(MODES)
        )
    if warn:
        warnings.warn(
            "AdvGAN(black_box=..., distillation='static'|'dynamic') is "
            "deprecated: pass distillation=keras_adv.models.Distillation("
            "black_box, mode=...) (see CHANGELOG.md).",
            DeprecationWarning,
            stacklevel=3,
        )
    return Distillation(black_box, mode=mode)
