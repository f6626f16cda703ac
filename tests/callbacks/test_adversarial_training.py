"""Tests of the AdversarialTraining callback (tiny models, few steps)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.testing import assert_config_round_trip

FEATURES = 6
CLASSES = 3


def is_wrapped(model):
    """True if anything is installed in the model's instance dict."""
    names = ("train_step", "compute_loss", "compute_metrics")
    return any(name in vars(model) for name in names + ("make_train_function",))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, size=(96, FEATURES)).astype("float32")
    w = rng.normal(size=(FEATURES, CLASSES))
    y = np.argmax((x - 0.5) @ w, axis=1).astype("int64")
    return x, y


def sequential(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(CLASSES, kernel_initializer=init),
        ]
    )


def functional(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((FEATURES,))
    h = keras.layers.Dense(8, activation="relu", kernel_initializer=init)(
        inputs
    )
    outputs = keras.layers.Dense(
        CLASSES, activation="softmax", kernel_initializer=init
    )(h)
    return keras.Model(inputs, outputs)


class Subclassed(keras.Model):
    def __init__(self, seed=0, **kwargs):
        super().__init__(**kwargs)
        init = keras.initializers.GlorotUniform(seed=seed)
        self.hidden = keras.layers.Dense(
            8, activation="relu", kernel_initializer=init
        )
        self.head = keras.layers.Dense(CLASSES, kernel_initializer=init)

    def call(self, x, training=False):
        return self.head(self.hidden(x))


class CountingModel(keras.Sequential):
    """A user-overridden train_step that counts calls and traces."""

    traces = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = tf.Variable(0, trainable=False, dtype="int64")

    def train_step(self, data):
        CountingModel.traces += 1
        self.calls.assign_add(1)
        return super().train_step(data)


def compile_model(model, optimizer="sgd", **kwargs):
    from_logits = not isinstance(model.layers[-1], keras.layers.Dense) or (
        model.layers[-1].activation.__name__ != "softmax"
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=from_logits
        ),
        metrics=["accuracy"],
        **kwargs,
    )
    return model


def fit(model, data, callbacks=(), epochs=1, **kwargs):
    x, y = data
    kwargs.setdefault("batch_size", 32)
    return model.fit(
        x,
        y,
        epochs=epochs,
        verbose=0,
        shuffle=False,
        callbacks=list(callbacks),
        **kwargs,
    )


def assert_weights_close(a, b, atol=1e-6):
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, atol=atol)


def assert_weights_differ(a, b):
    diff = max(
        float(np.max(np.abs(wa - wb)))
        for wa, wb in zip(a.get_weights(), b.get_weights())
    )
    assert diff > 1e-4


# ---------------------------------------------------------------- anchors
@pytest.mark.parametrize(
    "callback",
    [
        lambda: AdversarialTraining(PGD(eps=0.2, steps=2), adv_weight=0.0),
        lambda: AdversarialTraining(PGD(eps=0.0, steps=2)),
        lambda: AdversarialTraining(PGD(eps=0.0, steps=2), adv_weight=0.5),
        lambda: AdversarialTraining(PGD(eps=0.2, steps=2), start_epoch=5),
        lambda: AdversarialTraining(
            PGD(eps=0.2, steps=2), objective="trades", beta=0.0
        ),
    ],
    ids=["adv_weight0", "eps0", "mixed_eps0", "before_start", "trades_b0"],
)
def test_degenerate_settings_equal_plain_fit(data, callback):
    plain = compile_model(sequential())
    fit(plain, data, epochs=2)
    adv = compile_model(sequential())
    callback = callback()
    history = fit(adv, data, callbacks=[callback], epochs=2)
    assert_weights_close(plain, adv, atol=1e-5)
    # Before start_epoch nothing adversarial runs or is reported.
    assert ("adv_accuracy" in history.history) == (callback.start_epoch < 2)


def test_adversarial_training_changes_weights(data):
    plain = compile_model(sequential())
    fit(plain, data)
    adv = compile_model(sequential())
    fit(adv, data, callbacks=[AdversarialTraining(PGD(eps=0.2, steps=2))])
    assert_weights_differ(plain, adv)


