"""Verified training: the IBP and CROWN-IBP objectives.

The loss of a step is checked against a float64 numpy propagation of the
same bounds on a one-hidden-layer network (IBP with the last layer folded
into the margin; CROWN-IBP's backward pass with the ReLU relaxation on
the IBP intervals), read back from `fit` with a zero learning rate, on
both engines, at ramp fractions set by `target_eps` and by the callback's
eps warm-up. Then: the schedules, the gradient reaching every weight,
training that raises the verified accuracy, refusals named at train
begin, serialisation, the registry names, mixed_float16 and two replicas.
"""

import _two_cpus
import keras
import numpy as np
import pytest

from keras_adv import training
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.certification import verified_accuracy
from keras_adv.certification import verified_mask
from keras_adv.models import AdversarialModel
from keras_adv.models import ibp_cnn
from keras_adv.training import CROWNIBP
from keras_adv.training import IBP

FEATURES, HIDDEN, CLASSES, BATCH = 3, 4, 3, 12
EPS = 0.1


# ------------------------------------------------------------ references
def problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = [
        rng.normal(size=(FEATURES, HIDDEN)),
        rng.normal(scale=0.3, size=HIDDEN),
        rng.normal(size=(HIDDEN, CLASSES)),
        rng.normal(scale=0.3, size=CLASSES),
    ]
    x = rng.uniform(0.0, 1.0, size=(BATCH, FEATURES))
    y = rng.integers(0, CLASSES, size=BATCH)
    return [w.astype("float32") for w in weights], x.astype("float32"), y


def network(weights, softmax=False):
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(HIDDEN, activation="relu"),
            keras.layers.Dense(CLASSES, "softmax" if softmax else None),
        ]
    )
    model.set_weights(weights)
    return model


def reference_margins(weights, x, y, eps, beta=0.0):
    """Float64 `beta * CROWN-IBP + (1 - beta) * IBP` margins, 0 at `y`."""
    w1, b1, w2, b2 = (np.asarray(w, "float64") for w in weights)
    x = np.asarray(x, "float64")
    lo, up = np.clip(x - eps, 0.0, 1.0), np.clip(x + eps, 0.0, 1.0)
    centre, radius = (lo + up) / 2, (up - lo) / 2
    pre_c, pre_r = centre @ w1 + b1, radius @ np.abs(w1)
    low, high = pre_c - pre_r, pre_c + pre_r
    h_lo, h_up = np.maximum(low, 0), np.maximum(high, 0)
    h_c, h_r = (h_lo + h_up) / 2, (h_up - h_lo) / 2
    eye = np.eye(CLASSES)
    spec = eye[y][:, None, :] - eye[None]  # (batch, j, classes): e_y - e_j
    diff = spec @ w2.T  # the margins' weights on the hidden layer
    ibp = (
        np.einsum("bjh,bh->bj", diff, h_c)
        - np.einsum("bjh,bh->bj", np.abs(diff), h_r)
        + spec @ b2
    )
    # CROWN: the hidden ReLU relaxed on [low, high] (CROWN's lines).
    unstable = (low < 0) & (high > 0)
    width = np.where(unstable, high - low, 1.0)
    up_slope = np.where(unstable, high / width, (low >= 0).astype(float))
    up_icpt = np.where(unstable, -high * low / width, 0.0)
    lo_slope = np.where(
        low >= 0, 1.0, np.where(unstable & (high > -low), 1.0, 0.0)
    )
    pos, neg = np.maximum(diff, 0), np.minimum(diff, 0)
    pulled = pos * lo_slope[:, None] + neg * up_slope[:, None]
    const = spec @ b2 + np.einsum("bjh,bh->bj", neg, up_icpt) + pulled @ b1
    a = pulled @ w1.T  # (batch, j, features)
    crown = (
        np.einsum("bjf,bf->bj", a, centre)
        - np.einsum("bjf,bf->bj", np.abs(a), radius)
        + const
    )
    margins = beta * crown + (1 - beta) * ibp
    return np.where(eye[y] > 0, 0.0, margins)


def cross_entropy(logits, y):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y]


