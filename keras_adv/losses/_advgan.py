"""AdvGAN's loss terms: the C&W misclassification loss and the L2 hinge.

AdvGAN (Xiao et al. 2018) trains its generator on

    L = L_adv + alpha * L_GAN + beta * L_hinge

with `L_adv` the Carlini-Wagner loss of the attacked model's logits on
`x + G(x)`, `L_GAN` a GAN generator term (`keras_adv.losses.GANLoss`,
least squares in the paper) and `L_hinge = max(0, ||G(x)||_2 - c)`. The
per-sample terms are pure functions; `CWLoss` and `PerturbationHinge` are
`keras.losses.Loss` classes that reduce them (`"sum_over_batch_size"`, the
mean, by default: a sum would scale the terms, and so the effective
`alpha` and `beta`, with the batch size).
"""

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike


def cw_loss(
    labels: TensorLike,
    logits: TensorLike,
    kappa: float = 0.0,
    targeted: bool = False,
) -> Tensor:
    """Per-sample Carlini-Wagner misclassification loss on logits.

    Untargeted (`labels` are the true classes `y`):
    `max(z_y - max_{j != y} z_j, -kappa)`; targeted (`labels` are the
    targets `t`): `max(max_{j != t} z_j - z_t, -kappa)`. Minimising it
    pushes the logit margin past the decision boundary by `kappa`
    (the confidence) and then stops: the loss is `-kappa` exactly when the
    sample is adversarial with margin at least `kappa`.

    Args:
        labels: Int tensor `(batch,)`: true classes or targets.
        logits: Float tensor `(batch, classes)`.
        kappa: Float >= 0, the confidence. Defaults to `0.0`.
        targeted: Bool. Defaults to `False`.

    Returns:
        Float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import cw_loss
    >>> z = np.array([[2.0, 3.0, -1.0]])
    >>> np.asarray(cw_loss(np.array([1]), z))  # 3 - 2
    array([1.], dtype=float32)
    >>> np.asarray(cw_loss(np.array([0]), z, targeted=True))  # 3 - 2
    array([1.], dtype=float32)
    >>> np.asarray(cw_loss(np.array([0]), z, kappa=0.5))  # max(-1, -0.5)
    array([-0.5], dtype=float32)

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017,
        [arXiv:1608.04644](https://arxiv.org/abs/1608.04644); Xiao et al.,
        "Generating Adversarial Examples with Adversarial Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """
    logits = ops.cast(logits, "float32")
    num_classes = logits.shape[-1]
    one_hot = ops.one_hot(
        ops.cast(ops.reshape(labels, [-1]), "int32"), num_classes
    )
    own = ops.sum(logits * one_hot, axis=-1)
    other = ops.max(logits - 1e9 * one_hot, axis=-1)
    margin = other - own if targeted else own - other
    return ops.maximum(margin, -float(kappa))


def perturbation_hinge(perturbation: TensorLike, c: float) -> Tensor:
    """Per-sample soft L2 bound `max(0, ||delta||_2 - c)`.

    Args:
        perturbation: Float tensor `(batch, ...)`, the perturbations.
        c: Float >= 0, the L2 budget below which the term is 0.

    Returns:
        Float32 tensor `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import perturbation_hinge
    >>> np.asarray(perturbation_hinge(np.array([[3.0, 4.0], [0.3, 0.4]]),
    ...                               1.0))
    array([4., 0.], dtype=float32)

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610) (Eq. 3).
    """
    delta = ops.cast(perturbation, "float32")
    delta = ops.reshape(delta, (ops.shape(delta)[0], -1))
    norm = ops.sqrt(ops.sum(ops.square(delta), axis=-1))
    return ops.relu(norm - float(c))


@register
class CWLoss(keras.losses.Loss):
    """The C&W misclassification loss as a Keras loss (`cw_loss`).

    `y_true` holds the true classes (untargeted) or the targets
    (targeted), as ids `(batch,)`/`(batch, 1)`; `y_pred` the logits.

    Args:
        kappa: Float >= 0, the confidence. Defaults to `0.0`.
        targeted: Bool. Defaults to `False`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`
            (the batch mean; `"sum"` multiplies the term by the batch
            size).
        name: Optional name. Defaults to `"cw_loss"`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import CWLoss
    >>> z = np.array([[2.0, 3.0], [0.0, 4.0]])
    >>> float(CWLoss()(np.array([1, 1]), z))  # mean of 1 and 4
    2.5

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017,
        [arXiv:1608.04644](https://arxiv.org/abs/1608.04644).
    """

    def __init__(
        self,
        kappa: float = 0.0,
        targeted: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "cw_loss",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kappa = _validation.check_number("kappa", kappa, minimum=0.0)
        self.targeted = _validation.check_bool("targeted", targeted)

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> Tensor:
        return cw_loss(y_true, y_pred, self.kappa, self.targeted)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(kappa=self.kappa, targeted=self.targeted)
        return config


@register
class PerturbationHinge(keras.losses.Loss):
    """The hinge `max(0, ||delta||_2 - c)` as a Keras loss.

    `y_pred` is the perturbation; `y_true` is ignored (pass None or
    zeros).

    Args:
        c: Float >= 0, the L2 budget. Defaults to `0.1`.
        reduction: Keras reduction. Defaults to `"sum_over_batch_size"`.
        name: Optional name. Defaults to `"perturbation_hinge"`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import PerturbationHinge
    >>> delta = np.array([[3.0, 4.0], [0.0, 0.0]])
    >>> float(PerturbationHinge(c=1.0)(None, delta))  # mean of 4 and 0
    2.0

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        c: float = 0.1,
        reduction: str | None = "sum_over_batch_size",
        name: str = "perturbation_hinge",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.c = _validation.check_number("c", c, minimum=0.0)

    def __call__(
        self,
        y_true: TensorLike | None,
        y_pred: TensorLike,
        sample_weight: TensorLike | None = None,
    ) -> Tensor:
        if y_true is None:
            y_true = ops.zeros((ops.shape(y_pred)[0],), "float32")
        return super().__call__(y_true, y_pred, sample_weight)

    def call(self, y_true: TensorLike, y_pred: TensorLike) -> Tensor:
        return perturbation_hinge(y_pred, self.c)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(c=self.c)
        return config
