"""Verified training: IBP and CROWN-IBP as adversarial-training objectives.

No attack runs: the step trains on the clean batch (Keras' own step
computes the compiled cross-entropy, the nominal term) and the objective
adds, in `compute_loss`, the cross-entropy of the worst-case logits: the
negated lower bounds of the margins `z_y - z_j` over the threat model's
ball, computed by `keras_adv.certification`'s bounds inside the gradient
tape (the bound rules read the weights on every call, so the bounds are
differentiable in them). See `_objective.py` for the contract.

The schedules follow the eps ramp: the step's eps divided by the target
eps is the ramp fraction `r` in `[0, 1]`, so the warm-up of
`AdversarialTraining(eps_warmup_epochs=...)` (or a `keras.Variable` eps
changed by any callback) drives them in the graph, without retracing.
"""

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.certification import _bounder
from keras_adv.losses import cross_entropy
from keras_adv.training._objective import Objective
from keras_adv.training._objective import weighted_batch_mean

#: Compiled losses that are the nominal cross-entropy term.
_CROSS_ENTROPY_NAMES = (
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
)
_CROSS_ENTROPY_CLASSES = (
    keras.losses.SparseCategoricalCrossentropy,
    keras.losses.CategoricalCrossentropy,
)
_CROSS_ENTROPY_FUNCTIONS = (
    keras.losses.sparse_categorical_crossentropy,
    keras.losses.categorical_crossentropy,
)


def ramp_fraction(eps: Any, target_eps: float) -> Tensor:
    """`clip(eps / target_eps, 0, 1)` as float32; 1 when the target is 0."""
    eps = ops.cast(eps, "float32")
    if target_eps == 0.0:
        return ops.ones_like(eps)
    return ops.clip(eps / target_eps, 0.0, 1.0)


def _is_cross_entropy(loss: object) -> bool:
    if isinstance(loss, str):
        return loss in _CROSS_ENTROPY_NAMES
    if isinstance(loss, _CROSS_ENTROPY_CLASSES):
        return not loss.get_config().get("label_smoothing")
    return any(loss is fn for fn in _CROSS_ENTROPY_FUNCTIONS)


