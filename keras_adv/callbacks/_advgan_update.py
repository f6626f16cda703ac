"""`AdvGANUpdate`: an AdvGAN generator kept up to date with its target."""

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config

if TYPE_CHECKING:
    from keras_adv.models import AdvGAN


@register
class AdvGANUpdate(keras.callbacks.Callback):
    """Trains an AdvGAN against the model being trained, every few epochs.

    Adversarial training against a generator: with
    `AdversarialTraining(GeneratorAttack(advgan))` the classifier trains
    on `x + G(x)`; with this callback placed before it, the generator is
    trained too, for `epochs` AdvGAN epochs on `data` at the start of every
    `freq`-th epoch (from the first), against the classifier's current
    weights (the AdvGAN's `target_model` must be the model that `fit`
    trains). The two alternate, as the generator and discriminator of a
    GAN do; the attack's copy in the training step shares the generator,
    so it attacks with the updated weights. The AdvGAN's last
    `success_rate` is added to the epoch logs as `advgan_success_rate`.

    `get_config` holds the settings; the AdvGAN and the data are objects
    of the training script: rebuild with `AdvGANUpdate(advgan, data,
    **config)`.

    Args:
        advgan: A compiled `keras_adv.models.AdvGAN` whose `target_model`
            is the model being trained.
        data: Pair `(x, y)` of arrays, the AdvGAN's training data.
        epochs: Int >= 1, AdvGAN epochs per update. Defaults to `1`.
        freq: Int >= 1, update every `freq` epochs. Defaults to `1`.
        batch_size: Int >= 1. Defaults to `64`.

    Example:

    ```python
    attack = keras_adv.attacks.GeneratorAttack(advgan)
    classifier.fit(x, y, epochs=10, callbacks=[
        keras_adv.callbacks.AdvGANUpdate(advgan, (x, y)),
        keras_adv.callbacks.AdversarialTraining(attack),
    ])
    ```

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        advgan: "AdvGAN",
        data: Sequence[ArrayLike],
        epochs: int = 1,
        freq: int = 1,
        batch_size: int = 64,
    ) -> None:
        super().__init__()
        if not (hasattr(advgan, "target_model") and hasattr(advgan, "fit")):
            raise TypeError(
                _validation.invalid(
                    "advgan", "a keras_adv.models.AdvGAN", advgan
                )
            )
        if not isinstance(data, list | tuple) or len(data) != 2:
            raise ValueError(
                _validation.invalid("data", "a pair (x, y) of arrays", data)
            )
        self.advgan = advgan
        self.data = (np.asarray(data[0]), np.asarray(data[1]))
        self.epochs = _validation.check_int("epochs", epochs, minimum=1)
        self.freq = _validation.check_int("freq", freq, minimum=1)
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.last_success_rate: float | None = None

    def get_config(self) -> Config:
        """The settings (`epochs`, `freq`, `batch_size`)."""
        return {
            "epochs": self.epochs,
            "freq": self.freq,
            "batch_size": self.batch_size,
        }

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.advgan.target_model is not self.model:
            raise ValueError(
                _validation.invalid(
                    "advgan",
                    "an AdvGAN whose target_model is the model being trained",
                    f"target_model={self.advgan.target_model.name!r}, "
                    f"model={self.model.name!r}",
                )
            )

    def on_epoch_begin(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if epoch % self.freq:
            return
        history = self.advgan.fit(
            *self.data,
            batch_size=self.batch_size,
            epochs=self.epochs,
            verbose=0,
        )
        self.last_success_rate = float(history.history["success_rate"][-1])

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if logs is not None and self.last_success_rate is not None:
            logs["advgan_success_rate"] = self.last_success_rate
