"""Generated training data: pseudo-labelled GAN samples, mixed with real data.

Gowal et al. (2021) make adversarial training better with data from a
generative model trained on the training set alone: the samples are
labelled by a non-robust classifier trained on the real data, and every
training batch holds a fixed share of real samples (30 % in their best
runs), the rest generated.

* `pseudo_labelled_dataset`: an endless `tf.data.Dataset` of `(x, y)`
  samples generated and labelled inside the input pipeline (a graph: no
  Python per sample), optionally only those the classifier is confident
  about.
* `make_pseudo_labelled`: the same samples, a fixed number of them, as
  numpy arrays (a generated set made once and reused, as in the paper).
* `mix_datasets`: batches with exactly `round(real_fraction * batch_size)`
  real samples each, for `fit` (and so for `AdversarialTraining`).
"""

import math
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._types import Array
from keras_adv.attacks import ModelLogits
from keras_adv.models import GAN
from keras_adv.models import ConditionalGAN

#: `make_pseudo_labelled` gives up below this acceptance rate.
_MIN_ACCEPTANCE = 0.01


def _check_confidence(confidence: float | None) -> float | None:
    if confidence is None:
        return None
    confidence = _validation.check_number("confidence", confidence, minimum=0)
    if confidence >= 1.0:
        raise ValueError(
            _validation.invalid(
                "confidence", "None or a number in [0, 1)", confidence
            )
        )
    return confidence


