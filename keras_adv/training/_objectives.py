"""Adversarial-training objectives: small serialisable objects.

An objective says what one adversarial training step optimises. The
training engine (`AdversarialModel`, and the `AdversarialTraining` callback
that installs the same step on any model) calls three public methods:

1. `adversarial_examples(model, x, y, eps, seed)`: before the gradient tape,
   builds `x_adv` (no gradient flows through it).
2. `training_data(x, y, sample_weight, x_adv)`: the batch that Keras' own
   `train_step` then trains on (the substitution objectives put `x_adv`
   there; the regularised ones keep the clean batch).
3. `extra_loss(model, x, y, y_pred, sample_weight, x_adv)`: inside the
   tape, a term added to the compiled loss in `compute_loss` (TRADES' KL,
   VAT's LDS), with the predictions on `x_adv` for the adversarial metrics.

Keras keeps the compiled loss, regularisers, loss scaling, metrics and
distribution.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv.attacks import FGSM
from keras_adv.attacks import Attack
from keras_adv.attacks import IterativeAttack
from keras_adv.losses import _robust as robust

_TRADES_DEFAULT_STEPS = 10


def _check_attack(attack, owner):
    if not isinstance(attack, Attack):
        raise TypeError(
            _validation.invalid(
                "attack",
                "a keras_adv.attacks.Attack instance (e.g. "
                "keras_adv.attacks.PGD(eps=0.3))",
                attack,
            )
        )
    if attack.targeted:
        raise ValueError(
            f"{owner} needs an untargeted attack: with targeted=True the "
            "labels would be used as targets and the 'adversarial' step "
            "would move towards the correct class. Received: "
            f"attack={attack!r}"
        )
    return attack


def scale_for_replicas(value):
    """Divides a per-replica loss term by the number of replicas in sync.

    Keras sums gradients over replicas and scales its compiled loss the
    same way, so an extra term must be scaled too.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        value = value / float(replicas)
    return value


def weighted_batch_mean(values, sample_weight):
    """`sum(values * w) / batch` (Keras' "sum_over_batch_size")."""
    values = ops.cast(values, "float32")
    if sample_weight is not None:
        values = values * ops.cast(ops.reshape(sample_weight, [-1]), "float32")
    batch = ops.cast(ops.shape(values)[0], "float32")
    return ops.sum(values) / ops.maximum(batch, 1.0)


