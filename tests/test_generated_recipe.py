"""The generated-data recipe: `robust_fit(generated=...)`, weight averaging,
`generate_training_data` and `mnist_generated_data_training`."""

import math

import keras
import numpy as np
import pytest

from keras_adv import datasets
from keras_adv import models
from keras_adv import recipes

REAL = 64
BATCH = 10
GENERATED = 200


def _data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 4)).astype("float32")
    return x, (x[:, 0] > 0.5).astype("int64")


def _dense(seed=0):
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(
                3, kernel_initializer=keras.initializers.GlorotUniform(seed)
            ),
        ]
    )


def _fit(generated=None, ema_momentum=None, real_fraction=0.3, **kwargs):
    settings = dict(method="trades", epochs=1, eps=0.1, steps=1, seed=0)
    settings.update(kwargs)
    return recipes.robust_fit(
        _dense(),
        _data(REAL, 0),
        batch_size=BATCH,
        generated=generated,
        real_fraction=real_fraction,
        ema_momentum=ema_momentum,
        **settings,
    )


def test_an_epoch_is_one_pass_over_the_real_data():
    # 30 % of 10 is 3 real samples per batch: ceil(64 / 3) = 22 steps,
    # one optimizer update each; 7 steps of 10 without generated data.
    run = _fit(generated=_data(GENERATED, 1))
    assert run.epochs == 1
    assert int(run.model.optimizer.iterations) == math.ceil(REAL / 3) == 22
    assert int(_fit().model.optimizer.iterations) == math.ceil(REAL / BATCH)


def test_the_recipe_trains_on_the_mixed_batches():
    # The same run through `mix_datasets` by hand gives the same weights.
    run = _fit(generated=_data(GENERATED, 1), method="clean")
    keras.utils.set_random_seed(0)
    model = _dense()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        datasets.mix_datasets(
            _data(REAL, 0), _data(GENERATED, 1), 0.3, batch_size=BATCH
        ),
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    for a, b in zip(run.model.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_weight_averaging_with_momentum_zero_is_the_last_weights():
    # An average with momentum 0 is the last weights: the same model as no
    # averaging; momentum 0.9 gives other weights, which `fit` wrote into
    # the model (what is evaluated and saved).
    plain = _fit(generated=_data(GENERATED, 1))
    zero = _fit(generated=_data(GENERATED, 1), ema_momentum=0.0)
    averaged = _fit(generated=_data(GENERATED, 1), ema_momentum=0.9)
    assert averaged.model.optimizer.use_ema
    for a, b in zip(
        plain.model.get_weights(), zero.model.get_weights(), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert not np.allclose(
        plain.model.get_weights()[0], averaged.model.get_weights()[0]
    )


def test_bad_arguments_name_the_argument():
    compiled = _dense()
    compiled.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="ema_momentum"):
        recipes.robust_fit(compiled, _data(REAL, 0), ema_momentum=0.99)
    with pytest.raises(ValueError, match="ema_momentum"):
        recipes.robust_fit(_dense(), _data(REAL, 0), ema_momentum=1.0)
    with pytest.raises(ValueError, match="real_fraction"):
        _fit(generated=_data(GENERATED, 1), real_fraction=0.0)
    with pytest.raises(ValueError, match="real_fraction"):
        _fit(generated=_data(GENERATED, 1), real_fraction=1.5)
    x, y = _data(GENERATED, 1)
    with pytest.raises(ValueError, match="generated"):
        _fit(generated=(x, y + 5))  # labels beyond the model's 3 classes
    with pytest.raises(ValueError, match="data"):
        recipes.generate_training_data(_data(REAL, 0), num_samples=8)
    with pytest.raises(TypeError, match="gan"):
        recipes.generate_training_data(_data(REAL, 0), gan=_dense())


@pytest.fixture(scope="module")
def mnist():
    (x, y), (x_test, y_test) = datasets.load_mnist_subset()
    return (x[:128], y[:128]), (x_test[:32], y_test[:32])


@pytest.fixture(scope="module")
def generated(mnist):
    return recipes.generate_training_data(
        mnist[0],
        num_samples=48,
        test_data=mnist[1],
        labeller_epochs=1,
        gan_epochs=1,
        gan_width=4,
        latent_dim=8,
        figure_samples=20,
    )


def test_generated_samples_carry_the_labellers_labels(generated, mnist):
    assert generated.x.shape == (48, 28, 28, 1)
    assert generated.x.dtype == np.float32
    assert 0.0 <= generated.x.min() and generated.x.max() <= 1.0
    predicted = generated.labeller.predict(generated.x, verbose=0)
    np.testing.assert_array_equal(generated.y, np.argmax(predicted, axis=1))
    assert generated.data == (generated.x, generated.y)
    assert set(generated.seconds) == {"labeller", "gan", "generation"}
    figures = generated.figures
    assert figures["frechet_distance"] >= 0.0
    assert 0.0 <= figures["label_agreement"] <= 1.0
    assert len(figures["class_fractions"]) == 10
    outputs = generated.labeller.predict(mnist[1][0], verbose=0)
    accuracy = np.mean(np.argmax(outputs, axis=1) == mnist[1][1])
    assert figures["labeller_test_accuracy"] == pytest.approx(accuracy)


def test_trained_models_passed_in_are_reused(generated, mnist):
    labeller = generated.labeller
    before = [w.copy() for w in labeller.get_weights()]
    again = recipes.generate_training_data(
        mnist[0],
        num_samples=48,
        labeller=labeller,
        gan=generated.gan,
        figure_samples=20,
    )
    assert again.labeller is labeller and again.gan is generated.gan
    for a, b in zip(before, labeller.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    # Same models, same seed: the same samples.
    np.testing.assert_array_equal(again.x, generated.x)
    assert isinstance(again.gan, models.ConditionalGAN)


def test_the_mnist_pipeline_runs_and_reports(generated):
    run = recipes.mnist_generated_data_training(
        epochs=1,
        steps=1,
        train_samples=128,
        eval_samples=16,
        autoattack=False,
        generated=generated,
    )
    assert run.generated is generated
    assert list(run.report.attacks) == ["pgd20"]
    assert run.report.epsilons == [0.0, 0.3]
    assert run.model.optimizer.use_ema
    # 30 % of 16 rounds to 5 real images: ceil(128 / 5) = 26 steps.
    assert int(run.model.optimizer.iterations) == 26