class VerifiedObjective(Objective):
    """Base of the verified-training objectives (internal).

    Subclasses set `method` (`"ibp"` or `"crown_ibp"`) and may override
    `_margins` (the lower bounds before the true class is zeroed).
    """

    method = "ibp"
    trains_on_clean = True

    def __init__(
        self,
        attack: Attack,
        initial_kappa: float,
        final_kappa: float,
        target_eps: float | None,
    ) -> None:
        super().__init__(attack)
        owner = type(self).__name__
        if attack.norm not in _bounder.NORMS:
            raise ValueError(
                f"{owner} bounds L-inf and L2 balls. Received: attack="
                f"{attack!r} with a threat model of norm {attack.norm!r}."
            )
        self.initial_kappa = _weight("initial_kappa", initial_kappa)
        self.final_kappa = _weight("final_kappa", final_kappa)
        if target_eps is None:
            if not _validation._is_number(attack.eps):
                raise ValueError(
                    _validation.invalid(
                        "target_eps",
                        "a number >= 0 when the attack's eps is a variable "
                        "or tensor (the eps the ramp ends at)",
                        target_eps,
                    )
                )
        else:
            target_eps = _validation.check_number(
                "target_eps", target_eps, minimum=0.0
            )
        self.target_eps = target_eps

    # ---------------------------------------------------------- schedules
    @property
    def ramp_target(self) -> float:
        """The eps at which the ramp ends (`target_eps`, else the attack's)."""
        if self.target_eps is not None:
            return self.target_eps
        return float(self.attack.eps)  # type: ignore[arg-type]

    def kappa(self, fraction: Any) -> Any:
        """The weight of the nominal term at ramp fraction `fraction`.

        Linear from `initial_kappa` (`fraction = 0`) to `final_kappa`
        (`fraction = 1`); floats give a float, tensors a tensor.
        """
        return (
            self.initial_kappa
            + (self.final_kappa - self.initial_kappa) * fraction
        )

    # -------------------------------------------------------------- hooks
    def check_model(self, model: keras.Model, network: keras.Model) -> None:
        """The compiled loss is a cross-entropy; the bounds read `network`."""
        loss = getattr(model, "loss", None)
        if not _is_cross_entropy(loss):
            raise ValueError(
                f"{type(self).__name__} trains on kappa * CE(z(x), y) + "
                "(1 - kappa) * CE(worst-case logits, y), with the compiled "
                "loss as the nominal cross-entropy: compile the model "
                f"{model.name!r} with keras.losses."
                "SparseCategoricalCrossentropy or CategoricalCrossentropy "
                f"(no label smoothing). Received: loss={loss!r}."
            )
        if network.built:
            self._bounder(network)

    def _bounder(self, network: keras.Model) -> Any:
        """The network read into bound rules (cached); refusals named."""
        uses_crown = self.method != "ibp"
        try:
            bounder = _bounder.bounder(
                network, self.method if uses_crown else None
            )
            bounder.check_classes()
        except (NotImplementedError, ValueError) as error:
            raise type(error)(
                f"{type(self).__name__} cannot train model {network.name!r}: "
                f"{error}"
            ) from None
        return bounder

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        """No attack: the bounds replace it (`x` itself, at no cost)."""
        return x

    def worst_case_logits(
        self, model: keras.Model, x: Tensor, y: Tensor, eps: Tensor
    ) -> Tensor:
        """`-m(x, eps)`: the negated margin lower bounds, 0 at the label.

        `m_j <= z_y(x') - z_j(x')` for every `x'` in the ball (float32,
        `(batch, classes)`); the schedules read the ramp fraction
        `eps / ramp_target`. Differentiable in the weights.
        """
        bounder = self._bounder(model)
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        labels = sparse_labels(y)
        value_range = self.threat_model.value_range
        bounds = bounder.propagate(x32, eps32, self.attack.norm, value_range)
        fraction = ramp_fraction(eps32, self.ramp_target)
        margins = self._margins(bounder, bounds, x32, labels, eps32, fraction)
        return -bounder.zero_true_class(margins, labels)

    def _margins(
        self,
        bounder: Any,
        bounds: Any,
        x: Tensor,
        labels: Tensor,
        eps: Tensor,
        fraction: Tensor,
    ) -> Tensor:
        return bounder.ibp_margins(bounds, labels)

    def extra_loss(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        y_pred: Tensor,
        sample_weight: Tensor | None,
        x_adv: Tensor,
        eps: Tensor | None = None,
        seed: Tensor | None = None,
    ) -> tuple[Tensor | None, Tensor | None]:
        """`(1 - kappa) * (CE(worst-case logits) - CE(z(x)))`, batch mean.

        Added to the compiled cross-entropy on the clean batch, the loss
        is `kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x, eps), y)`. The
        predictions returned for the adversarial metrics are the
        worst-case logits (as probabilities for a probability model):
        `adv_loss` is the verified cross-entropy and `adv_accuracy` the
        share of the batch the training bound verifies at `eps`.
        """
        eps = self.attack.eps if eps is None else eps
        worst = self.worst_case_logits(model, x, y, eps)
        labels = sparse_labels(y)
        adapter = self.model_logits(model)
        robust = cross_entropy(labels, worst)
        nominal = cross_entropy(labels, adapter.head(y_pred))
        kappa = self.kappa(ramp_fraction(eps, self.ramp_target))
        term = (1.0 - kappa) * weighted_batch_mean(
            robust - nominal, sample_weight
        )
        adv_pred = worst if adapter.from_logits is True else ops.softmax(worst)
        return term, adv_pred

    # ------------------------------------------------------ serialisation
    def get_config(self) -> Config:
        config = super().get_config()
        del config["training_mode_attack"]  # no attack runs
        config.update(
            initial_kappa=self.initial_kappa,
            final_kappa=self.final_kappa,
            target_eps=self.target_eps,
        )
        return config


def _weight(name: str, value: object) -> float:
    return _validation.check_number(name, value, minimum=0.0, maximum=1.0)


