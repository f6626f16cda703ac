"""The replica seam: what a loss needs to see the global batch.

Losses whose value couples the samples of a batch (Softmax GAN's partition
function) need every replica's share of the batch. These two functions are
the only place outside `_multi_worker.py` where keras_adv asks
`tf.distribute` about replicas; they work in a replica context
(`strategy.run`, Keras' train and test steps), and are no-ops with one
replica or in a cross-replica context.
"""

import tensorflow as tf


def replica_count():
    """The number of replicas training in sync (1 outside a strategy)."""
    ctx = tf.distribute.get_replica_context()
    return 1 if ctx is None else int(ctx.num_replicas_in_sync)


def all_gather(tensors):
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
