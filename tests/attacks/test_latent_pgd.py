"""LatentPGD: exact on a set that is an L2 ball; evaluation, monitor,
adversarial training with the max-loss objective, serialisation."""

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.attacks import PGD
from keras_adv.attacks import LatentPGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.evaluation import evaluate_robustness
from keras_adv.testing import linear_classifier
from keras_adv.testing import shift_cvae
from keras_adv.threat_models import LearnedPerturbationSet
from keras_adv.training import MaxLoss

# The line problem: logits (x, -x), class 0 iff x > 0, inputs in [-2, 2].
# With g(z, x) = x + z and prior std 1, the set of radius r is [x-r, x+r],
# so a sample survives LatentPGD at radius r iff |x| > r.
RANGE = (-2.0, 2.0)
X_LINE = np.linspace(-0.95, 0.95, 20).astype("float32")[:, None]
Y_LINE = (X_LINE[:, 0] < 0).astype("int64")


def survive(r):
    return float(np.mean(np.abs(X_LINE[:, 0]) > r))


@pytest.fixture(scope="module")
def line():
    model = linear_classifier([[1.0, -1.0]])
    tm = LearnedPerturbationSet(shift_cvae((1,)), radius=0.5, value_range=RANGE)
    return model, tm


def accuracy(model, x, y):
    return float(np.mean(np.asarray(model(x)).argmax(1) == y))


@pytest.mark.parametrize("early_stop", [True, False])
def test_accuracy_is_exact_on_the_line(line, early_stop):
    model, tm = line
    attack = LatentPGD(tm, steps=50, early_stop=early_stop, seed=0)
    for r in (0.3, 0.5, 0.72):
        x_adv = np.asarray(attack(model, X_LINE, Y_LINE, eps=r))
        assert accuracy(model, x_adv, Y_LINE) == survive(r)
        assert np.abs(x_adv - X_LINE).max() <= r + 1e-5
    assert attack.tracing_count(model) == 1  # eps is a tensor


def test_early_stop_freezes_successful_samples(line):
    model, tm = line
    x = np.float32([[0.1], [0.9]])
    y = np.int64([0, 0])
    # From the centre, the first sample flips after 3 steps of 0.05 and
    # then stays; without early stop it keeps climbing to the radius.
    common = dict(steps=20, step_size=0.05, random_start=False, seed=0)
    stop = np.asarray(LatentPGD(tm, early_stop=True, **common)(model, x, y))
    free = np.asarray(LatentPGD(tm, early_stop=False, **common)(model, x, y))
    np.testing.assert_allclose(stop[:, 0], [-0.05, 0.4], atol=1e-5)
    np.testing.assert_allclose(free[:, 0], [-0.4, 0.4], atol=1e-5)


def test_defaults_from_the_paper(line):
    _, tm = line
    attack = LatentPGD(tm)
    assert attack.steps == 50 and attack.relative_step_size == 1 / 20
    assert LatentPGD(tm, steps=7).relative_step_size == pytest.approx(0.2)
    assert attack.eps == 0.5 and attack.norm == "latent"
    assert attack.value_range == RANGE


def test_targeted_and_invalid(line):
    model, tm = line
    x = np.float32([[0.3], [0.6]])
    targets = np.int64([1, 1])
    attack = LatentPGD(tm, targeted=True, seed=0)
    x_adv = np.asarray(attack(model, x, targets, eps=0.5))
    assert list(np.asarray(model(x_adv)).argmax(1)) == [1, 0]
    with pytest.raises(TypeError, match="threat_model"):
        LatentPGD(keras_adv.threat_models.L2Ball(1.0))
    with pytest.raises(ValueError, match="steps"):
        LatentPGD(tm, steps=0)


def test_serialisation_round_trip(line):
    _, tm = line
    attack = LatentPGD(tm, steps=7, seed=3)
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(attack)
    )
    assert isinstance(again, LatentPGD)
    assert again.steps == 7 and again.seed == 3 and again.eps == 0.5
    assert again.threat_model.norm == "latent"


def test_evaluate_robustness_with_checks(line):
    model, tm = line
    attack = LatentPGD(tm, seed=0)
    report = evaluate_robustness(
        model,
        (X_LINE, Y_LINE),
        attacks={"latent": attack},
        epsilons=[0.0, 0.3, 0.72],
        verbose=0,
    )
    assert report.accuracy("latent", 0.3) == survive(0.3)
    assert report.accuracy("latent", 0.72) == survive(0.72)
    entry = report.attacks["latent"]
    assert entry["norm"] == "latent"
    assert max(entry["max_norm"]) <= 0.72 + 1e-4  # latent distance
    noise = report.checks["noise_accuracy"]["latent"]
    assert noise[2] >= report.accuracy("latent", 0.72)
    assert not any("noise_beats_attack" in w for w in report.warnings)


