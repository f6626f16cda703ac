"""`PerturbationCVAE`: a conditional VAE that learns a perturbation set.

Wong and Kolter (2021) learn a perturbation set from pairs `(x, x~)` of
an input and a perturbed copy with a conditional VAE: a prior
`p(z | x) = N(mu_p(x), sigma_p(x)^2)`, a recognition network
`q(z | x, x~)` and a decoder `g(z, x)`. The learned set around `x` is

    S(x) = { g(mu_p(x) + sigma_p(x) * u, x) : ||u||_2 <= radius },

a ball in the whitened latent space of the prior. Minimising the CVAE
objective bounds how well the set covers real perturbations (necessary
subset property) and how real its members look (sufficient likelihood
property). `keras_adv.threat_models.LearnedPerturbationSet` turns a
trained model and a calibrated radius into a threat model.
"""

from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Seed
from keras_adv._types import Shape
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.layers._sampling import DEFAULT_LOG_VAR_RANGE
from keras_adv.layers._sampling import GaussianSampling
from keras_adv.layers._sampling import check_log_var_range
from keras_adv.layers._sampling import clamp_log_var
from keras_adv.losses import _cvae as cvae_losses

_CVAET = TypeVar("_CVAET", bound="PerturbationCVAE")


def _check_network(name: str, network: object) -> keras.Model:
    if not isinstance(network, keras.Model):
        raise TypeError(
            _validation.invalid(name, "a keras.Model", type(network).__name__)
        )
    return network


def _pair(outputs: Any, name: str) -> Any:
    if not isinstance(outputs, list | tuple) or len(outputs) != 2:
        raise ValueError(
            f"The {name} network must output two tensors [mean, log_var]. "
            f"Received: {type(outputs).__name__} output."
        )
    return outputs


#: The values of both inputs of a pair under the Bernoulli reconstruction:
#: the decoder outputs the probabilities of pixels in [0, 1], and the
#: binary cross-entropy of a target outside them has no meaning (it can be
#: negative).
BERNOULLI_RANGE = (0.0, 1.0)


def _is_array(value: object) -> bool:
    return isinstance(value, np.ndarray | list) or (
        tf.is_tensor(value) and tf.executing_eagerly()
    )


def _flat_norm(values: TensorLike) -> Tensor:
    values = ops.reshape(values, [ops.shape(values)[0], -1])
    return ops.sqrt(ops.sum(ops.square(values), axis=1))


