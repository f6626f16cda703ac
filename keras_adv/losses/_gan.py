"""GAN losses: Softmax GAN and, for comparison, the usual alternatives.

Every loss comes twice: as pure functions of the discriminator's scalar
logits (`real_logits` on a batch of real samples, `fake_logits` on a batch
of generated ones), and as a small `GANLoss` object bundling the
discriminator and generator terms, which is what `keras_adv.models.GAN`
takes in `compile(loss=...)`.

All functions accept logits of shape `(batch,)` or `(batch, 1)`, compute in
float32 whatever the model's dtype policy, and return a scalar.
"""

from typing import TypeVar

from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.distribute import _replicas

_GANLossT = TypeVar("_GANLossT", bound="GANLoss")


def _flat(logits: TensorLike | None, name: str) -> Tensor:
    if logits is None:
        raise ValueError(_validation.invalid(name, "a tensor of logits", None))
    logits = ops.cast(logits, "float32")
    return ops.reshape(logits, (-1,))


def _log_partition(logits: TensorLike) -> tuple[Tensor, Tensor]:
    """Returns `(log sum exp(l - m), m)` with `m = max(l)` held constant."""
    m = ops.stop_gradient(ops.max(logits))
    return ops.log(ops.sum(ops.exp(logits - m))), m