def test_robustness_monitor_logs_and_grid():
    tm = LearnedPerturbationSet(shift_cvae((4, 4, 1), 0.1), radius=3.0)
    x = np.random.default_rng(0).uniform(0.2, 0.8, (8, 4, 4, 1))
    x = x.astype("float32")
    model = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    y = np.asarray(model(x)).argmax(1)
    monitor = RobustnessMonitor(
        (x, y), attacks={"latent": LatentPGD(tm, steps=5, seed=0)}, images=4
    )
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    results = monitor.evaluate()
    logged = history.history["val_latent_accuracy"][0]
    assert logged == pytest.approx(results["accuracy"]["latent"])
    grid = monitor.grid_image(0, results)
    assert grid is not None and grid.dtype == np.uint8
    # The grid shows members of the set: within 0.1 * 3 of x in L2.
    delta = (results["x_adv"]["latent"] - x[:4]).reshape(4, -1)
    assert np.linalg.norm(delta, axis=1).max() <= 0.3 + 1e-5


def test_max_loss_trains_on_the_worse_input(line):
    model, tm = line
    objective = MaxLoss(LatentPGD(tm, steps=50, seed=0))
    x, y = X_LINE, Y_LINE
    chosen = np.asarray(
        objective.adversarial_examples(
            model, x, y, 0.5, keras_adv._random.as_stateless_seed(0)
        )
    )
    logits = np.asarray(model(chosen))
    ce = -np.log(np.exp(logits)[np.arange(20), y] / np.exp(logits).sum(1))
    clean = np.asarray(model(x))
    ce_clean = -np.log(np.exp(clean)[np.arange(20), y] / np.exp(clean).sum(1))
    assert np.all(ce >= ce_clean - 1e-6)
    assert accuracy(model, chosen, y) == survive(0.5)


def test_adversarial_training_with_max_loss(line):
    _, tm = line
    model = linear_classifier([[1.0, -1.0]])
    model.compile(
        keras.optimizers.SGD(learning_rate=0.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callback = AdversarialTraining(
        LatentPGD(tm, steps=50, seed=0), objective="max_loss"
    )
    assert isinstance(callback.objective, MaxLoss)
    logs = model.fit(
        X_LINE, Y_LINE, batch_size=20, epochs=1, verbose=0, callbacks=[callback]
    ).history
    assert logs["adv_accuracy"][0] == pytest.approx(survive(0.5))


def test_max_loss_at_radius_zero_is_plain_training(line):
    _, tm = line
    zero = LearnedPerturbationSet(tm.cvae, radius=0.0, value_range=RANGE)
    weights = []
    for callbacks in ([AdversarialTraining(LatentPGD(zero), "max_loss")], []):
        model = linear_classifier([[0.5, -0.5]])
        model.compile(
            keras.optimizers.SGD(learning_rate=0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        model.fit(
            X_LINE,
            Y_LINE,
            batch_size=5,
            epochs=2,
            verbose=0,
            shuffle=False,
            callbacks=callbacks,
        )
        weights.append(model.get_weights()[0])
    np.testing.assert_allclose(weights[0], weights[1], atol=1e-6)


def test_on_a_ball_shaped_set_latent_pgd_is_l2_pgd(line):
    # With g(z, x) = x + z and unit prior std, the latent steps are the
    # input-space L2 steps: both searches agree from the centre.
    model, tm = line
    latent = LatentPGD(
        tm, steps=10, step_size=0.05, random_start=False, early_stop=False
    )
    pgd = PGD(
        eps=0.5,
        steps=10,
        step_size=0.05,
        norm="l2",
        random_start=False,
        value_range=RANGE,
    )
    np.testing.assert_allclose(
        latent(model, X_LINE, Y_LINE), pgd(model, X_LINE, Y_LINE), atol=1e-5
    )


def test_adversarial_model_with_max_loss(line):
    _, tm = line
    base = linear_classifier([[1.0, -1.0]])
    model = keras_adv.models.AdversarialModel(
        base, LatentPGD(tm, steps=50, seed=0), objective="max_loss"
    )
    model.compile(
        keras.optimizers.SGD(learning_rate=0.0),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    logs = model.fit(X_LINE, Y_LINE, batch_size=20, epochs=1, verbose=0)
    assert logs.history["adv_accuracy"][0] == pytest.approx(survive(0.5))