# ------------------------------------------------------------ model kinds
@pytest.mark.parametrize("build", [functional, Subclassed])
@pytest.mark.parametrize("objective", ["adversarial", "fgsm-rs", "trades"])
def test_model_kinds_train_like_sequential(data, build, objective):
    # The same network as a functional model (ending in a softmax, with a
    # probability loss) or a subclassed one, from the same weights and with
    # the same seeded attack: the weights and logs of the Sequential.
    x, _ = data

    def train(model):
        model(x[:1])  # builds a subclassed model
        model.set_weights(sequential().get_weights())
        callback = AdversarialTraining(PGD(eps=0.1, steps=2, seed=0), objective)
        history = fit(compile_model(model), data, callbacks=[callback])
        assert not is_wrapped(model)
        return model, history.history

    reference, expected = train(sequential())
    model, logs = train(build())
    assert_weights_close(model, reference, atol=1e-6)
    assert sorted(logs) == sorted(expected)
    for key, values in expected.items():
        np.testing.assert_allclose(logs[key], values, rtol=1e-6, err_msg=key)
    plain = compile_model(sequential())
    fit(plain, data)
    assert_weights_differ(plain, reference)  # the objective changed training


def test_trained_on_x_adv_alone_each_quantity_is_logged_once(data):
    # adv_weight=1 trains on x_adv: Keras' loss and accuracy measure x_adv.
    # They are logged once, the accuracy as adv_accuracy. Weights frozen
    # and a deterministic FGSM: both are known exactly.
    model = compile_model(sequential(), optimizer=keras.optimizers.SGD(0.0))
    history = fit(
        model,
        data,
        callbacks=[AdversarialTraining(FGSM(eps=0.3))],
        validation_data=data,
    )
    h = history.history
    assert sorted(h) == ["adv_accuracy", "loss", "val_accuracy", "val_loss"]
    x, y = data
    x_adv = FGSM(eps=0.3)(model, x, y)
    logits = model.predict(x_adv, verbose=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(h["loss"], [float(ce(y, logits))], rtol=1e-5)
    accuracy = np.mean(np.argmax(logits, -1) == y)
    np.testing.assert_allclose(h["adv_accuracy"], [accuracy], atol=1e-6)
    clean = model.evaluate(x, y, verbose=0, return_dict=True)
    assert h["val_accuracy"] == [pytest.approx(clean["accuracy"])]


@pytest.mark.parametrize(
    "kwargs",
    [dict(adv_weight=0.5), dict(objective="trades", beta=1.0)],
    ids=["mixed", "trades"],
)
def test_trained_on_clean_batches_adversarial_metrics_are_added(data, kwargs):
    # The compiled metrics measure the batch trained on (clean, or clean and
    # adversarial); adv_loss and adv_accuracy measure x_adv besides.
    model = compile_model(sequential())
    callback = AdversarialTraining(PGD(eps=0.3, steps=3), **kwargs)
    history = fit(model, data, callbacks=[callback])
    assert sorted(history.history) == [
        "accuracy",
        "adv_accuracy",
        "adv_loss",
        "loss",
    ]


def test_adversarial_batches_are_harder(data):
    model = compile_model(sequential(), optimizer=keras.optimizers.SGD(0.0))
    history = fit(
        model,
        data,
        callbacks=[AdversarialTraining(PGD(eps=0.3, steps=5), adv_weight=0.0)],
    )
    clean = model.evaluate(*data, verbose=0, return_dict=True)
    assert history.history["adv_loss"][0] > clean["loss"] + 0.05


def test_user_train_step_is_called(data):
    model = CountingModel(sequential().layers)
    compile_model(model)
    fit(model, data, callbacks=[AdversarialTraining(PGD(eps=0.1, steps=2))])
    assert int(model.calls.numpy()) == 3  # 96 samples / 32


@pytest.mark.filterwarnings("ignore:AdversarialTraining.*eps_warmup_epochs")
def test_eps_warmup_does_not_retrace(data):
    CountingModel.traces = 0
    model = CountingModel(sequential().layers)
    compile_model(model)
    callback = AdversarialTraining(PGD(eps=0.2, steps=2), eps_warmup_epochs=3)
    fit(model, data, callbacks=[callback], epochs=1)  # builds the model
    start = CountingModel.traces
    fit(model, data, callbacks=[callback], epochs=1)
    one_epoch = CountingModel.traces - start
    fit(model, data, callbacks=[callback], epochs=5)
    five_epochs = CountingModel.traces - start - one_epoch
    # Every fit installs the step once; eps changes between epochs do not
    # retrace.
    assert one_epoch == five_epochs == 1
    # With a start epoch: one trace of the plain step, one adversarial.
    late = AdversarialTraining(PGD(eps=0.2, steps=2), start_epoch=2)
    before = CountingModel.traces
    fit(model, data, callbacks=[late], epochs=5)
    assert CountingModel.traces - before == 2


def test_eps_schedule():
    callback = AdversarialTraining(
        PGD(eps=0.3), start_epoch=2, eps_warmup_epochs=4
    )
    scales = [callback.eps_scale(e) for e in range(8)]
    assert scales == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert AdversarialTraining(PGD()).eps_scale(0) == 1.0


# --------------------------------------------------------- fit features
def test_sample_weights_zero_freeze_weights(data):
    model = compile_model(sequential())
    before = [w.copy() for w in model.get_weights()]
    x, y = data
    for objective, weight in [("adversarial", 1.0), ("adversarial", 0.5)]:
        model.fit(
            x,
            y,
            sample_weight=np.zeros(len(x), "float32"),
            epochs=1,
            verbose=0,
            callbacks=[
                AdversarialTraining(
                    PGD(eps=0.2, steps=2), objective, adv_weight=weight
                )
            ],
        )
    model.fit(
        x,
        y,
        sample_weight=np.zeros(len(x), "float32"),
        epochs=1,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.2, steps=2), "trades")],
    )
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)


