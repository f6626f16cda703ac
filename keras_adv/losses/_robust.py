"""Robust-training terms: the TRADES KL, VAT's LDS and their inner problems.

Pure, graph-safe functions of float32 tensors. The inner maximisations take
a `logits_fn` (`x -> float32 logits`, e.g.
`keras_adv.attacks.ModelLogits(model)`) and a threat model (`LinfBall` /
`L2Ball`) that supplies the ascent direction and the projection, so they
work for any norm the attacks support.
"""

import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv._types import Eps
from keras_adv._types import LogitsFn
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.threat_models._balls import ThreatModel

_TINY = 1e-12


def kl_divergence_from_logits(
    p_logits: TensorLike, q_logits: TensorLike
) -> Tensor:
    """Per-sample `KL(softmax(p_logits) || softmax(q_logits))`.

    Computed with `log_softmax` on both sides (stable for large logits).

    Args:
        p_logits: Float tensor `(batch, classes)`, the reference
            distribution's logits.
        q_logits: Float tensor `(batch, classes)`.

    Returns:
        Float32 tensor of shape `(batch,)`, non-negative.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses._robust import kl_divergence_from_logits
    >>> p = np.log(np.array([[0.5, 0.5]], "float32"))
    >>> q = np.log(np.array([[0.25, 0.75]], "float32"))
    >>> kl = float(np.asarray(kl_divergence_from_logits(p, q))[0])
    >>> round(kl, 4)  # 0.5 * log(2) + 0.5 * log(2 / 3)
    0.1438
    """
    p_log = ops.log_softmax(ops.cast(p_logits, "float32"), axis=-1)
    q_log = ops.log_softmax(ops.cast(q_logits, "float32"), axis=-1)
    return ops.sum(ops.exp(p_log) * (p_log - q_log), axis=-1)


def trades_kl(clean_logits: TensorLike, adv_logits: TensorLike) -> Tensor:
    """The TRADES robustness term `KL(f(x) || f(x_adv))`, per sample.

    Gradients flow through both arguments, as in the TRADES objective
    `CE(f(x), y) + beta * KL(f(x) || f(x_adv))`.

    Args:
        clean_logits: Logits on clean inputs, `(batch, classes)`.
        adv_logits: Logits on adversarial inputs, `(batch, classes)`.

    Returns:
        Float32 tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import trades_kl
    >>> same = trades_kl(np.array([[1.0, 2.0]]), np.array([[1.0, 2.0]]))
    >>> flipped = trades_kl(np.array([[0.0, 9.0]]), np.array([[9.0, 0.0]]))
    >>> float(same[0]), round(float(flipped[0]), 2)
    (0.0, 9.0)

    Reference:
        Zhang, Yu, Jiao, Xing, El Ghaoui and Jordan, "Theoretically
        Principled Trade-off between Robustness and Accuracy", ICML 2019,
        [arXiv:1901.08573](https://arxiv.org/abs/1901.08573).
    """
    return kl_divergence_from_logits(clean_logits, adv_logits)


def vat_lds(clean_logits: TensorLike, adv_logits: TensorLike) -> Tensor:
    """VAT's local distributional smoothness `KL(p(x) || p(x + r_vadv))`.

    The clean distribution is a constant (its gradient is stopped), as in
    the paper.

    Args:
        clean_logits: Logits on clean inputs, `(batch, classes)`.
        adv_logits: Logits on `x + r_vadv`, `(batch, classes)`.

    Returns:
        Float32 tensor of shape `(batch,)`.

    Example:

    >>> import numpy as np
    >>> from keras_adv.losses import vat_lds
    >>> lds = vat_lds(np.array([[0.0, 0.0]]), np.array([[0.0, np.log(3.0)]]))
    >>> round(float(lds[0]), 4)  # KL((1/2, 1/2) || (1/4, 3/4))
    0.1438

    Reference:
        Miyato, Maeda, Koyama and Ishii, "Virtual Adversarial Training: A
        Regularization Method for Supervised and Semi-Supervised Learning",
        IEEE TPAMI 2018, [arXiv:1704.03976](https://arxiv.org/abs/1704.03976).
    """
    return kl_divergence_from_logits(
        ops.stop_gradient(clean_logits), adv_logits
    )


