"""Weight initializers for verified (IBP-based) training."""

import math
from typing import Any

import keras

from keras_adv import _validation
from keras_adv._api import register


@register
class IBPNormal(keras.initializers.Initializer):
    """Shi et al.'s "IBP initialization": normal, std `sqrt(2 pi) / fan_in`.

    With the usual initializations (Glorot, He, LeCun: variance about
    `1 / fan_in`) an interval of width `w` at a layer's input leaves it
    about `sqrt(fan_in) * w` wide, so IBP bounds grow geometrically with
    depth: verified training of a deep network starts from astronomically
    loose bounds and, on a short eps ramp, collapses to a constant output.
    Drawing each weight from `N(0, 2 pi / fan_in**2)` makes the expected
    sum of `|w|` over a unit's inputs exactly 2, which a ReLU halves:
    intervals keep their width from layer to layer at initialization.
    Use it for every hidden Dense/convolution layer (not the logits
    layer), as the paper does; `keras_adv.models.ibp_cnn` does so by
    default.

    `fan_in` is the product of all dimensions but the last (a Dense
    kernel's inputs, a convolution kernel's `height * width * channels`).

    Args:
        seed: Int or None. An int gives the same weights at every call (as
            Keras' own seeded initializers); None draws new ones.
            Defaults to `None`.

    Example:

    >>> import keras, keras_adv
    >>> init = keras_adv.models.IBPNormal(seed=0)
    >>> w = init((3, 3, 32, 64))          # fan_in = 3 * 3 * 32 = 288
    >>> round(float(keras.ops.std(w)) * 288 / (2 * 3.14159) ** 0.5, 1)
    1.0
    >>> layer = keras.layers.Dense(64, kernel_initializer=init)

    Reference:
        Shi et al., "Fast Certified Robust Training with Short Warmup",
        NeurIPS 2021, [arXiv:2103.17268](https://arxiv.org/abs/2103.17268),
        section 4.1.
    """

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed

    def __call__(
        self, shape: tuple[int, ...], dtype: Any = None
    ) -> keras.KerasTensor:
        shape = tuple(int(d) for d in shape)
        if len(shape) < 2:
            raise ValueError(
                _validation.invalid(
                    "shape",
                    "a kernel shape with at least 2 dimensions (fan-in "
                    "dimensions, then units or filters)",
                    shape,
                )
            )
        fan_in = math.prod(shape[:-1])
        return keras.random.normal(
            shape,
            stddev=math.sqrt(2 * math.pi) / fan_in,
            dtype=dtype,
            seed=self.seed,
        )

    def get_config(self) -> dict[str, Any]:
        return {"seed": self.seed}
