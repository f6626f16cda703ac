"""`MaxLoss`: train on the worse of `x` and `x_adv`, per example."""

import keras
from keras import ops

from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.losses import cross_entropy
from keras_adv.training._madry import Madry


@register
class MaxLoss(Madry):
    """Per example `max(CE(x), CE(x_adv))`, averaged over the batch.

    The adversarial-training objective of learned perturbation sets (Wong
    and Kolter 2021): the attack builds `x_adv` (e.g. `LatentPGD` with 7
    steps), then each example trains on whichever of `x` and `x_adv` has
    the larger cross-entropy under the current model. The gradient of
    `max(CE(x), CE(x'))` is the gradient at the maximiser, so Keras' own
    step on the selected batch optimises exactly this objective when the
    model is compiled with cross-entropy. The selection costs two forward
    passes; `adv_loss`/`adv_accuracy` are measured on the selected inputs
    (the worse of the two).

    Args:
        attack: An untargeted attack, e.g. `LatentPGD(tm, steps=7)`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.MaxLoss(keras_adv.attacks.PGD(0.1))
    >>> type(objective).__name__
    'MaxLoss'

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450).
    """

    def __init__(
        self, attack: Attack, training_mode_attack: bool = False
    ) -> None:
        super().__init__(
            attack, adv_weight=1.0, training_mode_attack=training_mode_attack
        )

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        x_adv = super().adversarial_examples(model, x, y, eps, seed)
        adapter = self.model_logits(model)
        labels = sparse_labels(y)
        clean = cross_entropy(labels, adapter(ops.cast(x, "float32")))
        adv = cross_entropy(labels, adapter(ops.cast(x_adv, "float32")))
        pick = ops.reshape(adv > clean, [-1] + [1] * (len(x.shape) - 1))
        return ops.stop_gradient(
            ops.where(pick, x_adv, ops.cast(x, x_adv.dtype))
        )

    def get_config(self) -> Config:
        config = super().get_config()
        del config["adv_weight"]
        return config