# ------------------------------------------------------------- Softmax GAN
def softmax_gan_discriminator_loss(
    real_logits: TensorLike, fake_logits: TensorLike
) -> Tensor:
    """Discriminator term of Softmax GAN.

    With the discriminator's logits `l` over one batch of `N` real and `M`
    generated samples, the loss is the cross-entropy between the target
    distribution `t` (`1/N` on every real sample, `0` on generated ones)
    and the softmax of `l` over the whole batch:

    `L_D = -(1/N) * sum_{real} l + logsumexp_{batch}(l)`,

    whose gradient with respect to `l` is `softmax(l) - t`. `N` and `M` may
    differ. The log-partition term is computed as
    `log sum exp(l - max l) + mean_{real}(max l - l)`, so logits of `1e4`
    neither overflow nor lose the loss to cancellation.

    Under a `tf.distribute` strategy, each replica computes the loss on its
    own share of the batch, i.e. with a per-replica partition function; the
    applied update is the mean of these per-replica Softmax GAN gradients,
    which is Softmax GAN with the per-replica batch size.

    Args:
        real_logits: Float tensor `(N,)` or `(N, 1)`, logits on real data.
        fake_logits: Float tensor `(M,)` or `(M, 1)`, logits on generated
            data.

    Returns:
        Float32 scalar.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses._gan import softmax_gan_discriminator_loss
    >>> real, fake = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    >>> round(float(softmax_gan_discriminator_loss(real, fake)), 4)  # log 4
    1.3863

    Reference:
        Lin, "Softmax GAN",
        [arXiv:1704.06191](https://arxiv.org/abs/1704.06191), 2017.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    log_z, m = _log_partition(ops.concatenate([real, fake], axis=0))
    return log_z + ops.mean(m - real)


def softmax_gan_generator_loss(
    real_logits: TensorLike, fake_logits: TensorLike
) -> Tensor:
    """Generator term of Softmax GAN.

    The target distribution puts `1/(N+M)` on every sample of the batch of
    `N` real and `M` generated samples:

    `L_G = -(1/(N+M)) * sum_{batch} l + logsumexp_{batch}(l)`,

    with gradient `softmax(l) - 1/(N+M)` with respect to `l`. Only the
    generated samples' logits depend on the generator, so the real logits
    may be computed outside the generator's gradient tape. See
    `softmax_gan_discriminator_loss` for numerics and distribution.

    Args:
        real_logits: Float tensor `(N,)` or `(N, 1)`, logits on real data.
        fake_logits: Float tensor `(M,)` or `(M, 1)`, logits on generated
            data.

    Returns:
        Float32 scalar.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses._gan import softmax_gan_generator_loss
    >>> real, fake = np.array([0.0, 0.0]), np.array([0.0, 0.0])
    >>> round(float(softmax_gan_generator_loss(real, fake)), 4)  # log 4
    1.3863

    Reference:
        Lin, "Softmax GAN",
        [arXiv:1704.06191](https://arxiv.org/abs/1704.06191), 2017.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    logits = ops.concatenate([real, fake], axis=0)
    log_z, m = _log_partition(logits)
    return log_z + ops.mean(m - logits)


# --------------------------------------------------- standard (non-saturating)
def non_saturating_discriminator_loss(
    real_logits: TensorLike, fake_logits: TensorLike
) -> Tensor:
    """Discriminator term of the standard GAN: binary cross-entropy.

    `L_D = mean_{real} softplus(-l) + mean_{fake} softplus(l)`, i.e.
    `-E log sigmoid(l_real) - E log(1 - sigmoid(l_fake))`.

    Args:
        real_logits: Float tensor `(N,)` or `(N, 1)`.
        fake_logits: Float tensor `(M,)` or `(M, 1)`.

    Returns:
        Float32 scalar.

    Example:

    >>> from keras_adv.losses._gan import non_saturating_discriminator_loss
    >>> round(float(non_saturating_discriminator_loss([0.0], [0.0])), 4)
    1.3863

    Reference:
        Goodfellow et al., "Generative Adversarial Networks",
        [arXiv:1406.2661](https://arxiv.org/abs/1406.2661), 2014.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    return ops.mean(ops.softplus(-real)) + ops.mean(ops.softplus(fake))


def non_saturating_generator_loss(
    real_logits: TensorLike | None, fake_logits: TensorLike
) -> Tensor:
    """Generator term of the standard GAN (non-saturating form).

    `L_G = mean_{fake} softplus(-l) = -E log sigmoid(l_fake)`; `real_logits`
    is unused (accepted for a uniform signature and may be None).

    Example:

    >>> from keras_adv.losses._gan import non_saturating_generator_loss
    >>> round(float(non_saturating_generator_loss(None, [0.0])), 4)
    0.6931

    Reference:
        Goodfellow et al., "Generative Adversarial Networks",
        [arXiv:1406.2661](https://arxiv.org/abs/1406.2661), 2014.
    """
    del real_logits
    fake = _flat(fake_logits, "fake_logits")
    return ops.mean(ops.softplus(-fake))


# --------------------------------------------------------------- LSGAN
def least_squares_discriminator_loss(
    real_logits: TensorLike, fake_logits: TensorLike
) -> Tensor:
    """Discriminator term of LSGAN with targets 1 (real) and 0 (fake).

    `L_D = 0.5 * mean_{real} (l - 1)^2 + 0.5 * mean_{fake} l^2`.

    Example:

    >>> from keras_adv.losses._gan import least_squares_discriminator_loss
    >>> float(least_squares_discriminator_loss([1.0], [1.0]))
    0.5

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks",
        [arXiv:1611.04076](https://arxiv.org/abs/1611.04076), 2016.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    return 0.5 * ops.mean(ops.square(real - 1.0)) + 0.5 * ops.mean(
        ops.square(fake)
    )


def least_squares_generator_loss(
    real_logits: TensorLike | None, fake_logits: TensorLike
) -> Tensor:
    """Generator term of LSGAN: `L_G = 0.5 * mean_{fake} (l - 1)^2`.

    Example:

    >>> from keras_adv.losses._gan import least_squares_generator_loss
    >>> float(least_squares_generator_loss(None, [0.0]))
    0.5

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks",
        [arXiv:1611.04076](https://arxiv.org/abs/1611.04076), 2016.
    """
    del real_logits
    fake = _flat(fake_logits, "fake_logits")
    return 0.5 * ops.mean(ops.square(fake - 1.0))


# --------------------------------------------------------------- hinge
def hinge_discriminator_loss(
    real_logits: TensorLike, fake_logits: TensorLike
) -> Tensor:
    """Discriminator term of the hinge GAN loss.

    `L_D = mean_{real} relu(1 - l) + mean_{fake} relu(1 + l)`.

    Example:

    >>> from keras_adv.losses._gan import hinge_discriminator_loss
    >>> float(hinge_discriminator_loss([0.0], [0.0]))
    2.0

    Reference:
        Lim and Ye, "Geometric GAN",
        [arXiv:1705.02894](https://arxiv.org/abs/1705.02894), 2017.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    return ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))


def hinge_generator_loss(
    real_logits: TensorLike | None, fake_logits: TensorLike
) -> Tensor:
    """Generator term of the hinge GAN loss: `L_G = -mean_{fake} l`.

    Example:

    >>> from keras_adv.losses._gan import hinge_generator_loss
    >>> float(hinge_generator_loss(None, [2.0, 0.0]))
    -1.0

    Reference:
        Lim and Ye, "Geometric GAN",
        [arXiv:1705.02894](https://arxiv.org/abs/1705.02894), 2017.
    """
    del real_logits
    fake = _flat(fake_logits, "fake_logits")
    return -ops.mean(fake)


# ------------------------------------------------------------ loss objects
class GANLoss:
    """Base class of GAN losses: a discriminator and a generator term.

    Subclasses implement `discriminator_loss(real_logits, fake_logits)` and
    `generator_loss(real_logits, fake_logits)` (graph-safe, scalar
    results) and set `generator_uses_real_logits` to True if the generator
    term needs the logits of real data (then `keras_adv.models.GAN` runs
    the discriminator on the real batch in the generator step; otherwise it
    passes `real_logits=None` and saves that forward pass).

    Example:

    ```python
    @keras_adv._api.register
    class WassersteinLoss(keras_adv.losses.GANLoss):
        def discriminator_loss(self, real_logits, fake_logits):
            return keras.ops.mean(fake_logits) - keras.ops.mean(real_logits)

        def generator_loss(self, real_logits, fake_logits):
            return -keras.ops.mean(fake_logits)
    ```
    """

    generator_uses_real_logits = False

    def discriminator_loss(
        self, real_logits: TensorLike, fake_logits: TensorLike
    ) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `discriminator_loss`."
        )

    def generator_loss(
        self, real_logits: TensorLike | None, fake_logits: TensorLike
    ) -> Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} must implement `generator_loss`."
        )

    def get_config(self) -> Config:
        return {}

    @classmethod
    def from_config(cls: type[_GANLossT], config: Config) -> _GANLossT:
        return cls(**config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _global_softmax_gan(
    real_logits: TensorLike | None, fake_logits: TensorLike, generator: bool
) -> Tensor:
    """Softmax GAN over every replica's samples (see `SoftmaxGANLoss`).

    Returns `L + R * sum_own stop(g) * (l - stop(l))`, with `L` the loss on
    the gathered global batch (gradient stopped), `R` the number of
    replicas and `g = softmax(l) - target` the gradient of `L` with
    respect to this replica's own logits `l`: the value is `L`, the
    gradient `R * dL/dl` on the own logits only, so that the model's
    `1/R` loss scaling and the sum of the gradients over the replicas give
    exactly the gradient of `L` on one device.
    """
    real = _flat(real_logits, "real_logits")
    fake = _flat(fake_logits, "fake_logits")
    replicas = _replicas.replica_count()
    if replicas == 1:
        if generator:
            return softmax_gan_generator_loss(real, fake)
        return softmax_gan_discriminator_loss(real, fake)
    all_real, all_fake = _replicas.all_gather([real, fake])
    logits = ops.concatenate([all_real, all_fake], axis=0)
    log_z, m = _log_partition(logits)
    n_real = ops.cast(ops.shape(all_real)[0], "float32")
    n_all = ops.cast(ops.shape(logits)[0], "float32")
    own = ops.concatenate([real, fake], axis=0)
    if generator:
        value = log_z + ops.mean(m - logits)
        target = ops.ones_like(own) / n_all
    else:
        value = log_z + ops.mean(m - all_real)
        target = ops.concatenate(
            [ops.ones_like(real) / n_real, ops.zeros_like(fake)], axis=0
        )
    grad = ops.stop_gradient(ops.exp(own - m - log_z) - target)
    surrogate = ops.sum(grad * (own - ops.stop_gradient(own)))
    return ops.stop_gradient(value) + float(replicas) * surrogate


@register
class SoftmaxGANLoss(GANLoss):
    """Softmax GAN loss (Lin 2017) as a `GANLoss` object.

    The discriminator's logits over the joint batch of real and generated
    samples are read as an energy-based softmax; the discriminator puts all
    probability mass on the real samples, the generator spreads it evenly
    over the whole batch. See `softmax_gan_discriminator_loss` and
    `softmax_gan_generator_loss` for the formulas and numerics.

    Under a `tf.distribute` strategy the default is Softmax GAN per
    replica: each replica's partition function runs over its own share of
    the batch. With `global_batch=True` it runs over the global batch:
    each replica gathers every replica's logits (`all_gather`, forward
    only), reports the loss of the global batch, and back-propagates the
    gradient of that loss with respect to its own samples' logits, scaled
    so that `keras_adv.models.GAN`'s update (loss divided by the number of
    replicas, gradients summed across replicas) is the gradient of one
    device training on the global batch. With one replica both are the
    same.

    Args:
        global_batch: Bool, compute the loss over all replicas' samples.
            Defaults to `False`.

    Example:

    >>> from keras_adv.losses import SoftmaxGANLoss
    >>> loss = SoftmaxGANLoss()
    >>> round(float(loss.discriminator_loss([0.0, 0.0], [0.0, 0.0])), 4)
    1.3863
    >>> SoftmaxGANLoss(global_batch=True)  # one device: the same loss
    SoftmaxGANLoss(global_batch=True)

    Reference:
        Lin, "Softmax GAN",
        [arXiv:1704.06191](https://arxiv.org/abs/1704.06191), 2017.
    """

    generator_uses_real_logits = True

    def __init__(self, global_batch: bool = False) -> None:
        self.global_batch = _validation.check_bool("global_batch", global_batch)

    def discriminator_loss(
        self, real_logits: TensorLike, fake_logits: TensorLike
    ) -> Tensor:
        if self.global_batch:
            return _global_softmax_gan(real_logits, fake_logits, False)
        return softmax_gan_discriminator_loss(real_logits, fake_logits)

    def generator_loss(
        self, real_logits: TensorLike | None, fake_logits: TensorLike
    ) -> Tensor:
        if self.global_batch:
            return _global_softmax_gan(real_logits, fake_logits, True)
        return softmax_gan_generator_loss(real_logits, fake_logits)

    def get_config(self) -> Config:
        return {"global_batch": self.global_batch}

    def __repr__(self) -> str:
        if self.global_batch:
            return f"{type(self).__name__}(global_batch=True)"
        return f"{type(self).__name__}()"


@register
class NonSaturatingGANLoss(GANLoss):
    """The standard GAN loss with the non-saturating generator term.

    Example:

    >>> from keras_adv.losses import NonSaturatingGANLoss
    >>> round(float(NonSaturatingGANLoss().generator_loss(None, [0.0])), 4)
    0.6931

    Reference:
        Goodfellow et al., "Generative Adversarial Networks",
        [arXiv:1406.2661](https://arxiv.org/abs/1406.2661), 2014.
    """

    def discriminator_loss(
        self, real_logits: TensorLike, fake_logits: TensorLike
    ) -> Tensor:
        return non_saturating_discriminator_loss(real_logits, fake_logits)

    def generator_loss(
        self, real_logits: TensorLike | None, fake_logits: TensorLike
    ) -> Tensor:
        return non_saturating_generator_loss(real_logits, fake_logits)


@register
class LeastSquaresGANLoss(GANLoss):
    """The LSGAN loss (targets 1 for real, 0 for fake, 1 for the generator).

    Example:

    >>> from keras_adv.losses import LeastSquaresGANLoss
    >>> float(LeastSquaresGANLoss().generator_loss(None, [0.0]))
    0.5

    Reference:
        Mao et al., "Least Squares Generative Adversarial Networks",
        [arXiv:1611.04076](https://arxiv.org/abs/1611.04076), 2016.
    """

    def discriminator_loss(
        self, real_logits: TensorLike, fake_logits: TensorLike
    ) -> Tensor:
        return least_squares_discriminator_loss(real_logits, fake_logits)

    def generator_loss(
        self, real_logits: TensorLike | None, fake_logits: TensorLike
    ) -> Tensor:
        return least_squares_generator_loss(real_logits, fake_logits)


@register
class HingeGANLoss(GANLoss):
    """The hinge GAN loss.

    Example:

    >>> from keras_adv.losses import HingeGANLoss
    >>> float(HingeGANLoss().discriminator_loss([0.0], [0.0]))
    2.0

    Reference:
        Lim and Ye, "Geometric GAN",
        [arXiv:1705.02894](https://arxiv.org/abs/1705.02894), 2017.
    """

    def discriminator_loss(
        self, real_logits: TensorLike, fake_logits: TensorLike
    ) -> Tensor:
        return hinge_discriminator_loss(real_logits, fake_logits)

    def generator_loss(
        self, real_logits: TensorLike | None, fake_logits: TensorLike
    ) -> Tensor:
        return hinge_generator_loss(real_logits, fake_logits)


_GAN_LOSSES: dict[str, type[GANLoss]] = {
    "softmax": SoftmaxGANLoss,
    "non_saturating": NonSaturatingGANLoss,
    "standard": NonSaturatingGANLoss,
    "least_squares": LeastSquaresGANLoss,
    "lsgan": LeastSquaresGANLoss,
    "hinge": HingeGANLoss,
}


def get_gan_loss(identifier: GANLoss | str | Config) -> GANLoss:
    """Returns a `GANLoss` from a name, a config dict or an instance.

    Args:
        identifier: A `GANLoss` instance; one of the strings `"softmax"`,
            `"non_saturating"` (alias `"standard"`), `"least_squares"`
            (alias `"lsgan"`), `"hinge"`; or a serialised `GANLoss` dict.

    Returns:
        A `GANLoss` instance.

    Raises:
        ValueError: for an unknown identifier.

    Example:

    >>> from keras_adv.losses._gan import get_gan_loss
    >>> get_gan_loss("softmax")
    SoftmaxGANLoss()
    """
    if isinstance(identifier, GANLoss):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in _GAN_LOSSES:
        return _GAN_LOSSES[identifier.lower()]()
    if isinstance(identifier, dict):
        import keras

        obj = keras.saving.deserialize_keras_object(identifier)
        if isinstance(obj, GANLoss):
            return obj
    raise ValueError(
        _validation.invalid(
            "loss",
            f"a GANLoss instance or one of {sorted(_GAN_LOSSES)}",
            identifier,
        )
    )
