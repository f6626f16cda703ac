"""Pairs `(x, x~)` of inputs and perturbed copies for perturbation sets.

A learned perturbation set (`keras_adv.models.PerturbationCVAE`) trains
on pairs of an input and a perturbed copy. The perturbations here are
Keras layers that only act with `training=True`:

* `linf_noise_transform`: `clip(x + U(-eps, eps))` (`RandomLpNoise`);
* `rts_transform`: rotation, scaling and translation from Keras'
  preprocessing layers (`RandomRotation`, `RandomZoom`,
  `RandomTranslation`), drawn per image.

`make_pairs` applies a transform once, with a fixed seed (held-out pairs
for calibration and evaluation); `pair_dataset` draws fresh perturbations
every epoch inside a `tf.data` pipeline; `mnist_subset_pairs` splits the
embedded MNIST subset into training images, a fixed held-out calibration
set and the test pairs.
"""

from typing import Any
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._types import Array
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.datasets._mnist_subset import load_mnist_subset
from keras_adv.layers import RandomLpNoise

KINDS = ("linf", "rts")


def linf_noise_transform(
    eps: float = 0.3,
    value_range: ValueRange = (0.0, 1.0),
    seed: int | None = None,
) -> RandomLpNoise:
    """A layer drawing `clip(x + U(-eps, eps))` per pixel (training only).

    Example:

    >>> import numpy as np, keras_adv
    >>> t = keras_adv.datasets.linf_noise_transform(0.3, seed=0)
    >>> x = np.full((2, 4, 4, 1), 0.5, "float32")
    >>> bool(np.abs(np.asarray(t(x, training=True)) - x).max() <= 0.3)
    True
    """
    return RandomLpNoise(
        eps,
        norm="linf",
        distribution="uniform",
        value_range=value_range,
        seed=seed,
        name="linf_noise",
    )


def rts_transform(
    rotation: float = 45.0,
    scale: tuple[float, float] = (0.7, 1.3),
    translation: int = 4,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    seed: int | None = None,
) -> keras.Sequential:
    """Rotation, scaling and translation from Keras preprocessing layers.

    A `keras.Sequential` of `RandomRotation` (uniform angle in
    `[-rotation, rotation]` degrees), `RandomZoom` (the digit is scaled by
    a factor in `[scale[0], scale[1]]`; Keras' zoom factor `f` scales the
    image by `1 / (1 + f)`) and `RandomTranslation` (a shift of up to
    `translation` pixels on each axis), each drawn per image. Empty areas
    are filled with 0 (black). Active only with `training=True`. (Padding
    and `RandomCrop` would draw one shift per batch, not per image.)

    Args:
        rotation: Float >= 0, the largest angle in degrees. Defaults to
            `45.0`.
        scale: Pair `(low, high)` of scale factors, `0 < low <= high`.
            Defaults to `(0.7, 1.3)`.
        translation: Int >= 0, the largest shift in pixels. Defaults to
            `4`.
        image_shape: `(height, width, channels)`. Defaults to
            `(28, 28, 1)`.
        seed: Int or None. Defaults to `None`.

    Example:

    >>> import numpy as np, keras_adv
    >>> t = keras_adv.datasets.rts_transform(seed=0)
    >>> x = np.zeros((2, 28, 28, 1), "float32")
    >>> tuple(t(x, training=True).shape)
    (2, 28, 28, 1)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (the MNIST RTS set:
        rotations up to 45 degrees, scaling 0.7-1.3, translations).
    """
    rotation = _validation.check_number("rotation", rotation, minimum=0.0)
    try:
        low, high = (float(s) for s in scale)
    except (TypeError, ValueError):
        raise ValueError(
            _validation.invalid("scale", "a pair (low, high)", scale)
        ) from None
    if not 0.0 < low <= high:
        raise ValueError(_validation.invalid("scale", "0 < low <= high", scale))
    translation = _validation.check_int("translation", translation, minimum=0)
    height, width = int(image_shape[0]), int(image_shape[1])
    seeds = [None] * 3 if seed is None else [seed, seed + 1, seed + 2]
    layers = [keras.Input(tuple(image_shape))]
    if rotation > 0:
        layers.append(
            keras.layers.RandomRotation(
                rotation / 360.0,
                fill_mode="constant",
                fill_value=0.0,
                seed=seeds[0],
            )
        )
    if (low, high) != (1.0, 1.0):
        # Keras zooms by a factor f: output = input scaled by 1 / (1 + f).
        layers.append(
            keras.layers.RandomZoom(
                (1.0 / high - 1.0, 1.0 / low - 1.0),
                fill_mode="constant",
                fill_value=0.0,
                seed=seeds[1],
            )
        )
    if translation > 0:
        # Per image (Keras' RandomCrop draws one offset per batch).
        layers.append(
            keras.layers.RandomTranslation(
                translation / height,
                translation / width,
                fill_mode="constant",
                fill_value=0.0,
                seed=seeds[2],
            )
        )
    if len(layers) == 1:
        layers.append(keras.layers.Identity())
    return keras.Sequential(layers, name="rts")


