"""Recipes: the callbacks and settings of each method, and their checks."""

import inspect
import os

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv import recipes
from keras_adv.callbacks import AdversarialTraining
from keras_adv.callbacks import OverfittingGuard
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.recipes import _robust_fit
from keras_adv.training import FGSMRS
from keras_adv.training import NFGSM
from keras_adv.training import TRADES
from keras_adv.training import Free
from keras_adv.training import Madry


def _line_problem(learning_rate=0.0):
    """A 1-feature line model: class 1 iff x > 0.5, margin >= 0.3.

    Compiled with SGD(0) by default, so its weights never change and every
    accuracy under attack at eps < 0.3 is exactly 1.
    """
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0.0, 0.2, 32), rng.uniform(0.8, 1.0, 32)])
    x = x.reshape(-1, 1).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    model.set_weights([np.array([[-10.0, 10.0]]), np.array([5.0, -5.0])])
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model, x, y


def _callbacks(method, **kwargs):
    settings = dict(
        eps=0.3,
        steps=7,
        eps_warmup_epochs=6,
        seed=0,
        guard_data=(np.zeros((4, 1), "float32"), np.zeros(4, "int64")),
        validation_data=None,
        monitor_samples=256,
        log_dir=None,
    )
    settings.update(kwargs)
    return _robust_fit._callbacks(method, **settings)


# ------------------------------------------------------------- settings
def test_defaults_are_the_readme_recipe():
    fit = inspect.signature(recipes.robust_fit).parameters
    mnist = inspect.signature(recipes.mnist_adversarial_training).parameters
    for params in (fit, mnist):
        assert params["method"].default == "pgd"
        assert params["epochs"].default == 20
        assert params["batch_size"].default == 16
        assert params["eps"].default == 0.3
        assert params["steps"].default == 7
        assert params["eps_warmup_epochs"].default is None  # 20 // 3 = 6
    assert set(recipes.METHODS) == {
        "clean",
        "pgd",
        "fgsm_rs",
        "trades",
        "n_fgsm",
        "free",
    }


def test_methods_are_objective_names_of_training_get_with_aliases():
    attack = keras_adv.attacks.PGD(eps=0.3)
    for method in recipes.METHODS[1:]:
        objective = keras_adv.training.get(method, attack)
        (trainer,) = _callbacks(method)[:1]
        assert type(trainer.objective) is type(objective)
    # Old spellings stay accepted and name the same method.
    assert _robust_fit._check_method("fgsm-rs") == "fgsm_rs"
    assert _robust_fit._check_method("N-FGSM") == "n_fgsm"
    assert _robust_fit._check_method("madry") == "pgd"
    with pytest.raises(ValueError, match="Did you mean 'trades'"):
        _robust_fit._check_method("trade")


def test_pgd_is_madry_pgd7_with_step_eps_over_3_and_warmup():
    (trainer,) = _callbacks("pgd")
    assert isinstance(trainer, AdversarialTraining)
    assert type(trainer.objective) is Madry
    assert trainer.objective.adv_weight == 1.0
    attack = trainer.attack
    assert (attack.eps, attack.steps) == (0.3, 7)
    assert attack.step_size == pytest.approx(0.1)
    assert trainer.eps_warmup_epochs == 6


def test_trades_beta_6_and_fgsm_rs_with_its_guard():
    (trainer,) = _callbacks("trades")
    assert isinstance(trainer.objective, TRADES)
    assert trainer.objective.beta == 6.0
    trainer, guard = _callbacks("fgsm_rs")
    assert isinstance(trainer.objective, FGSMRS)
    assert trainer.objective.step_factor == 1.25
    assert isinstance(guard, OverfittingGuard)
    assert (guard.attack.eps, guard.attack.steps, guard.drop) == (0.3, 10, 0.2)
    assert guard.restore_best_weights
    assert _callbacks("clean") == []


def test_single_step_methods_n_fgsm_and_free_4():
    (trainer,) = _callbacks("n_fgsm")
    assert type(trainer.objective) is NFGSM
    assert trainer.objective.noise_multiplier == 2.0
    assert trainer.objective.step_factor == 1.0
    assert trainer.objective.clip is None
    (trainer,) = _callbacks("free")
    assert type(trainer.objective) is Free
    assert trainer.objective.replays == 4
    for method in ("n_fgsm", "free"):
        (trainer,) = _callbacks(method)
        assert (trainer.attack.eps, trainer.eps_warmup_epochs) == (0.3, 6)


@pytest.mark.parametrize("method", ["n-fgsm", "free"])  # an alias too
def test_single_step_methods_train_and_leave_a_plain_model(method, tmp_path):
    model, x, y = _line_problem(learning_rate=0.1)
    run = recipes.robust_fit(model, (x, y), method=method, epochs=2, eps=0.1)
    assert run.epochs == 2
    # Trained on x_adv alone: the loss and the accuracy on x_adv, once each.
    assert sorted(run.history.history) == ["adv_accuracy", "loss"]
    path = str(tmp_path / "m.keras")
    run.model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), run.model.predict(x, verbose=0), atol=1e-6
    )


