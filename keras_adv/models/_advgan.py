"""`AdvGAN`: a generator that attacks in one forward pass (Xiao et al.).

One class, and about 600 lines with its type annotations: its public
override points (`discriminator_step`, `generator_terms`,
`generator_step`), its training and test steps, the entry checks of
`fit`/`evaluate`/`generate` and its config belong together. What can
stand alone already does: argument and data checks in `_advgan_checks.py`,
targets and loss terms in `_advgan_batch.py`, the surrogate hooks in
`_advgan_blackbox.py`, the black box and its distillation in
`_distillation.py`, the networks in `_advgan_nets.py`.
"""

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
from keras_adv import threat_models
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Config
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.attacks import GeneratorAttack
from keras_adv.attacks import ModelLogits
from keras_adv.losses import GANLoss
from keras_adv.models import _advgan_batch
from keras_adv.models import _advgan_checks as checks
from keras_adv.models import _distillation
from keras_adv.models._advgan_blackbox import BlackBoxHooks
from keras_adv.models._gan import GAN

_AdvGANT = TypeVar("_AdvGANT", bound="AdvGAN")

#: The logged terms, in the order of the logs.
TRACKERS = (
    "d_loss",
    "g_loss",
    "g_gan",
    "g_adv",
    "g_hinge",
    "success_rate",
    "perturbation_norm",
)


def _default_optimizer() -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(learning_rate=1e-3, beta_1=0.5)


