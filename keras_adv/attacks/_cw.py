"""The Carlini-Wagner L2 attack: minimal-norm, by optimisation."""

import keras
from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._outputs import sparse_labels
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.attacks._base import Attack
from keras_adv.attacks._logits import ModelLogits

#: The default `eps`: large enough to accept every success (no bound).
UNBOUNDED = 1e10
#: Scale of the inputs inside atanh, so that the box faces stay finite.
_ATANH_SCALE = 0.999999
_ADAM_BETA_1 = 0.9
_ADAM_BETA_2 = 0.999
_ADAM_EPSILON = 1e-8
#: The constant c is bisected once an upper bound below this is known.
_NO_UPPER_BOUND = 1e9


@register
class CarliniWagnerL2(Attack):
    """Carlini and Wagner's L2 attack: the smallest L2 perturbation.

    Minimises, per sample, over `w` (a tanh change of variables that
    keeps `x' = mid + half * tanh(w)` inside the value range without
    clipping)

        ||x' - x||_2^2 + c * max(z_y(x') - max_{j != y} z_j(x') + kappa, 0)

    with Adam (`learning_rate`, `max_iterations` steps from `x' = x`), the
    logits `z` and `kappa = confidence` (targeted: `max_{j != t} z_j -
    z_t`). A binary search over `c` (`binary_search_steps` rounds from
    `initial_const`; while no success is known, `c` grows tenfold) finds
    the smallest `c` that still fools the model, and the smallest
    successful perturbation over all rounds is returned. With
    `abort_early`, a round stops when the batch loss has not decreased by
    0.01% over the last tenth of `max_iterations`, once it has decreased
    at such a check (or only the distance term is left): inputs at the
    faces of the value range (binarised images) start on the flat tails
    of tanh, where the first checks see no progress while Adam moves the
    variables out.

    C&W has no radius: `eps` only decides what counts as a success. A
    sample whose smallest perturbation found has an L2 norm above `eps`,
    or which was never fooled, is returned unchanged (so the result
    always lies in the L2 ball of radius `eps`). The default `eps` is
    `1e10`, i.e. unbounded. The norms of the result are available from
    `perturbation_norms`.

    Distance measure: L2. Defaults from Carlini and Wagner's code (9
    binary-search rounds, `initial_const=1e-3`, learning rate 0.01,
    `confidence=0`), except `max_iterations=1000` (theirs 10000). Cost:
    up to `binary_search_steps * max_iterations` gradients (9000 with the
    defaults; early abort usually ends rounds well before), plus one
    forward pass.

    Args:
        eps: Float >= 0 (or a variable): successes with a larger L2 norm
            count as failures. Defaults to `1e10` (unbounded).
        confidence: Float >= 0, the margin kappa a success must reach.
            Defaults to `0.0`.
        learning_rate: Float > 0, Adam's step size. Defaults to `0.01`.
        binary_search_steps: Int >= 1, rounds of the search over `c`; with
            10 or more, the last round uses the smallest successful `c`.
            Defaults to `9`.
        max_iterations: Int >= 1, Adam steps per round. Defaults to
            `1000`.
        initial_const: Float > 0, the first `c`. Defaults to `1e-3`.
        abort_early: Bool, end a round when the loss stalls. Defaults to
            `True`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        targeted: Bool; if True `y` holds target classes. Defaults to
            `False`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Unused (the attack is deterministic); kept for a uniform
            signature.
        jit_compile: Bool, XLA-compile the attack. Defaults to `False`.

    Example:

    On a binary linear model the smallest perturbation is the distance to
    the decision boundary, `|margin| / ||w_1 - w_0||_2 = 0.4 / 2 = 0.2`:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[1., -1.], [0., 0.]]),
    ...                    np.array([0., 0.8])])
    >>> x = np.array([[0.6, 0.5]], "float32")  # logits 0.6 and 0.2
    >>> attack = keras_adv.attacks.CarliniWagnerL2(
    ...     binary_search_steps=6, max_iterations=100, learning_rate=0.05)
    >>> x_adv = attack(model, x)
    >>> round(float(attack.perturbation_norms(model, x, x_adv)[0]), 2)
    0.2

    Reference:
        Carlini and Wagner, "Towards Evaluating the Robustness of Neural
        Networks", IEEE S&P 2017,
        [arXiv:1608.04644](https://arxiv.org/abs/1608.04644).
    """

    def __init__(
        self,
        eps: Eps = UNBOUNDED,
        confidence: float = 0.0,
        learning_rate: float = 0.01,
        binary_search_steps: int = 9,
        max_iterations: int = 1000,
        initial_const: float = 1e-3,
        abort_early: bool = True,
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        super().__init__(
            eps=eps,
            norm="l2",
            value_range=value_range,
            targeted=targeted,
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.confidence = _validation.check_number(
            "confidence", confidence, minimum=0.0
        )
        self.learning_rate = _validation.check_number(
            "learning_rate", learning_rate, minimum=0.0, strict=True
        )
        self.binary_search_steps = _validation.check_int(
            "binary_search_steps", binary_search_steps, minimum=1
        )
        self.max_iterations = _validation.check_int(
            "max_iterations", max_iterations, minimum=1
        )
        self.initial_const = _validation.check_number(
            "initial_const", initial_const, minimum=0.0, strict=True
        )
        self.abort_early = _validation.check_bool("abort_early", abort_early)

    # ----------------------------------------------------------------- run
    def _hinge_argument(self, logits: Tensor, y: Tensor) -> Tensor:
        """`margin + kappa`: the attack succeeds where it is negative."""
        own = ops.take_along_axis(logits, y[:, None], axis=-1)[:, 0]
        mask = ops.one_hot(y, logits.shape[-1]) > 0
        rival = ops.max(ops.where(mask, float("-inf"), logits), axis=-1)
        margin = rival - own if self.targeted else own - rival
        return margin + self.confidence

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        low, high = self.value_range
        half, mid = (high - low) / 2.0, (high + low) / 2.0
        shape = ops.shape(x)
        axes = list(range(1, len(x.shape)))
        expand = [-1] + [1] * (len(x.shape) - 1)
        batch = shape[0]
        eps = ops.broadcast_to(ops.cast(eps, "float32"), (batch,))
        w0 = ops.arctanh(ops.clip((x - mid) / half, -1.0, 1.0) * _ATANH_SCALE)
        # Samples already adversarial keep x (norm 0).
        fooled = self._hinge_argument(model_logits(x), y) < 0.0
        best_l2 = ops.where(fooled, 0.0, float("inf"))
        check_every = max(self.max_iterations // 10, 1)
        last_round = self.binary_search_steps - 1
        repeat = self.binary_search_steps >= 10

        def iteration(
            state: tuple[Tensor, ...], const: Tensor
        ) -> tuple[Tensor, ...]:
            i, modifier, m, v, prev, stop, armed, round_l2, best_l2, best = (
                state
            )
            tanh = ops.tanh(w0 + modifier)
            x_new = mid + half * tanh
            seen: dict[str, Tensor] = {}

            def hinge(logits: Tensor) -> Tensor:
                seen["argument"] = self._hinge_argument(logits, y)
                return const * ops.relu(seen["argument"])

            hinge_value, grad_x = model_logits.value_and_input_gradient(
                hinge, x_new
            )
            delta = x_new - x
            l2 = ops.sum(ops.square(delta), axis=axes)
            loss = ops.sum(l2) + ops.sum(hinge_value)
            # The batch loss must drop by 0.01% every tenth of the round,
            # once it has dropped (the round is armed) or has nothing left
            # to gain but distance. Until then a stall is a start on the
            # flat tails of tanh (inputs at the faces of the value range,
            # e.g. binarised images), which Adam leaves at a few
            # hundredths per step: stopping there would end every round
            # before its first move.
            check = ops.logical_and(
                ops.convert_to_tensor(self.abort_early), i % check_every == 0
            )
            stalled = loss > prev * 0.9999
            dropped = ops.logical_and(check, ops.logical_not(stalled))
            armed = ops.logical_or(
                ops.logical_or(armed, ops.logical_and(dropped, i > 0)),
                ops.all(hinge_value <= 0.0),
            )
            stop = ops.logical_and(ops.logical_and(check, stalled), armed)
            prev = ops.where(check, loss, prev)
            # Bookkeeping for the point evaluated (before the Adam step).
            success = ops.logical_and(
                seen["argument"] < 0.0, ops.logical_not(stop)
            )
            round_l2 = ops.where(
                ops.logical_and(success, l2 < round_l2), l2, round_l2
            )
            better = ops.logical_and(success, l2 < best_l2)
            best = ops.where(ops.reshape(better, expand), x_new, best)
            best_l2 = ops.where(better, l2, best_l2)
            # Adam on the modifier, through x' = mid + half * tanh(w).
            grad = (grad_x + 2.0 * delta) * half * (1.0 - ops.square(tanh))
            t = ops.cast(i + 1, "float32")
            m = _ADAM_BETA_1 * m + (1.0 - _ADAM_BETA_1) * grad
            v = _ADAM_BETA_2 * v + (1.0 - _ADAM_BETA_2) * ops.square(grad)
            rate = (
                self.learning_rate
                * ops.sqrt(1.0 - ops.power(_ADAM_BETA_2, t))
                / (1.0 - ops.power(_ADAM_BETA_1, t))
            )
            modifier = modifier - rate * m / (ops.sqrt(v) + _ADAM_EPSILON)
            return (
                i + 1,
                modifier,
                m,
                v,
                prev,
                stop,
                armed,
                round_l2,
                best_l2,
                best,
            )

        def search_round(
            step: Tensor, carry: tuple[Tensor, ...]
        ) -> tuple[Tensor, ...]:
            const, lower, upper, best_l2, best = carry
            if repeat:
                const = ops.where(step == last_round, upper, const)
            zeros = ops.zeros_like(x)
            state = (
                ops.convert_to_tensor(0),
                zeros,
                zeros,
                zeros,
                ops.convert_to_tensor(float("inf")),
                ops.convert_to_tensor(False),
                ops.convert_to_tensor(False),
                ops.full((batch,), float("inf")),
                best_l2,
                best,
            )
            state = ops.while_loop(
                lambda *s: ops.logical_and(
                    s[0] < self.max_iterations, ops.logical_not(s[5])
                ),
                lambda *s: iteration(s, const),
                state,
            )
            round_l2, best_l2, best = state[7], state[8], state[9]
            success = round_l2 < float("inf")
            upper = ops.where(success, ops.minimum(upper, const), upper)
            lower = ops.where(success, lower, ops.maximum(lower, const))
            const = ops.where(
                upper < _NO_UPPER_BOUND,
                (lower + upper) / 2.0,
                ops.where(success, const, const * 10.0),
            )
            return const, lower, upper, best_l2, best

        carry = (
            ops.full((batch,), self.initial_const),
            ops.zeros((batch,)),
            ops.full((batch,), UNBOUNDED),
            best_l2,
            x,
        )
        carry = ops.fori_loop(0, self.binary_search_steps, search_round, carry)
        best_l2, best = carry[3], carry[4]
        accept = ops.sqrt(best_l2) <= eps
        return ops.where(
            ops.reshape(accept, expand), self.threat_model.clip(best), x
        )

    # ------------------------------------------------------------ report
    def perturbation_norms(
        self,
        model: keras.Model,
        x: Array,
        x_adv: Array,
        y: Array | None = None,
    ) -> Tensor:
        """Per-sample L2 norm of `x_adv - x`; inf where `x_adv` does not fool.

        The attack returns the clean input for samples it did not fool
        within `eps`, so after `x_adv = attack(model, x, y)` this is the
        norm of the smallest perturbation found (0 for samples
        misclassified to begin with, inf for failures). Success here is
        the decision only (`confidence` is not required). Graph-safe (one
        forward pass).

        Args:
            model: The Keras model attacked.
            x: Float array of clean inputs.
            x_adv: The attack's result for `x`.
            y: The labels (targets if targeted) given to the attack, or
                None for the model's predictions on `x`.

        Returns:
            Float32 tensor `(batch,)`.
        """
        x = ops.cast(ops.convert_to_tensor(x), "float32")
        x_adv = ops.cast(ops.convert_to_tensor(x_adv), "float32")
        model_logits = self.model_logits(model)
        if y is None:
            if self.targeted:
                raise ValueError(
                    "A targeted attack needs `y`: the target classes. "
                    "Received: y=None"
                )
            y = ops.argmax(model_logits(x), axis=-1)
        y = sparse_labels(y)
        fooled = self.is_successful(model_logits(x_adv), y)
        distance = self.threat_model.distance(x, x_adv)
        return ops.where(fooled, distance, float("inf"))

    def get_config(self) -> Config:
        config = super().get_config()
        del config["loss"], config["norm"]
        config.update(
            {
                "confidence": self.confidence,
                "learning_rate": self.learning_rate,
                "binary_search_steps": self.binary_search_steps,
                "max_iterations": self.max_iterations,
                "initial_const": self.initial_const,
                "abort_early": self.abort_early,
            }
        )
        return config