class Objective:
    """Base class of adversarial-training objectives.

    Subclasses override any of the three hooks; the defaults train on
    `x_adv` from `self.attack` (the Madry substitution) and add no term.

    Args:
        attack: An untargeted `keras_adv.attacks.Attack`, which supplies the
            threat model (eps, norm, value range).
        training_mode_attack: Bool, run the attack's forward passes with
            `training=True` (BatchNorm batch statistics, dropout). Defaults
            to `False`.
    """

    #: Whether the objective writes the whole training step in a method
    #: `train_step(model, x, y, sample_weight, eps, seed) -> (logs,
    #: adv_pred)` instead of substituting the batch of the model's own
    #: `train_step` (Free-m does: it reuses the input gradient of the
    #: weight update's backward pass).
    replaces_train_step = False

    def __init__(self, attack, training_mode_attack=False):
        self.attack = _check_attack(attack, type(self).__name__)
        self.training_mode_attack = _validation.check_bool(
            "training_mode_attack", training_mode_attack
        )
        self.train_attack = self._make_train_attack(attack)

    def _make_train_attack(self, attack):
        if hasattr(attack, "with_training"):
            # Attacks holding trained weights outside their config
            # (GeneratorAttack) copy themselves.
            return attack.with_training(self.training_mode_attack)
        train_attack = type(attack).from_config(attack.get_config())
        train_attack.threat_model = attack.threat_model  # live eps variable
        train_attack.training = self.training_mode_attack
        return train_attack

    @property
    def threat_model(self):
        return self.attack.threat_model

    # -------------------------------------------------------------- hooks
    def adversarial_examples(self, model, x, y, eps, seed):
        """`x_adv` for the batch (graph-safe, before the tape)."""
        return self.train_attack.perturb(model, x, y, eps=eps, seed=seed)

    def training_data(self, x, y, sample_weight, x_adv):
        """The `(x, y, sample_weight)` Keras' `train_step` trains on."""
        return x_adv, y, sample_weight

    def adversarial_predictions(self, x, y_pred):
        """The part of the step's `y_pred` made on `x_adv`, or None."""
        return y_pred

    def extra_loss(
        self, model, x, y, y_pred, sample_weight, x_adv, eps=None, seed=None
    ):
        """`(term, adv_pred)`: a loss term added in `compute_loss`.

        Called inside the gradient tape with the clean batch (`x`, `y`,
        `sample_weight` as given to `train_step`), Keras' predictions
        `y_pred` on the training batch, `x_adv`, the eps in use and the
        step's stateless seed. `term` is a scalar averaged like the
        compiled loss (see `weighted_batch_mean`); the engine scales it for
        distribution. `adv_pred` (predictions on `x_adv`, or None) feeds
        the adversarial metrics. Returns `(None, None)` when the objective
        adds nothing.
        """
        return None, None

    def needs_labels(self):
        """Whether batches must carry labels."""
        return True

    # ------------------------------------------------------ serialisation
    def get_config(self):
        return {
            "attack": keras.saving.serialize_keras_object(self.attack),
            "training_mode_attack": self.training_mode_attack,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["attack"] = keras.saving.deserialize_keras_object(
            config["attack"]
        )
        return cls(**config)

    def __repr__(self):
        config = self.get_config()
        config["attack"] = self.attack
        args = ", ".join(f"{k}={v!r}" for k, v in config.items())
        return f"{type(self).__name__}({args})"


@register
class Madry(Objective):
    """Train on adversarial examples: the PGD/Madry substitution.

    With `adv_weight=1` the step trains on `x_adv` only (Madry et al.
    2018); with `0 < adv_weight < 1` on `(1 - a) L(x) + a L(x_adv)`
    (Goodfellow et al. 2015 use `a = 0.5`): Keras' step sees `[x; x_adv]`
    with sample weights `2(1 - a), 2a`, so under the default
    `"sum_over_batch_size"` reduction the clean part keeps its scale;
    `adv_weight=0` is plain training (the attack still runs for the
    metrics).

    Args:
        attack: An untargeted attack, e.g. `PGD(eps=0.3, steps=7)`.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.Madry(
    ...     keras_adv.attacks.PGD(eps=0.3, steps=7), adv_weight=0.5)
    >>> objective.adv_weight
    0.5

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        arXiv:1706.06083. Goodfellow, Shlens and Szegedy, "Explaining and
        Harnessing Adversarial Examples", ICLR 2015, arXiv:1412.6572.
    """

    def __init__(self, attack, adv_weight=1.0, training_mode_attack=False):
        super().__init__(attack, training_mode_attack=training_mode_attack)
        adv_weight = _validation.check_number(
            "adv_weight", adv_weight, minimum=0.0
        )
        if adv_weight > 1.0:
            raise ValueError(
                _validation.invalid(
                    "adv_weight", "a number in [0, 1]", adv_weight
                )
            )
        self.adv_weight = adv_weight

    def training_data(self, x, y, sample_weight, x_adv):
        a = self.adv_weight
        if a == 1.0:
            return x_adv, y, sample_weight
        if a == 0.0:
            return x, y, sample_weight
        batch = ops.shape(x)[0]
        if sample_weight is None:
            sw = ops.ones((batch,), "float32")
        else:
            sw = ops.cast(ops.reshape(sample_weight, [-1]), "float32")
        weights = ops.concatenate([2.0 * (1.0 - a) * sw, 2.0 * a * sw], 0)
        x_cat = ops.concatenate([x, ops.cast(x_adv, x.dtype)], axis=0)
        y_cat = ops.concatenate([y, y], axis=0)
        return x_cat, y_cat, weights

    def adversarial_predictions(self, x, y_pred):
        a = self.adv_weight
        if a == 1.0:
            return y_pred
        if a == 0.0:
            return None
        return y_pred[ops.shape(x)[0] :]

    def get_config(self):
        config = super().get_config()
        config["adv_weight"] = self.adv_weight
        return config


class FGSMObjective(Madry):
    """Base of objectives that train on one FGSM step (internal).

    The attack is FGSM, with a random start in the ball when the class sets
    `random_start`, and a step of `self.step_factor * eps` projected back
    onto the ball, built from `attack`'s threat model, loss and
    `from_logits`. Subclasses set `random_start` and `self.step_factor`.
    """

    random_start = False

    def _make_train_attack(self, attack):
        train_attack = FGSM(
            eps=1.0,
            norm=attack.norm,
            value_range=attack.value_range,
            loss=attack.loss,
            random_start=self.random_start,
            from_logits=attack.from_logits,
            training=self.training_mode_attack,
            seed=attack.seed,
        )
        train_attack.threat_model = attack.threat_model  # live eps
        return train_attack

    def adversarial_examples(self, model, x, y, eps, seed):
        attack = self.train_attack
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        eps_b = attack.threat_model.eps_tensor(x32, eps32)
        x_adv = attack.run_once(
            attack.model_logits(model),
            x32,
            sparse_labels(y),
            eps32,
            self.step_factor * eps_b,
            seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)


@register
class FGSMRS(FGSMObjective):
    """FGSM from a uniform random start ("fast is better than free").

    The attack is FGSM with a random start in the ball and a step of
    `step_factor * eps` (1.25 in Wong et al.), projected back onto the
    ball, built from `attack`'s eps, norm, value range and loss. Large
    steps overfit catastrophically (robust accuracy collapses within an
    epoch): watch it with `keras_adv.callbacks.OverfittingGuard`.

    Args:
        attack: An untargeted attack supplying the threat model and loss.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        step_factor: Float > 0, the FGSM step in units of eps. Defaults to
            `1.25`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.FGSMRS(
    ...     keras_adv.attacks.PGD(eps=0.1))
    >>> type(objective.train_attack).__name__, objective.step_factor
    ('FGSM', 1.25)

    Reference:
        Wong, Rice and Kolter, "Fast is better than free: Revisiting
        adversarial training", ICLR 2020, arXiv:2001.03994.
    """

    random_start = True

    def __init__(
        self,
        attack,
        adv_weight=1.0,
        step_factor=1.25,
        training_mode_attack=False,
    ):
        self.step_factor = _validation.check_number(
            "step_factor", step_factor, minimum=0.0, strict=True
        )
        super().__init__(
            attack,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
        )

    def get_config(self):
        config = super().get_config()
        config["step_factor"] = self.step_factor
        return config


@register
class TRADES(Objective):
    """TRADES: `CE(f(x), y) + beta * KL(f(x) || f(x_adv))`.

    `x_adv` maximises the KL from `x + 0.001 N(0, 1)` with `attack`'s eps,
    norm, steps and step size (10 steps of `2.5 eps / 10` for a
    non-iterative attack). The compiled loss is computed on the clean batch
    by Keras' own step; the KL joins it in `compute_loss`, averaged like
    the compiled loss (`sum(w KL) / batch`).

    Args:
        attack: An untargeted attack supplying threat model and steps.
        beta: Float >= 0, the weight of the KL term. Defaults to `6.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.TRADES(keras_adv.attacks.PGD(eps=0.3), beta=6.0)
    TRADES(attack=PGD(...), training_mode_attack=False, beta=6.0)

    Reference:
        Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically
        Principled Trade-off between Robustness and Accuracy", ICML 2019,
        arXiv:1901.08573.
    """

    def __init__(self, attack, beta=6.0, training_mode_attack=False):
        super().__init__(attack, training_mode_attack=training_mode_attack)
        self.beta = _validation.check_number("beta", beta, minimum=0.0)

    def _steps_and_step_size(self, eps_b):
        attack = self.train_attack
        if isinstance(attack, IterativeAttack):
            return attack.steps, attack.step_size_for(eps_b)
        return _TRADES_DEFAULT_STEPS, 2.5 / _TRADES_DEFAULT_STEPS * eps_b

    def adversarial_examples(self, model, x, y, eps, seed):
        model_logits = self.train_attack.model_logits(model)
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        clean_logits = model_logits(x32)
        eps_b = self.threat_model.eps_tensor(x32, eps32)
        steps, step_size = self._steps_and_step_size(eps_b)
        x_adv = robust.trades_perturbation(
            model_logits,
            x32,
            clean_logits,
            self.threat_model,
            eps32,
            steps,
            step_size,
            seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)

    def training_data(self, x, y, sample_weight, x_adv):
        return x, y, sample_weight

    def adversarial_predictions(self, x, y_pred):
        return None

    def extra_loss(
        self, model, x, y, y_pred, sample_weight, x_adv, eps=None, seed=None
    ):
        adv_pred = model(x_adv, training=True)
        adapter = self.train_attack.model_logits(model)
        term = robust.trades_kl(adapter.head(y_pred), adapter.head(adv_pred))
        return self.beta * weighted_batch_mean(term, sample_weight), adv_pred

    def get_config(self):
        config = super().get_config()
        config["beta"] = self.beta
        return config


@register
class VAT(Objective):
    """Virtual adversarial training: compiled loss + `alpha * mean LDS`.

    The LDS is `KL(f(x) || f(x + r_adv))` with `r_adv` from
    `power_iterations` power iterations at finite-difference scale `xi`,
    scaled to the attack's eps. Semi-supervised: samples with label `-1`
    (sparse labels) or an all-zero one-hot row are unlabelled: they get no
    supervised loss and no metrics but still get the LDS term. Data
    without any labels trains on the LDS (and regularisers) alone; compile
    such a model without metrics.

    Args:
        attack: An attack supplying the threat model (eps, norm).
        alpha: Float >= 0, LDS weight. Defaults to `1.0`.
        xi: Float > 0, finite-difference scale (raised to `1e-2` under
            `mixed_float16`). Defaults to `1e-6`.
        power_iterations: Int >= 1. Defaults to `1`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.VAT(keras_adv.attacks.PGD(eps=2.0, norm="l2"),
    ...                        alpha=1.0).power_iterations
    1

    Reference:
        Miyato, Maeda, Koyama and Ishii, "Virtual Adversarial Training: A
        Regularization Method for Supervised and Semi-Supervised
        Learning", IEEE TPAMI 2018, arXiv:1704.03976.
    """

    def __init__(
        self,
        attack,
        alpha=1.0,
        xi=1e-6,
        power_iterations=1,
        training_mode_attack=False,
    ):
        super().__init__(attack, training_mode_attack=training_mode_attack)
        self.alpha = _validation.check_number("alpha", alpha, minimum=0.0)
        self.xi = _validation.check_number("xi", xi, minimum=0.0, strict=True)
        self.power_iterations = _validation.check_int(
            "power_iterations", power_iterations, minimum=1
        )

    def needs_labels(self):
        return False

    def adversarial_examples(self, model, x, y, eps, seed):
        model_logits = self.train_attack.model_logits(model)
        x32 = ops.cast(x, "float32")
        xi = self.xi
        if model.dtype_policy.compute_dtype == "float16":
            xi = max(xi, 1e-2)
        x_adv = robust.virtual_adversarial_perturbation(
            model_logits,
            x32,
            model_logits(x32),
            self.threat_model,
            ops.cast(eps, "float32"),
            xi=xi,
            power_iterations=self.power_iterations,
            seed=seed,
        )
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)

    def training_data(self, x, y, sample_weight, x_adv):
        if y is None:
            return x, None, sample_weight
        y, weight = labelled_mask(y, sample_weight)
        return x, y, weight

    def adversarial_predictions(self, x, y_pred):
        return None

    def extra_loss(
        self, model, x, y, y_pred, sample_weight, x_adv, eps=None, seed=None
    ):
        adv_pred = model(x_adv, training=True)
        adapter = self.train_attack.model_logits(model)
        term = robust.vat_lds(adapter.head(y_pred), adapter.head(adv_pred))
        return self.alpha * weighted_batch_mean(term, None), adv_pred

    def get_config(self):
        config = super().get_config()
        config.update(
            alpha=self.alpha, xi=self.xi, power_iterations=self.power_iterations
        )
        return config


