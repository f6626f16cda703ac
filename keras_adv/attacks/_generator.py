"""`GeneratorAttack`: a trained perturbation generator as an `Attack`."""

import os
from typing import Any
from typing import TypeVar

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits

_GeneratorAttackT = TypeVar("_GeneratorAttackT", bound="GeneratorAttack")


def _generator_of(generator: Any) -> tuple[keras.Model, dict[str, Any]]:
    """`(keras.Model, settings of an AdvGAN or {})` from the argument."""
    inner = getattr(generator, "generator", None)
    if (
        isinstance(generator, keras.Model)
        and isinstance(inner, keras.Model)
        and hasattr(generator, "target_model")
    ):
        # An AdvGAN (duck-typed: keras_adv.models imports attacks).
        settings = {
            "eps": generator.eps,
            "norm": generator.norm,
            "value_range": tuple(generator.value_range),
            "targeted": generator.targeted,
        }
        return inner, settings
    if isinstance(generator, keras.Model):
        return generator, {}
    raise TypeError(
        _validation.invalid(
            "generator",
            "a keras.Model, a keras_adv.models.AdvGAN or the path of a "
            ".keras file",
            generator,
        )
    )


@register
class GeneratorAttack(Attack):
    """Attacks with a trained perturbation generator in one forward pass.

    `x_adv = project(x + G(x))`: the generator's perturbation, projected
    onto the threat model (the `norm` ball of radius `eps` around `x`,
    then `value_range`). The generator is a Keras model mapping `x` to a
    perturbation, e.g. `keras_adv.models.advgan_generator` trained by
    `keras_adv.models.AdvGAN`; a conditioned generator (two inputs,
    `[x, one-hot target]`) makes a targeted attack. No gradient of the
    attacked model is used: the attack costs one generator and (without
    labels) one classifier forward pass, whatever the model.

    A conditioned generator used untargeted (`targeted=False`, as in
    `evaluate_robustness` or `keras-adv evaluate`) is conditioned on each
    sample's most likely wrong class, the runner-up of the model's clean
    logits (`untargeted_condition`; one more classifier forward pass),
    never on the true label.

    The generator must output one value per input coordinate: a
    generator whose output shape is not its input's raises a
    `ValueError` naming both shapes (at construction when the shapes are
    static, else at the first call).

    Like every attack, it runs in `evaluate_robustness`,
    `RobustnessMonitor`, `keras-adv evaluate --attack generator:PATH.keras`
    and `AdversarialTraining` (training against a fixed generator). When
    an evaluation sweeps radii, the same perturbation is projected onto
    each ball (at the generator's own eps the projection changes nothing;
    `eps=0` returns `x`).

    The generator's weights are not part of `get_config` (a config holds
    its architecture, or its path when the attack was built from a
    `.keras` file): build the attack from a path for a config that
    reproduces it.

    Distance measure: L-inf (or L2).

    Args:
        generator: A Keras model `x -> perturbation` (or
            `[x, one-hot target] -> perturbation`), a
            `keras_adv.models.AdvGAN` (its generator, eps, norm, value
            range and targeting are the defaults), or the path of a
            `.keras` file holding a generator.
        eps: Float >= 0 or None (the AdvGAN's eps, else `0.3`).
        norm: `"linf"`, `"l2"` or None (the AdvGAN's, else `"linf"`).
        value_range: Pair or None (the AdvGAN's, else `(0.0, 1.0)`).
        targeted: Bool or None (the AdvGAN's, else `False`); needs a
            conditioned generator.
        from_logits: Bool or None (infer); only used to label inputs
            without `y`.
        seed: Int or None (unused: the attack is deterministic).
        jit_compile: Bool. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> generator = keras.Sequential([
    ...     keras.Input((4,)), keras.layers.Dense(4),
    ...     keras_adv.layers.PerturbationBound(0.1)])
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> attack = keras_adv.attacks.GeneratorAttack(generator, eps=0.1)
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = np.asarray(attack(model, x, np.array([0, 1])))
    >>> bool(np.abs(x_adv - x).max() <= 0.1 + 1e-6)
    True

    Reference:
        Xiao et al., "Generating Adversarial Examples with Adversarial
        Networks", IJCAI 2018,
        [arXiv:1801.02610](https://arxiv.org/abs/1801.02610).
    """

    def __init__(
        self,
        generator: keras.Model | str | os.PathLike[str] | Config,
        eps: Eps | None = None,
        norm: Norm | None = None,
        value_range: ValueRange | None = None,
        targeted: bool | None = None,
        from_logits: bool | None = None,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        self.path: str | None = None
        if isinstance(generator, str | os.PathLike):
            self.path = os.fspath(generator)
            generator = keras.saving.load_model(self.path, compile=False)
        elif isinstance(generator, dict):
            generator = keras.saving.deserialize_keras_object(generator)
        model, settings = _generator_of(generator)
        settings = {
            "eps": 0.3,
            "norm": "linf",
            "value_range": (0.0, 1.0),
            "targeted": False,
            **settings,
        }
        given = {
            "eps": eps,
            "norm": norm,
            "value_range": value_range,
            "targeted": targeted,
        }
        settings.update({k: v for k, v in given.items() if v is not None})
        super().__init__(
            loss="ce",
            from_logits=from_logits,
            seed=seed,
            jit_compile=jit_compile,
            **settings,
        )
        self.generator = model
        inputs = getattr(model, "inputs", None) or []
        self.conditioned = len(inputs) == 2
        if self.targeted and not self.conditioned:
            raise ValueError(
                _validation.invalid(
                    "targeted",
                    "False for a generator with one input (a targeted "
                    "attack needs a generator conditioned on the target: "
                    "inputs [x, one-hot target])",
                    True,
                )
            )
        self.num_classes: int | None = None
        if self.conditioned:
            self.num_classes = int(inputs[1].shape[-1])
        outputs = getattr(model, "outputs", None) or []
        if inputs and len(outputs) == 1:
            _validation.check_generator_output(
                inputs[0].shape, outputs[0].shape
            )
        # The architecture never changes: serialise it once (the graph
        # cache reads the config on every call).
        self._generator_config = (
            self.path
            if self.path is not None
            else keras.saving.serialize_keras_object(model)
        )

    def perturbation(
        self, x: TensorLike, targets: Tensor | None = None
    ) -> Tensor:
        """The generator's raw perturbation `G(x)` (graph-safe, float32).

        Args:
            x: Float tensor of inputs.
            targets: Int tensor `(batch,)` of target classes, for a
                conditioned generator (checked in the graph to be classes
                of the generator's condition).

        Raises:
            ValueError: for a generator whose output shape is not the
                shape of `x`, or a conditioned one without targets.
        """
        x = ops.cast(x, "float32")
        if self.conditioned:
            if targets is None:
                raise ValueError(
                    "A conditioned generator needs the target classes. "
                    "Received: targets=None"
                )
            targets = _validation.after_checks(
                _validation.label_assertions(
                    targets, self.num_classes, name="targets"
                ),
                targets,
            )
            one_hot = ops.one_hot(ops.cast(targets, "int32"), self.num_classes)
            delta = self.generator([x, one_hot], training=False)
        else:
            delta = self.generator(x, training=False)
        _validation.check_generator_output(x.shape, delta.shape)
        return ops.cast(delta, "float32")

    def untargeted_condition(self, logits: Tensor, y: Tensor) -> Tensor:
        """The condition of an untargeted conditioned generator.

        The most likely class other than `y` (the runner-up of the clean
        logits): the nearest rival, the target an untargeted attack
        reaches with the smallest move (as the rival of C&W's and the
        margin loss). Conditioning on `y` itself would aim each
        perturbation at the class the sample already has.

        Args:
            logits: Float32 `(batch, classes)`, the model's clean logits.
            y: Int32 `(batch,)`, the true labels.

        Returns:
            Int32 `(batch,)` targets.
        """
        is_label = ops.one_hot(y, logits.shape[-1]) > 0
        rival = ops.where(is_label, float("-inf"), logits)
        return ops.cast(ops.argmax(rival, axis=-1), "int32")

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        del seed
        targets = None
        if self.conditioned:
            targets = y
            if not self.targeted:
                targets = self.untargeted_condition(model_logits(x), y)
        delta = self.perturbation(x, targets)
        return self.threat_model.project(x + delta, x, eps)

    def get_config(self) -> Config:
        config = super().get_config()
        del config["loss"], config["training"]
        config["generator"] = self._generator_config
        return config

    @classmethod
    def from_config(
        cls: type[_GeneratorAttackT], config: Config
    ) -> _GeneratorAttackT:
        config = dict(config)
        config.pop("loss", None)
        config.pop("training", None)
        return cls(**config)
