"""The black-box half of `AdvGAN`: its surrogate and distillation hooks.

A mixin of `AdvGAN` (`_advgan.py`): the public `distill` and the
`surrogate_step` hook, and the views of the composed
`keras_adv.models.Distillation` (`black_box`, `s_optimizer`). The
distillation itself (the black box, its mode, the surrogate's loss, update
and static fit loop) is `Distillation` in `_distillation.py`.
"""

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf
from numpy.typing import ArrayLike

from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks import BlackBox
from keras_adv.attacks import ModelLogits
from keras_adv.models._distillation import Distillation


class BlackBoxHooks:
    """`AdvGAN`'s surrogate hooks (a mixin; see the module docstring)."""

    # Set by `AdvGAN.__init__` and `GAN`.
    distillation: Distillation | None
    target_model: keras.Model
    target_logits: ModelLogits
    seed: int | None
    _distill_function: Callable[..., Any] | None
    apply_update: Callable[..., Any]

    def _set_surrogate_optimizer(
        self, optimizer: keras.optimizers.Optimizer | str | Config
    ) -> None:
        if self.distillation is not None:
            self.distillation.optimizer = keras.optimizers.get(optimizer)
            self._distill_function = None

    @property
    def s_optimizer(self) -> keras.optimizers.Optimizer | None:
        """The surrogate's optimizer (the distillation's), or None.

        An attribute of the model, so that `.keras` files and
        `BackupAndRestore` save its state.
        """
        if self.distillation is None:
            return None
        return self.distillation.optimizer

    @property
    def black_box(self) -> BlackBox | None:
        """The distillation's `BlackBox`, or None."""
        if self.distillation is None:
            return None
        return self.distillation.black_box

    def _dynamic(self) -> bool:
        return self.distillation is not None and self.distillation.dynamic

    def surrogate_step(self, x: Tensor, answers: Tensor) -> dict[str, Tensor]:
        """One surrogate update on black-box `answers` (graph-safe):
        `Distillation.update` on `target_model` in training mode."""
        surrogate = ModelLogits(
            self.target_model, self.target_logits.from_logits, training=True
        )
        return self.distillation.update(  # type: ignore[union-attr]
            surrogate,
            self.target_model.trainable_variables,
            x,
            answers,
            self.apply_update,
        )

    def distill(
        self,
        x: ArrayLike,
        epochs: int = 5,
        batch_size: int = 64,
        verbose: int = 0,
    ) -> dict[str, Any]:
        """Fits the surrogate (`target_model`) to the black box on `x`.

        Static distillation, or the warm start of a dynamic one:
        `keras_adv.models.Distillation.fit` (same arguments and result)
        with a compiled `surrogate_step` per batch.
        """
        if self.distillation is None:
            raise ValueError(
                "distill() needs a black box: AdvGAN(..., distillation="
                "keras_adv.models.Distillation(keras_adv.attacks.BlackBox("
                "fn, num_classes)))."
            )
        self.distillation.check_black_box("distill()")
        self.distillation.build(self.target_model.trainable_variables)
        if self._distill_function is None:
            self._distill_function = tf.function(
                self.surrogate_step, reduce_retracing=True
            )
        return self.distillation.fit(
            self._distill_function,
            self.target_logits,
            x,
            epochs=epochs,
            batch_size=batch_size,
            seed=self.seed,
            verbose=verbose,
        )