def labelled_mask(y, sample_weight):
    """VAT labels: -1 (or an all-zero one-hot row) marks unlabelled samples.

    Returns `(y with -1 replaced by 0, sample_weight * labelled)`.
    """
    if len(y.shape) == 2 and y.shape[-1] not in (None, 1):
        labelled = ops.sum(ops.cast(y, "float32"), axis=-1) > 0
        y_safe = y
    else:
        labelled = ops.reshape(ops.cast(y, "int32"), [-1]) >= 0
        y_safe = ops.where(y >= 0, y, ops.zeros_like(y))
    mask = ops.cast(labelled, "float32")
    if sample_weight is None:
        return y_safe, mask
    return y_safe, ops.cast(ops.reshape(sample_weight, [-1]), "float32") * mask


_SHORTHANDS = {
    "adversarial": Madry,
    "madry": Madry,
    "pgd": Madry,
    "fgsm_rs": FGSMRS,
    "fgsm-rs": FGSMRS,  # alias
    "trades": TRADES,
    "vat": VAT,
}


def _fast_objectives():
    from keras_adv.training import _fast

    return {
        "n_fgsm": _fast.NFGSM,
        "grad_align": _fast.GradAlign,
        "free": _fast.Free,
    }


def _set_objectives():
    from keras_adv.training import _max_loss

    return {"max_loss": _max_loss.MaxLoss}


