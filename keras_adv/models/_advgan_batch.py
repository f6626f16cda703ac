"""What AdvGAN draws and measures on a batch, without state (graph-safe).

The random targets of a targeted batch and the attack terms of the
generator's loss; `AdvGAN` calls them from its steps.
"""

import keras
import tensorflow as tf
from keras import ops

from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv.losses import cw_loss
from keras_adv.losses import perturbation_hinge


def other_classes(
    labels: TensorLike,
    num_classes: int,
    seed_generator: keras.random.SeedGenerator,
    seed: Tensor | None = None,
) -> Tensor:
    """Classes drawn uniformly among those other than each label.

    Args:
        labels: Int class ids `(batch,)`.
        num_classes: Int, the number of classes.
        seed_generator: The `keras.random.SeedGenerator` to draw from when
            `seed` is None.
        seed: Optional stateless seed `(2,)` (a replica's), used instead.

    Returns:
        Int32 `(batch,)`, each `!= labels`.
    """
    shape = ops.shape(labels)
    if seed is None:
        shift = keras.random.randint(
            shape, 1, num_classes, seed=seed_generator, dtype="int32"
        )
    else:
        shift = tf.random.stateless_uniform(
            shape, seed, minval=1, maxval=num_classes, dtype=tf.int32
        )
    return (labels + shift) % num_classes


def attack_terms(
    x: Tensor,
    delta: Tensor,
    x_adv: Tensor,
    labels: Tensor,
    logits: Tensor,
    kappa: float,
    c: float,
    targeted: bool,
) -> dict[str, Tensor]:
    """What the target model's answers and the perturbation say of a batch.

    Args:
        x: The batch, float32.
        delta: The generator's raw perturbation `G(x)`.
        x_adv: `x + delta` projected onto the threat model.
        labels: Int class ids `(batch,)`: the labels, or the targets when
            `targeted`.
        logits: The target model's logits for `x_adv`.
        kappa: Float, the C&W confidence.
        c: Float, the hinge's L2 budget.
        targeted: Bool.

    Returns:
        Dict of scalars: `g_adv` (batch mean of `cw_loss`), `g_hinge`
        (batch mean of `max(0, ||delta||_2 - c)`), `success_rate` (share
        of the batch classified as the target, or away from the label) and
        `perturbation_norm` (mean L2 norm of `x_adv - x`).
    """
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    if targeted:
        hit = ops.equal(predicted, labels)
    else:
        hit = ops.not_equal(predicted, labels)
    diff = ops.reshape(x_adv - x, (ops.shape(x)[0], -1))
    return {
        "g_adv": ops.mean(cw_loss(labels, logits, kappa, targeted)),
        "g_hinge": ops.mean(perturbation_hinge(delta, c)),
        "success_rate": ops.mean(ops.cast(hit, "float32")),
        "perturbation_norm": ops.mean(
            ops.sqrt(ops.sum(ops.square(diff), axis=-1))
        ),
    }