@register
class IBP(VerifiedObjective):
    """Interval bound propagation training (Gowal et al. 2018).

    The loss is `kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x, eps), y)`,
    where `m_j` lower-bounds the margin `z_y - z_j` over the ball of the
    attack's threat model (`keras_adv.certification.margin_bounds(...,
    method="ibp")`, the last Dense layer folded into the margin as in the
    paper): the cross-entropy of the worst-case logits. No attack runs;
    the attack only supplies the threat model (eps, norm, value range).
    A step costs about one forward pass more than plain training (the
    interval pass) and its backward pass.

    `kappa` goes linearly from `initial_kappa` to `final_kappa` as eps
    ramps up: at ramp fraction `r = eps / target_eps`, `kappa =
    initial_kappa + (final_kappa - initial_kappa) * r`. The defaults 1 ->
    0.5 are Gowal et al.'s (their reference code ramps both eps and kappa
    linearly per step after clean warm-up steps; here the ramp is the
    step's eps, e.g. `AdversarialTraining(start_epoch=..., eps_warmup_
    epochs=...)`, whose epochs before `start_epoch` are the clean
    warm-up). Gowal et al. train MNIST at a larger eps than they test (0.4
    for 0.3, 0.2 for 0.1).

    Compile the model with `SparseCategoricalCrossentropy` or
    `CategoricalCrossentropy` (the nominal term; anything else is refused
    at train begin). The bounds are those of the network in inference
    mode (dropout off, batch normalization with its moving statistics),
    in float32 whatever the dtype policy; a layer without a sound bound
    rule is refused by name when training starts. `adv_loss` logs the
    verified cross-entropy and `adv_accuracy` the share of each batch
    verified at the current eps (by the training bound).

    Args:
        attack: An untargeted attack with an L-inf or L2 threat model,
            e.g. `PGD(eps=0.4)` (only its threat model is used).
        initial_kappa: Float in `[0, 1]`, the nominal weight at the start
            of the ramp. Defaults to `1.0`.
        final_kappa: Float in `[0, 1]`, the nominal weight once eps has
            reached `target_eps`. Defaults to `0.5`.
        target_eps: Float >= 0, the eps the ramp ends at, or None for the
            attack's eps (a number; pass it when the attack's eps is a
            variable you ramp yourself). Defaults to None.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)),
    ...     keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> x = np.random.default_rng(0).uniform(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> cb = keras_adv.callbacks.AdversarialTraining(
    ...     keras_adv.attacks.PGD(eps=0.05), "ibp", eps_warmup_epochs=2)
    >>> history = model.fit(x, y, epochs=3, verbose=0, callbacks=[cb])
    >>> sorted(history.history)
    ['adv_accuracy', 'adv_loss', 'loss']
    >>> keras_adv.training.IBP(keras_adv.attacks.PGD(eps=0.4)).kappa(0.5)
    0.75

    Reference:
        Gowal, Dvijotham, Stanforth, Bunel, Qin, Uesato, Arandjelovic, Mann
        and Kohli, "On the Effectiveness of Interval Bound Propagation for
        Training Verifiably Robust Models", 2018,
        [arXiv:1810.12715](https://arxiv.org/abs/1810.12715).
    """

    method = "ibp"

    def __init__(
        self,
        attack: Attack,
        initial_kappa: float = 1.0,
        final_kappa: float = 0.5,
        target_eps: float | None = None,
    ) -> None:
        super().__init__(attack, initial_kappa, final_kappa, target_eps)