def get(objective, attack=None, **kwargs):
    """Returns an `Objective` from an instance, a config or a shorthand.

    Args:
        objective: An `Objective` (returned as is), a serialised objective
            dict, or a shorthand: `"adversarial"` (= `"madry"`), `"fgsm_rs"`
            (alias `"fgsm-rs"`), `"trades"`, `"vat"`, `"n_fgsm"`,
            `"grad_align"`, `"free"`.
        attack: The attack, for shorthands.
        **kwargs: The objective's other arguments, for shorthands (e.g.
            `beta=6.0` for "trades"); arguments the objective does not take
            raise `TypeError`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.get(
    ...     "trades", keras_adv.attacks.PGD(eps=0.3), beta=3.0).beta
    3.0
    """
    if isinstance(objective, Objective):
        if attack is not None or kwargs:
            raise ValueError(
                "Pass either an Objective instance or a shorthand with its "
                "arguments, not both. Received: objective="
                f"{objective!r} with attack={attack!r}, {kwargs}"
            )
        return objective
    if isinstance(objective, dict):
        return keras.saving.deserialize_keras_object(objective)
    shorthands = {**_SHORTHANDS, **_fast_objectives(), **_set_objectives()}
    key = _validation.check_choice("objective", objective, set(shorthands))
    if attack is None:
        raise TypeError(
            _validation.invalid(
                "attack",
                f"a keras_adv.attacks.Attack for objective={objective!r}",
                attack,
            )
        )
    cls = shorthands[key]
    try:
        return cls(attack, **kwargs)
    except TypeError as error:
        raise TypeError(
            f"Invalid argument for objective={objective!r}: {error}"
        ) from None