def _kl_gradient(
    logits_fn: LogitsFn, p_logits: Tensor, x_point: TensorLike
) -> Tensor:
    """Gradient of `sum KL(p || f(x_point))` with respect to `x_point`."""
    if hasattr(logits_fn, "value_and_input_gradient"):
        _, grad = logits_fn.value_and_input_gradient(
            lambda logits: kl_divergence_from_logits(p_logits, logits), x_point
        )
        return grad
    loss_scale = getattr(logits_fn, "loss_scale", 1.0)
    with tf.GradientTape() as tape:
        tape.watch(x_point)
        kl = ops.sum(kl_divergence_from_logits(p_logits, logits_fn(x_point)))
        scaled = kl * loss_scale
    grad = tape.gradient(
        scaled, x_point, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    grad = ops.cast(grad, "float32") / loss_scale
    return ops.where(ops.isfinite(grad), grad, 0.0)


def trades_perturbation(
    logits_fn: LogitsFn,
    x: TensorLike,
    clean_logits: TensorLike,
    threat_model: ThreatModel,
    eps: Eps,
    steps: int,
    step_size: float | TensorLike,
    seed: Seed,
) -> Tensor:
    """TRADES inner maximisation: `argmax_{x' in ball} KL(f(x) || f(x'))`.

    Starts at `x + 0.001 * N(0, 1)` (projected), then takes `steps` steps
    `x' <- project(x' + step_size * ascent_direction(grad KL))`.

    Args:
        logits_fn: Callable `x -> float32 logits`.
        x: Float32 inputs.
        clean_logits: `f(x)`, the fixed reference distribution (its gradient
            is stopped here).
        threat_model: A `LinfBall` or `L2Ball`.
        eps: Float or per-sample tensor, the radius.
        steps: Python int >= 1.
        step_size: Float tensor broadcastable to `x`.
        seed: A `SeedGenerator` or an int32 `(2,)` stateless seed tensor.

    Returns:
        `x_adv` (float32, gradient stopped) inside the ball and value range.

    Reference:
        Zhang et al., "Theoretically Principled Trade-off between Robustness and
        Accuracy", ICML 2019,
        [arXiv:1901.08573](https://arxiv.org/abs/1901.08573).
    """
    p_logits = ops.stop_gradient(ops.cast(clean_logits, "float32"))
    noise = _random.random_normal(ops.shape(x), seed)
    x_adv = threat_model.project(x + 0.001 * noise, x, eps=eps)
    for _ in range(steps):
        grad = _kl_gradient(logits_fn, p_logits, x_adv)
        x_adv = x_adv + step_size * threat_model.ascent_direction(grad)
        x_adv = threat_model.project(x_adv, x, eps=eps)
    return ops.stop_gradient(x_adv)


def _l2_normalize(d: TensorLike) -> Tensor:
    axes = list(range(1, len(d.shape)))
    norm = ops.sqrt(ops.sum(ops.square(d), axis=axes, keepdims=True))
    return d / ops.maximum(norm, _TINY)


def virtual_adversarial_perturbation(
    logits_fn: LogitsFn,
    x: TensorLike,
    clean_logits: TensorLike,
    threat_model: ThreatModel,
    eps: Eps,
    xi: float = 1e-6,
    power_iterations: int = 1,
    seed: Seed | None = None,
) -> Tensor:
    """VAT's virtual adversarial point `x + r_vadv` by power iteration.

    `d ~ N(0, I)`; repeat `power_iterations` times:
    `d <- grad_d KL(p(x) || p(x + xi * d / ||d||_2))`. Then
    `r_vadv = eps * ascent_direction(d)`: `eps * d / ||d||_2` for the L2 ball
    (the paper), `eps * sign(d)` for L-inf. No labels are used.

    Args:
        logits_fn: Callable `x -> float32 logits`.
        x: Float32 inputs.
        clean_logits: `p(x)` as logits (gradient stopped here).
        threat_model: A `LinfBall` or `L2Ball`.
        eps: Float or per-sample tensor, the radius.
        xi: Float, finite-difference scale of the power iteration.
            Defaults to `1e-6`.
        power_iterations: Python int >= 1. Defaults to `1`.
        seed: A `SeedGenerator` or an int32 `(2,)` stateless seed tensor.

    Returns:
        `x + r_vadv` (float32, gradient stopped), clipped to the value range.

    Reference:
        Miyato et al., "Virtual Adversarial Training", IEEE TPAMI 2018,
        [arXiv:1704.03976](https://arxiv.org/abs/1704.03976).
    """
    p_logits = ops.stop_gradient(ops.cast(clean_logits, "float32"))
    d = _random.random_normal(ops.shape(x), seed)
    for _ in range(power_iterations):
        d = xi * _l2_normalize(d)
        d = _kl_gradient(logits_fn, p_logits, x + d)
    eps_b = threat_model.eps_tensor(x, eps)
    x_adv = x + eps_b * threat_model.ascent_direction(d)
    return ops.stop_gradient(threat_model.project(x_adv, x, eps=eps))