@register
class CROWNIBP(VerifiedObjective):
    """CROWN-IBP training (Zhang et al. 2020).

    As `IBP`, with margin lower bounds that mix a CROWN-IBP bound (IBP
    intervals forward, then one CROWN backward pass from the margins that
    relaxes each ReLU on its IBP interval) with the IBP one:
    `m = beta * m_CROWN-IBP + (1 - beta) * m_IBP`, a convex combination of
    two sound bounds, so still sound. The loss is
    `kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x, eps), y)`.

    Both weights follow the eps ramp linearly (ramp fraction `r = eps /
    target_eps`), as in the paper's reference code: `beta` from
    `initial_beta` to `final_beta` (1 -> 0: the tight CROWN-IBP bound
    stabilises the start, the cheaper IBP bound finishes), `kappa` from
    `initial_kappa` to `final_kappa` (1 -> 0, the paper's `kappa_start =
    1, kappa_end = 0` setting; `initial_kappa=0.0` is its other one, and
    the reference code's small MNIST models train on the verified term
    alone). Zhang et al. train MNIST at eps 0.4 for a test eps of 0.3 (0.2
    for 0.1), ramping eps over 50 of 200 epochs after 10 clean ones.

    While `beta > 0` a step costs an IBP pass plus the backward bound pass,
    about `classes` backward passes of the network in one batched pass;
    once `beta` is 0 the CROWN pass is skipped in the graph and a step
    costs what an IBP step does. CROWN needs a linear relaxation of every
    layer: Dense, convolutions, ReLU and leaky ReLU, batch normalization,
    rescaling, normalization, average pooling, reshapes, Add, Subtract,
    Average, Concatenate. Max pooling and other activations are refused
    by name when training starts (`IBP` trains them; the papers' CNNs,
    `keras_adv.models.ibp_cnn`, have none).

    Args:
        attack: An untargeted attack with an L-inf or L2 threat model,
            e.g. `PGD(eps=0.4)` (only its threat model is used).
        initial_kappa: Float in `[0, 1]`. Defaults to `1.0`.
        final_kappa: Float in `[0, 1]`. Defaults to `0.0`.
        initial_beta: Float in `[0, 1]`, the CROWN-IBP share of the bound at
            the start of the ramp. Defaults to `1.0`.
        final_beta: Float in `[0, 1]`, its share once eps has reached
            `target_eps`. Defaults to `0.0`.
        target_eps: Float >= 0 or None (the attack's eps). Defaults to None.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.CROWNIBP(
    ...     keras_adv.attacks.PGD(eps=0.4))
    >>> objective.kappa(0.25), objective.beta(0.25)
    (0.75, 0.75)

    Reference:
        Zhang, Chen, Xiao, Gowal, Stanforth, Li, Boning and Hsieh, "Towards
        Stable and Efficient Training of Verifiably Robust Neural
        Networks", ICLR 2020,
        [arXiv:1906.06316](https://arxiv.org/abs/1906.06316).
    """

    method = "crown_ibp"

    def __init__(
        self,
        attack: Attack,
        initial_kappa: float = 1.0,
        final_kappa: float = 0.0,
        initial_beta: float = 1.0,
        final_beta: float = 0.0,
        target_eps: float | None = None,
    ) -> None:
        super().__init__(attack, initial_kappa, final_kappa, target_eps)
        self.initial_beta = _weight("initial_beta", initial_beta)
        self.final_beta = _weight("final_beta", final_beta)
        if self.initial_beta == self.final_beta == 0.0:
            self.method = "ibp"  # never uses CROWN: do not require it

    def beta(self, fraction: Any) -> Any:
        """The CROWN-IBP share of the margin bound at ramp `fraction`."""
        return (
            self.initial_beta + (self.final_beta - self.initial_beta) * fraction
        )

    def _margins(
        self,
        bounder: Any,
        bounds: Any,
        x: Tensor,
        labels: Tensor,
        eps: Tensor,
        fraction: Tensor,
    ) -> Tensor:
        ibp = bounder.ibp_margins(bounds, labels)
        if self.method == "ibp":
            return ibp
        beta = ops.cast(self.beta(fraction), "float32")
        norm, value_range = self.attack.norm, self.threat_model.value_range

        def mixed() -> Tensor:
            crown = bounder.crown_margins(
                bounds, x, labels, eps, norm, value_range
            )
            return beta * crown + (1.0 - beta) * ibp

        # beta = 0 (the end of the default ramp): IBP alone, at IBP's cost.
        return tf.cond(beta > 0.0, mixed, lambda: ibp)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            initial_beta=self.initial_beta, final_beta=self.final_beta
        )
        return config
