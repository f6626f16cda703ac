"""The replica seam: how many replicas, per-replica loss scaling, gathering.

Under a `tf.distribute` strategy every replica computes its loss on its
share of the global batch and the gradients are summed across replicas.
Keras therefore divides its compiled loss by the number of replicas (and
multiplies it back for the `loss` log); a loss keras_adv adds to it, or
differentiates itself (a GAN's networks, Free-m's step), is scaled here,
the same way. Losses whose value couples the samples of a batch (Softmax
GAN's partition function) need every replica's share: `all_gather`.

This module is the one place keras_adv counts replicas and scales losses
for them (the replica id that seeds fold in lives with the seeds, in
`keras_adv/_random.py`).
"""

from collections.abc import Sequence

import tensorflow as tf
from keras import ops

from keras_adv._types import Tensor
from keras_adv._types import TensorLike


def replica_count() -> int:
    """The number of replicas training in sync (1 outside a strategy).

    Read in a replica context (`strategy.run`, Keras' train and test
    steps); 1 in a cross-replica context.
    """
    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else int(ctx.num_replicas_in_sync)


def _replicas_in_sync() -> int:
    # As Keras' loss scaling: the current strategy's replicas, whatever
    # the context.
    return tf.distribute.get_strategy().num_replicas_in_sync


def scale_for_replicas(value: TensorLike) -> TensorLike:
    """`value / replicas`: a per-replica loss whose gradients are summed.

    Keras sums the replicas' gradients and divides its compiled loss by
    the number of replicas in sync (`tf.distribute.get_strategy()`), so
    that the sum is the gradient of the global batch's mean. A loss term
    added to the compiled loss, or a loss differentiated outside Keras'
    `train_step`, is scaled the same way. With one replica `value` is
    returned unchanged.

    Args:
        value: A floating-point tensor (a replica's batch-mean loss).

    Returns:
        The scaled tensor, in `value`'s dtype.
    """
    replicas = _replicas_in_sync()
    if replicas > 1:
        value = ops.convert_to_tensor(value)
        value = value * ops.cast(1.0 / replicas, value.dtype)
    return value


def unscale_for_replicas(value: TensorLike) -> TensorLike:
    """`value * replicas`: the inverse of `scale_for_replicas`.

    What Keras records in its `loss` tracker: the replica's loss before
    the scaling, so that the logged loss does not depend on the number of
    replicas.

    Args:
        value: A floating-point tensor (a scaled loss).

    Returns:
        The unscaled tensor, in `value`'s dtype.
    """
    replicas = _replicas_in_sync()
    if replicas > 1:
        value = ops.convert_to_tensor(value)
        value = value * ops.cast(replicas, value.dtype)
    return value


def all_gather(tensors: Sequence[TensorLike]) -> list[Tensor]:
    """Every replica's `tensors`, concatenated along axis 0, in replica order.

    The result carries no gradient (the inputs' gradients are stopped
    before the collective: a loss built on it chooses its own gradient).
    Replicas may hold different numbers of rows. With one replica, or in
    a cross-replica context, returns `tensors` unchanged (gradient
    stopped too).

    Args:
        tensors: A list of tensors with a batch axis 0.

    Returns:
        A list of tensors, one per input.
    """
    tensors = [tf.stop_gradient(t) for t in tensors]
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return tensors
    return list(ctx.all_gather(tensors, axis=0))
