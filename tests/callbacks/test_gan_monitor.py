"""Tests of GANMonitor: logs, TensorBoard, PNG grids, fixed latents."""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_adv.callbacks import GANMonitor
from keras_adv.evaluation._plots import image_grid
from keras_adv.models import GAN
from keras_adv.testing import small_cnn

LATENT = 4


def tiny_gan():
    g = keras.Sequential(
        [
            keras.Input((LATENT,)),
            keras.layers.Dense(28 * 28, activation="sigmoid"),
            keras.layers.Reshape((28, 28, 1)),
        ]
    )
    d = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    gan = GAN(g, d, LATENT, seed=0)
    gan.compile()
    return gan


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Fits a tiny GAN for 2 epochs with a monitor every 2nd epoch."""
    tmp = tmp_path_factory.mktemp("monitor")
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 28, 28, 1)).astype("float32")
    classifier = small_cnn(width=4, seed=0)
    monitor = GANMonitor(
        classifier=classifier,
        real_data=x,
        freq=2,
        num_samples=40,
        grid_size=2,
        log_dir=str(tmp / "logs"),
        image_dir=str(tmp / "png"),
        batch_size=16,
    )
    gan = tiny_gan()
    history = gan.fit(
        x, batch_size=16, epochs=2, callbacks=[monitor], verbose=0
    )
    return gan, monitor, history, tmp


def test_figures_go_into_logs_every_freq_epochs(run):
    _, _, history, _ = run
    for key in (
        "frechet_distance",
        "class_coverage",
        "min_class_fraction",
        "mean_confidence",
    ):
        assert len(history.history[key]) == 1  # epoch 2 only
    assert len(history.history["d_loss"]) == 2
    assert history.history["frechet_distance"][0] > 0.0
    assert 0.0 < history.history["class_coverage"][0] <= 1.0
    assert 0.1 <= history.history["mean_confidence"][0] <= 1.0


def test_fixed_latent_gives_repeatable_figures(run):
    gan, monitor, history, _ = run
    samples, figures = monitor.evaluate()
    samples2, figures2 = monitor.evaluate()
    np.testing.assert_array_equal(samples, samples2)
    assert figures == figures2
    assert figures["frechet_distance"] == pytest.approx(
        history.history["frechet_distance"][0], rel=1e-6
    )


def test_png_and_tensorboard_outputs(run):
    _, _, _, tmp = run
    pngs = sorted(glob.glob(str(tmp / "png" / "*.png")))
    assert [os.path.basename(p) for p in pngs] == ["samples_epoch_0002.png"]
    image = tf.io.decode_png(tf.io.read_file(pngs[0]))
    assert image.shape == (56, 56, 1)
    tags = set()
    for path in glob.glob(str(tmp / "logs" / "gan" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
    assert {"samples", "gan/frechet_distance", "gan/class_coverage"} <= tags


def test_image_grid_tiles_in_row_major_order():
    images = np.arange(4, dtype="float32").reshape(4, 1, 1, 1) / 3.0
    grid = image_grid(images, 2)
    np.testing.assert_array_equal(grid[..., 0], [[0, 85], [170, 255]])
    grid = image_grid(images * 2.0 - 1.0, 2, value_range=(-1.0, 1.0))
    np.testing.assert_array_equal(grid[..., 0], [[0, 85], [170, 255]])


def test_images_only_without_classifier(tmp_path):
    gan = tiny_gan()
    monitor = GANMonitor(num_samples=4, grid_size=2, image_dir=str(tmp_path))
    history = gan.fit(
        np.zeros((8, 28, 28, 1), "float32"),
        batch_size=8,
        epochs=1,
        callbacks=[monitor],
        verbose=0,
    )
    assert set(history.history) == {"d_loss", "g_loss"}
    assert len(os.listdir(tmp_path)) == 1


def test_config_and_errors():
    monitor = GANMonitor(freq=3, num_samples=100, grid_size=4, seed=2)
    restored = GANMonitor.from_config(monitor.get_config())
    assert restored.get_config() == monitor.get_config()
    with pytest.raises(ValueError, match="argument `grid_size`"):
        GANMonitor(num_samples=10, grid_size=4)
    with pytest.raises(ValueError, match="argument `classifier`"):
        GANMonitor(real_data=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="argument `freq`"):
        GANMonitor(freq=0)
    classifier_model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(2)]
    )
    monitor = GANMonitor(
        classifier=classifier_model, num_samples=4, grid_size=1
    )
    monitor.set_model(classifier_model)
    with pytest.raises(TypeError, match="argument `model`"):
        monitor.on_train_begin()