def test_validation_is_clean_evaluation(data):
    # Validation evaluates the end-of-epoch weights on clean inputs.
    model = compile_model(sequential())
    history = fit(
        model,
        data,
        validation_data=data,
        callbacks=[AdversarialTraining(PGD(eps=0.1, steps=2))],
    )
    clean = model.evaluate(*data, verbose=0, return_dict=True)
    validation = {
        key[len("val_") :]: values[0]
        for key, values in history.history.items()
        if key.startswith("val_")
    }
    assert sorted(validation) == sorted(clean)
    for key, value in clean.items():
        assert validation[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("steps_per_execution", [2, 3])
def test_steps_per_execution_matches_single_steps(data, steps_per_execution):
    # jit_compile=True: tests/distribute/test_jit_compile.py.
    attack_seeded = dict(eps=0.2, steps=2, seed=3)
    a = compile_model(sequential(), steps_per_execution=steps_per_execution)
    h = fit(a, data, callbacks=[AdversarialTraining(PGD(**attack_seeded))])
    b = compile_model(sequential())
    expected = fit(
        b, data, callbacks=[AdversarialTraining(PGD(**attack_seeded))]
    )
    assert_weights_close(a, b, atol=1e-5)
    assert sorted(h.history) == sorted(expected.history)
    for key, values in expected.history.items():
        np.testing.assert_allclose(h.history[key], values, rtol=1e-5)


# mixed_float16 (every objective close to float32) and VAT with partial
# labels (supervised + LDS closed form): tests/training/test_objectives.py.


# ------------------------------------------------------------------ VAT
def test_vat_unlabelled_only_alpha_zero_freezes(data):
    x, _ = data
    model = compile_model(sequential())
    before = [w.copy() for w in model.get_weights()]
    cb = AdversarialTraining(PGD(eps=0.5), "vat", alpha=0.0)
    model.fit(x, -np.ones(len(x), "int64"), verbose=0, callbacks=[cb])
    for b, a in zip(before, model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-7)
    cb = AdversarialTraining(PGD(eps=0.5), "vat", alpha=10.0)
    model.fit(x, -np.ones(len(x), "int64"), verbose=0, callbacks=[cb])
    assert any(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )


# --------------------------------------------------- wrapper life cycle
class RaisingDataset(keras.utils.PyDataset):
    def __init__(self, data, fail_at):
        super().__init__()
        self.x, self.y = data
        self.fail_at = fail_at

    def __len__(self):
        return 3

    def __getitem__(self, i):
        if i == self.fail_at:
            raise RuntimeError("data failure")
        return self.x[i * 32 : (i + 1) * 32], self.y[i * 32 : (i + 1) * 32]


class RaisingCallback(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyError("callback failure")


def _clean_afterwards(model, data, tmp_path):
    assert not is_wrapped(model)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert_weights_close(model, loaded)
    # A later plain fit trains clean: same result as a fresh clean copy.
    twin = compile_model(sequential())
    twin.set_weights(model.get_weights())
    compile_model(model)
    fit(model, data)
    fit(twin, data)
    assert_weights_close(model, twin, atol=1e-6)


def test_no_wrapper_after_fit(data, tmp_path):
    model = compile_model(sequential())
    fit(model, data, callbacks=[AdversarialTraining(PGD(eps=0.2, steps=2))])
    _clean_afterwards(model, data, tmp_path)


def test_no_wrapper_after_fit_raised_in_step(data, tmp_path):
    model = compile_model(sequential())
    with pytest.raises(Exception, match="data failure"):
        model.fit(
            RaisingDataset(data, fail_at=1),
            epochs=1,
            verbose=0,
            callbacks=[AdversarialTraining(PGD(eps=0.2, steps=2))],
        )
    _clean_afterwards(model, data, tmp_path)


def test_failed_fit_leaves_no_adversarial_step_behind(data, tmp_path):
    # A callback raising ends fit without on_train_end: the next plain fit
    # must still train clean (its make_train_function removes the step).
    model = compile_model(sequential())
    callback = AdversarialTraining(PGD(eps=0.2, steps=2))
    with pytest.raises(KeyError):
        fit(model, data, callbacks=[callback, RaisingCallback()])
    history = fit(model, data)
    assert "adv_accuracy" not in history.history
    assert not is_wrapped(model)
    with pytest.raises(KeyError):
        fit(model, data, callbacks=[callback, RaisingCallback()])
    callback.restore()
    _clean_afterwards(model, data, tmp_path)


def test_two_adversarial_training_callbacks_are_refused(data):
    model = compile_model(sequential())
    with pytest.raises(ValueError, match="Two AdversarialTraining"):
        fit(
            model,
            data,
            callbacks=[
                AdversarialTraining(PGD(eps=0.2, steps=2)),
                AdversarialTraining(PGD(eps=0.1, steps=2)),
            ],
        )
    fit(model, data)
    assert not is_wrapped(model)


def test_no_attack_runs_before_start_epoch(data):
    model = compile_model(sequential())
    callback = AdversarialTraining(PGD(eps=0.2, steps=2), start_epoch=1)
    history = fit(model, data, epochs=1, callbacks=[callback])
    assert "adv_accuracy" not in history.history
    assert callback.attack.tracing_count(model) == 0


def test_start_epoch_beyond_epochs_warns(data):
    model = compile_model(sequential())
    callback = AdversarialTraining(PGD(eps=0.2, steps=2), start_epoch=3)
    with pytest.warns(UserWarning, match="entirely clean"):
        history = fit(model, data, epochs=2, callbacks=[callback])
    assert "adv_accuracy" not in history.history


@pytest.mark.parametrize(
    "epochs, start, expected",
    [
        (3, 0, r"eps 0.2 is never reached: the last epoch trains at 60%"),
        (5, 0, r"eps 0.2 is reached in the last epoch only"),
        (6, 2, r"eps 0.2 is never reached: the last epoch trains at 80%"),
    ],
)
def test_unfinished_eps_warmup_warns_at_train_begin(
    data, epochs, start, expected
):
    # Warm-up over 5 epochs: eps * 1/5, 2/5, ... from start_epoch.
    callback = AdversarialTraining(
        PGD(eps=0.2, steps=1), start_epoch=start, eps_warmup_epochs=5
    )

    warned = []

    class FirstEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                warned.append(len(record))

    model = compile_model(sequential())
    with pytest.warns(UserWarning, match=expected) as record:
        fit(model, data, epochs=epochs, callbacks=[callback, FirstEpoch()])
    assert warned == [1]  # at train begin, before the first epoch
    assert f"fit(epochs={epochs})" in str(record[0].message)
    assert "will not be robust at eps 0.2" in str(record[0].message)


def test_finished_eps_warmup_does_not_warn(data):
    import warnings

    callback = AdversarialTraining(PGD(eps=0.2, steps=1), eps_warmup_epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(compile_model(sequential()), data, epochs=2, callbacks=[callback])


def test_targeted_attack_is_refused():
    with pytest.raises(ValueError, match="untargeted"):
        AdversarialTraining(PGD(eps=0.3, targeted=True))


@pytest.mark.parametrize("scale", [255.0, None])
def test_inputs_outside_value_range_fail_the_step(data, scale):
    x, y = data
    model = compile_model(sequential())
    callback = AdversarialTraining(PGD(eps=0.3, steps=2))
    if scale is None:  # uint8 images
        bad = (x * 255).astype("uint8")
        with pytest.raises(TypeError, match="floating-point"):
            model.fit(bad, y, epochs=1, verbose=0, callbacks=[callback])
    else:
        with pytest.raises(Exception, match="value_range"):
            model.fit(x * scale, y, epochs=1, verbose=0, callbacks=[callback])
    assert not is_wrapped(model)


# ------------------------------------------------------------ FGSM-RS
def test_fgsm_rs_uses_random_start_and_125_eps():
    callback = AdversarialTraining(PGD(eps=0.1), "fgsm-rs")
    attack = callback.objective.train_attack
    assert isinstance(attack, FGSM)
    assert attack.random_start
    assert callback.objective.step_factor == pytest.approx(1.25)
    assert float(attack.eps) == pytest.approx(0.1)


def test_training_mode_attack_flag():
    # The step runs the user's attack itself (no copy), in the mode the
    # objective asks for; the attack is not modified.
    attack = PGD(eps=0.1, training=True)
    model = sequential()
    objective = AdversarialTraining(attack).objective
    assert objective.train_attack is attack
    assert objective.model_logits(model).training is False
    objective = AdversarialTraining(attack, training_mode_attack=True).objective
    assert objective.model_logits(model).training is True
    assert attack.training is True


# ------------------------------------------------------------------ errors
def test_errors(data):
    with pytest.raises(TypeError, match="attack"):
        AdversarialTraining("pgd")
    with pytest.raises(ValueError, match="objective"):
        AdversarialTraining(PGD(), objective="mart")
    with pytest.raises(ValueError, match="adv_weight"):
        AdversarialTraining(PGD(), adv_weight=1.5)
    with pytest.raises(ValueError, match="start_epoch"):
        AdversarialTraining(PGD(), start_epoch=-1)
    with pytest.raises(TypeError, match="OverfittingGuard"):
        AdversarialTraining(PGD(), guard_data=data)
    with pytest.raises(TypeError, match="beta"):
        AdversarialTraining(PGD(), objective="adversarial", beta=2.0)

    callback = AdversarialTraining(PGD())
    callback.set_model(sequential())
    with pytest.raises(ValueError, match="compiled"):
        callback.on_train_begin()

    inputs = keras.Input((FEATURES,))
    two = keras.Model(
        inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(2)(inputs)]
    )
    two.compile("sgd", ["mse", "mse"])
    x, y = data
    with pytest.raises(ValueError, match="single output"):
        two.fit(
            x,
            [y, y],
            verbose=0,
            callbacks=[AdversarialTraining(PGD(eps=0.1, steps=1))],
        )
    assert not is_wrapped(two)

    model = compile_model(sequential())
    with pytest.raises(ValueError, match="needs labels"):
        model.fit(
            x,
            verbose=0,
            callbacks=[AdversarialTraining(PGD(eps=0.1, steps=1))],
        )
    assert not is_wrapped(model)


def test_config_round_trip():
    callback = AdversarialTraining(
        PGD(eps=0.25, steps=4),
        objective="trades",
        beta=3.0,
        start_epoch=1,
        eps_warmup_epochs=2,
    )
    restored = assert_config_round_trip(callback)
    assert isinstance(restored.attack, PGD)
    assert restored.attack.steps == 4
    assert keras_adv.callbacks.AdversarialTraining is AdversarialTraining


def test_vat_without_labels(data):
    x, _ = data
    model = sequential()
    # Keras cannot build compiled metrics without labels: loss only.
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(
        x,
        epochs=1,
        verbose=0,
        callbacks=[AdversarialTraining(PGD(eps=0.5), "vat", alpha=10.0)],
    )
    # Nothing labelled to measure.
    assert "adv_loss" not in history.history
    assert "adv_accuracy" not in history.history
    assert any(
        not np.allclose(a, b) for a, b in zip(before, model.get_weights())
    )


@pytest.mark.parametrize("final_softmax", [False, True])
def test_compiled_loss_contradicting_outputs_is_refused(data, final_softmax):
    layers = [keras.Input((FEATURES,)), keras.layers.Dense(CLASSES)]
    if final_softmax:
        layers.append(keras.layers.Softmax())
    model = keras.Sequential(layers)
    # Logits with a probability loss, or probabilities with a logits loss.
    model.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=final_softmax),
    )
    with pytest.raises(ValueError, match="compiled with"):
        fit(model, data, callbacks=[AdversarialTraining(PGD(eps=0.1, steps=1))])
    base = keras.Sequential(layers)
    adv = keras_adv.models.AdversarialModel(base, PGD(eps=0.1, steps=1))
    adv.compile(
        "sgd",
        keras.losses.SparseCategoricalCrossentropy(from_logits=final_softmax),
    )
    with pytest.raises(ValueError, match="compiled with"):
        fit(adv, data)


def test_nan_training_inputs_fail_the_step(data):
    x, y = data
    bad = x.copy()
    bad[3, 0] = np.nan
    model = compile_model(sequential())
    with pytest.raises(Exception, match="NaN"):
        fit(model, (bad, y), callbacks=[AdversarialTraining(PGD(eps=0.1))])
    assert not is_wrapped(model)
