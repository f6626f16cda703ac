"""tensorflow-datasets pipelines, npz files and data specs for the CLI."""

import os
from typing import Any

import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._types import Tensor
from keras_adv.datasets._mnist_subset import load_mnist_subset

TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10")


def _scale(image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
    return tf.cast(image, tf.float32) / 255.0, label


def load_tfds(
    name: str,
    split: str = "train",
    batch_size: int = 128,
    shuffle: bool | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tf.data.Dataset:
    """A tensorflow-datasets image dataset as a prefetched `tf.data` pipeline.

    Images are scaled to float32 `[0, 1]` (channel dimension kept: MNIST
    and Fashion-MNIST are `(28, 28, 1)`, CIFAR-10 `(32, 32, 3)`); labels
    are int64.

    Args:
        name: `"mnist"`, `"fashion_mnist"` or `"cifar10"`.
        split: A tfds split string, e.g. `"train"`, `"test"`,
            `"train[:10%]"`. Defaults to `"train"`.
        batch_size: Int >= 1. Defaults to `128`.
        shuffle: Bool or None. None shuffles training splits only.
        seed: Int, shuffle and read seed. Defaults to `0`.
        data_dir: Optional tfds data directory.
        download: Bool, let tfds download and prepare the data if missing
            (needs internet). Defaults to `True`.

    Returns:
        A `tf.data.Dataset` of `(x, y)` batches.

    Raises:
        ValueError: for an unknown `name`.
        ImportError: if tensorflow-datasets is not installed
            (`pip install keras-adv[tfds]`).

    Example:

    >>> import tensorflow_datasets as tfds, keras_adv
    >>> with tfds.testing.mock_data(num_examples=8):
    ...     ds = keras_adv.datasets.load_tfds("mnist", "test", batch_size=4)
    ...     x, y = next(iter(ds))
    >>> tuple(x.shape), x.dtype.name
    ((4, 28, 28, 1), 'float32')
    """
    name = _validation.check_choice("name", name, set(TFDS_NAMES))
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    tfds = _import_tfds()
    if shuffle is None:
        shuffle = split.startswith("train")
    read_config = tfds.ReadConfig(shuffle_seed=seed)
    ds = tfds.load(
        name,
        split=split,
        as_supervised=True,
        data_dir=data_dir,
        download=download,
        shuffle_files=bool(shuffle),
        read_config=read_config,
    )
    ds = ds.map(_scale, num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _import_tfds() -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - optional extra
        raise ImportError(
            "tensorflow-datasets is needed for this loader: "
            "`pip install 'keras-adv[tfds]'`."
        ) from error
    return tfds


def load_npz(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Loads `(x, y)` from an `.npz` file.

    Arrays named `x` and `y` are read (or `x_test` and `y_test`). Integer
    images (uint8 pixels) are converted explicitly to float32 / 255; float
    images must already lie in `[0, 1]` and are returned as float32.

    Args:
        path: Path of the `.npz` file.

    Returns:
        `(x, y)`: float32 images and int64 labels.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the arrays are missing or of mismatched length, or
            float images lie outside `[0, 1]`.

    Example:

    >>> import numpy as np, tempfile, os, keras_adv
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> np.savez(path, x=np.full((2, 4, 4, 1), 255, "uint8"), y=[0, 1])
    >>> x, y = keras_adv.datasets.load_npz(path)
    >>> x.dtype.name, float(x.max()), y.tolist()
    ('float32', 1.0, [0, 1])
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such npz file: {path!r}")
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        for x_key, y_key in (("x", "y"), ("x_test", "y_test")):
            if {x_key, y_key} <= keys:
                x, y = data[x_key], data[y_key]
                break
        else:
            raise ValueError(
                f"{path!r} must hold arrays named 'x' and 'y' (or 'x_test' "
                f"and 'y_test'). Found: {sorted(keys)}"
            )
    if len(x) != len(y):
        raise ValueError(
            f"{path!r}: x and y have different lengths ({len(x)} vs {len(y)})"
        )
    if np.issubdtype(x.dtype, np.integer):
        x = x.astype("float32") / 255.0
    else:
        x = x.astype("float32")
        if x.size and not (
            np.all(np.isfinite(x)) and x.min() >= 0.0 and x.max() <= 1.0
        ):
            raise ValueError(
                f"{path!r}: float images must lie in [0, 1] (found values "
                f"in [{np.nanmin(x):g}, {np.nanmax(x):g}]). Save uint8 "
                "pixels (converted as x / 255) or float images scaled to "
                "[0, 1]."
            )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = np.argmax(y, axis=1)
    return x, y.reshape(-1).astype("int64")


def from_spec(
    spec: str, split: str = "test", max_samples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Loads `(x, y)` numpy arrays from a data spec string (command line).

    Specs: `"mnist-subset"` (the embedded subset), `"tfds:NAME"` (NAME in
    mnist, fashion_mnist, cifar10; materialised to arrays) and
    `"npz:PATH"` (see `load_npz`; `split` is ignored).

    Args:
        spec: The spec string.
        split: `"train"` or `"test"` (or a tfds split). Defaults to
            `"test"`.
        max_samples: Optional int, keep the first `max_samples` samples.

    Returns:
        `(x, y)`: float32 images in `[0, 1]` and int64 labels.

    Raises:
        ValueError: for a malformed spec (one-line message).
        FileNotFoundError: for a missing npz file.

    Example:

    >>> import keras_adv
    >>> x, y = keras_adv.datasets.from_spec("mnist-subset", max_samples=10)
    >>> x.shape, y.shape
    ((10, 28, 28, 1), (10,))
    """
    if max_samples is not None:
        max_samples = _validation.check_int(
            "max_samples", max_samples, minimum=1
        )
    if not isinstance(spec, str) or not spec:
        raise ValueError(_validation.invalid("spec", _SPEC_HELP, spec))
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "mnist-subset" and not arg:
        if split not in ("train", "test"):
            raise ValueError(
                _validation.invalid("split", "'train' or 'test'", split)
            )
        train, test = load_mnist_subset()
        x, y = train if split == "train" else test
    elif kind == "tfds" and arg:
        if arg.lower() not in TFDS_NAMES:
            raise ValueError(
                f"Unknown tfds dataset {arg!r} in spec {spec!r}; expected one "
                f"of {', '.join(TFDS_NAMES)}."
            )
        tfds_split = (
            split if max_samples is None else f"{split}[:{max_samples}]"
        )
        ds = load_tfds(arg.lower(), tfds_split, batch_size=1024, shuffle=False)
        xs, ys = zip(*[(xb.numpy(), yb.numpy()) for xb, yb in ds])
        x, y = np.concatenate(xs), np.concatenate(ys).astype("int64")
    elif kind == "npz" and arg:
        x, y = load_npz(arg)
    else:
        raise ValueError(_validation.invalid("spec", _SPEC_HELP, spec))
    if max_samples is not None:
        x, y = x[:max_samples], y[:max_samples]
    return x, y


_SPEC_HELP = "'mnist-subset', 'tfds:NAME' or 'npz:PATH'"
