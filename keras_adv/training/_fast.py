"""Fast adversarial training: single-step and "free" objectives.

N-FGSM (noise larger than the ball, no projection), GradAlign (FGSM plus a
gradient-alignment regulariser) and Free-m (every minibatch replayed m
times, the input gradient of each pass reused for the perturbation) as
`Objective`s: they run in the `AdversarialTraining` callback and in
`AdversarialModel` like the others.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _keras_internals as internals
from keras_adv import _validation
from keras_adv import losses
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._random import fold_seed
from keras_adv._types import Config
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.distribute import _replicas
from keras_adv.training._madry import FGSMObjective
from keras_adv.training._madry import Madry
from keras_adv.training._objective import Objective
from keras_adv.training._objective import weighted_batch_mean


def _per_sample_norm(g: Tensor) -> Tensor:
    axes = list(range(1, len(g.shape)))
    return ops.sqrt(ops.sum(ops.square(g), axis=axes))


@register
class NFGSM(Madry):
    """N-FGSM: a noisy FGSM step, no projection back onto the eps ball.

    `x_noise = x + u` with `u` uniform in the ball of radius
    `noise_multiplier * eps` (2 eps in the paper), then one step of
    `step_factor * eps` (1 eps) along the ascent direction of the loss at
    `x_noise`. The result is only clipped to the value range, unless
    `clip` is set (then the perturbation is projected onto the ball of
    radius `clip * eps`). The larger noise and the unprojected step avoid
    catastrophic overfitting at single-step cost (one forward-backward
    for the attack, one for training).

    Args:
        attack: An untargeted attack supplying the threat model (eps, norm,
            value range) and loss.
        noise_multiplier: Float >= 0, noise radius in units of eps.
            Defaults to `2.0`.
        step_factor: Float >= 0, step in units of eps. Defaults to `1.0`.
        clip: Float > 0 or None: project the perturbation onto the ball of
            radius `clip * eps` (None: no projection, as in the paper).
            Defaults to `None`.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.NFGSM(keras_adv.attacks.PGD(eps=0.3))
    >>> objective.noise_multiplier, objective.step_factor, objective.clip
    (2.0, 1.0, None)

    Reference:
        de Jorge, Bibi, Volpi, Sanyal, Torr, Rogez and Dokania, "Make Some
        Noise: Reliable and Efficient Single-Step Adversarial Training",
        NeurIPS 2022, [arXiv:2202.01181](https://arxiv.org/abs/2202.01181).
    """

    def __init__(
        self,
        attack: Attack,
        noise_multiplier: float = 2.0,
        step_factor: float = 1.0,
        clip: float | None = None,
        adv_weight: float = 1.0,
        training_mode_attack: bool = False,
    ) -> None:
        super().__init__(
            attack,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
        )
        self.noise_multiplier = _validation.check_number(
            "noise_multiplier", noise_multiplier, minimum=0.0
        )
        self.step_factor = _validation.check_number(
            "step_factor", step_factor, minimum=0.0
        )
        if clip is not None:
            clip = _validation.check_number(
                "clip", clip, minimum=0.0, strict=True
            )
        self.clip = clip

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        attack = self.train_attack
        tm = attack.threat_model
        model_logits = self.model_logits(model)
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        x_noise = tm.random_start(
            x32, seed=seed, eps=self.noise_multiplier * eps32
        )
        _, grad = attack.objective_and_gradient(
            model_logits, x_noise, sparse_labels(y)
        )
        step = self.step_factor * tm.eps_tensor(x32, eps32)
        x_adv = x_noise + step * tm.ascent_direction(grad)
        if self.clip is None:
            x_adv = tm.clip(x_adv)
        else:
            x_adv = tm.project(x_adv, x32, eps=self.clip * eps32)
        return ops.cast(ops.stop_gradient(x_adv), x.dtype)

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            noise_multiplier=self.noise_multiplier,
            step_factor=self.step_factor,
            clip=self.clip,
        )
        return config


@register
class GradAlign(FGSMObjective):
    """FGSM training with the GradAlign regulariser.

    Trains on FGSM examples (one step of `step_factor * eps` from `x`, no
    random start) and adds
    `lambda * mean_i (1 - cos(grad_x L(x_i), grad_x L(x_i + eta_i)))`
    with `eta` uniform in the eps ball: it keeps the loss locally linear,
    which prevents catastrophic overfitting. The regulariser needs
    second-order derivatives (double backpropagation): one step costs
    about 3x an FGSM-training step (measured in `bench/`).

    Args:
        attack: An untargeted attack supplying the threat model and loss.
        grad_align_lambda: Float >= 0, weight of the regulariser (0.2 at
            eps 8/255 on CIFAR-10 in the paper; it grows with eps).
            Defaults to `0.2`.
        step_factor: Float >= 0, FGSM step in units of eps. Defaults to
            `1.0`.
        adv_weight: Float in `[0, 1]`. Defaults to `1.0`.
        training_mode_attack: Bool. Defaults to `False`.

    Example:

    >>> import keras_adv
    >>> keras_adv.training.GradAlign(
    ...     keras_adv.attacks.PGD(eps=0.3), grad_align_lambda=1.0
    ... ).grad_align_lambda
    1.0

    Reference:
        Andriushchenko and Flammarion, "Understanding and Improving Fast
        Adversarial Training", NeurIPS 2020,
        [arXiv:2007.02617](https://arxiv.org/abs/2007.02617).
    """

    def __init__(
        self,
        attack: Attack,
        grad_align_lambda: float = 0.2,
        step_factor: float = 1.0,
        adv_weight: float = 1.0,
        training_mode_attack: bool = False,
    ) -> None:
        self.step_factor = _validation.check_number(
            "step_factor", step_factor, minimum=0.0
        )
        super().__init__(
            attack,
            adv_weight=adv_weight,
            training_mode_attack=training_mode_attack,
        )
        self.grad_align_lambda = _validation.check_number(
            "grad_align_lambda", grad_align_lambda, minimum=0.0
        )

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
        if self.grad_align_lambda == 0.0:
            return None, None
        tm = self.threat_model
        adapter = self.model_logits(model)
        labels = sparse_labels(y)
        x32 = ops.cast(x, "float32")
        x_noise = tm.random_start(
            x32, seed=fold_seed(seed, 1), eps=ops.cast(eps, "float32")
        )

        def input_gradient(point: Tensor) -> Tensor:
            with tf.GradientTape() as tape:
                tape.watch(point)
                logits = adapter.head(model(point, training=True))
                loss = ops.sum(losses.cross_entropy(labels, logits))
            return tape.gradient(loss, point)

        g1 = input_gradient(x32)
        g2 = input_gradient(x_noise)
        axes = list(range(1, len(g1.shape)))
        dot = ops.sum(g1 * g2, axis=axes)
        cos = dot / ops.maximum(
            _per_sample_norm(g1) * _per_sample_norm(g2), 1e-12
        )
        term = self.grad_align_lambda * weighted_batch_mean(
            1.0 - cos, sample_weight
        )
        return term, None

    def get_config(self) -> Config:
        config = super().get_config()
        config.update(
            grad_align_lambda=self.grad_align_lambda,
            step_factor=self.step_factor,
        )
        return config


@register
class Free(Objective):
    """ "Free" adversarial training: every minibatch replayed `replays` times.

    Each replay is one forward-backward pass on `x + delta` that yields
    both the weight gradient (applied by the optimizer) and, for free, the
    input gradient, which moves `delta` one step of `step_factor * eps`
    along the ascent direction before it is projected back onto the ball
    (and `x + delta` onto the value range). `delta` starts at zero and is
    carried from one minibatch to the next, as in the paper (when the next
    batch has the same size and no `tf.distribute` strategy is in use;
    otherwise that minibatch starts from zero).

    The objective writes the whole training step: the model's own
    `train_step` is not called (the input gradient must come from the same
    backward pass as the weight gradient). It calls `model.compute_loss`,
    `model.optimizer.scale_loss` and `.apply` and `model.compute_metrics`,
    and records the `loss` log as Keras' own `train_step` does (the one
    private Keras name it needs, through `keras_adv/_keras_internals.py`).

    Epochs: one epoch makes `replays` optimizer updates per minibatch, so
    `E` epochs of Free-m cost about as much as `m * E` clean epochs and
    see as many updates. To compare with a method trained for `N` epochs,
    train Free-m for `N / m` epochs (as the paper does); learning-rate
    schedules keyed on `optimizer.iterations` advance `m` steps per batch.

    Degenerate settings: with eps 0 every replay is a plain training step
    on the clean batch (plain `fit` on every minibatch repeated `replays`
    times); with `replays=1` and eps 0 it is exactly plain `fit`.

    Args:
        attack: An untargeted attack supplying the threat model (eps, norm,
            value range) and the loss whose input gradient moves `delta`
            is the model's compiled loss.
        replays: Int >= 1, the number of times each minibatch is trained
            on (m in the paper). Defaults to `4`.
        step_factor: Float >= 0, the step on `delta` in units of eps (1 in
            the paper). Defaults to `1.0`.
        carry: Bool, carry `delta` over to the next minibatch (the paper's
            setting). Defaults to `True`.

    Example:

    >>> import keras_adv
    >>> objective = keras_adv.training.Free(
    ...     keras_adv.attacks.PGD(eps=0.3), replays=8)
    >>> objective.replays, objective.step_factor
    (8, 1.0)

    Reference:
        Shafahi, Najibi, Ghiasi, Xu, Dickerson, Studer, Davis, Taylor and
        Goldstein, "Adversarial Training for Free!", NeurIPS 2019,
        [arXiv:1904.12843](https://arxiv.org/abs/1904.12843).
    """

    replaces_train_step = True

    def __init__(
        self,
        attack: Attack,
        replays: int = 4,
        step_factor: float = 1.0,
        carry: bool = True,
    ) -> None:
        super().__init__(attack, training_mode_attack=True)
        self.replays = _validation.check_int("replays", replays, minimum=1)
        self.step_factor = _validation.check_number(
            "step_factor", step_factor, minimum=0.0
        )
        self.carry = _validation.check_bool("carry", carry)
        self._delta: tf.Variable | None = None

    # ----------------------------------------------------------- carrying
    def _can_carry(self, x: Tensor) -> bool:
        if not self.carry or tf.distribute.has_strategy():
            return False
        return x.shape.is_fully_defined()

    def _carried_in(self, x32: Tensor) -> Tensor:
        if not self._can_carry(x32):
            return ops.zeros_like(x32)
        if self._delta is None:
            with tf.init_scope():
                self._delta = tf.Variable(
                    tf.zeros(x32.shape, "float32"),
                    trainable=False,
                    name="free_delta",
                )
        if tuple(self._delta.shape) != tuple(x32.shape):
            return ops.zeros_like(x32)  # another batch size: start at zero
        return tf.identity(self._delta)

    def _carry_out(self, delta: Tensor) -> list[tf.Variable]:
        if self._delta is None or not self._can_carry(delta):
            return []
        if tuple(self._delta.shape) != tuple(delta.shape):
            return []
        return [self._delta.assign(delta)]

    # --------------------------------------------------------------- step
    def train_step(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        sample_weight: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> tuple[dict[str, Tensor], Tensor]:
        """Runs the `replays` updates on one minibatch (graph-safe).

        Returns:
            `(logs, adv_pred)`: the model's metric results and the
            predictions of the last replay (on `x + delta`).
        """
        del seed  # deterministic given the carried delta
        tm = self.threat_model
        x32 = ops.cast(x, "float32")
        eps32 = ops.cast(eps, "float32")
        step = self.step_factor * tm.eps_tensor(x32, eps32)
        delta = tm.project(x32 + self._carried_in(x32), x32, eps=eps32) - x32
        variables = list(model.trainable_variables)
        batch = ops.shape(x32)[0]
        for _ in range(self.replays):
            x_adv = ops.cast(tm.clip(x32 + delta), x.dtype)
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                y_pred = model(x_adv, training=True)
                loss = model.compute_loss(
                    x=x_adv,
                    y=y,
                    y_pred=y_pred,
                    sample_weight=sample_weight,
                    training=True,
                )
                internals.track_loss(
                    model,
                    _replicas.unscale_for_replicas(ops.cast(loss, "float32")),
                    batch,
                )
                scaled = model.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, [*variables, x_adv])
            model.optimizer.apply(grads[:-1], variables)
            g_x = ops.cast(grads[-1], "float32")
            moved = x32 + delta + step * tm.ascent_direction(g_x)
            delta = tm.project(moved, x32, eps=eps32) - x32
        updates = self._carry_out(delta)
        with tf.control_dependencies(updates):
            logs = model.compute_metrics(x_adv, y, y_pred, sample_weight)
        return logs, y_pred

    def adversarial_examples(
        self,
        model: keras.Model,
        x: Tensor,
        y: Tensor | None,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        raise NotImplementedError(
            "Free builds its perturbations inside its own training step "
            "(`Free.train_step`); it has no separate attack phase."
        )

    def get_config(self) -> Config:
        config = super().get_config()
        del config["training_mode_attack"]
        config.update(
            replays=self.replays,
            step_factor=self.step_factor,
            carry=self.carry,
        )
        return config
