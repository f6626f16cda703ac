"""Tests of the generated-data pipeline: pseudo-labels and mixing.

The "label" GAN below draws, for class `c`, an 8x8 image that is one-hot
at pixel `c` (its latent adds a shift of scale `noise`), and the "reader"
classifier reads that pixel back: the pseudo-label of a sample is then
known exactly, and its confidence too (a softmax of scaled pixels).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.datasets import make_pseudo_labelled
from keras_adv.datasets import mix_datasets
from keras_adv.datasets import pseudo_labelled_dataset
from keras_adv.models import GAN
from keras_adv.models import ConditionalGAN

CLASSES = 3
LATENT = 2
SIDE = 8
PIXELS = SIDE * SIDE


def label_gan(noise=0.01):
    """A ConditionalGAN whose class-c sample is one-hot at pixel c.

    Plus a latent shift of scale `noise` per pixel, clipped to [0, 1].
    """
    z = keras.Input((LATENT,))
    labels = keras.Input((), dtype="int32")
    one_hot = keras.layers.Embedding(
        CLASSES,
        PIXELS,
        embeddings_initializer=keras.initializers.Constant(
            np.eye(CLASSES, PIXELS)
        ),
    )(labels)
    shift = keras.layers.Dense(
        PIXELS,
        use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(
            stddev=noise, seed=0
        ),
    )(z)
    pixels = keras.layers.ReLU(max_value=1.0)(
        keras.layers.Add()([one_hot, shift])
    )
    image = keras.layers.Reshape((SIDE, SIDE, 1))(pixels)
    generator = keras.Model([z, labels], image)
    x_in = keras.Input((SIDE, SIDE, 1))
    y_in = keras.Input((), dtype="int32")
    # The label enters through a zero projection term: every input must
    # reach the output (Keras 3.11 refuses an unconnected input).
    projection = keras.layers.Embedding(
        CLASSES, 1, embeddings_initializer="zeros"
    )(y_in)
    logit = keras.layers.Add()(
        [keras.layers.Dense(1)(keras.layers.Flatten()(x_in)), projection]
    )
    discriminator = keras.Model([x_in, y_in], logit)
    return ConditionalGAN(generator, discriminator, LATENT, CLASSES, seed=0)


def reader(scale=10.0):
    """Logits `scale * pixel[c]` for class c (reads the label GAN)."""
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES, use_bias=False),
        ]
    )
    model.set_weights([scale * np.eye(PIXELS, CLASSES)])
    return model


def take(ds, n):
    x, y = next(iter(ds.batch(n)))
    return x.numpy(), y.numpy()


# --------------------------------------------------------- pseudo-labels
def test_labels_are_the_classifiers_argmax():
    gan, classifier = label_gan(noise=0.5), reader()
    x, y = take(pseudo_labelled_dataset(gan, classifier, batch_size=8), 20)
    assert x.shape == (20, SIDE, SIDE, 1) and x.dtype == np.float32
    assert y.dtype == np.int64
    expected = np.argmax(classifier.predict(x, verbose=0), axis=1)
    np.testing.assert_array_equal(y, expected)
    # With this much latent noise the pseudo-label is not always the class
    # the GAN was asked for: the classifier decides.
    assert not np.array_equal(y, np.arange(20) % CLASSES)


def test_a_conditional_gan_is_asked_for_each_class_in_turn():
    gan, classifier = label_gan(), reader()
    _, y = take(pseudo_labelled_dataset(gan, classifier, batch_size=4), 12)
    np.testing.assert_array_equal(y, np.arange(12) % CLASSES)


def test_confidence_keeps_exactly_the_confident_samples():
    gan, classifier = label_gan(noise=0.3), reader(scale=3.0)
    x, y = take(pseudo_labelled_dataset(gan, classifier, batch_size=16), 64)
    confidence = np.max(keras.ops.softmax(classifier(x)).numpy(), axis=1)
    threshold = float(np.median(confidence))
    kept = confidence >= threshold
    assert 0 < kept.sum() < len(kept)
    filtered = pseudo_labelled_dataset(
        gan, classifier, confidence=threshold, batch_size=16
    )
    fx, fy = take(filtered, int(kept.sum()))
    # The same draws (same seed), the unconfident ones left out.
    np.testing.assert_allclose(fx, x[kept], atol=1e-6)
    np.testing.assert_array_equal(fy, y[kept])


def test_seeds_and_epochs():
    gan, classifier = label_gan(noise=0.3), reader()

    def stream(seed):
        return pseudo_labelled_dataset(gan, classifier, batch_size=8, seed=seed)

    a, b = stream(1), stream(1)
    first = take(a, 10)[0]
    np.testing.assert_array_equal(first, take(b, 10)[0])
    assert not np.allclose(first, take(stream(2), 10)[0])
    # A new iteration (a new epoch of fit) draws new samples.
    assert not np.allclose(first, take(a, 10)[0])


def test_the_static_set_is_the_start_of_the_stream():
    gan, classifier = label_gan(noise=0.3), reader(scale=3.0)
    x, y = make_pseudo_labelled(
        gan, classifier, 21, confidence=0.5, batch_size=8, seed=4
    )
    assert x.shape == (21, SIDE, SIDE, 1) and y.shape == (21,)
    sx, sy = take(
        pseudo_labelled_dataset(
            gan, classifier, confidence=0.5, batch_size=8, seed=4
        ),
        21,
    )
    np.testing.assert_array_equal(x, sx)
    np.testing.assert_array_equal(y, sy)


def test_an_unconditional_gan_works_too():
    generator = keras.Sequential(
        [keras.Input((LATENT,)), keras.layers.Dense(PIXELS)]
        + [keras.layers.Reshape((SIDE, SIDE, 1))]
    )
    discriminator = keras.Sequential(
        [keras.Input((SIDE, SIDE, 1)), keras.layers.Flatten()]
        + [keras.layers.Dense(1)]
    )
    gan = GAN(generator, discriminator, LATENT)
    x, y = make_pseudo_labelled(gan, reader(), 5, seed=0)
    assert x.shape == (5, SIDE, SIDE, 1)
    np.testing.assert_array_equal(
        y, np.argmax(reader()(x).numpy(), axis=1).astype("int64")
    )


def test_pseudo_label_errors():
    gan, classifier = label_gan(noise=0.0), reader(scale=0.0)
    with pytest.raises(TypeError, match="argument `gan`"):
        pseudo_labelled_dataset(classifier, classifier)
    with pytest.raises(ValueError, match="argument `confidence`"):
        pseudo_labelled_dataset(gan, classifier, confidence=1.0)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        pseudo_labelled_dataset(gan, classifier, batch_size=0)
    with pytest.raises(ValueError, match="argument `num_samples`"):
        make_pseudo_labelled(gan, classifier, 0)
    # A classifier that is never confident: an error, not an endless loop.
    with pytest.raises(ValueError, match="1 of|0 of"):
        make_pseudo_labelled(gan, classifier, 2, confidence=0.9, batch_size=4)


# ----------------------------------------------------------------- mixing
def tagged(n, sign, features=2):
    """`n` samples whose x holds `sign * (index + 1)`: tags, for counting."""
    tags = sign * np.arange(1, n + 1, dtype="float32")
    return np.repeat(tags[:, None], features, axis=1), np.zeros(n, "int64")


def real_counts(ds):
    return [int((x[:, 0] > 0).sum()) for x, _ in ds.as_numpy_iterator()]


@pytest.mark.parametrize(
    "fraction,batch,expected",
    [
        (0.3, 128, 38),
        (0.3, 10, 3),
        (0.25, 10, 3),
        (0.35, 10, 4),
        (0.5, 7, 4),
        (0.7, 16, 11),
    ],
)
def test_every_batch_has_the_exact_number_of_real_samples(
    fraction, batch, expected
):
    real, fake = tagged(200, 1.0), tagged(1000, -1.0)
    ds = mix_datasets(real, fake, real_fraction=fraction, batch_size=batch)
    counts = real_counts(ds)
    assert counts == [expected] * math.ceil(200 / expected)
    assert int(ds.cardinality()) == len(counts)
    for x, y in ds.take(1):
        assert x.shape == (batch, 2) and y.shape == (batch,)


def test_an_epoch_sees_every_real_sample_and_generated_ones_without_repeats():
    real, fake = tagged(50, 1.0), tagged(300, -1.0)
    ds = mix_datasets(real, fake, real_fraction=0.3, batch_size=10, seed=3)
    tags = np.concatenate([x[:, 0] for x, _ in ds.as_numpy_iterator()])
    real_tags, fake_tags = tags[tags > 0], tags[tags < 0]
    assert len(real_tags) == 3 * 17 and set(real_tags) == set(range(1, 51))
    assert len(fake_tags) == 7 * 17 == len(set(fake_tags))


def test_the_same_seed_gives_the_same_batches_and_epochs_differ():
    real, fake = tagged(40, 1.0), tagged(100, -1.0)

    def batches(ds):
        return np.stack([x[:, 0] for x, _ in ds.as_numpy_iterator()])

    ds = mix_datasets(real, fake, batch_size=10, seed=7)
    epoch1 = batches(ds)
    again = batches(mix_datasets(real, fake, batch_size=10, seed=7))
    np.testing.assert_array_equal(epoch1, again)
    other = batches(mix_datasets(real, fake, batch_size=10, seed=8))
    assert not np.array_equal(epoch1, other)
    epoch2 = batches(ds)
    assert not np.array_equal(epoch1, epoch2)
    # Both orders are shuffled: the real sequence and the generated one.
    real_order = epoch1[epoch1 > 0]
    assert not np.array_equal(real_order, np.sort(real_order))
    fake_order = -epoch1[epoch1 < 0]
    assert not np.array_equal(fake_order, np.sort(fake_order))
    # Real samples are not always at the front of a batch.
    assert len({tuple(np.flatnonzero(row > 0)) for row in epoch1}) > 1


def test_a_generated_dataset_is_read_in_its_order():
    real = tagged(20, 1.0)
    fake = tf.data.Dataset.from_tensor_slices(tagged(1000, -1.0))
    ds = mix_datasets(real, fake, real_fraction=0.5, batch_size=4)
    tags = np.concatenate([x[:, 0] for x, _ in ds.as_numpy_iterator()])
    fake_tags = -tags[tags < 0]
    np.testing.assert_array_equal(np.sort(fake_tags), np.arange(1, 21))
    assert real_counts(ds) == [2] * 10


def test_extreme_fractions_and_steps_per_epoch():
    real, fake = tagged(20, 1.0), tagged(50, -1.0)
    only_real = mix_datasets(real, fake, real_fraction=1.0, batch_size=5)
    assert real_counts(only_real) == [5] * 4
    only_fake = mix_datasets(
        real, fake, real_fraction=0.0, batch_size=5, steps_per_epoch=3
    )
    assert real_counts(only_fake) == [0] * 3
    fixed = mix_datasets(real, fake, batch_size=10, steps_per_epoch=2)
    assert real_counts(fixed) == [3, 3]


def test_generated_labels_are_cast_to_the_real_dtype():
    real = (np.zeros((8, 2), "float32"), np.zeros(8, "int64"))
    fake = (np.ones((8, 2), "float64"), np.ones(8, "int32"))
    x, y = next(iter(mix_datasets(real, fake, batch_size=4)))
    assert x.dtype == tf.float32 and y.dtype == tf.int64


def test_mixing_errors():
    real, fake = tagged(20, 1.0), tagged(50, -1.0)
    with pytest.raises(ValueError, match="argument `real_fraction`"):
        mix_datasets(real, fake, real_fraction=1.5)
    with pytest.raises(ValueError, match="argument `real_fraction`"):
        mix_datasets(real, fake, real_fraction=0.01, batch_size=10)
    with pytest.raises(ValueError, match="argument `batch_size`"):
        mix_datasets(real, fake, batch_size=0)
    with pytest.raises(ValueError, match="argument `steps_per_epoch`"):
        mix_datasets(real, fake, real_fraction=0.0, batch_size=4)
    with pytest.raises(ValueError, match="argument `real`"):
        mix_datasets(real[0], fake)
    batched = tf.data.Dataset.from_tensor_slices(fake).batch(4)
    with pytest.raises(ValueError, match="unbatch"):
        mix_datasets(real, batched)
    endless = tf.data.Dataset.from_tensor_slices(real).repeat()
    with pytest.raises(ValueError, match="argument `steps_per_epoch`"):
        mix_datasets(endless, fake)
    wrong = (np.ones((50, 3), "float32"), np.ones(50, "int64"))
    with pytest.raises(ValueError, match="argument `generated`"):
        mix_datasets(real, wrong)
    one_hot = (np.ones((50, 2), "float32"), np.ones((50, 3), "float32"))
    with pytest.raises(ValueError, match="argument `generated`"):
        mix_datasets(real, one_hot)


def test_fit_with_adversarial_training_takes_the_mixed_batches():
    gan, classifier = label_gan(noise=0.3), reader()
    rng = np.random.default_rng(0)
    real = (
        rng.uniform(size=(32, SIDE, SIDE, 1)).astype("float32"),
        rng.integers(0, CLASSES, 32),
    )
    generated = pseudo_labelled_dataset(gan, classifier, batch_size=16)
    ds = mix_datasets(real, generated, real_fraction=0.3, batch_size=8)
    model = keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(CLASSES),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(
        ds,
        epochs=1,
        steps_per_epoch=1,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.1, steps=1, seed=0))],
    )
    assert "adv_accuracy" in history.history
    assert not np.allclose(before[0], model.get_weights()[0])


# ---------------------------------------------------------------- example
@pytest.mark.slow
def test_the_example_runs_quick(tmp_path):
    """`examples/generated_data_mnist.py --quick`: every stage, tiny."""
    import importlib.util
    from pathlib import Path

    path = (
        Path(__file__).resolve().parents[2]
        / "examples"
        / "generated_data_mnist.py"
    )
    spec = importlib.util.spec_from_file_location("generated_data", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    row = example.main(
        ["--quick", "--verbose", "0", "--cache-dir", str(tmp_path)]
    )
    assert set(row["test"]) == {"clean", "pgd20", "autoattack"}
    assert 0.0 <= row["test"]["autoattack"] <= row["test"]["pgd20"] <= 1.0
    assert set(row["seconds"]) == {
        "labeller",
        "gan",
        "generation",
        "training",
        "evaluation",
    }
    assert 0.0 <= row["generator"]["label_agreement"] <= 1.0
    assert (tmp_path / "cgan_e1_w8_s0.keras").exists()


@pytest.mark.slow
def test_the_docs_page_runs_as_written(tmp_path, monkeypatch):
    """The python block of docs/generated_data.md (tiny settings)."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "generated_data.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    # The tiny pipeline, then the full-size recipe call (not run here:
    # about 30 minutes).
    assert len(blocks) == 2
    assert "mnist_generated_data_training()" in blocks[1]
    blocks = blocks[:1]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(blocks[0], str(page), "exec"), namespace)
    loaded = keras.saving.load_model(tmp_path / "robust_generated.keras")
    for a, b in zip(namespace["model"].get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert namespace["train"].cardinality() == math.ceil(512 / 19)