def reference_loss(weights, x, y, eps, kappa, beta=0.0, sample_weight=None):
    """`mean w (kappa CE(z(x)) + (1 - kappa) CE(-m(x, eps)))` in float64."""
    w1, b1, w2, b2 = (np.asarray(w, "float64") for w in weights)
    logits = np.maximum(np.asarray(x, "float64") @ w1 + b1, 0) @ w2 + b2
    worst = -reference_margins(weights, x, y, eps, beta)
    per_sample = kappa * cross_entropy(logits, y) + (1 - kappa) * (
        cross_entropy(worst, y)
    )
    weight = np.ones(len(y)) if sample_weight is None else sample_weight
    return float(np.sum(weight * per_sample) / len(y))


def compile_(model, lr=0.0, from_logits=True):
    model.compile(
        keras.optimizers.SGD(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=["accuracy"],
    )
    return model


def fit_losses(
    engine,
    objective,
    weights,
    x,
    y,
    epochs=1,
    softmax=False,
    sample_weight=None,
    **callback_args,
):
    """The logged losses of full-batch epochs with a zero learning rate."""
    model = network(weights, softmax)
    callbacks = []
    if engine == "callback":
        trained = compile_(model, from_logits=not softmax)
        callbacks = [AdversarialTraining(objective=objective, **callback_args)]
    else:
        trained = compile_(
            AdversarialModel(model, objective=objective),
            from_logits=not softmax,
        )
    history = trained.fit(
        x,
        y,
        sample_weight=sample_weight,
        batch_size=len(x),
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return history.history, model


# ---------------------------------------------------------- the losses
@pytest.mark.parametrize("engine", ["callback", "model"])
@pytest.mark.parametrize("name", ["ibp", "crown_ibp"])
def test_the_loss_is_the_papers_at_half_the_ramp(engine, name):
    weights, x, y = problem()
    # eps / target_eps = 0.5: IBP kappa 0.75; CROWN-IBP kappa 0.5, beta 0.5.
    objective = training.get(name, PGD(eps=EPS), target_eps=2 * EPS)
    kappa, beta = (0.75, 0.0) if name == "ibp" else (0.5, 0.5)
    assert objective.kappa(0.5) == kappa
    sample_weight = np.linspace(0.5, 1.5, BATCH).astype("float32")
    logs, _ = fit_losses(
        engine, objective, weights, x, y, sample_weight=sample_weight
    )
    expected = reference_loss(weights, x, y, EPS, kappa, beta, sample_weight)
    np.testing.assert_allclose(logs["loss"][0], expected, rtol=1e-5)
    # adv_loss: the verified cross-entropy (weighted like the loss).
    worst = -reference_margins(weights, x, y, EPS, beta)
    adv_loss = np.sum(sample_weight * cross_entropy(worst, y)) / np.sum(
        sample_weight
    )
    np.testing.assert_allclose(logs["adv_loss"][0], adv_loss, rtol=1e-5)


def test_a_probability_model_is_bounded_on_its_logits():
    weights, x, y = problem(1)
    logs, _ = fit_losses(
        "callback", IBP(PGD(eps=EPS)), weights, x, y, softmax=True
    )
    expected = reference_loss(weights, x, y, EPS, kappa=0.5)
    np.testing.assert_allclose(logs["loss"][0], expected, rtol=1e-5)


def test_one_hot_labels_with_categorical_cross_entropy():
    weights, x, y = problem(5)
    model = network(weights)
    model.compile(
        keras.optimizers.SGD(0.0),
        keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(
        x,
        np.eye(CLASSES)[y],
        batch_size=len(x),
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=EPS), "ibp")],
    )
    expected = reference_loss(weights, x, y, EPS, kappa=0.5)
    np.testing.assert_allclose(history.history["loss"][0], expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["ibp", "crown_ibp"])
def test_the_schedules_follow_the_callbacks_eps_warmup(name):
    weights, x, y = problem(2)
    objective = training.get(name, PGD(eps=EPS))
    logs, model = fit_losses(
        "callback", objective, weights, x, y, epochs=3, eps_warmup_epochs=2
    )
    # Epoch 0 trains at eps / 2 (fraction 0.5), epochs 1 and 2 at eps.
    fractions = [0.5, 1.0, 1.0]
    for epoch, fraction in enumerate(fractions):
        kappa = objective.kappa(fraction)
        beta = objective.beta(fraction) if name == "crown_ibp" else 0.0
        expected = reference_loss(weights, x, y, EPS * fraction, kappa, beta)
        np.testing.assert_allclose(logs["loss"][epoch], expected, rtol=1e-5)
    # adv_accuracy: the share verified by the training bound at eps.
    verified = np.mean(np.asarray(verified_mask(model, x, y, EPS)))
    assert logs["adv_accuracy"][-1] == pytest.approx(verified)


