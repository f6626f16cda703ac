"""`GAN`: a subclassable generative adversarial network for `model.fit`."""

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import MutableMapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.distribute import _replicas
from keras_adv.losses import GANLoss
from keras_adv.losses import _gan as gan_losses

_GANT = TypeVar("_GANT", bound="GAN")

_SEED_KEY = "seed_generator_state"


def _default_optimizer() -> keras.optimizers.Optimizer:
    # The DCGAN settings (Radford et al., arXiv:1511.06434).
    return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5)


@register
class GAN(keras.Model):
    """A generative adversarial network trained with `fit`.

    `fit(x)` alternates, on every batch of real samples `x`, `d_steps`
    discriminator updates and one generator update, each with its own
    gradient tape and optimizer. The losses come from a `GANLoss` object
    (`keras_adv.losses`) given to `compile`. `keras.metrics.Mean` trackers
    `d_loss` and `g_loss` appear in the logs.

    The model is built to be subclassed; the pieces that change between GAN
    variants are separate methods, each graph-safe (they run inside the
    compiled train function):

    * `sample_latent(batch_size)`: the latent batch (standard normal).
    * `discriminator_step(x, y)`: one discriminator update; returns a dict
      of scalars (at least `"d_loss"`). The default makes a fake batch and
      calls `update_discriminator(real, fake)`, which a subclass with its
      own fakes calls too.
    * `generator_step(x, y)`: one generator update; returns a dict of
      scalars (at least `"g_loss"`).
    * `discriminator_loss(real_logits, fake_logits)` and
      `generator_loss(real_logits, fake_logits)`: the loss terms (by
      default those of the compiled `GANLoss`).
    * `apply_update(tape, loss, variables, optimizer)`: gradients and the
      optimizer step, with mixed-precision loss scaling and per-replica
      averaging (call it from overridden steps).

    `y` is the second element of the batch if the dataset yields pairs
    (labels, for conditional GANs), else None. Values returned by the steps
    whose key names a tracker in `metrics` update that tracker, so a
    subclass adds a logged term by adding a `keras.metrics.Mean` to
    `metrics` and returning the value under its name.

    Args:
        generator: A Keras model mapping a latent batch of shape
            `(batch, latent_dim)` to samples.
        discriminator: A Keras model mapping samples to scalar logits of
            shape `(batch, 1)` or `(batch,)` (no final sigmoid).
        latent_dim: Int, size of the latent vectors.
        d_steps: Int >= 1, discriminator updates per generator update (on
            the same real batch, unrolled in the graph). Defaults to `1`.
        seed: Int or None, seed of the latent sampling. Defaults to `None`.
        **kwargs: Passed to `keras.Model` (`name`, ...).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_adv.models import GAN

    generator = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(2)]
    )
    discriminator = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
         keras.layers.Dense(1)]
    )
    gan = GAN(generator, discriminator, latent_dim=8, seed=0)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(1e-3),
        g_optimizer=keras.optimizers.Adam(1e-3),
        loss="non_saturating",
    )
    x = np.random.normal(size=(256, 2)).astype("float32")
    history = gan.fit(x, batch_size=32, epochs=1, verbose=0)
    samples = gan.generate(16)  # numpy array (16, 2)
    ```

    Reference:
        Goodfellow et al., "Generative Adversarial Networks",
        [arXiv:1406.2661](https://arxiv.org/abs/1406.2661), 2014.
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        latent_dim: int,
        d_steps: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for name, net in (
            ("generator", generator),
            ("discriminator", discriminator),
        ):
            if not isinstance(net, keras.Model):
                raise TypeError(_validation.invalid(name, "a keras.Model", net))
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = _validation.check_int(
            "latent_dim", latent_dim, minimum=1
        )
        self.d_steps = _validation.check_int("d_steps", d_steps, minimum=1)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        # Set by compile.
        self.d_optimizer: keras.optimizers.Optimizer | None = None
        self.g_optimizer: keras.optimizers.Optimizer | None = None
        self.gan_loss: GANLoss | None = None
        if generator.built and discriminator.built:
            self.built = True

    # ------------------------------------------------------------ compile
    def compile(
        self,
        d_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        g_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        loss: GANLoss | str | Config = "non_saturating",
        auto_scale_loss: bool = True,
        **kwargs: Any,
    ) -> None:
        """Configures the GAN for training.

        Args:
            d_optimizer: Optimizer of the discriminator (instance, name or
                config). Defaults to Adam(2e-4, beta_1=0.5), as in DCGAN.
            g_optimizer: Optimizer of the generator, same forms and default.
            loss: A `keras_adv.losses.GANLoss` or its name (`"softmax"`,
                `"non_saturating"`, `"least_squares"`, `"hinge"`).
                Defaults to `"non_saturating"`.
            auto_scale_loss: Bool. Under the `"mixed_float16"` policy, wrap
                both optimizers in `keras.optimizers.LossScaleOptimizer`.
                Defaults to `True`.
            **kwargs: Passed to `keras.Model.compile` (`run_eagerly`,
                `jit_compile`, `steps_per_execution`). `optimizer`,
                `metrics` and Keras' own `loss` are not used.

        Raises:
            ValueError: for an unknown loss or optimizer identifier, or
                keyword arguments that a GAN cannot use.
        """
        for key in ("optimizer", "metrics", "weighted_metrics", "loss_weights"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    _validation.invalid(
                        key,
                        "None (a GAN takes `d_optimizer`, `g_optimizer` and "
                        "a GAN `loss`)",
                        kwargs[key],
                    )
                )
            kwargs.pop(key, None)
        self._d_optimizer_config = keras.optimizers.get(
            _default_optimizer() if d_optimizer is None else d_optimizer
        )
        self._g_optimizer_config = keras.optimizers.get(
            _default_optimizer() if g_optimizer is None else g_optimizer
        )
        if self._d_optimizer_config is self._g_optimizer_config:
            raise ValueError(
                _validation.invalid(
                    "g_optimizer",
                    "an optimizer distinct from `d_optimizer`",
                    g_optimizer,
                )
            )
        self.gan_loss = gan_losses.get_gan_loss(loss)
        self._auto_scale_loss = bool(auto_scale_loss)
        super().compile(optimizer=None, loss=None, **kwargs)
        d_opt, g_opt = self._d_optimizer_config, self._g_optimizer_config
        if auto_scale_loss and self.dtype_policy.name == "mixed_float16":
            d_opt = keras.optimizers.LossScaleOptimizer(d_opt)
            g_opt = keras.optimizers.LossScaleOptimizer(g_opt)
        self.d_optimizer = d_opt
        self.g_optimizer = g_opt
        self._build_optimizers()

    def _build_optimizers(self) -> None:
        # Optimizer variables must exist before weights are loaded into them
        # (load_model, BackupAndRestore); build them as soon as we can.
        pairs = (
            (self.d_optimizer, self.discriminator),
            (self.g_optimizer, self.generator),
        )
        for optimizer, network in pairs:
            if optimizer is not None and network.built and not optimizer.built:
                optimizer.build(network.trainable_variables)

    def get_compile_config(self) -> Config:
        if not self.compiled or self.gan_loss is None:
            return {}
        return {
            "d_optimizer": keras.saving.serialize_keras_object(
                self._d_optimizer_config
            ),
            "g_optimizer": keras.saving.serialize_keras_object(
                self._g_optimizer_config
            ),
            "loss": keras.saving.serialize_keras_object(self.gan_loss),
            "auto_scale_loss": self._auto_scale_loss,
        }

    def compile_from_config(self, config: Config) -> None:
        config = dict(config)
        for key in ("d_optimizer", "g_optimizer", "loss"):
            if key in config:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)

    # ----------------------------------------------------------- metrics
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        """The loss trackers; subclasses append their own `Mean`s."""
        return [self.d_loss_tracker, self.g_loss_tracker]

    def update_trackers(
        self, values: Mapping[str, TensorLike]
    ) -> dict[str, Tensor]:
        """Updates each tracker in `metrics` whose name is a key of `values`.

        Returns:
            Dict of every tracker's current result.
        """
        results = {}
        for metric in self.metrics:
            if metric.name in values:
                metric.update_state(values[metric.name])
            results[metric.name] = metric.result()
        return results

    # ------------------------------------------------------------ sampling
    def sample_latent(self, batch_size: int | Tensor) -> Tensor:
        """Returns a latent batch `(batch_size, latent_dim)`, standard normal.

        Override to change the prior. Graph-safe; `batch_size` may be a
        scalar tensor. Under a distribution strategy with several replicas
        each replica folds its replica id into the draw, so replicas (and
        workers) sample different latents; with one replica the draw is
        the generator's own.
        """
        shape = (batch_size, self.latent_dim)
        seed = self.replica_seed()
        if seed is None:
            return keras.random.normal(shape, seed=self.seed_generator)
        return tf.random.stateless_normal(shape, seed=seed)

    def replica_seed(self) -> Tensor | None:
        """This replica's stateless seed, or None with one replica.

        Under a distribution strategy with several replicas, a stateless
        seed drawn from `seed_generator` with the replica id folded in, so
        that replicas (and workers) draw different random numbers; with one
        replica None (draw from `seed_generator` itself). Graph-safe.
        """
        ctx = tf.distribute.get_replica_context()
        replicas = ctx.num_replicas_in_sync if ctx is not None else 1
        if replicas == 1:
            return None
        return _random.fold_replica(self.seed_generator)

    def call(self, z: TensorLike, training: bool = False) -> Tensor:
        """Maps a latent batch to samples with the generator."""
        return self.generator(z, training=training)

    def generate(
        self,
        n: int | None = None,
        latent: Array | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Generates samples eagerly, in batches (not for use in a graph).

        Args:
            n: Int, number of fresh samples. Ignored if `latent` is given.
            latent: Optional latent batch (array or tensor); one sample per
                row.
            batch_size: Int, generator batch size. Defaults to `256`.

        Returns:
            A numpy array of samples.

        Raises:
            ValueError: if neither `n` nor `latent` is given.
        """
        if latent is None:
            if n is None:
                raise ValueError(_validation.invalid("n", "an integer >= 1", n))
            n = _validation.check_int("n", n, minimum=1)
            latent = self.sample_latent(n)
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        latent = ops.convert_to_tensor(latent)
        parts = [
            ops.convert_to_numpy(
                self(latent[i : i + batch_size], training=False)
            )
            for i in range(0, int(latent.shape[0]), batch_size)
        ]
        return np.concatenate(parts, axis=0)

    # -------------------------------------------------------------- losses
    def discriminator_loss(
        self, real_logits: Tensor, fake_logits: Tensor
    ) -> Tensor:
        """The discriminator's loss on the logits of a real and a fake batch.

        Defaults to the compiled `GANLoss`'s discriminator term.
        """
        # Set by compile (`make_train_function` checks it).
        return self.gan_loss.discriminator_loss(real_logits, fake_logits)  # type: ignore[union-attr]

    def generator_loss(
        self, real_logits: Tensor | None, fake_logits: Tensor
    ) -> Tensor:
        """The generator's loss; `real_logits` is None unless the compiled
        loss sets `generator_uses_real_logits`."""
        # Set by compile (`make_train_function` checks it).
        return self.gan_loss.generator_loss(real_logits, fake_logits)  # type: ignore[union-attr]

    # -------------------------------------------------------------- steps
    def apply_update(
        self,
        tape: tf.GradientTape,
        loss: Tensor,
        variables: Sequence[keras.Variable],
        optimizer: keras.optimizers.Optimizer,
    ) -> None:
        """Differentiates `loss` recorded on `tape` and applies `optimizer`.

        Scales the loss for mixed precision (`LossScaleOptimizer`) and for
        the number of replicas (so that the summed gradients are averaged).
        Call it after leaving the tape's context.
        """
        with tape:
            scaled = optimizer.scale_loss(_replicas.scale_for_replicas(loss))
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))

    def discriminate(self, x: TensorLike, training: bool = False) -> Tensor:
        """The discriminator's logits for `x`, checked: shape `(batch,)`.

        Raises:
            ValueError: if the discriminator returns several outputs or
                logits that are not one per sample (`(batch,)` or
                `(batch, 1)`).
        """
        logits = self.discriminator(x, training=training)
        if isinstance(logits, list | tuple | dict):
            raise ValueError(
                "The discriminator must return one logit per sample, shape "
                "(batch,) or (batch, 1). Received: a model with "
                f"{len(logits)} outputs."
            )
        shape = tuple(logits.shape)
        if len(shape) > 2 or (len(shape) == 2 and shape[-1] != 1):
            raise ValueError(
                "The discriminator must return one logit per sample, shape "
                f"(batch,) or (batch, 1). Received: logits of shape {shape}."
            )
        return logits

    def discriminator_step(
        self, x: Tensor, y: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One discriminator update on the real batch `x`.

        Returns:
            Dict `{"d_loss": scalar}`.
        """
        batch_size = ops.shape(x)[0]
        fake = self.generator(self.sample_latent(batch_size), training=True)
        return self.update_discriminator(x, fake)

    def update_discriminator(
        self, real: Tensor, fake: Tensor
    ) -> dict[str, Tensor]:
        """One discriminator update on a `real` and a `fake` batch.

        `fake` is treated as a constant (no gradient reaches the
        generator). The loss is `discriminator_loss` of the two batches'
        logits, the networks in training mode; call it from an overridden
        `discriminator_step` that makes its own fake batch.

        Returns:
            Dict `{"d_loss": scalar}`.
        """
        fake = ops.stop_gradient(fake)
        with tf.GradientTape() as tape:
            real_logits = self.discriminate(real, training=True)
            fake_logits = self.discriminate(fake, training=True)
            d_loss = self.discriminator_loss(real_logits, fake_logits)
        self.apply_update(
            tape,
            d_loss,
            self.discriminator.trainable_variables,
            self.d_optimizer,
        )
        return {"d_loss": d_loss}

    def generator_step(
        self, x: Tensor, y: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One generator update against the discriminator on batch `x`.

        Returns:
            Dict `{"g_loss": scalar}`.
        """
        batch_size = ops.shape(x)[0]
        real_logits = None
        if getattr(self.gan_loss, "generator_uses_real_logits", True):
            # Constant with respect to the generator: outside the tape.
            real_logits = ops.stop_gradient(self.discriminate(x, training=True))
        with tf.GradientTape() as tape:
            fake = self.generator(self.sample_latent(batch_size), training=True)
            fake_logits = self.discriminate(fake, training=True)
            g_loss = self.generator_loss(real_logits, fake_logits)
        self.apply_update(
            tape, g_loss, self.generator.trainable_variables, self.g_optimizer
        )
        return {"g_loss": g_loss}

    def train_step(self, data: Any) -> dict[str, Tensor]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        values = {}
        for _ in range(self.d_steps):
            values.update(self.discriminator_step(x, y))
        values.update(self.generator_step(x, y))
        return self.update_trackers(values)

    def test_step(self, data: Any) -> dict[str, Tensor]:
        """Validation: both losses on a real batch, without any update.

        Runs the networks in inference mode on `x` and a fresh fake batch
        and reports `d_loss` and `g_loss` (Keras prefixes them with `val_`
        in `fit(validation_data=...)`). For sample quality use
        `keras_adv.callbacks.GANMonitor`.
        """
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        batch_size = ops.shape(x)[0]
        fake = self.generator(self.sample_latent(batch_size), training=False)
        real_logits = self.discriminate(x, training=False)
        fake_logits = self.discriminate(fake, training=False)
        g_real = None
        if getattr(self.gan_loss, "generator_uses_real_logits", True):
            g_real = real_logits
        return self.update_trackers(
            {
                "d_loss": self.discriminator_loss(real_logits, fake_logits),
                "g_loss": self.generator_loss(g_real, fake_logits),
            }
        )

    def _check_compiled(self) -> None:
        if self.gan_loss is None or self.d_optimizer is None:
            raise RuntimeError(
                f"{type(self).__name__} must be compiled before training: "
                "call `compile(d_optimizer=..., g_optimizer=..., loss=...)`."
            )

    def make_train_function(self, force: bool = False) -> Callable[..., Any]:
        self._check_compiled()
        self._build_optimizers()
        return super().make_train_function(force=force)

    def make_test_function(self, force: bool = False) -> Callable[..., Any]:
        self._check_compiled()
        return super().make_test_function(force=force)

    # ------------------------------------------------------------- state
    def save_own_variables(self, store: MutableMapping[str, Any]) -> None:
        # Keras does not save SeedGenerator states; saving ours makes a run
        # resumed from a .keras file or BackupAndRestore draw the same
        # latents as an uninterrupted one.
        super().save_own_variables(store)
        store[_SEED_KEY] = self.seed_generator.state

    def load_own_variables(self, store: Mapping[str, Any]) -> None:
        keys = list(store.keys())
        if _SEED_KEY in keys:
            self.seed_generator.state.assign(store[_SEED_KEY])
            store = {k: store[k] for k in keys if k != _SEED_KEY}
        super().load_own_variables(store)

    # -------------------------------------------------------------- config
    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            {
                "generator": keras.saving.serialize_keras_object(
                    self.generator
                ),
                "discriminator": keras.saving.serialize_keras_object(
                    self.discriminator
                ),
                "latent_dim": self.latent_dim,
                "d_steps": self.d_steps,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls: type[_GANT], config: Config) -> _GANT:
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