def _transform(
    kind: str, seed: int | None, **kwargs: Any
) -> keras.layers.Layer:
    kind = _validation.check_choice("kind", kind, set(KINDS))
    if kind == "linf":
        return linf_noise_transform(seed=seed, **kwargs)
    return rts_transform(seed=seed, **kwargs)


def _check_images(x: Array) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim < 2 or x.dtype.kind != "f":
        raise ValueError(
            _validation.invalid(
                "x", "a float array of images (n, ...)", f"{x.dtype} {x.shape}"
            )
        )
    return x


def _check_range(x: np.ndarray, transform: object) -> None:
    """Inputs of a transform that clips to a value range must lie in it."""
    value_range = getattr(transform, "value_range", None)
    if value_range is not None:
        _validation.check_value_range_of(x, value_range, "x")


def make_pairs(
    x: Array,
    transform: Literal["linf", "rts"] | keras.layers.Layer = "linf",
    batch_size: int = 256,
    seed: int = 0,
    **kwargs: Any,
) -> np.ndarray:
    """Perturbed copies `x~ = transform(x)` of an array, reproducibly.

    Args:
        x: Float array of inputs `(n, ...)`.
        transform: A layer or model applied with `training=True`, or a
            kind: `"linf"` (`linf_noise_transform`) or `"rts"`
            (`rts_transform`). Defaults to `"linf"`.
        batch_size: Int >= 1. Defaults to `256`.
        seed: Int, seed of the transform built from a kind. Defaults to
            `0`.
        **kwargs: Arguments of the transform built from a kind.

    Returns:
        Float32 array of the shape of `x`. The same kind and seed give the
        same pairs.

    Raises:
        ValueError: naming `x`, for inputs outside the value range of a
            transform that clips to one (`"linf"`, `RandomLpNoise`): pass
            the range the data lives in, e.g. `value_range=(0, 255)`.

    Example:

    >>> import numpy as np, keras_adv
    >>> x = np.full((3, 28, 28, 1), 0.5, "float32")
    >>> a = keras_adv.datasets.make_pairs(x, "rts", seed=1)
    >>> b = keras_adv.datasets.make_pairs(x, "rts", seed=1)
    >>> a.shape, bool(np.array_equal(a, b))
    ((3, 28, 28, 1), True)
    """
    x = _check_images(x)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if isinstance(transform, str):
        transform = _transform(transform, seed, **kwargs)
    _check_range(x, transform)
    parts = [
        np.asarray(transform(x[i : i + batch_size], training=True), "float32")
        for i in range(0, len(x), batch_size)
    ]
    return np.concatenate(parts) if parts else x.astype("float32")