def test_monitor_then_tensorboard_last(tmp_path):
    data = (np.zeros((4, 1), "float32"), np.zeros(4, "int64"))
    callbacks = _callbacks("pgd", validation_data=data, log_dir=str(tmp_path))
    assert [type(cb) for cb in callbacks] == [
        AdversarialTraining,
        RobustnessMonitor,
        keras.callbacks.TensorBoard,
    ]


# ------------------------------------------------------------- training
@pytest.mark.filterwarnings("ignore:The trained model classifies")
def test_clean_recipe_equals_plain_fit():
    x = np.random.default_rng(1).uniform(size=(64, 4)).astype("float32")
    y = (x[:, 0] > x[:, 1]).astype("int64")

    def model():
        return keras.Sequential(
            [
                keras.Input((4,)),
                keras.layers.Dense(
                    2, kernel_initializer=keras.initializers.GlorotUniform(3)
                ),
            ]
        )

    run = recipes.robust_fit(model(), (x, y), method="clean", epochs=2)
    plain = model()
    plain.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras.utils.set_random_seed(0)
    plain.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(run.model.get_weights(), plain.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert run.epochs == 2 and run.stopped_epoch is None
    assert run.report is None and run.train_seconds > 0


def test_monitor_and_guard_on_the_line_model(tmp_path):
    # Weights frozen (SGD(0)); margin 0.3 > eps 0.1: every accuracy is 1.
    model, x, y = _line_problem()
    weights = model.get_weights()
    run = recipes.robust_fit(
        model,
        (x, y),
        method="fgsm_rs",
        epochs=2,
        eps=0.1,
        validation_data=(x, y),
        monitor_samples=16,
        log_dir=str(tmp_path),
    )
    h = run.history.history
    assert h["guard_robust_accuracy"] == [1.0, 1.0]
    assert h["val_robust_accuracy"] == [1.0, 1.0]
    assert h["val_pgd_accuracy"] == [1.0, 1.0]
    assert h["adv_accuracy"] == [1.0, 1.0]
    assert run.stopped_epoch is None
    # The recipe kept the user's compile (SGD(0)): weights unchanged.
    for a, b in zip(run.model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert {"train", "validation"} <= set(os.listdir(tmp_path))


def test_a_model_at_chance_accuracy_is_reported():
    # Frozen weights that always predict class 0, on balanced data: 50%,
    # exactly the most frequent class's share.
    model, x, y = _line_problem()
    model.set_weights([np.zeros((1, 2)), np.array([1.0, 0.0])])
    with pytest.warns(UserWarning, match="no better than always") as record:
        run = recipes.robust_fit(model, (x, y), method="clean", epochs=1)
    (message,) = run.warnings
    assert str(record[0].message) == message
    assert "classifies 50.0% of 64 training samples" in message
    assert "most frequent class (50.0%)" in message


def test_chance_check_spreads_its_samples_over_sorted_data():
    # 3,000 samples sorted by class: the first 1,000 would all be class 0
    # (a perfect model would look like a constant guess).
    model, _, _ = _line_problem()
    x = np.linspace(0.0, 1.0, 3000, dtype="float32").reshape(-1, 1)
    x = x[np.abs(x[:, 0] - 0.5) > 0.3]
    y = (x[:, 0] > 0.5).astype("int64")
    assert _robust_fit._chance_warning(model, x, y) is None
    constant = np.zeros_like(y)
    message = _robust_fit._chance_warning(model, x, constant)
    assert "of 1000 training samples" in message


# ------------------------------------------------------------ arguments
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(method="vat"), ValueError, "method"),
        (dict(epochs=0), ValueError, "epochs"),
        (dict(eps=-0.1), ValueError, "eps"),
        (dict(steps=0), ValueError, "steps"),
        (dict(eps_warmup_epochs=-1), ValueError, "eps_warmup_epochs"),
        (dict(monitor="yes"), TypeError, "monitor"),
    ],
)
def test_invalid_arguments(kwargs, error, match):
    model, x, y = _line_problem()
    with pytest.raises(error, match=match):
        recipes.robust_fit(model, (x, y), **kwargs)


def test_invalid_data_names_the_problem():
    model, x, y = _line_problem()
    with pytest.raises(ValueError, match=r"`data`.*labels from -1 to 1"):
        recipes.robust_fit(model, (x, np.where(y == 0, -1, 1)))
    with pytest.raises(ValueError, match=r"labels in \[0, 2\).*from 0 to 2"):
        recipes.robust_fit(model, (x, y), validation_data=(x, y * 2))
    with pytest.raises(TypeError, match="floating-point inputs"):
        recipes.robust_fit(model, ((x * 255).astype("uint8"), y))
    with pytest.raises(ValueError, match="same number of samples"):
        recipes.robust_fit(model, (x, y[:-1]))
    with pytest.raises(TypeError, match="keras.Model"):
        recipes.robust_fit("model", (x, y))
    with pytest.raises(ValueError, match="eval_samples"):
        recipes.mnist_adversarial_training(eval_samples=-1)


def test_public_surface():
    assert keras_adv.recipes is recipes
    assert "recipes" in keras_adv.__all__
    for name in recipes.__all__:
        assert hasattr(recipes, name)
