"""A hand-weighted `PerturbationCVAE` whose learned set is an L2 ball."""

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import keras
import numpy as np

if TYPE_CHECKING:
    from keras_adv.models import PerturbationCVAE


def _dense(
    inputs: keras.KerasTensor, kernel: np.ndarray, bias: np.ndarray, name: str
) -> keras.KerasTensor:
    layer = keras.layers.Dense(kernel.shape[1], name=name)
    out = layer(inputs)
    layer.set_weights([kernel.astype("float32"), bias.astype("float32")])
    return out


def shift_cvae(
    input_shape: Sequence[int], scale: float = 1.0
) -> "PerturbationCVAE":
    """A `PerturbationCVAE` with `g(z, x) = x + z`, prior `N(0, scale^2 I)`.

    Its learned set of radius `r` is the L2 ball of radius `scale * r`
    around `x` (before clipping), and its latent distance of a pair is
    exactly `||x~ - x||_2 / scale`: the recognition mean is `x~ - x` with
    unit variance. A closed-form reference for tests of learned sets,
    latent attacks and calibration.

    Args:
        input_shape: Shape of one input, e.g. `(1,)` or `(4, 4, 1)`.
        scale: Float > 0, the prior's standard deviation. Defaults to
            `1.0`.

    Returns:
        A `keras_adv.models.PerturbationCVAE` (Gaussian reconstruction).

    Example:

    >>> import numpy as np
    >>> from keras_adv.testing import shift_cvae
    >>> cvae = shift_cvae((2,), scale=0.5)
    >>> x = np.zeros((1, 2), "float32")
    >>> np.asarray(cvae.perturb(x, np.float32([[1.0, 2.0]])))
    array([[0.5, 1. ]], dtype=float32)
    """
    from keras_adv.models import PerturbationCVAE

    shape = tuple(int(d) for d in input_shape)
    n = math.prod(shape)
    eye, zero = np.eye(n), np.zeros((n, n))
    zeros = np.zeros(n)
    log_var = np.full(n, 2.0 * math.log(scale))

    x = keras.Input(shape, name="x")
    flat = keras.layers.Flatten()(x)
    prior = keras.Model(
        x,
        [
            _dense(flat, zero, zeros, "mean"),
            _dense(flat, zero, log_var, "log_var"),
        ],
        name="prior",
    )

    x = keras.Input(shape, name="x")
    x_tilde = keras.Input(shape, name="x_tilde")
    both = keras.layers.Concatenate()(
        [keras.layers.Flatten()(x), keras.layers.Flatten()(x_tilde)]
    )
    recognition = keras.Model(
        [x, x_tilde],
        [
            _dense(both, np.concatenate([-eye, eye]), zeros, "mean"),
            _dense(both, np.concatenate([zero, zero]), zeros, "log_var"),
        ],
        name="recognition",
    )

    x = keras.Input(shape, name="x")
    z = keras.Input((n,), name="z")
    joined = keras.layers.Concatenate()([keras.layers.Flatten()(x), z])
    out = _dense(joined, np.concatenate([eye, eye]), zeros, "shift")
    decoder = keras.Model(
        [x, z], keras.layers.Reshape(shape)(out), name="decoder"
    )
    return PerturbationCVAE(
        prior, recognition, decoder, reconstruction="gaussian"
    )