@register
class AdvGAN(BlackBoxHooks, GAN):
    """AdvGAN: trains a generator of adversarial perturbations with `fit`.

    A generator `G` maps an input `x` to a perturbation `G(x)` (end it with
    `keras_adv.layers.PerturbationBound` so that it lies in the threat
    model); a discriminator `D` keeps `x_adv = project(x + G(x))` looking
    like the real data; the attacked classifier `f` (`target_model`) is
    frozen: it is called in inference mode (no batch-norm statistics or
    dropout) and only the generator's and discriminator's variables are
    updated. `fit(x, y)` alternates, per batch, `d_steps` discriminator
    updates (`x` real, `x_adv` fake) and one generator update on

        `L_G = L_adv + alpha * L_GAN + beta * L_hinge`,

    with `L_adv` the batch mean of the C&W loss `cw_loss(y, f(x_adv),
    kappa)`, `L_GAN` the compiled `GANLoss`'s generator term (least
    squares, as in the paper, by default) and `L_hinge` the batch mean of
    `max(0, ||G(x)||_2 - c)`. All means are over the batch (so the weights
    do not depend on the batch size).

    One generator pass per step: `G(x)` is computed once, on the
    generator's tape, and passed to the hooks `discriminator_step(x, y,
    x_adv=...)` and `generator_step(x, y, delta=..., tape=...)` (see
    `docs/advgan.md`); the loss terms are `generator_terms`.

    Targeted attacks (`targeted=True`) use one generator conditioned on the
    target (inputs `[x, one-hot target]`, see
    `keras_adv.models.advgan_generator(num_classes=...)`; the paper trains
    one generator per target). The targets of a batch come from
    `target_fn(labels)` or, by default, uniformly from the classes other
    than each sample's label.

    Data is checked where it enters (`fit`, `evaluate` and `generate` on
    the host, every batch in the graph): inputs in `value_range`, labels
    and targets classes of the target model (`docs/reliability.md`).

    Logs (epoch means): `d_loss`, `g_loss` (the total), `g_gan`, `g_adv`,
    `g_hinge`, `success_rate` (share of the batch the target model
    classifies as the target, or away from the label `y` when untargeted)
    and `perturbation_norm` (mean L2 norm of `x_adv - x`). With a black
    box: `s_loss` (distillation loss, dynamic distillation) and `queries`
    (total samples queried). `keras_adv.callbacks.AdvGANMonitor` adds
    image grids and a histogram of the adversarial labels, where a
    collapse to one label shows.

    Black box (`distillation=keras_adv.models.Distillation(box)`):
    `target_model` is a surrogate fitted to the black box's answers by
    `distill(x)` before `fit`, and at every `fit` step when dynamic.

    After training, `keras_adv.attacks.GeneratorAttack(advgan)` attacks
    new inputs in one forward pass, and `advgan.generator` saves alone as
    a plain Keras model. The settings and figures measured on MNIST are
    in `docs/advgan.md`.

    Args:
        generator: A Keras model `x -> perturbation` (conditioned:
            `[x, one-hot target] -> perturbation`).
        discriminator: A Keras model `x -> one logit per sample`.
        target_model: The attacked Keras classifier (logits or
            probabilities, `(batch, classes)`), or the surrogate of a black
            box.
        eps: Float >= 0, radius of the threat model; `x + G(x)` is
            projected onto it. Defaults to `0.3`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        targeted: Bool. Defaults to `False`.
        alpha: Float >= 0, weight of the GAN term. Defaults to `0.1`.
        beta: Float >= 0, weight of the hinge term. Defaults to `0.1`.
        c: Float >= 0, the hinge's L2 budget. Defaults to `3.0`.
        kappa: Float >= 0, the C&W confidence (logits): the generator is
            pushed `kappa` logits past the decision boundary. Defaults to
            `5.0`. The defaults weigh the adversarial term ten times the
            others, as the public re-implementations do.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        num_classes: Int or None (read from `target_model`).
        target_fn: Optional callable `labels -> targets` (graph-safe,
            registered with `keras.saving.register_keras_serializable` to
            be saved); targeted only.
        from_logits: Bool or None: whether `target_model` outputs logits
            (None infers it, see `keras_adv.attacks.ModelLogits`).
        distillation: Optional `keras_adv.models.Distillation`: the black
            box `target_model` stands in for. (Deprecated, with a warning:
            `black_box=BlackBox(...)`, `distillation="static"|"dynamic"`.)
        d_steps: Int >= 1, discriminator steps per generator step.
            Defaults to `1`.
        seed: Int or None, seed of the random targets. Defaults to `None`.
        **kwargs: Passed to `keras.Model`.

    Example:

    ```python
    import keras_adv
    from keras_adv.models import AdvGAN, advgan_discriminator
    from keras_adv.models import advgan_generator, mnist_model_c

    (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
    classifier = mnist_model_c()  # trained beforehand
    advgan = AdvGAN(advgan_generator(eps=0.3), advgan_discriminator(),
                    classifier, eps=0.3, seed=0)
    advgan.compile()
    advgan.fit(x, y, batch_size=64, epochs=10)
    attack = keras_adv.attacks.GeneratorAttack(advgan)
    x_adv = attack(classifier, x_test, y_test)  # one forward pass
    ```

    Reference:
        Xiao, Li, Zhu, He, Liu and Song, "Generating Adversarial Examples with
        Adversarial Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        generator: keras.Model,
        discriminator: keras.Model,
        target_model: keras.Model,
        eps: float = 0.3,
        norm: Norm = "linf",
        targeted: bool = False,
        alpha: float = 0.1,
        beta: float = 0.1,
        c: float = 3.0,
        kappa: float = 5.0,
        value_range: ValueRange = (0.0, 1.0),
        num_classes: int | None = None,
        target_fn: Callable[[Tensor], TensorLike] | None = None,
        from_logits: bool | None = None,
        distillation: _distillation.Distillation
        | Literal["static", "dynamic"]
        | None = None,
        d_steps: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("latent_dim", None)
        black_box = kwargs.pop("black_box", None)
        super().__init__(
            generator,
            discriminator,
            latent_dim=1,
            d_steps=d_steps,
            seed=seed,
            **kwargs,
        )
        self.target_model = checks.check_target_model(target_model)
        self.threat_model = threat_models.get(norm, eps, value_range)
        self.eps = _validation.check_number("eps", eps, minimum=0.0)
        self.norm = self.threat_model.norm
        self.value_range = self.threat_model.value_range
        self.targeted = _validation.check_bool("targeted", targeted)
        self.alpha = _validation.check_number("alpha", alpha, minimum=0.0)
        self.beta = _validation.check_number("beta", beta, minimum=0.0)
        self.c = _validation.check_number("c", c, minimum=0.0)
        self.kappa = _validation.check_number("kappa", kappa, minimum=0.0)
        self.num_classes = checks.num_classes_of(target_model, num_classes)
        self.target_fn = checks.check_target_fn(target_fn, self.targeted)
        if from_logits is not None:
            from_logits = _validation.check_bool("from_logits", from_logits)
        self.from_logits = from_logits
        self.target_logits = ModelLogits(target_model, from_logits)
        self.conditioned = checks.check_generator(
            generator, self.targeted, self.num_classes
        )
        self.distillation = _distillation.from_arguments(
            distillation, black_box
        )
        self.trackers = [keras.metrics.Mean(name=n) for n in TRACKERS[2:]]
        self.s_loss_tracker = keras.metrics.Mean(name="s_loss")
        self._distill_function: Callable[..., dict[str, Any]] | None = None

    # ----------------------------------------------------------- compile
    def compile(  # type: ignore[override]  # auto_scale_loss: in kwargs
        self,
        d_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        g_optimizer: keras.optimizers.Optimizer | str | Config | None = None,
        loss: GANLoss | str | Config = "least_squares",
        **kwargs: Any,
    ) -> None:
        """Configures AdvGAN for training.

        Args:
            d_optimizer: Discriminator optimizer. Defaults to
                Adam(1e-3, beta_1=0.5).
            g_optimizer: Generator optimizer, same default.
            loss: The GAN term: a `keras_adv.losses.GANLoss` or its name.
                Defaults to `"least_squares"` (the paper's).
            **kwargs: As `keras_adv.models.GAN.compile`. (Deprecated:
                `s_optimizer`, the surrogate's optimizer, now
                `Distillation(optimizer=...)`.)
        """
        s_optimizer = kwargs.pop("s_optimizer", None)
        if s_optimizer is not None:
            warnings.warn(
                "AdvGAN.compile(s_optimizer=...) is deprecated: pass "
                "keras_adv.models.Distillation(..., optimizer=...) to "
                "AdvGAN (see CHANGELOG.md).",
                DeprecationWarning,
                stacklevel=2,
            )
            self._set_surrogate_optimizer(s_optimizer)
        if d_optimizer is None:
            d_optimizer = _default_optimizer()
        if g_optimizer is None:
            g_optimizer = _default_optimizer()
        super().compile(d_optimizer, g_optimizer, loss=loss, **kwargs)

    def _build_optimizers(self) -> None:
        super()._build_optimizers()
        if self.distillation is not None and self.target_model.built:
            self.distillation.build(self.target_model.trainable_variables)

    def compile_from_config(self, config: Config) -> None:
        config = dict(config)
        if "s_optimizer" in config:  # saved before Distillation held it
            self._set_surrogate_optimizer(
                keras.saving.deserialize_keras_object(config.pop("s_optimizer"))
            )
        super().compile_from_config(config)

    # ----------------------------------------------------------- metrics
    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        trackers = [self.d_loss_tracker, self.g_loss_tracker, *self.trackers]
        if self._dynamic():
            trackers.append(self.s_loss_tracker)
        return trackers

    # ------------------------------------------------------------ attack
    def sample_targets(self, labels: TensorLike) -> Tensor:
        """Targets for a batch: `target_fn(labels)` or uniform `!= labels`.

        Graph-safe; int32 `(batch,)`. Under a distribution strategy each
        replica folds its replica id into the draw (`replica_seed`).
        """
        labels = ops.cast(ops.reshape(labels, [-1]), "int32")
        if self.target_fn is not None:
            return ops.cast(ops.reshape(self.target_fn(labels), [-1]), "int32")
        return _advgan_batch.other_classes(
            labels,
            self.num_classes,
            self.seed_generator,
            self.replica_seed(),  # replicas draw different targets
        )

    def generator_inputs(
        self, x: Tensor, targets: TensorLike | None = None
    ) -> Tensor | list[Tensor]:
        """`x`, or `[x, one-hot targets]` for a conditioned generator."""
        if not self.conditioned:
            return x
        if targets is None:
            raise ValueError(
                "A targeted AdvGAN needs the target classes. Received: "
                "targets=None"
            )
        targets = checks.with_label_checks(targets, self.num_classes, "targets")
        return [x, ops.one_hot(ops.cast(targets, "int32"), self.num_classes)]

    def perturbation(
        self,
        x: Tensor,
        targets: TensorLike | None = None,
        training: bool = False,
    ) -> Tensor:
        """The generator's raw perturbation `G(x)` (float32)."""
        delta = self.generator(
            self.generator_inputs(x, targets), training=training
        )
        return ops.cast(delta, "float32")

    def adversarial(self, x: Tensor, delta: Tensor) -> Tensor:
        """`x + delta` projected onto the threat model."""
        return self.threat_model.project(x + delta, x)

    def call(
        self, inputs: TensorLike | Sequence[TensorLike], training: bool = False
    ) -> Tensor:
        """`x_adv` for `x` (untargeted) or `[x, targets]` (targeted)."""
        if isinstance(inputs, list | tuple):
            x, targets = inputs
        else:
            x, targets = inputs, None
        x = self._checked(x)
        return self.adversarial(
            x, self.perturbation(x, targets, training=training)
        )

    def attack(self) -> GeneratorAttack:
        """The trained generator as a `keras_adv.attacks.GeneratorAttack`."""
        return GeneratorAttack(self)

    def generate(  # type: ignore[override]  # from inputs, not latents
        self,
        x: ArrayLike,
        targets: ArrayLike | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Adversarial examples for an array `x`, eagerly, in batches.

        Args:
            x: Float array of inputs in `value_range`.
            targets: Int array of targets (targeted AdvGAN), classes of
                the target model, one per input.
            batch_size: Int. Defaults to `256`.

        Returns:
            A numpy array of the shape of `x`.

        Raises:
            ValueError: for inputs outside `value_range` or targets that
                are not classes of the target model.
        """
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        x = np.asarray(x, "float32")
        checks.check_arrays(
            x, targets, self.value_range, self.num_classes, "targets"
        )
        if targets is not None:
            targets = np.asarray(targets)
            _validation.check_same_length(x, targets, "targets")
        parts = []
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]
            inputs = (
                xb if targets is None else [xb, targets[i : i + batch_size]]
            )
            parts.append(ops.convert_to_numpy(self(inputs)))
        return np.concatenate(parts, axis=0)

    def fit(
        self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any
    ) -> keras.callbacks.History:
        """`keras.Model.fit`, after the checks of array data.

        Inputs must lie in `value_range` and labels be classes of the
        target model (ids in `[0, num_classes)` or one-hot rows of
        `num_classes`); arrays are checked here, the batches of a
        `tf.data.Dataset` in the training step (a failed check stops
        `fit` with the same message). Raises `ValueError` naming `x` or
        `y`.
        """
        self._check_arrays(x, y, kwargs.get("validation_data"))
        return super().fit(x, y, *args, **kwargs)

    def evaluate(
        self, x: Any = None, y: Any = None, *args: Any, **kwargs: Any
    ) -> Any:
        """`keras.Model.evaluate`, after the checks of `fit`."""
        self._check_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def _check_arrays(
        self, x: Any, y: Any, validation_data: Any = None
    ) -> None:
        checks.check_arrays(x, y, self.value_range, self.num_classes)
        validation = checks.validation_arrays(validation_data)
        if validation is not None:
            checks.check_arrays(*validation, self.value_range, self.num_classes)

    # -------------------------------------------------------------- steps
    def _checked(self, x: TensorLike) -> Tensor:
        """`x` as float32, after the in-graph check of its value range."""
        x = ops.cast(x, "float32")
        return _validation.after_checks(
            checks.batch_assertions(x, self.value_range), x
        )

    def _labels(self, x: Tensor, y: Tensor | None) -> Tensor:
        if y is None:
            logits = self.target_logits(x)
            return ops.cast(ops.argmax(logits, axis=-1), "int32")
        y = checks.with_label_checks(y, self.num_classes, "y")
        return sparse_labels(y)  # ids, (batch, 1) or one-hot rows

    def _attack_labels(self, x: Tensor, y: Tensor | None) -> Tensor:
        """The labels `y` (or predictions), or sampled targets if targeted."""
        labels = self._labels(x, y)
        return self.sample_targets(labels) if self.targeted else labels

    def discriminator_step(
        self, x: Tensor, y: Tensor | None = None, x_adv: Tensor | None = None
    ) -> dict[str, Tensor]:
        """One discriminator update: `x` real, `x_adv` fake.

        Args:
            x: The batch.
            y: The attack labels (the targets when targeted).
            x_adv: The adversarial batch (a constant), as the training
                step passes it; computed from `G(x)` if None.

        Returns:
            Dict `{"d_loss": scalar}`.
        """
        if x_adv is None:
            x_adv = self.adversarial(x, self.perturbation(x, y, training=True))
        return self.update_discriminator(x, x_adv)

    def generator_terms(
        self,
        x: Tensor,
        y: Tensor,
        training: bool = True,
        delta: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The generator's loss terms on a batch (call inside a tape).

        Args:
            x: The batch.
            y: The attack labels (the targets when targeted).
            training: Bool, the networks' mode.
            delta: Optional `G(x)` already computed under the same tape
                (`perturbation(x, y, training)`); computed here if None.

        Returns:
            Dict with `g_loss`, `g_gan`, `g_adv`, `g_hinge`, `success_rate`,
            `perturbation_norm` and `x_adv`.
        """
        if delta is None:
            delta = self.perturbation(x, y, training=training)
        x_adv = self.adversarial(x, delta)
        values = _advgan_batch.attack_terms(
            x,
            delta,
            x_adv,
            y,
            self.target_logits(x_adv),
            self.kappa,
            self.c,
            self.targeted,
        )
        real_logits = None
        if getattr(self.gan_loss, "generator_uses_real_logits", True):
            real_logits = ops.stop_gradient(
                self.discriminate(x, training=training)
            )
        fake_logits = self.discriminate(x_adv, training=training)
        values["g_gan"] = self.generator_loss(real_logits, fake_logits)
        values["g_loss"] = (
            values["g_adv"]
            + self.alpha * values["g_gan"]
            + self.beta * values["g_hinge"]
        )
        values["x_adv"] = x_adv
        return values

    def generator_step(
        self,
        x: Tensor,
        y: Tensor | None = None,
        delta: Tensor | None = None,
        tape: tf.GradientTape | None = None,
    ) -> dict[str, Tensor]:
        """One generator update on `generator_terms`' `g_loss`.

        Args:
            x: The batch.
            y: The attack labels (the targets when targeted).
            delta: `G(x)` in training mode, recorded on `tape`, as the
                training step passes it: the update continues that tape
                instead of running the generator again. None (with `tape`
                None): computed here, on a tape of its own.
            tape: The `tf.GradientTape` (exited, not yet differentiated)
                that recorded `delta`.

        Returns:
            The dict of `generator_terms`.
        """
        if (delta is None) != (tape is None):
            expected = "the tape that recorded `delta` (both or neither)"
            raise ValueError(_validation.invalid("tape", expected, tape))
        if tape is None:
            tape = tf.GradientTape()
        with tape:
            values = self.generator_terms(x, y, training=True, delta=delta)
        self.apply_update(
            tape,
            values["g_loss"],
            self.generator.trainable_variables,
            self.g_optimizer,
        )
        return values

    def train_step(self, data: Any) -> dict[str, Tensor]:
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = self._checked(x)
        labels = self._attack_labels(x, y)
        with tf.GradientTape() as tape:
            delta = self.perturbation(x, labels, training=True)
        x_fake = ops.stop_gradient(self.adversarial(x, delta))
        values = {}
        for _ in range(self.d_steps):
            values.update(self.discriminator_step(x, labels, x_adv=x_fake))
        values.update(self.generator_step(x, labels, delta=delta, tape=tape))
        x_adv = ops.stop_gradient(values.pop("x_adv"))
        if self._dynamic():
            batch = ops.concatenate([x, x_adv], axis=0)
            answers = self.distillation.black_box(batch)  # type: ignore[union-attr, misc]
            values.update(self.surrogate_step(batch, answers))
        results = self.update_trackers(values)
        if self.black_box is not None:
            results["queries"] = self.black_box.queries
        return results

    def test_step(self, data: Any) -> dict[str, Tensor]:
        """Validation: every term on a batch, without updates."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        x = self._checked(x)
        labels = self._attack_labels(x, y)
        values = self.generator_terms(x, labels, training=False)
        x_adv = values.pop("x_adv")
        real_logits = self.discriminate(x, training=False)
        fake_logits = self.discriminate(x_adv, training=False)
        values["d_loss"] = self.discriminator_loss(real_logits, fake_logits)
        return self.update_trackers(values)

    # -------------------------------------------------------------- config
    def get_config(self) -> Config:
        config = super().get_config()
        config.pop("latent_dim", None)
        config.update(
            {
                "target_model": keras.saving.serialize_keras_object(
                    self.target_model
                ),
                "eps": self.eps,
                "norm": self.norm,
                "targeted": self.targeted,
                "alpha": self.alpha,
                "beta": self.beta,
                "c": self.c,
                "kappa": self.kappa,
                "value_range": list(self.value_range),
                "num_classes": self.num_classes,
                "target_fn": keras.saving.serialize_keras_object(
                    self.target_fn
                ),
                "from_logits": self.from_logits,
                "distillation": keras.saving.serialize_keras_object(
                    self.distillation
                ),
            }
        )
        return config

    @classmethod
    def from_config(cls: type[_AdvGANT], config: Config) -> _AdvGANT:
        config = dict(config)
        for key in ("generator", "discriminator", "target_model"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        if config.get("target_fn") is not None:
            config["target_fn"] = keras.saving.deserialize_keras_object(
                config["target_fn"]
            )
        distillation = config.get("distillation")
        if isinstance(distillation, str):
            # Saved before 0.2: the mode alone (the black box never is).
            distillation = _distillation.from_arguments(
                distillation,  # type: ignore[arg-type]  # a mode, checked
                None,
                warn=False,
            )
        elif distillation is not None:
            distillation = keras.saving.deserialize_keras_object(distillation)
        config["distillation"] = distillation
        return cls(**config)
