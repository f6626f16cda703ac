"""Randomness: the one home of seed conversion and folding.

Every random draw in keras_adv takes a seed in one of three forms: a
`keras.random.SeedGenerator` (eager use and Keras layers; advances on each
draw), an int (deterministic), or a stateless `(2,)` int32 tensor (inside
graphs and distribution strategies). This module converts between them and
derives independent streams by folding in an index (a restart, a step, a
replica id, a batch), so that the same seed gives the same result whichever
entry point runs the computation. Graph-safe unless stated otherwise.
"""

from collections.abc import Sequence
from typing import cast

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike

#: Seeds are drawn in `[0, SEED_MAX)`.
SEED_MAX = 2**31 - 1


def as_stateless_seed(seed: Seed) -> Tensor:
    """A `(2,)` int32 seed tensor from an int, a (2,) tensor or a generator.

    A `keras.random.SeedGenerator` is advanced (one draw), so consecutive
    calls give new seeds; ints and tensors are deterministic.

    Raises:
        ValueError: for a float tensor or a tensor not of shape `(2,)`.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return keras.random.randint((2,), 0, SEED_MAX, seed=seed, dtype="int32")
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int32)
    tensor = tf.convert_to_tensor(seed)
    if tensor.dtype.is_floating or tuple(tensor.shape) != (2,):
        raise ValueError(
            _validation.invalid(
                "seed",
                "an int, an int tensor of shape (2,) or a SeedGenerator",
                tensor,
            )
        )
    return tf.cast(tensor, tf.int32)


def fold_seed(seed: TensorLike, index: int | TensorLike) -> Tensor:
    """A new stateless seed from `seed` and an int `index` (restarts, steps).

    Different indices give statistically independent streams.
    """
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int32), index
    )


def split_seed(seed: Seed | None) -> tuple[Seed | None, Seed | None]:
    """Two independent seeds from one (stateless tensor seeds are offset).

    A `SeedGenerator` or an int is returned twice: each draw from a
    generator advances it, so the two draws differ anyway.
    """
    if tf.is_tensor(seed):
        tensor = cast(Tensor, seed)
        return tensor, tensor + ops.cast([0, 1], tensor.dtype)
    return seed, seed


def random_uniform(
    shape: Sequence[int | TensorLike] | TensorLike,
    seed: Seed | None,
    minval: float = 0.0,
    maxval: float = 1.0,
) -> Tensor:
    """Uniform noise from a `SeedGenerator`, an int, or a (2,) seed tensor."""
    if tf.is_tensor(seed):
        return tf.random.stateless_uniform(
            shape, seed=ops.cast(seed, "int32"), minval=minval, maxval=maxval
        )
    return keras.random.uniform(shape, minval=minval, maxval=maxval, seed=seed)


def random_normal(
    shape: Sequence[int | TensorLike] | TensorLike, seed: Seed | None
) -> Tensor:
    """Standard normal noise from a `SeedGenerator`, an int or a seed tensor."""
    if tf.is_tensor(seed):
        return tf.random.stateless_normal(shape, seed=ops.cast(seed, "int32"))
    return keras.random.normal(shape, seed=seed)


def replica_id() -> Tensor:
    """This replica's id in its sync group (an int32 tensor; 0 outside)."""
    ctx = tf.distribute.get_replica_context()
    replica = ctx.replica_id_in_sync_group if ctx is not None else 0
    return ops.cast(replica, "int32")


def fold_replica(seed: Seed) -> Tensor:
    """`seed` (stateless) with the replica id folded in.

    Replicas (and workers) then draw different random numbers; a
    deterministic function of `seed` and the replica id.
    """
    return fold_seed(as_stateless_seed(seed), replica_id())


def step_seed(base: int | None, step: int | TensorLike) -> Tensor:
    """The stateless seed `[base, step]` of a training step, per replica.

    Args:
        base: Int or None (0), e.g. an attack's `seed`.
        step: Int32 scalar tensor, e.g. `optimizer.iterations`.
    """
    seed = ops.stack(
        [ops.convert_to_tensor(base or 0, "int32"), ops.cast(step, "int32")]
    )
    return fold_seed(seed, replica_id())


def batch_seeds(seed: int, count: int, batch_index: int) -> np.ndarray:
    """Host-side stateless seeds `(count, 2)` for batch `batch_index`.

    Entry `i` is `[seed + i, batch_index]`: attack `i` of an evaluation
    gets the same random starts whichever entry point runs it. Numpy, not
    graph-safe (called once per batch on the host).
    """
    first = (int(seed) + np.arange(count)) % SEED_MAX
    return np.stack(
        [first, np.full(count, int(batch_index) % SEED_MAX)], axis=1
    ).astype("int32")
