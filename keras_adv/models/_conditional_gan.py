"""`ConditionalGAN`: a class-conditional GAN on the `GAN` base."""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _outputs
from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv.models._gan import GAN


def _check_two_inputs(name, net, expected):
    inputs = getattr(net, "inputs", None)
    # Subclassed models have no symbolic inputs: their first call decides.
    if inputs is not None and len(inputs) != 2:
        raise ValueError(
            _validation.invalid(
                name,
                f"a keras.Model taking two inputs {expected}",
                f"a model with {len(inputs)} input(s)",
            )
        )


@register
class ConditionalGAN(GAN):
    """A class-conditional GAN trained with `fit(x, y)`.

    The generator maps a latent batch and class labels to samples,
    `G([z, y])`; the discriminator scores a sample for a class,
    `D([x, y])` (one logit per sample). `fit` trains on labelled data:
    each real batch `(x, y)` is matched by a fake batch `G([z, y])`
    conditioned on the same labels (so fakes follow the class
    distribution of the data, as the paper draws them from `p(y)`), and
    the discriminator learns to tell `(x, y)` from `(G([z, y]), y)`. The
    builders `keras_adv.models.conditional_dcgan_generator` and
    `projection_discriminator` make the networks of Miyato and Koyama's
    projection cGAN for 28x28 (or 32x32) images.

    Everything else is the `keras_adv.models.GAN` base: one tape and one
    optimizer per network, `d_steps`, the `GANLoss` objects, trackers,
    mixed precision, distribution, `.keras` saving. Labels are class ids
    `(batch,)`, `(batch, 1)` or one-hot rows; labels outside
    `[0, num_classes)` fail inside the graph.

    Args:
        generator: A Keras model `[z, labels] -> samples`: latents
            `(batch, latent_dim)` and int class ids `(batch,)`.
        discriminator: A Keras model `[samples, labels] -> logits` of shape
            `(batch, 1)` or `(batch,)` (no final sigmoid).
        latent_dim: Int, size of the latent vectors.
        num_classes: Int >= 2, number of classes.
        d_steps: Int >= 1, discriminator updates per generator update.
            Defaults to `1`.
        seed: Int or None, seed of the latent sampling. Defaults to `None`.
        **kwargs: Passed to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    from keras_adv.datasets import load_mnist_subset
    from keras_adv.models import ConditionalGAN
    from keras_adv.models import conditional_dcgan_generator
    from keras_adv.models import projection_discriminator

    (x, y), _ = load_mnist_subset()
    gan = ConditionalGAN(
        conditional_dcgan_generator(latent_dim=32, width=16),
        projection_discriminator(width=16),
        latent_dim=32,
        num_classes=10,
        seed=0,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        loss="hinge",
    )
    gan.fit(x[:256], y[:256], batch_size=64, epochs=1, verbose=0)
    sevens = gan.generate(16, labels=7)  # (16, 28, 28, 1) in [0, 1]
    ```

    Reference:
        Miyato and Koyama, "cGANs with Projection Discriminator", ICLR
        2018, [arXiv:1802.05637](https://arxiv.org/abs/1802.05637). Mirza
        and Osindero, "Conditional Generative Adversarial Nets",
        [arXiv:1411.1784](https://arxiv.org/abs/1411.1784).
    """

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim,
        num_classes,
        d_steps=1,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            generator,
            discriminator,
            latent_dim,
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )
        _check_two_inputs("generator", generator, "[z, labels]")
        _check_two_inputs("discriminator", discriminator, "[x, labels]")
        self.num_classes = _validation.check_int(
            "num_classes", num_classes, minimum=2
        )

    def compile(
        self, d_optimizer=None, g_optimizer=None, loss="hinge", **kwargs
    ):
        """Like `GAN.compile`, with the hinge loss by default (the paper's).

        Args:
            d_optimizer: Optimizer of the discriminator. Defaults to
                Adam(2e-4, beta_1=0.5).
            g_optimizer: Optimizer of the generator. Same default.
            loss: A `keras_adv.losses.GANLoss` or its name. Defaults to
                `"hinge"`.
            **kwargs: Passed to `GAN.compile`.
        """
        super().compile(
            d_optimizer=d_optimizer,
            g_optimizer=g_optimizer,
            loss=loss,
            **kwargs,
        )

    # ------------------------------------------------------------ labels
    def class_ids(self, labels):
        """Int32 class ids `(batch,)` from labels, checked in the graph.

        Accepts ids `(batch,)` or `(batch, 1)` and one-hot rows; ids
        outside `[0, num_classes)` fail when the graph runs.

        Raises:
            ValueError: for `labels=None` (a conditional GAN needs labels)
                or one-hot rows of another width.
        """
        if labels is None:
            raise ValueError(
                _validation.invalid(
                    "y",
                    "class labels: a ConditionalGAN trains on (x, y) pairs, "
                    "e.g. fit(x, y) or a dataset of (x, y)",
                    None,
                )
            )
        checks = _validation.label_assertions(
            labels, self.num_classes, name="labels"
        )
        return _validation.after_checks(checks, _outputs.sparse_labels(labels))

    def _host_labels(self, labels, n):
        """Host-side class ids for `generate` (balanced when None)."""
        if labels is None:
            return np.arange(n) % self.num_classes
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(n, labels)
        ids = _validation.class_ids(labels, "labels")
        _validation.check_classes(
            ids, self.num_classes, "labels", "the GAN's num_classes"
        )
        if len(ids) != n:
            raise ValueError(
                _validation.invalid(
                    "labels",
                    f"one label per sample ({n})",
                    f"{len(ids)} labels",
                )
            )
        return ids

    # ---------------------------------------------------------- sampling
    def call(self, inputs, training=False):
        """Maps `[z, labels]` to samples with the generator."""
        z, labels = inputs
        return self.generator([z, self.class_ids(labels)], training=training)

    def sample(self, labels, seed=None):
        """Samples of the given classes, generated in inference mode.

        Graph-safe (use it in a `tf.data` map or a train step).

        Args:
            labels: Class ids `(batch,)` or one-hot rows, a tensor or array.
            seed: None (draw the latents from the GAN's seed generator,
                advancing it), an int or a stateless `(2,)` int tensor
                (deterministic latents, e.g. per batch in a pipeline).

        Returns:
            A tensor of `len(labels)` samples.
        """
        labels = self.class_ids(labels)
        batch = ops.shape(labels)[0]
        if seed is None:
            z = self.sample_latent(batch)
        else:
            z = _random.random_normal(
                (batch, self.latent_dim), _random.as_stateless_seed(seed)
            )
        return self.generator([z, labels], training=False)

    def generate(self, n=None, labels=None, latent=None, batch_size=256):
        """Generates samples eagerly, in batches (not for use in a graph).

        Args:
            n: Int, number of samples. Defaults to the number of `labels`
                or of `latent` rows.
            labels: Class ids: an int (every sample of that class), an
                array of one id per sample, or None for classes
                `0, 1, ..., num_classes - 1, 0, 1, ...` in turn.
            latent: Optional latent batch; one sample per row.
            batch_size: Int, generator batch size. Defaults to `256`.

        Returns:
            A numpy array of samples.

        Raises:
            ValueError: if the number of samples is not given, or `n`,
                `labels` and `latent` disagree on it, or for labels that
                are not classes of the GAN.
        """
        if n is None:
            if latent is not None:
                n = int(ops.shape(latent)[0])
            elif labels is not None and np.ndim(labels) > 0:
                n = len(labels)
            else:
                raise ValueError(_validation.invalid("n", "an integer >= 1", n))
        n = _validation.check_int("n", n, minimum=1)
        ids = self._host_labels(labels, n)
        if latent is None:
            latent = self.sample_latent(n)
        latent = ops.convert_to_tensor(latent)
        if int(latent.shape[0]) != n:
            raise ValueError(
                _validation.invalid(
                    "latent", f"{n} rows", f"{int(latent.shape[0])} rows"
                )
            )
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        ids = ops.convert_to_tensor(ids.astype("int32"))
        parts = [
            ops.convert_to_numpy(
                self.generator(
                    [latent[i : i + batch_size], ids[i : i + batch_size]],
                    training=False,
                )
            )
            for i in range(0, n, batch_size)
        ]
        return np.concatenate(parts, axis=0)

    # -------------------------------------------------------------- steps
    def discriminator_step(self, x, y=None):
        """One discriminator update on the real batch `(x, y)`.

        Returns:
            Dict `{"d_loss": scalar}`.
        """
        labels = self.class_ids(y)
        z = self.sample_latent(ops.shape(x)[0])
        fake = self.generator([z, labels], training=True)
        return self.update_discriminator((x, labels), (fake, labels))

    def update_discriminator(self, real, fake):
        """One discriminator update on a real and a fake labelled batch.

        Args:
            real: Pair `(samples, class ids)`.
            fake: Pair `(samples, class ids)`; the samples are treated as a
                constant (no gradient reaches the generator).

        Returns:
            Dict `{"d_loss": scalar}`.
        """
        fake = [ops.stop_gradient(fake[0]), fake[1]]
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(list(real), training=True)
            fake_logits = self.discriminate(fake, training=True)
            d_loss = self.discriminator_loss(real_logits, fake_logits)
        self.apply_update(
            tape,
            d_loss,
            self.discriminator.trainable_variables,
            self.d_optimizer,
        )
        return {"d_loss": d_loss}

    def generator_step(self, x, y=None):
        """One generator update on fakes with the labels of the batch.

        Returns:
            Dict `{"g_loss": scalar}`.
        """
        labels = self.class_ids(y)
        real_logits = None
        if getattr(self.gan_loss, "generator_uses_real_logits", True):
            # Constant with respect to the generator: outside the tape.
            real_logits = ops.stop_gradient(
                self.discriminate([x, labels], training=True)
            )
        z = self.sample_latent(ops.shape(x)[0])
        with tf.GradientTape() as tape:
            fake = self.generator([z, labels], training=True)
            fake_logits = self.discriminate([fake, labels], training=True)
            g_loss = self.generator_loss(real_logits, fake_logits)
        self.apply_update(
            tape, g_loss, self.generator.trainable_variables, self.g_optimizer
        )
        return {"g_loss": g_loss}

    def test_step(self, data):
        """Validation: both losses on a labelled real batch, no update."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        labels = self.class_ids(y)
        z = self.sample_latent(ops.shape(x)[0])
        fake = self.generator([z, labels], training=False)
        real_logits = self.discriminate([x, labels], training=False)
        fake_logits = self.discriminate([fake, labels], training=False)
        g_real = None
        if getattr(self.gan_loss, "generator_uses_real_logits", True):
            g_real = real_logits
        return self.update_trackers(
            {
                "d_loss": self.discriminator_loss(real_logits, fake_logits),
                "g_loss": self.generator_loss(g_real, fake_logits),
            }
        )

    # -------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
