"""`SoftmaxGAN`: the GAN base compiled with the Softmax GAN loss."""

from typing import Any

import keras

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv.losses import GANLoss
from keras_adv.losses import _gan as gan_losses
from keras_adv.models._gan import GAN


@register
class SoftmaxGAN(GAN):
    """A GAN trained with the Softmax GAN loss (Lin 2017).

    The discriminator's logits over the joint batch of real and generated
    samples define a softmax; the discriminator is trained to put the
    probability mass on the real samples only (targets `1/N`), the generator
    to spread it evenly over the whole batch (targets `1/(N+M)`). The
    paper's claim is that this trains stably without batch normalisation;
    `keras_adv.models.dcgan_generator(batch_norm=False)` and
    `dcgan_discriminator(batch_norm=False)` build networks to check it.

    Takes the arguments of `keras_adv.models.GAN`; `compile` takes the
    optimizers and no loss (or a `SoftmaxGANLoss`).

    Example:

    ```python
    import keras
    from keras_adv.datasets import load_mnist_subset
    from keras_adv.models import SoftmaxGAN
    from keras_adv.models import dcgan_discriminator
    from keras_adv.models import dcgan_generator

    (x, _), _ = load_mnist_subset()
    gan = SoftmaxGAN(
        dcgan_generator(latent_dim=32, batch_norm=False),
        dcgan_discriminator(batch_norm=False),
        latent_dim=32,
        seed=0,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    )
    gan.fit(x[:256], batch_size=64, epochs=1, verbose=0)
    images = gan.generate(16)  # (16, 28, 28, 1) in [0, 1]
    ```

    Reference:
        Lin, "Softmax GAN",
        [arXiv:1704.06191](https://arxiv.org/abs/1704.06191), 2017.
    """

    def compile(  # type: ignore[override]  # auto_scale_loss: in kwargs
        self,
        d_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        g_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        loss: GANLoss | str | Config | None = None,
        **kwargs: Any,
    ) -> None:
        """Like `GAN.compile`; `loss` must be None or a `SoftmaxGANLoss`.

        Raises:
            ValueError: for any other loss.
        """
        loss = gan_losses.SoftmaxGANLoss() if loss is None else loss
        loss = gan_losses.get_gan_loss(loss)
        if not isinstance(loss, gan_losses.SoftmaxGANLoss):
            raise ValueError(
                _validation.invalid(
                    "loss",
                    "None or a SoftmaxGANLoss (use keras_adv.models.GAN for "
                    "other losses)",
                    loss,
                )
            )
        super().compile(
            d_optimizer=d_optimizer,
            g_optimizer=g_optimizer,
            loss=loss,
            **kwargs,
        )