@register
class PerturbationCVAE(keras.Model):
    """A conditional VAE of perturbations `x -> x~`, trained on pairs.

    Fit it on pairs `(x, x~)` (arrays `fit(x, x_tilde)` or a
    `tf.data.Dataset` of `(x, x_tilde)` batches). Each step minimises the
    mean over the batch of

        rec(x~, g(z, x)) + beta * KL(q(z | x, x~) || p(z | x)),

    `z ~ q` by reparameterisation (`GaussianSampling`), where `rec` is the
    summed binary cross-entropy (`"bernoulli"`, decoder outputs in
    `[0, 1]`) or the summed squared error (`"gaussian"`). Log-variances of
    both encoders are clipped to `log_var_range`. `beta` is a float (a
    variable you may assign between epochs) or a
    `keras_adv.losses.BetaSchedule` evaluated from the optimizer's step
    counter inside the graph (no retracing). Trackers: `loss`,
    `reconstruction_loss`, `kl_loss` and `beta`.

    With `"bernoulli"` both inputs of every pair must lie in `[0, 1]`
    (`BERNOULLI_RANGE`; the cross-entropy of a target outside it can be
    negative): `fit` and `evaluate` check arrays on the host
    (`check_pairs`, a `ValueError` naming `x` or `x_tilde`), the training
    and test steps every batch in the graph (a `tf.data.Dataset`
    included).

    The networks:

    * `prior`: `x -> [mean, log_var]`, each of the latent shape;
    * `recognition`: `[x, x~] -> [mean, log_var]`;
    * `decoder`: `[x, z] -> x~` (probabilities for `"bernoulli"`).

    Args:
        prior: Keras model of the prior `p(z | x)`.
        recognition: Keras model of the posterior `q(z | x, x~)`.
        decoder: Keras model of the generator `g(z, x)`.
        beta: Float >= 0 or `BetaSchedule`, the KL weight. Defaults to
            `1.0`.
        reconstruction: `"bernoulli"` or `"gaussian"`. Defaults to
            `"bernoulli"`.
        log_var_range: Pair `(low, high)` the log-variances are clipped to.
            Defaults to `(-10.0, 10.0)`.
        seed: Int or None, seed of the sampling. Defaults to `None`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Example:

    >>> import numpy as np, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=16, latent_dim=4,
    ...     input_shape=(2, 2, 1), seed=0)
    >>> x = np.random.default_rng(0).uniform(size=(8, 2, 2, 1))
    >>> x = x.astype("float32")
    >>> cvae.compile(optimizer="adam")
    >>> history = cvae.fit(x, np.clip(x + 0.1, 0, 1), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['beta', 'kl_loss', 'loss', 'reconstruction_loss']
    >>> tuple(cvae.perturb(x, np.zeros((8, 4), "float32")).shape)
    (8, 2, 2, 1)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450). Sohn, Lee and Yan,
        "Learning Structured Output Representation using Deep Conditional
        Generative Models", NeurIPS 2015.
    """

    def __init__(
        self,
        prior: keras.Model,
        recognition: keras.Model,
        decoder: keras.Model,
        beta: float | cvae_losses.BetaSchedule | Config = 1.0,
        reconstruction: Literal["bernoulli", "gaussian"] = "bernoulli",
        log_var_range: Sequence[float] = DEFAULT_LOG_VAR_RANGE,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prior = _check_network("prior", prior)
        self.recognition = _check_network("recognition", recognition)
        self.decoder = _check_network("decoder", decoder)
        self.reconstruction = _validation.check_choice(
            "reconstruction", reconstruction, set(cvae_losses.RECONSTRUCTIONS)
        )
        self.log_var_range = check_log_var_range(log_var_range)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.sampling = GaussianSampling(self.log_var_range, seed=seed)
        if isinstance(beta, dict):
            beta = keras.saving.deserialize_keras_object(beta)
        if isinstance(beta, cvae_losses.BetaSchedule):
            self.beta_schedule: cvae_losses.BetaSchedule | None = beta
            initial = float(beta(0))
        else:
            self.beta_schedule = None
            initial = _validation.check_number("beta", beta, minimum=0.0)
        self.beta = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(initial),
            trainable=False,
            name="beta",
        )
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.beta_tracker = keras.metrics.Mean(name="beta")
        if all(n.built for n in (prior, recognition, decoder)):
            self.built = True

    # ------------------------------------------------------------ networks
    @property
    def latent_shape(self) -> Shape:
        """Shape of one latent code (without the batch axis)."""
        return tuple(self.prior.outputs[0].shape[1:])

    def encode_prior(
        self, x: TensorLike, training: bool = False
    ) -> tuple[Tensor, Tensor]:
        """`(mean, log_var)` of the prior `p(z | x)`, float32, clamped."""
        x = ops.convert_to_tensor(x)
        mean, log_var = _pair(self.prior(x, training=training), "prior")
        return (
            ops.cast(mean, "float32"),
            clamp_log_var(log_var, self.log_var_range),
        )

    def encode(
        self, x: TensorLike, x_tilde: TensorLike, training: bool = False
    ) -> tuple[Tensor, Tensor]:
        """`(mean, log_var)` of the posterior `q(z | x, x~)`."""
        x, x_tilde = ops.convert_to_tensor(x), ops.convert_to_tensor(x_tilde)
        mean, log_var = _pair(
            self.recognition([x, x_tilde], training=training), "recognition"
        )
        return (
            ops.cast(mean, "float32"),
            clamp_log_var(log_var, self.log_var_range),
        )

    def decode(
        self, x: TensorLike, z: TensorLike, training: bool = False
    ) -> Tensor:
        """`g(z, x)` as float32."""
        x, z = ops.convert_to_tensor(x), ops.convert_to_tensor(z)
        return ops.cast(self.decoder([x, z], training=training), "float32")

    def call(self, inputs: Any, training: bool = False) -> Tensor:
        """Reconstructs `x~` from a pair `[x, x~]` through `z ~ q`."""
        if not isinstance(inputs, list | tuple) or len(inputs) != 2:
            raise ValueError(
                _validation.invalid(
                    "inputs", "a pair [x, x_tilde]", type(inputs).__name__
                )
            )
        x, x_tilde = inputs
        mean, log_var = self.encode(x, x_tilde, training=training)
        return self.decode(x, self.sampling([mean, log_var]), training)

    # ------------------------------------------------------- the set
    def perturb(self, x: TensorLike, u: TensorLike) -> Tensor:
        """Members of the set: `g(mu_p(x) + sigma_p(x) * u, x)`.

        Graph-safe. `u` has the latent shape per sample; `||u||_2` is the
        member's distance from the centre of the set in whitened units.
        """
        mean, log_var = self.encode_prior(x)
        z = mean + ops.exp(0.5 * log_var) * ops.cast(u, "float32")
        return self.decode(x, z)

    def sample(
        self, x: TensorLike, n: int = 1, seed: Seed | None = None
    ) -> Tensor:
        """`n` draws `g(mu_p + sigma_p * u, x)`, `u ~ N(0, I)`, per input.

        Args:
            x: Batch of inputs.
            n: Int >= 1, draws per input. Defaults to `1`.
            seed: Int, `SeedGenerator` or None (the model's own).

        Returns:
            Float32 tensor `(batch, n) + x.shape[1:]`.
        """
        n = _validation.check_int("n", n, minimum=1)
        seed = self.sampling.seed_generator if seed is None else seed
        x = ops.convert_to_tensor(x)
        batch = ops.shape(x)[0]
        repeated = ops.repeat(x, n, axis=0)
        u = keras.random.normal(
            (batch * n,) + self.latent_shape, seed=seed, dtype="float32"
        )
        out = self.perturb(repeated, u)
        return ops.reshape(out, (batch, n) + tuple(x.shape[1:]))

    def latent_offset(self, x: TensorLike, x_tilde: TensorLike) -> Tensor:
        """The encoder's `u` of `x~`: `(mu_q(x, x~) - mu_p(x)) / sigma_p(x)`."""
        mean_p, log_var_p = self.encode_prior(x)
        mean_q, _ = self.encode(x, x_tilde)
        return (mean_q - mean_p) * ops.exp(-0.5 * log_var_p)

    def latent_distance(self, x: TensorLike, x_tilde: TensorLike) -> Tensor:
        """Whitened latent distance `||(mu_q - mu_p) / sigma_p||_2`, `(batch,)`.

        The estimate of how far `x~` lies from the centre of `S(x)`: the
        quantity whose held-out percentiles calibrate the radius.
        """
        return _flat_norm(self.latent_offset(x, x_tilde))

    # ------------------------------------------------------------- losses
    def compute_terms(
        self, x: TensorLike, x_tilde: TensorLike, training: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Per-example `(reconstruction, kl)` of a batch of pairs."""
        mean_p, log_var_p = self.encode_prior(x, training=training)
        mean_q, log_var_q = self.encode(x, x_tilde, training=training)
        z = self.sampling([mean_q, log_var_q])
        x_hat = self.decode(x, z, training=training)
        rec = cvae_losses.reconstruction_loss(
            x_tilde, x_hat, self.reconstruction
        )
        kl = cvae_losses.gaussian_kl(mean_q, log_var_q, mean_p, log_var_p)
        return rec, kl

    def _current_beta(self) -> Tensor:
        if self.beta_schedule is None:
            return ops.cast(self.beta, "float32")
        beta = self.beta_schedule(self.optimizer.iterations)
        self.beta.assign(beta)
        return beta

    # --------------------------------------------------------------- data
    def check_pairs(self, x: Any, x_tilde: Any) -> None:
        """Host-side: pairs this model can train on or be calibrated with.

        With the Bernoulli reconstruction, `x` and `x_tilde` must lie in
        `[0, 1]` without NaN; the Gaussian one takes any values. Arrays
        only (a dataset's batches are checked in the graph by the steps).

        Raises:
            ValueError: naming `x` or `x_tilde`.
        """
        if self.reconstruction != "bernoulli":
            return
        for name, value in (("x", x), ("x_tilde", x_tilde)):
            if value is not None and _is_array(value):
                _validation.check_value_range_of(
                    value, BERNOULLI_RANGE, name=name
                )

    def _pair_assertions(
        self, x: TensorLike, x_tilde: TensorLike
    ) -> list[tf.Operation | None]:
        """In-graph twin of `check_pairs`: assertion ops."""
        if self.reconstruction != "bernoulli":
            return []
        return _validation.value_range_assertions(
            x, BERNOULLI_RANGE, name="x"
        ) + _validation.value_range_assertions(
            x_tilde, BERNOULLI_RANGE, name="x_tilde"
        )

    def fit(
        self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History:
        """`keras.Model.fit` on pairs `(x, x_tilde)`, after `check_pairs`.

        `y` is `x_tilde`. Arrays are checked here; the batches of a
        `tf.data.Dataset` in the training step.
        """
        self.check_pairs(x, y)
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple) and len(validation) >= 2:
            self.check_pairs(validation[0], validation[1])
        return super().fit(x, y, *args, **kwargs)

    def evaluate(
        self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        """`keras.Model.evaluate` on pairs, after `check_pairs`."""
        self.check_pairs(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _unpack(self, data: Any) -> tuple[Tensor, Tensor, Tensor | None]:
        x, x_tilde, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if x_tilde is None:
            raise ValueError(
                "PerturbationCVAE trains on pairs (x, x_tilde): pass "
                "`fit(x, x_tilde)` or a dataset of (x, x_tilde) batches. "
                "Received: data without x_tilde."
            )
        checks = self._pair_assertions(x, x_tilde)
        x = _validation.after_checks(checks, x)
        return x, x_tilde, sample_weight

    def _mean(self, values: Tensor, sample_weight: Tensor | None) -> Tensor:
        if sample_weight is None:
            return ops.mean(values)
        weight = ops.cast(ops.reshape(sample_weight, [-1]), "float32")
        return ops.sum(values * weight) / ops.maximum(ops.sum(weight), 1e-12)

    def _update(
        self,
        rec: Tensor,
        kl: Tensor,
        beta: Tensor,
        total: Tensor,
        sample_weight: Tensor | None,
    ) -> dict[str, Tensor]:
        weight = (
            None
            if sample_weight is None
            else ops.cast(ops.reshape(sample_weight, [-1]), "float32")
        )
        self.reconstruction_tracker.update_state(rec, sample_weight=weight)
        self.kl_tracker.update_state(kl, sample_weight=weight)
        self.loss_tracker.update_state(total)
        self.beta_tracker.update_state(beta)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data: Any) -> dict[str, Tensor]:
        x, x_tilde, sample_weight = self._unpack(data)
        beta = self._current_beta()
        with tf.GradientTape() as tape:
            rec, kl = self.compute_terms(x, x_tilde, training=True)
            total = self._mean(rec + beta * kl, sample_weight)
            for extra in self.losses:
                total = total + ops.cast(extra, "float32")
        variables = self.trainable_variables
        grads = tape.gradient(total, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self._update(rec, kl, beta, total, sample_weight)

    def test_step(self, data: Any) -> dict[str, Tensor]:
        x, x_tilde, sample_weight = self._unpack(data)
        beta = ops.cast(self.beta, "float32")
        rec, kl = self.compute_terms(x, x_tilde, training=False)
        total = self._mean(rec + beta * kl, sample_weight)
        return self._update(rec, kl, beta, total, sample_weight)

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [
            self.loss_tracker,
            self.reconstruction_tracker,
            self.kl_tracker,
            self.beta_tracker,
        ]

    # ------------------------------------------------------------- config
    def get_config(self) -> Config:
        config = super().get_config()
        beta = (
            keras.saving.serialize_keras_object(self.beta_schedule)
            if self.beta_schedule is not None
            else float(ops.convert_to_numpy(self.beta))
        )
        config.update(
            {
                "prior": keras.saving.serialize_keras_object(self.prior),
                "recognition": keras.saving.serialize_keras_object(
                    self.recognition
                ),
                "decoder": keras.saving.serialize_keras_object(self.decoder),
                "beta": beta,
                "reconstruction": self.reconstruction,
                "log_var_range": list(self.log_var_range),
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls: type[_CVAET], config: Config) -> _CVAET:
        config = dict(config)
        for key in ("prior", "recognition", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