def pair_dataset(
    data: Array | tf.data.Dataset,
    transform: Literal["linf", "rts"] | keras.layers.Layer = "linf",
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int = 0,
    **kwargs: Any,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of `(x, x~)` batches, fresh `x~` every epoch.

    Args:
        data: Float array of inputs, or a `tf.data.Dataset` of inputs or
            of `(x, y, ...)` tuples (labels are dropped), batched or not.
        transform: A layer/model or a kind (`"linf"`, `"rts"`). Defaults
            to `"linf"`.
        batch_size: Int, for arrays and unbatched datasets. Defaults to
            `128`.
        shuffle: Bool, reshuffle arrays every epoch. Defaults to `True`.
        seed: Int. Defaults to `0`.
        **kwargs: Arguments of the transform built from a kind.

    Returns:
        A prefetched dataset of float32 `(x, x_tilde)` batches, ready for
        `PerturbationCVAE.fit`.

    Example:

    >>> import numpy as np, keras_adv
    >>> x = np.full((8, 28, 28, 1), 0.5, "float32")
    >>> ds = keras_adv.datasets.pair_dataset(x, "linf", batch_size=4)
    >>> a, b = next(iter(ds))
    >>> tuple(a.shape), tuple(b.shape)
    ((4, 28, 28, 1), (4, 28, 28, 1))
    """
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if isinstance(transform, str):
        transform = _transform(transform, seed, **kwargs)
    if isinstance(data, tf.data.Dataset):
        ds = data
        if isinstance(ds.element_spec, tuple):
            ds = ds.map(lambda *parts: parts[0])
        spec = ds.element_spec
        if spec.shape.rank is not None and spec.shape.rank < 4:
            ds = ds.batch(batch_size)
    else:
        x = _check_images(data).astype("float32")
        _check_range(x, transform)
        ds = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)

    def perturb(x: Tensor) -> tuple[Tensor, Tensor]:
        x = tf.cast(x, tf.float32)
        return x, tf.cast(transform(x, training=True), tf.float32)

    return ds.map(perturb).prefetch(tf.data.AUTOTUNE)


def mnist_subset_pairs(
    kind: Literal["linf", "rts"] = "linf",
    calibration: int = 500,
    seed: int = 0,
    **kwargs: Any,
) -> dict[str, tuple[np.ndarray, ...]]:
    """The embedded MNIST subset split for learning a perturbation set.

    The 4,000 training images are split into CVAE training images (the
    first `4000 - calibration`) and a fixed held-out calibration set (the
    last `calibration`, with perturbed copies drawn once with `seed`);
    the 1,000 test images get perturbed copies drawn with `seed + 1`.

    Args:
        kind: `"linf"` (uniform noise, eps 0.3) or `"rts"` (rotation up to
            45 degrees, scale 0.7-1.3, translation). Defaults to `"linf"`.
        calibration: Int >= 1, held-out training pairs. Defaults to `500`.
        seed: Int. Defaults to `0`.
        **kwargs: Arguments of the transform (`eps`, `rotation`, ...).

    Returns:
        A dict: `"train"`: `(x, y)`; `"calibration"` and `"test"`:
        `(x, x_tilde, y)`; float32 images in `[0, 1]`, int64 labels.

    Example:

    >>> import keras_adv
    >>> data = keras_adv.datasets.mnist_subset_pairs("linf")
    >>> data["train"][0].shape, data["calibration"][1].shape
    ((3500, 28, 28, 1), (500, 28, 28, 1))
    """
    kind = _validation.check_choice("kind", kind, set(KINDS))
    calibration = _validation.check_int("calibration", calibration, minimum=1)
    (x, y), (x_test, y_test) = load_mnist_subset()
    if calibration >= len(x):
        raise ValueError(
            _validation.invalid(
                "calibration", f"an int < {len(x)}", calibration
            )
        )
    split = len(x) - calibration
    x_cal, y_cal = x[split:], y[split:]
    cal_tilde = make_pairs(x_cal, kind, seed=seed, **kwargs)
    test_tilde = make_pairs(x_test, kind, seed=seed + 1, **kwargs)
    return {
        "train": (x[:split], y[:split]),
        "calibration": (x_cal, cal_tilde, y_cal),
        "test": (x_test, test_tilde, y_test),
    }
