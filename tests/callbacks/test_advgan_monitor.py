"""AdvGANMonitor: exact figures for a known generator, TensorBoard tags."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.callbacks import AdvGANMonitor
from keras_adv.callbacks._advgan_monitor import label_figures
from keras_adv.models import AdvGAN

SHAPE = (8, 8, 1)
EPS = 0.2


def networks(targeted=False, zero=True):
    x = keras.Input(SHAPE)
    inputs, h = [x], x
    if targeted:
        t = keras.Input((3,))
        inputs.append(t)
        h = keras.layers.Concatenate()(
            [
                x,
                keras.layers.UpSampling2D(8)(
                    keras.layers.Reshape((1, 1, 3))(t)
                ),
            ]
        )
    init = "zeros" if zero else "glorot_uniform"
    raw = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer=init)(h)
    generator = keras.Model(
        inputs if targeted else x, keras_adv.layers.PerturbationBound(EPS)(raw)
    )
    discriminator = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    target = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    return generator, discriminator, target


def data(n=40):
    rng = np.random.default_rng(0)
    return rng.uniform(size=(n,) + SHAPE).astype("float32"), rng.integers(
        0, 3, n
    )


def test_label_figures():
    assert label_figures(np.array([0, 1, 2, 3]), 4) == pytest.approx(
        (0.25, np.log(4))
    )
    assert label_figures(np.array([2, 2, 2]), 4) == (1.0, 0.0)


def test_figures_are_exact_for_a_zero_generator(tmp_path):
    generator, discriminator, target = networks()
    gan = AdvGAN(generator, discriminator, target, eps=EPS, seed=0)
    gan.compile(
        d_optimizer=keras.optimizers.SGD(0.0),
        g_optimizer=keras.optimizers.SGD(0.0),
    )
    x, y = data()
    monitor = AdvGANMonitor(
        (x, y), max_samples=30, log_dir=str(tmp_path), image_dir=str(tmp_path)
    )
    history = gan.fit(
        x, y, epochs=2, batch_size=20, verbose=0, callbacks=[monitor]
    )
    predicted = np.asarray(target(x[:30])).argmax(-1)
    share, entropy = label_figures(predicted, 3)
    assert history.history["val_success_rate"][-1] == pytest.approx(
        np.mean(predicted != y[:30])
    )
    assert history.history["val_perturbation_norm"][-1] == 0.0
    assert history.history["val_top_label_share"][-1] == pytest.approx(share)
    assert history.history["val_label_entropy"][-1] == pytest.approx(entropy)
    tags = set()
    events = os.path.join(tmp_path, "advgan")
    for name in os.listdir(events):
        for event in tf.compat.v1.train.summary_iterator(
            os.path.join(events, name)
        ):
            for value in event.summary.value:
                tags.add(value.tag)
    assert {
        "x_G(x)_x+G(x)",
        "adversarial_labels",
        "advgan/val_top_label_share",
    } <= tags
    assert os.path.exists(os.path.join(tmp_path, "advgan_epoch_0002.png"))


def test_targeted_uses_fixed_targets_other_than_the_labels():
    generator, discriminator, target = networks(targeted=True, zero=False)
    gan = AdvGAN(
        generator, discriminator, target, eps=EPS, targeted=True, seed=0
    )
    gan.compile()
    x, y = data()
    monitor = AdvGANMonitor((x, y), seed=3)
    gan.fit(x, y, epochs=1, batch_size=20, verbose=0, callbacks=[monitor])
    targets = monitor.targets()
    assert np.all(targets != y)
    np.testing.assert_array_equal(targets, monitor.targets())
    results = monitor.last_results
    assert results["val_success_rate"] == pytest.approx(
        np.mean(results["predicted"] == targets)
    )


def test_invalid_arguments_and_models():
    x, y = data()
    with pytest.raises(ValueError, match="`validation_data`"):
        AdvGANMonitor(x)
    with pytest.raises(ValueError, match="`freq`"):
        AdvGANMonitor((x, y), freq=0)
    with pytest.raises(TypeError, match="`validation_data`"):
        AdvGANMonitor((x.astype("int32"), y))
    model = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(TypeError, match="AdvGAN"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[AdvGANMonitor((x, y))])
    config = AdvGANMonitor((x, y), freq=2).get_config()
    assert (
        AdvGANMonitor.from_config({**config, "validation_data": (x, y)}).freq
        == 2
    )


def zero_gan():
    generator, discriminator, target = networks()
    gan = AdvGAN(generator, discriminator, target, eps=EPS, seed=0)
    gan.compile()
    return gan, target


def test_one_hot_labels_give_the_figures_of_class_ids():
    x, y = data()
    gan, _ = zero_gan()
    by_ids = AdvGANMonitor((x, y), max_samples=32)
    by_rows = AdvGANMonitor((x, np.eye(3)[y]), max_samples=32)
    by_column = AdvGANMonitor((x, y[:, None]), max_samples=32)
    for monitor in (by_ids, by_rows, by_column):
        monitor.set_model(gan)
    np.testing.assert_array_equal(by_rows.y, y[:32])
    np.testing.assert_array_equal(by_column.y, y[:32])
    assert by_rows.evaluate()["val_success_rate"] == pytest.approx(
        by_ids.evaluate()["val_success_rate"]
    )


@pytest.mark.parametrize(
    "labels, inputs_scale, match",
    [
        (np.full(40, 9), 1.0, r"\[0, 3\).*labels from 9 to 9"),
        (np.full(40, -1), 1.0, "labels >= 0"),
        (np.eye(4)[np.zeros(40, int)], 1.0, "4 classes"),
        (None, 255.0, "value_range"),
    ],
)
def test_validation_data_outside_the_advgan_is_refused(
    labels, inputs_scale, match
):
    x, y = data()
    labels = y if labels is None else labels
    gan, _ = zero_gan()
    with pytest.raises(ValueError, match=match):
        # At the latest when training begins (before any update).
        gan.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[AdvGANMonitor((x * inputs_scale, labels))],
        )
    assert int(gan.g_optimizer.iterations) == 0


def test_fractional_labels_are_refused_at_construction():
    x, y = data()
    with pytest.raises(ValueError, match="`validation_data`"):
        AdvGANMonitor((x, y + 0.5))
    with pytest.raises(ValueError, match="`validation_data`"):
        AdvGANMonitor((x, y[:10]))