def test_schedule_values():
    ibp = IBP(PGD(eps=0.4))
    crown = CROWNIBP(PGD(eps=0.4))
    assert [ibp.kappa(r) for r in (0.0, 0.5, 1.0)] == [1.0, 0.75, 0.5]
    assert [crown.kappa(r) for r in (0.0, 0.5, 1.0)] == [1.0, 0.5, 0.0]
    assert [crown.beta(r) for r in (0.0, 0.5, 1.0)] == [1.0, 0.5, 0.0]
    custom = CROWNIBP(
        PGD(eps=0.4), initial_kappa=0.0, final_kappa=0.0, final_beta=0.5
    )
    assert [custom.kappa(r) for r in (0.0, 1.0)] == [0.0, 0.0]
    assert [custom.beta(r) for r in (0.0, 0.5, 1.0)] == [1.0, 0.75, 0.5]
    assert ibp.ramp_target == 0.4
    assert IBP(PGD(eps=0.4), target_eps=0.3).ramp_target == 0.3


def test_past_the_ramp_crown_ibp_is_ibp():
    weights, x, y = problem(3)
    ibp, _ = fit_losses(
        "model", IBP(PGD(eps=EPS), final_kappa=0.0), weights, x, y
    )
    crown, _ = fit_losses("model", CROWNIBP(PGD(eps=EPS)), weights, x, y)
    # beta = 0 at the end of the ramp: the CROWN pass is skipped.
    np.testing.assert_allclose(crown["loss"], ibp["loss"], rtol=1e-6)


# ------------------------------------------------------------ gradients
def conv_net(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((6, 6, 1)),
            keras.layers.Conv2D(
                3, 3, activation="relu", kernel_initializer=init
            ),
            keras.layers.Flatten(),
            keras.layers.Dense(5, activation="relu", kernel_initializer=init),
            keras.layers.Dense(CLASSES, kernel_initializer=init),
        ]
    )


@pytest.mark.parametrize(
    "objective",
    [
        IBP(PGD(eps=0.05)),
        CROWNIBP(PGD(eps=0.05), final_beta=1.0),
    ],
)
def test_the_gradient_reaches_every_weight(objective):
    import tensorflow as tf

    model = conv_net()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 6, 6, 1)).astype("float32")
    y = np.arange(8) % CLASSES
    with tf.GradientTape() as tape:
        worst = objective.worst_case_logits(model, x, y, 0.05)
        loss = tf.reduce_mean(
            keras.losses.sparse_categorical_crossentropy(
                y, worst, from_logits=True
            )
        )
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(grads) == 6
    for variable, grad in zip(model.trainable_variables, grads):
        assert grad is not None, variable.path
        assert float(tf.reduce_max(tf.abs(grad))) > 0.0, variable.path


