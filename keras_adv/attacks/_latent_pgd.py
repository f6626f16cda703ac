"""`LatentPGD`: projected gradient ascent in a learned set's latent ball."""

from typing import Any
from typing import TypeVar
from typing import cast

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _signature
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits
from keras_adv.losses._margin import serialize as serialize_loss
from keras_adv.threat_models import LearnedPerturbationSet
from keras_adv.threat_models._learned import check_instance

# The paper's step sizes: radius / 20 for 50 evaluation steps, radius / 5
# for 7 training steps; max(1 / 20, 1.4 / steps) gives both.
_MIN_RELATIVE_STEP = 1.0 / 20.0
_STEP_BUDGET = 1.4

_LatentPGDT = TypeVar("_LatentPGDT", bound="LatentPGD")


def _check_threat_model(threat_model: Any) -> LearnedPerturbationSet:
    return check_instance(
        "threat_model",
        threat_model,
        LearnedPerturbationSet,
        "keras_adv.threat_models.LearnedPerturbationSet",
    )


@register
class LatentPGD(Attack):
    """PGD on the latent offset `u` of a learned perturbation set.

    Maximises the loss of `model(g(mu_p(x) + sigma_p(x) * u, x))` over
    `||u||_2 <= radius` (a `LearnedPerturbationSet`): from a random
    direction scaled to a uniform length in the radius, `steps` times
    `u <- Proj(u + step_size * grad_u / ||grad_u||_2)`. With
    `early_stop=True` a sample stops moving as soon as it is misclassified
    (on target, if targeted) and the loop ends when every sample has, as
    in the reference implementation. The result is a member of the set,
    clipped to the value range.

    Distance measure: L2 in the whitened latent space of the CVAE's prior.
    Defaults from the paper: 50 steps of `radius / 20` for evaluation;
    use `steps=7` for adversarial training (the default step is then
    `radius / 5`, the reference's training step).

    Args:
        threat_model: A `keras_adv.threat_models.LearnedPerturbationSet`
            (its radius is the attack's `eps`).
        steps: Int >= 1. Defaults to `50`.
        step_size: Float > 0 in latent units, or None for
            `max(1 / 20, 1.4 / steps) * radius` (radius / 20 at 50 steps,
            radius / 5 at 7). Defaults to `None`.
        random_start: Bool, start from a random point of the latent ball
            (else from `u = 0`, the centre of the set). Defaults to `True`.
        early_stop: Bool, freeze samples once successful. Defaults to
            `True`.
        targeted: Bool; if True `y` holds target classes. Defaults to
            `False`.
        loss: `"ce"`, `"margin"` or a callable (see `keras_adv.losses.get`).
            Defaults to `"ce"`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the classifier's forward passes.
            Defaults to `False`.
        seed: Int or None. Defaults to `None`.
        jit_compile: Bool. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=8, latent_dim=4,
    ...     input_shape=(2, 2, 1), seed=0)
    >>> tm = keras_adv.threat_models.LearnedPerturbationSet(cvae, radius=1.0)
    >>> model = keras.Sequential([keras.Input((2, 2, 1)),
    ...     keras.layers.Flatten(), keras.layers.Dense(3)])
    >>> x = np.full((4, 2, 2, 1), 0.5, "float32")
    >>> x_adv = keras_adv.attacks.LatentPGD(tm, steps=3, seed=0)(model, x)
    >>> tuple(x_adv.shape)
    (4, 2, 2, 1)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450).
    """

    searches_latent_space = True

    def __init__(
        self,
        threat_model: LearnedPerturbationSet | Config,
        steps: int = 50,
        step_size: float | None = None,
        random_start: bool = True,
        early_stop: bool = True,
        targeted: bool = False,
        loss: AttackLoss = "ce",
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        threat_model = _check_threat_model(threat_model)
        super().__init__(
            eps=threat_model.eps,
            norm="l2",
            value_range=threat_model.value_range,
            targeted=targeted,
            loss=loss,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.threat_model = threat_model
        self.steps = _validation.check_int("steps", steps, minimum=1)
        if step_size is not None:
            step_size = _validation.check_number(
                "step_size", step_size, minimum=0.0, strict=True
            )
        self.step_size = step_size
        self.random_start = _validation.check_bool("random_start", random_start)
        self.early_stop = _validation.check_bool("early_stop", early_stop)

    @property
    def relative_step_size(self) -> float:
        """Default step in units of the radius: `max(1/20, 1.4/steps)`."""
        return max(_MIN_RELATIVE_STEP, _STEP_BUDGET / self.steps)

    def step_size_for(self, radius: float | Tensor) -> Tensor:
        """The latent step size at `radius` (float32 tensor)."""
        radius = ops.cast(radius, "float32")
        if self.step_size is not None:
            return ops.cast(self.step_size, "float32") + 0.0 * radius
        return self.relative_step_size * radius

    # ------------------------------------------------------------- search
    def latent_search(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Runs the search; returns `(u, x_adv)` (graph-safe, float32)."""
        tm = cast(LearnedPerturbationSet, self.threat_model)
        mean, std = tm.prior(x)
        radius = tm.latent_radius(mean, eps)
        step_size = self.step_size_for(radius)
        if self.random_start:
            u = tm.random_latent(mean, seed=_random.fold_seed(seed, 0), eps=eps)
        else:
            u = ops.zeros_like(mean)
        batch = ops.shape(x)[0]
        expand = [-1] + [1] * (len(mean.shape) - 1)

        def cond(i: Tensor, u: Tensor, active: Tensor) -> Tensor:
            more = i < self.steps
            if self.early_stop:
                more = ops.logical_and(more, ops.any(active))
            return more

        def body(
            i: Tensor, u: Tensor, active: Tensor
        ) -> tuple[Tensor, Tensor, Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(u)
                logits = model_logits(tm.decode(x, mean, std, u))
                total = ops.sum(self.objective(logits, y))
            grad = tape.gradient(
                total, u, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            grad = ops.where(ops.isfinite(grad), grad, 0.0)
            if self.early_stop:
                done = self.is_successful(logits, y)
                active = ops.logical_and(active, ops.logical_not(done))
            stepped = u + step_size * tm.ascent_direction(grad)
            stepped = tm.project_latent(stepped, eps)
            u = ops.where(ops.reshape(active, expand), stepped, u)
            return i + 1, u, active

        active = ops.ones([batch], "bool")
        _, u, _ = ops.while_loop(
            cond, body, (ops.convert_to_tensor(0), u, active)
        )
        u = ops.stop_gradient(u)
        return u, tm.decode(x, mean, std, u)

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        return self.latent_search(model_logits, x, y, eps, seed)[1]

    def __repr__(self) -> str:
        return (
            f"LatentPGD({self.threat_model!r}, steps={self.steps}, "
            f"step_size={self.step_size}, random_start={self.random_start}, "
            f"early_stop={self.early_stop}, loss={self.loss!r}, "
            f"seed={self.seed})"
        )

    # ------------------------------------------------------ serialisation
    def _settings(self) -> Config:
        config: Config = {
            "targeted": self.targeted,
            "loss": serialize_loss(self.loss),
            "from_logits": self.from_logits,
            "training": self.training,
            "seed": self.seed,
            "jit_compile": self.jit_compile,
        }
        config.update(
            steps=self.steps,
            step_size=self.step_size,
            random_start=self.random_start,
            early_stop=self.early_stop,
        )
        return config

    def graph_config(self) -> Config:
        """The settings that shape the graph (see `keras_adv._signature`).

        The CVAE enters by identity: serialising it on every call would
        cost more than a short attack.
        """
        settings = self._settings()
        threat_model = cast(LearnedPerturbationSet, self.threat_model)
        settings["cvae"] = _signature.callable_token(threat_model.cvae)
        settings["value_range"] = list(self.value_range)
        return settings

    def get_config(self) -> Config:
        config = {
            "threat_model": keras.saving.serialize_keras_object(
                self.threat_model
            ),
            "eps": self.threat_model.get_config()["radius"],
        }
        config.update(self._settings())
        return config

    @classmethod
    def from_config(cls: type[_LatentPGDT], config: Config) -> _LatentPGDT:
        config = dict(config)
        radius = config.pop("eps", None)
        threat_model = _check_threat_model(config.pop("threat_model"))
        if radius is not None:
            threat_model.eps = radius
        return cls(threat_model, **config)