def _draw_fn(
    gan: GAN, batch_size: int
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """`(chunk index, stateless seed) -> samples`, graph-safe."""
    if isinstance(gan, ConditionalGAN):
        offsets = tf.range(batch_size, dtype=tf.int64)

        def draw(index: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            # Classes in turn: every class equally often before filtering.
            labels = (index * batch_size + offsets) % gan.num_classes
            return gan.sample(labels, seed=seed)

        return draw
    if isinstance(gan, GAN):

        def draw(index: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
            del index
            z = _random.random_normal((batch_size, gan.latent_dim), seed)
            return gan.generator(z, training=False)

        return draw
    raise TypeError(
        _validation.invalid(
            "gan",
            "a keras_adv.models.GAN (ConditionalGAN, SoftmaxGAN, ...)",
            type(gan).__name__,
        )
    )


def _chunks(
    gan: GAN,
    classifier: keras.Model,
    confidence: float | None,
    batch_size: int,
    seed: int | None,
) -> tf.data.Dataset:
    """Endless dataset of accepted chunks `(x, y)`, up to `batch_size` each."""
    confidence = _check_confidence(confidence)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if seed is not None:
        seed = _validation.check_int("seed", seed, minimum=0)
    draw = _draw_fn(gan, batch_size)
    logits = ModelLogits(classifier)

    def label(index: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = ops.cast(draw(index, seed), "float32")
        probabilities = ops.softmax(logits(x), axis=-1)
        y = ops.cast(ops.argmax(probabilities, axis=-1), "int64")
        if confidence is None:
            return x, y
        keep = ops.max(probabilities, axis=-1) >= confidence
        return tf.boolean_mask(x, keep), tf.boolean_mask(y, keep)

    # One stateless seed per chunk; a new sequence every time the dataset
    # is iterated (each epoch of `fit`), the same sequences for one seed.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    return (
        seeds.batch(2, drop_remainder=True)
        .enumerate()
        .map(label, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    )


def pseudo_labelled_dataset(
    gan: GAN,
    classifier: keras.Model,
    confidence: float | None = None,
    batch_size: int = 256,
    seed: int | None = 0,
) -> tf.data.Dataset:
    """An endless dataset of generated samples labelled by a classifier.

    Inside the input pipeline, `batch_size` samples at a time are drawn
    from the GAN's generator (in inference mode) and labelled with the
    classifier's most probable class; with `confidence`, only samples
    whose top softmax probability reaches it are kept (Gowal et al. keep
    all). A `ConditionalGAN` is asked for every class in turn (balanced
    classes before the filter; the label is still the classifier's); a
    `GAN` draws standard normal latents. Each draw has its own stateless
    seed, so one `seed` always gives the same samples in the same order,
    and every new iteration (every epoch of `fit`) gives new ones. As for
    every `tf.data` random op, the draws also depend on TensorFlow's global
    seed (`keras.utils.set_random_seed` sets it): set it first for runs
    that repeat.

    The generation and labelling run as a graph inside `tf.data` (no Python
    per sample); `tf.data` places that work on the host CPU. To generate on
    an accelerator once, use `make_pseudo_labelled`.

    Args:
        gan: A `keras_adv.models.GAN`, e.g. a trained `ConditionalGAN`.
        classifier: A Keras classifier (logits or probabilities) trained on
            the real data.
        confidence: None or a float in `[0, 1)`, the smallest top-class
            probability of a kept sample. Defaults to `None` (keep all).
        batch_size: Int, samples drawn per call of the networks. The
            dataset yields single samples: batch it or give it to
            `mix_datasets`. Defaults to `256`.
        seed: Int or None (a new sequence each time). Defaults to `0`.

    Returns:
        An endless `tf.data.Dataset` of `(x, y)`: float32 samples and int64
        class ids.

    Raises:
        TypeError: if `gan` is not a `keras_adv.models.GAN`.
        ValueError: for invalid numbers.

    Example:

    >>> import keras, keras_adv
    >>> gan = keras_adv.models.ConditionalGAN(
    ...     keras_adv.models.conditional_dcgan_generator(8, width=4, seed=0),
    ...     keras_adv.models.projection_discriminator(width=4, seed=0),
    ...     latent_dim=8, num_classes=10, seed=0)
    >>> classifier = keras_adv.models.mnist_cnn(seed=0)
    >>> ds = keras_adv.datasets.pseudo_labelled_dataset(
    ...     gan, classifier, batch_size=32, seed=0)
    >>> x, y = next(iter(ds.batch(4)))
    >>> tuple(x.shape), y.dtype.name
    ((4, 28, 28, 1), 'int64')

    Reference:
        Gowal et al., "Improving Robustness using Generated Data", NeurIPS
        2021, [arXiv:2110.09468](https://arxiv.org/abs/2110.09468).
    """
    chunks = _chunks(gan, classifier, confidence, batch_size, seed)
    return chunks.unbatch().prefetch(tf.data.AUTOTUNE)


def make_pseudo_labelled(
    gan: GAN,
    classifier: keras.Model,
    num_samples: int,
    confidence: float | None = None,
    batch_size: int = 256,
    seed: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of generated samples labelled by a classifier (arrays).

    The first `num_samples` samples of `pseudo_labelled_dataset` with the
    same arguments, gathered into numpy arrays: generate the set once,
    then reuse it (save it, mix it with `mix_datasets`), as Gowal et al.
    do.

    Args:
        gan: A `keras_adv.models.GAN`, e.g. a trained `ConditionalGAN`.
        classifier: A Keras classifier trained on the real data.
        num_samples: Int >= 1, the number of samples to return.
        confidence: None or a float in `[0, 1)`, the smallest top-class
            probability of a kept sample. Defaults to `None`.
        batch_size: Int, samples drawn per call of the networks. Defaults
            to `256`.
        seed: Int or None. Defaults to `0`.

    Returns:
        `(x, y)`: float32 samples `(num_samples, ...)` and int64 class ids.

    Raises:
        ValueError: for invalid numbers, or when fewer than 1 % of the
            drawn samples reach `confidence`.

    Example:

    >>> import keras_adv
    >>> gan = keras_adv.models.ConditionalGAN(
    ...     keras_adv.models.conditional_dcgan_generator(8, width=4, seed=0),
    ...     keras_adv.models.projection_discriminator(width=4, seed=0),
    ...     latent_dim=8, num_classes=10, seed=0)
    >>> x, y = keras_adv.datasets.make_pseudo_labelled(
    ...     gan, keras_adv.models.mnist_cnn(seed=0), 100, seed=0)
    >>> x.shape, y.shape
    ((100, 28, 28, 1), (100,))

    Reference:
        Gowal et al., "Improving Robustness using Generated Data", NeurIPS
        2021, [arXiv:2110.09468](https://arxiv.org/abs/2110.09468).
    """
    num_samples = _validation.check_int("num_samples", num_samples, minimum=1)
    chunks = _chunks(gan, classifier, confidence, batch_size, seed)
    xs, ys = [], []
    kept = drawn = 0
    for x, y in chunks.prefetch(tf.data.AUTOTUNE):
        xs.append(x.numpy())
        ys.append(y.numpy())
        kept += len(ys[-1])
        drawn += batch_size
        if kept >= num_samples:
            break
        if drawn >= num_samples / _MIN_ACCEPTANCE + batch_size:
            raise ValueError(
                "Invalid value received for argument `confidence`. Expected "
                "a threshold that the classifier reaches on at least "
                f"{_MIN_ACCEPTANCE:.0%} of the generated samples. Received: "
                f"confidence={confidence} ({kept} of {drawn} drawn samples "
                "kept)"
            )
    x = np.concatenate(xs, axis=0)[:num_samples]
    y = np.concatenate(ys, axis=0)[:num_samples]
    return x, y


# ------------------------------------------------------------------ mixing
def _check_mix_arrays(name: str, data: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise ValueError(
            _validation.invalid(
                name,
                "a pair (x, y) of arrays or a tf.data.Dataset of (x, y) "
                "samples",
                type(data).__name__,
            )
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    _validation.check_x_dtype(x.dtype, name)
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(
            _validation.invalid(
                name, "a non-empty array x", f"x of shape {x.shape}"
            )
        )
    _validation.check_same_length(x, y, name)
    return x, y


def _check_samples(
    name: str, ds: tf.data.Dataset
) -> tuple[tf.TensorSpec, tf.TensorSpec]:
    spec = ds.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise ValueError(
            _validation.invalid(
                name, "a dataset of (x, y) pairs", f"elements {spec}"
            )
        )
    x_spec, y_spec = spec
    batched = (
        len(x_spec.shape) >= 1
        and len(y_spec.shape) >= 1
        and x_spec.shape[0] is None
        and y_spec.shape[0] is None
    )
    if batched:
        raise ValueError(
            _validation.invalid(
                name,
                "a dataset of single (x, y) samples (call .unbatch() on a "
                "batched dataset)",
                f"elements {spec}",
            )
        )
    return spec


_Fetch = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


def _batches(
    name: str,
    data: tuple[Array, Array] | tf.data.Dataset,
    size: int,
    seed: int,
) -> tuple[
    tf.data.Dataset, tuple[tf.TensorSpec, tf.TensorSpec], int | None, _Fetch
]:
    """Endless batches of `size` samples, the sample spec, the number of
    samples or None, and the function that turns a batch into `(x, y)`.

    Arrays give batches of shuffled indices (reshuffled on every pass, no
    copy of the data) and a `fetch` that gathers them, so that the mixing
    map gathers every part at once; a dataset is read in its own order,
    repeated, and its batches are `(x, y)` already.
    """
    if isinstance(data, tf.data.Dataset):
        spec = _check_samples(name, data)
        cardinality = int(data.cardinality())  # < 0: infinite or unknown
        batches = data.repeat().batch(size, drop_remainder=True)

        def identity(batch: Any) -> tuple[tf.Tensor, tf.Tensor]:
            return batch[0], batch[1]

        return (
            batches,
            spec,
            cardinality if cardinality >= 0 else None,
            identity,
        )
    x, y = _check_mix_arrays(name, data)
    x, y = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    spec = (
        tf.TensorSpec(x.shape[1:], x.dtype),
        tf.TensorSpec(y.shape[1:], y.dtype),
    )

    def gather(index: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(x, index), tf.gather(y, index)

    n = int(x.shape[0])
    batches = (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(size, drop_remainder=True)
    )
    return batches, spec, n, gather


def _conform(
    generated_spec: tuple[tf.TensorSpec, tf.TensorSpec],
    real_spec: tuple[tf.TensorSpec, tf.TensorSpec],
) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A map from generated `(x, y)` to the real data's dtypes, or raise."""
    for part, real, gen in zip(("x", "y"), real_spec, generated_spec):
        if not real.shape.is_compatible_with(gen.shape) or (
            real.dtype != gen.dtype
            and (real.dtype.is_floating != gen.dtype.is_floating)
        ):
            raise ValueError(
                _validation.invalid(
                    "generated",
                    f"samples whose {part} has the shape and kind of the "
                    f"real data's ({real.shape}, {real.dtype.name})",
                    f"{part} of shape {gen.shape} and dtype {gen.dtype.name}",
                )
            )
    dtypes = [spec.dtype for spec in real_spec]

    def cast(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        # A no-op (no graph node) when the dtypes match already.
        return tf.cast(x, dtypes[0]), tf.cast(y, dtypes[1])

    return cast


def mix_datasets(
    real: tuple[Array, Array] | tf.data.Dataset,
    generated: tuple[Array, Array] | tf.data.Dataset,
    real_fraction: float = 0.3,
    batch_size: int = 128,
    steps_per_epoch: int | None = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of real and generated samples at an exact ratio, for `fit`.

    Every batch holds exactly `round(real_fraction * batch_size)` real
    samples (halves round up) and generated ones for the rest, in a
    random order within the batch (so that the replicas of a distribution
    strategy, which split a batch into slices, get both kinds). Real arrays
    are reshuffled on every pass through them, generated arrays too (a
    fixed generated set); a `tf.data.Dataset` is read in its own order
    (e.g. the endless `pseudo_labelled_dataset`). One epoch is one pass
    over the real data by default: `ceil(len(real) / real_per_batch)`
    batches. The same `seed` (and TensorFlow global seed, as for every
    `tf.data` shuffle) gives the same batches; every epoch of `fit` gets
    new ones.

    The result is an ordinary dataset of `(x, y)` batches: `fit` takes it
    as it is, with `keras_adv.callbacks.AdversarialTraining` or an
    `AdversarialModel` unchanged.

    Args:
        real: The real training data: a pair `(x, y)` of arrays or a
            `tf.data.Dataset` of single `(x, y)` samples (not batched).
        generated: The generated data, in the same forms (e.g. from
            `make_pseudo_labelled` or `pseudo_labelled_dataset`); its
            dtypes are cast to those of `real`.
        real_fraction: Float in `[0, 1]`, the share of real samples per
            batch. Defaults to `0.3` (Gowal et al.'s best).
        batch_size: Int >= 1. Defaults to `128`.
        steps_per_epoch: Int >= 1 or None for one pass over the real data
            per epoch (needs a known number of real samples and
            `real_fraction > 0`). Defaults to `None`.
        seed: Int >= 0, the seed of the shuffles. Defaults to `0`.

    Returns:
        A `tf.data.Dataset` of `steps_per_epoch` batches `(x, y)` of
        `batch_size` samples.

    Raises:
        ValueError: for invalid numbers, a `real_fraction` that rounds to
            no real (or no generated) sample in a batch although it is
            strictly between 0 and 1, batched datasets, data that are not
            `(x, y)` pairs, generated samples of another shape than the
            real ones, or no way to tell the length of an epoch.

    Example:

    >>> import numpy as np, keras_adv
    >>> real = (np.zeros((40, 2), "float32"), np.zeros(40, "int64"))
    >>> fake = (np.ones((100, 2), "float32"), np.ones(100, "int64"))
    >>> ds = keras_adv.datasets.mix_datasets(
    ...     real, fake, real_fraction=0.3, batch_size=10)
    >>> [int((y == 0).sum()) for _, y in ds.as_numpy_iterator()]
    [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]

    Reference:
        Gowal et al., "Improving Robustness using Generated Data", NeurIPS
        2021, [arXiv:2110.09468](https://arxiv.org/abs/2110.09468).
    """
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    real_fraction = _validation.check_number(
        "real_fraction", real_fraction, minimum=0.0, maximum=1.0
    )
    seed = _validation.check_int("seed", seed, minimum=0)
    # Halves round up (the tolerance absorbs float error: 0.35 * 10 -> 4).
    num_real = math.floor(real_fraction * batch_size + 0.5 + 1e-9)
    num_generated = batch_size - num_real
    if 0.0 < real_fraction < 1.0 and num_generated * num_real == 0:
        raise ValueError(
            _validation.invalid(
                "real_fraction",
                "a share that leaves real and generated samples in a batch "
                f"of batch_size={batch_size}",
                real_fraction,
            )
        )
    real_batches, real_spec, count, real_fetch = _batches(
        "real", real, num_real or 1, seed
    )
    generated_batches, generated_spec, _, generated_fetch = _batches(
        "generated", generated, num_generated or 1, seed + 1
    )
    cast = _conform(generated_spec, real_spec)
    if steps_per_epoch is None:
        if count is None or not num_real:
            raise ValueError(
                _validation.invalid(
                    "steps_per_epoch",
                    "an integer >= 1 when the number of real samples is "
                    "unknown or real_fraction is 0",
                    None,
                )
            )
        steps_per_epoch = math.ceil(count / num_real)
    steps_per_epoch = _validation.check_int(
        "steps_per_epoch", steps_per_epoch, minimum=1
    )
    # One map does all the per-batch work (gather each part, cast, concat,
    # shuffle within the batch): each tf.data stage costs per element, and
    # recipe batches are small (`bench/generated_data.py`).
    parts, fetches = [], []
    if num_real:
        parts.append(real_batches)
        fetches.append(real_fetch)
    if num_generated:
        parts.append(generated_batches)
        fetches.append(lambda b: cast(*generated_fetch(b)))
    orders = tf.data.Dataset.random(
        seed=seed + 2, rerandomize_each_iteration=True
    ).batch(2, drop_remainder=True)

    def combine(
        parts: tuple[Any, ...], order_seed: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        pairs = [fetch(part) for fetch, part in zip(fetches, parts)]
        x = tf.concat([pair[0] for pair in pairs], axis=0)
        y = tf.concat([pair[1] for pair in pairs], axis=0)
        keys = _random.random_uniform((batch_size,), order_seed)
        order = tf.argsort(keys)
        return tf.gather(x, order), tf.gather(y, order)

    # A sequential map: a parallel one's threads would compete with the
    # training step for the CPU; prefetch overlaps the two.
    mixed = tf.data.Dataset.zip((tuple(parts), orders)).map(combine)
    return mixed.take(steps_per_epoch).prefetch(tf.data.AUTOTUNE)
