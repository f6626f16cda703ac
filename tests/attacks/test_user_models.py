"""The models users bring: Keras applications, 0..255 pixels, normalisation.

Beyond the hand-made test models: a `keras.applications` network
(softmax head, BatchNormalization) attacked and adversarially trained from
a `tf.data` pipeline with augmentation, then saved and reloaded; a model
that rescales 0..255 pixels itself, attacked in pixel units; a model with
per-channel `Normalization` inside, attacked in the units of its inputs.
The rule they pin (docs/attacks.md): put the preprocessing inside the
model and give `eps` and `value_range` in the model's input units.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining


def _linf(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).reshape(len(a), -1).max(1)


@pytest.fixture(scope="module")
def mobilenet():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), classes=10, alpha=0.35
    )


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 32, 32, 3)).astype("float32")
    return x, rng.integers(0, 10, size=8)


def test_mobilenet_v2_is_attacked_in_the_ball_and_range(mobilenet, images):
    x, y = images
    attack = PGD(eps=8 / 255, steps=2, seed=0)
    # A softmax head: the attack works on its log-probabilities.
    assert attack.model_logits(mobilenet).from_logits is False
    x_adv = np.asarray(attack(mobilenet, x, y))
    assert _linf(x_adv, x).max() <= 8 / 255 + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    assert _linf(x_adv, x).min() > 0.0
    # BatchNormalization statistics are untouched by attacking.
    again = PGD(eps=8 / 255, steps=1, seed=0, training=True)
    before = [v.numpy() for v in mobilenet.non_trainable_variables]
    again(mobilenet, x, y)
    for value, variable in zip(
        before, mobilenet.non_trainable_variables, strict=True
    ):
        np.testing.assert_array_equal(value, variable.numpy())


def test_mobilenet_v2_trains_adversarially_from_tf_data(
    mobilenet, images, tmp_path
):
    x, y = images
    model = mobilenet
    model.compile(
        optimizer="sgd",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .batch(8)
        .map(lambda a, b: (flip(a, training=True), b))
    )
    weights = [w.numpy() for w in model.trainable_weights]
    attack = PGD(eps=8 / 255, steps=1, seed=0)
    history = model.fit(
        ds, epochs=1, verbose=0, callbacks=[AdversarialTraining(attack)]
    )
    assert set(history.history) >= {"loss", "adv_accuracy"}
    # One SGD step on x_adv moved the weights.
    assert any(
        not np.array_equal(w, v.numpy())
        for w, v in zip(weights, model.trainable_weights, strict=True)
    )
    path = tmp_path / "mobilenet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def _pixels_model(first):
    inputs = keras.Input((6, 6, 3))
    h = first(inputs)
    h = keras.layers.Conv2D(4, 3, activation="relu")(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(5)(h))


def test_a_rescaling_model_is_attacked_in_pixel_units():
    # The same network fed 0..255 pixels (it divides by 255 itself) or
    # 0..1 inputs: attacked in the units of its inputs, the results are
    # the same points.
    keras.utils.set_random_seed(1)
    pixels = _pixels_model(keras.layers.Rescaling(1 / 255))
    unit = _pixels_model(keras.layers.Identity())
    unit.set_weights(pixels.get_weights())
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(16, 6, 6, 3)).astype("float32")
    y = np.asarray(unit(x / 255)).argmax(1)
    in_pixels = PGD(eps=8.0, steps=5, value_range=(0, 255), seed=0)
    in_units = PGD(eps=8 / 255, steps=5, seed=0)
    x_adv = np.asarray(in_pixels(pixels, x, y))
    assert _linf(x_adv, x).max() <= 8.0 + 1e-4
    assert x_adv.min() >= 0.0 and x_adv.max() <= 255.0
    np.testing.assert_allclose(
        x_adv / 255, in_units(unit, x / 255, y), atol=1e-5
    )
    # 0..255 pixels given to an attack left at value_range=(0, 1) fail.
    with pytest.raises(ValueError, match="value_range"):
        PGD(eps=8.0, steps=1)(pixels, x, y)


def test_a_model_with_per_channel_normalization_inside():
    # Normalization (x - mean) / std per channel, then a linear layer, is
    # the linear layer with the normalisation folded into its weights:
    # an attack in the raw input units gives the same points on both.
    rng = np.random.default_rng(2)
    data = rng.uniform(size=(64, 4, 4, 3)).astype("float32")
    data *= np.array([1.0, 0.5, 0.2], "float32")
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(data)
    inputs = keras.Input((4, 4, 3))
    dense = keras.layers.Dense(4)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(norm(inputs))))
    w, b = dense.get_weights()
    mean = np.tile(np.asarray(norm.mean).reshape(-1), 16)
    std = np.sqrt(np.tile(np.asarray(norm.variance).reshape(-1), 16))
    folded = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(4)]
    )
    folded.set_weights([w / std[:, None], b - (mean / std) @ w])
    x = data[:16]
    np.testing.assert_allclose(model(x), folded(x), rtol=1e-4, atol=1e-4)
    y = np.asarray(model(x)).argmax(1)
    for make in (
        lambda: FGSM(eps=0.03),
        lambda: PGD(eps=0.03, steps=4, seed=0),
    ):
        x_adv = np.asarray(make()(model, x, y))
        assert _linf(x_adv, x).max() <= 0.03 + 1e-6
        np.testing.assert_allclose(x_adv, make()(folded, x, y), atol=1e-5)