# ------------------------------------------------------------- training
def separable_data(seed=3):
    """Two classes `x0 + x1 > 1` with a gap: L-inf distance > 0.15."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(1024, 4)).astype("float32")
    score = x[:, 0] + x[:, 1] - 1.0
    keep = np.abs(score) > 0.3
    return x[keep][:256], (score[keep][:256] > 0).astype("int64")


def mlp(seed=3):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(16, activation="relu", kernel_initializer=init),
            keras.layers.Dense(2, kernel_initializer=init),
        ]
    )


def compile_adam(model):
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.mark.parametrize("engine", ["callback", "model"])
def test_ibp_training_raises_the_verified_accuracy(engine):
    x, y = separable_data()
    eps, fit_args = 0.12, dict(epochs=8, batch_size=32, verbose=0)
    plain = compile_adam(mlp())
    plain.fit(x, y, shuffle=False, **fit_args)
    clean_training = verified_accuracy(plain, x, y, eps)
    model = mlp()
    before = verified_accuracy(model, x, y, eps)
    objective = IBP(PGD(eps=eps))
    if engine == "callback":
        warmup = AdversarialTraining(objective=objective, eps_warmup_epochs=2)
        compile_adam(model).fit(
            x, y, shuffle=False, callbacks=[warmup], **fit_args
        )
    else:
        wrapper = compile_adam(AdversarialModel(model, objective=objective))
        wrapper.fit(x, y, shuffle=False, **fit_args)
    after = verified_accuracy(model, x, y, eps)
    assert after >= before + 0.5, (before, after)
    assert after >= clean_training + 0.05, (clean_training, after)


# ------------------------------------------------------------- refusals
def test_a_layer_without_bounds_is_refused_by_name_at_train_begin():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(4),
            keras.layers.LayerNormalization(name="norm_here"),
            keras.layers.Dense(2),
        ]
    )
    compile_(model)
    x, y = separable_data()
    callback = AdversarialTraining(PGD(eps=0.1), "ibp")
    with pytest.raises(
        NotImplementedError, match="IBP cannot train.*norm_here"
    ):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[callback])
    assert model.optimizer.iterations.numpy() == 0  # before any step
    wrapper = compile_(AdversarialModel(model, PGD(eps=0.1), "ibp"))
    with pytest.raises(NotImplementedError, match="norm_here"):
        wrapper.fit(x, y, epochs=1, verbose=0)


def test_crown_ibp_refuses_max_pooling_and_ibp_trains_it():
    model = keras.Sequential(
        [
            keras.Input((4, 4, 1)),
            keras.layers.Conv2D(2, 3, activation="relu", padding="same"),
            keras.layers.MaxPooling2D(name="pool_here"),
            keras.layers.Flatten(),
            keras.layers.Dense(2),
        ]
    )
    compile_(model, lr=0.01)
    x = np.random.default_rng(0).uniform(size=(8, 4, 4, 1)).astype("float32")
    y = np.arange(8) % 2
    crown = AdversarialTraining(PGD(eps=0.1), "crown_ibp")
    with pytest.raises(NotImplementedError, match="CROWNIBP.*pool_here"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[crown])
    # With beta 0 throughout, no CROWN pass: IBP bounds max pooling.
    never = CROWNIBP(PGD(eps=0.1), initial_beta=0.0)
    for objective in (IBP(PGD(eps=0.1)), never):
        history = model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[AdversarialTraining(objective=objective)],
        )
        assert np.isfinite(history.history["loss"][0])


def test_the_compiled_loss_must_be_the_cross_entropy():
    model = mlp()
    model.compile("sgd", keras.losses.Hinge())
    x, y = separable_data()
    with pytest.raises(ValueError, match="SparseCategoricalCrossentropy"):
        model.fit(
            x,
            y,
            verbose=0,
            callbacks=[AdversarialTraining(PGD(eps=0.1), "ibp")],
        )


def test_invalid_arguments():
    with pytest.raises(ValueError, match="final_kappa"):
        IBP(PGD(eps=0.1), final_kappa=1.5)
    with pytest.raises(ValueError, match="initial_beta"):
        CROWNIBP(PGD(eps=0.1), initial_beta=-0.1)
    with pytest.raises(ValueError, match="target_eps"):
        IBP(PGD(eps=keras.Variable(0.1)))
    assert IBP(PGD(eps=keras.Variable(0.1)), target_eps=0.3).ramp_target == 0.3
    with pytest.raises(TypeError, match="attack"):
        IBP("pgd")
    with pytest.raises(TypeError, match="final_beta"):
        training.get("ibp", PGD(), final_beta=0.0)


# ------------------------------------------------ names and serialisation
def test_registry_names():
    assert type(training.get("ibp", PGD(eps=0.1))) is IBP
    assert type(training.get("crown_ibp", PGD(eps=0.1))) is CROWNIBP
    assert type(training.get("CROWN-IBP", PGD(eps=0.1))) is CROWNIBP
    objective = training.get("ibp", PGD(eps=0.1), final_kappa=0.25)
    assert objective.final_kappa == 0.25


@pytest.mark.parametrize(
    "objective",
    [
        IBP(PGD(eps=0.3, norm="l2"), initial_kappa=0.9, target_eps=0.4),
        CROWNIBP(PGD(eps=0.3), final_kappa=0.5, final_beta=0.25),
    ],
)
def test_config_round_trip(objective):
    config = keras.saving.serialize_keras_object(objective)
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is type(objective)
    assert again.get_config() == objective.get_config()
    assert "training_mode_attack" not in objective.get_config()
    assert training.get(config).get_config() == objective.get_config()
    assert again.attack.norm == objective.attack.norm


def test_adversarial_model_saves_with_the_objective(tmp_path):
    weights, x, y = problem()
    model = compile_(
        AdversarialModel(
            network(weights), PGD(eps=EPS), "crown_ibp", final_kappa=0.5
        ),
        lr=0.01,
    )
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "verified.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.objective) is CROWNIBP
    assert loaded.objective.final_kappa == 0.5
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6
    )


# ------------------------------------------------- dtype and replicas
@pytest.mark.parametrize("name", ["ibp", "crown_ibp"])
def test_mixed_float16(name):
    weights, x, y = problem(4)
    objective = training.get(name, PGD(eps=EPS), target_eps=2 * EPS)
    float32, _ = fit_losses("callback", objective, weights, x, y)
    keras.mixed_precision.set_global_policy("mixed_float16")
    logs, model = fit_losses("callback", objective, weights, x, y)
    assert model.layers[0].compute_dtype == "float16"
    # Bounds in float32; only the forward pass (the nominal term) rounds.
    np.testing.assert_allclose(logs["loss"], float32["loss"], rtol=2e-3)
    np.testing.assert_allclose(logs["adv_loss"], float32["adv_loss"], rtol=1e-5)


# Epoch 0 mixes in CROWN (beta 0.5), epoch 1 is past the ramp (beta 0).
@pytest.mark.filterwarnings("ignore:AdversarialTraining:UserWarning")
def test_a_verified_cnn_trains_with_crown_ibp():
    model = ibp_cnn("small", input_shape=(12, 12, 1), num_classes=3)
    compile_(model, lr=0.01)
    x = np.random.default_rng(0).uniform(size=(8, 12, 12, 1))
    history = model.fit(
        x.astype("float32"),
        np.arange(8) % 3,
        epochs=2,
        verbose=0,
        callbacks=[
            AdversarialTraining(PGD(eps=0.02), "crown_ibp", eps_warmup_epochs=2)
        ],
    )
    assert np.all(np.isfinite(history.history["loss"]))
    with pytest.raises(ValueError, match="size"):
        ibp_cnn("huge")


DISTRIBUTED = r"""
import json
import keras
import numpy as np
import tensorflow as tf

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining

rng = np.random.default_rng(0)
x = rng.uniform(size=(64, 4)).astype("float32")
y = rng.integers(0, 3, 64)


def run(strategy, name, ramp):
    with strategy.scope():
        init = keras.initializers.GlorotUniform(seed=0)
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(6, activation="relu", kernel_initializer=init),
            keras.layers.Dense(3, kernel_initializer=init),
        ])
        model.compile(
            keras.optimizers.SGD(0.1),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    history = model.fit(
        x, y, batch_size=32, epochs=2, verbose=0, shuffle=False,
        callbacks=[AdversarialTraining(PGD(eps=0.05), name, **ramp)],
    )
    return history.history["loss"], [
        w.tolist() for w in model.get_weights()
    ]


out = {}
# Both ramps: per epoch (host) and per optimizer step (in the graph, from
# the step counter, which each replica must read alike): 4 steps in all.
RAMPS = {"ibp": {"eps_warmup_epochs": 2}, "crown_ibp": {"eps_warmup_steps": 3}}
for name, ramp in RAMPS.items():
    one = run(tf.distribute.get_strategy(), name, ramp)
    two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), name, ramp)
    out[name] = {"one": one, "two": two}
print("RESULT" + json.dumps(out))
"""


def test_two_replicas_train_like_one():
    result = _two_cpus.run(DISTRIBUTED)
    for name in ("ibp", "crown_ibp"):
        one, two = result[name]["one"], result[name]["two"]
        np.testing.assert_allclose(two[0], one[0], rtol=1e-5)
        for a, b in zip(two[1], one[1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ docs
def test_the_docs_example_runs_as_written(capsys):
    """The python block of docs/certification.md's "Verified training"."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "certification.md"
    section = page.read_text().split("\n## Verified training\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace = {}
    exec(compile(block, str(page), "exec"), namespace)
    # Far above the normally trained model's 66.2 % (IBP bound, eps 0.1).
    for objective in ("ibp", "crown_ibp"):
        assert namespace["results"][objective][1] > 0.9, objective
    printed = capsys.readouterr().out.splitlines()[-2:]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].split("\n")
    for ours, theirs in zip(printed, shown):
        assert ours.split(":")[0] == theirs.split(":")[0]
        np.testing.assert_allclose(
            [float(v) for v in re.findall(r"\d\.\d{3}", ours)],
            [float(v) for v in re.findall(r"\d\.\d{3}", theirs)],
            atol=0.02,
        )
