"""Tests of AdvGAN: the loss terms in closed form, the frozen target, the
optimal attack of a linear model, targets, saving and the black box."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from _advgan_models import EPS
from _advgan_models import FEATURES
from _advgan_models import W
from _advgan_models import dense_discriminator
from _advgan_models import dense_generator
from _advgan_models import linear_target
from _advgan_models import points

import keras_adv
from keras_adv.attacks import BlackBox
from keras_adv.losses import cw_loss
from keras_adv.models import AdvGAN
from keras_adv.models import Distillation
from keras_adv.testing import linear_classifier


def make(
    target=None,
    generator=None,
    lr=1e-2,
    cls=AdvGAN,
    run_eagerly=False,
    **kwargs,
):
    gan = cls(
        generator or dense_generator(),
        dense_discriminator(),
        target or linear_target(),
        eps=EPS,
        seed=0,
        **kwargs,
    )
    gan.compile(
        d_optimizer=keras.optimizers.Adam(lr),
        g_optimizer=keras.optimizers.Adam(lr),
        run_eagerly=run_eagerly,
    )
    return gan


def test_terms_in_closed_form_for_a_zero_generator():
    x, y = points(32)
    target = linear_target()
    gan = make(
        target,
        dense_generator(zero=True),
        alpha=2.0,
        beta=3.0,
        c=0.0,
        kappa=0.0,
    )
    logs = gan.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    logits = np.asarray(target(x))
    d_real = np.asarray(gan.discriminator(x)).reshape(-1)
    # x_adv = x: the GAN terms are LSGAN's on D(x) for both batches.
    g_gan = 0.5 * np.mean((d_real - 1.0) ** 2)
    d_loss = 0.5 * np.mean((d_real - 1.0) ** 2) + 0.5 * np.mean(d_real**2)
    g_adv = float(np.mean(cw_loss(y, logits)))
    assert logs["perturbation_norm"] == pytest.approx(0.0, abs=1e-7)
    assert logs["g_hinge"] == pytest.approx(0.0, abs=1e-7)
    assert logs["success_rate"] == pytest.approx(
        np.mean(logits.argmax(-1) != y)
    )
    assert logs["g_gan"] == pytest.approx(g_gan, rel=1e-5)
    assert logs["d_loss"] == pytest.approx(d_loss, rel=1e-5)
    assert logs["g_adv"] == pytest.approx(g_adv, rel=1e-5)
    assert logs["g_loss"] == pytest.approx(g_adv + 2.0 * g_gan, rel=1e-5)


def test_total_is_the_weighted_sum_and_every_term_is_logged():
    x, y = points(64)
    gan = make(alpha=0.5, beta=2.0, c=0.1)
    history = gan.fit(x, y, batch_size=64, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert sorted(logs) == sorted(keras_adv.models._advgan.TRACKERS)
    expected = logs["g_adv"] + 0.5 * logs["g_gan"] + 2.0 * logs["g_hinge"]
    assert logs["g_loss"] == pytest.approx(expected, rel=1e-5)
    assert 0.0 < logs["perturbation_norm"] <= EPS * 2.0 + 1e-6


def test_learns_the_optimal_attack_of_a_linear_model():
    x, y = points(512)
    target = linear_target()
    gan = make(target, alpha=0.0, kappa=0.2)
    gan.fit(x, y, batch_size=64, epochs=30, shuffle=False, verbose=0)
    x_new, y_new = points(256, seed=1)
    x_adv = gan.generate(x_new)
    assert np.abs(x_adv - x_new).max() <= EPS + 1e-6
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    success = np.mean(np.asarray(target(x_adv)).argmax(-1) != y_new)
    assert success >= 0.95
    # The optimum moves every coordinate against the true class.
    sign = np.where(y_new == 1, -1.0, 1.0)[:, None] * np.sign(W)
    agree = np.mean(np.sign(x_adv - x_new) == sign)
    assert agree >= 0.9


def _bn_dropout_target():
    model = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.9, seed=0),
            keras.layers.Dense(2),
        ]
    )
    # Non-trivial moving statistics, so that training mode would differ.
    bn = model.layers[1]
    bn.moving_mean.assign(np.full(8, 0.3, "float32"))
    bn.moving_variance.assign(np.full(8, 2.0, "float32"))
    return model


def test_target_is_frozen_and_called_in_inference_mode():
    x, y = points(64)
    target = _bn_dropout_target()
    before = [w.copy() for w in target.get_weights()]
    # Learning rate 0: the networks do not move, so the training step's
    # terms must equal the (inference-mode) evaluation's exactly unless
    # the target ran with dropout or batch statistics.
    gan = make(target, lr=0.0)
    history = gan.fit(x, y, batch_size=64, epochs=1, verbose=0)
    logs = gan.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert history.history["g_adv"][-1] == pytest.approx(
        logs["g_adv"], rel=1e-5
    )
    gan = make(target, lr=1e-1)
    gan.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for old, new in zip(before, target.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert target.trainable  # the user's model is not modified


def test_one_hot_labels_equal_class_ids():
    x, y = points(32)
    gan = make()
    ids = gan.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    one_hot = gan.evaluate(
        x, np.eye(2)[y], batch_size=32, verbose=0, return_dict=True
    )
    assert one_hot["g_adv"] == pytest.approx(ids["g_adv"], rel=1e-6)


def test_untargeted_labels_default_to_the_target_predictions():
    x, _ = points(32)
    target = linear_target()
    gan = make(target, dense_generator(zero=True), kappa=0.0)
    predicted = np.asarray(target(x)).argmax(-1)
    logs = gan.evaluate(x, batch_size=32, verbose=0, return_dict=True)
    assert logs["success_rate"] == 0.0
    assert logs["g_adv"] == pytest.approx(
        float(np.mean(cw_loss(predicted, np.asarray(target(x))))), rel=1e-5
    )


def test_random_targets_are_uniform_over_the_other_classes():
    gan = make(
        linear_classifier(np.eye(4, 5)),
        dense_generator(num_classes=5),
        targeted=True,
    )
    labels = np.repeat(np.arange(5), 400)
    targets = np.asarray(gan.sample_targets(labels))
    assert np.all(targets != labels)
    for label in range(5):
        counts = np.bincount(targets[labels == label], minlength=5)
        others = np.delete(counts, label)
        assert others.min() > 60  # 100 expected each


@keras.saving.register_keras_serializable(package="test_advgan")
def next_class(labels):
    return (labels + 1) % 2


def test_target_fn_and_conditioned_generator(tmp_path):
    x, y = points(64)
    gan = make(
        generator=dense_generator(num_classes=2),
        targeted=True,
        target_fn=next_class,
        alpha=0.0,
    )
    np.testing.assert_array_equal(gan.sample_targets(y), (y + 1) % 2)
    history = gan.fit(x, y, batch_size=64, epochs=20, verbose=0)
    assert history.history["success_rate"][-1] >= 0.9
    path = str(tmp_path / "t.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.target_fn is next_class
    targets = (y + 1) % 2
    np.testing.assert_allclose(
        loaded.generate(x, targets), gan.generate(x, targets), atol=1e-7
    )


def test_keras_round_trip_of_the_whole_model_and_the_generator(tmp_path):
    x, y = points(64)
    gan = make(alpha=0.3, beta=0.7, c=0.2, kappa=0.1)
    gan.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "advgan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is AdvGAN
    for key in ("alpha", "beta", "c", "kappa", "eps", "norm", "targeted"):
        assert getattr(loaded, key) == getattr(gan, key)
    np.testing.assert_allclose(loaded.generate(x), gan.generate(x), atol=1e-7)
    np.testing.assert_allclose(
        loaded.target_model(x), gan.target_model(x), atol=1e-7
    )
    # Training resumes from the saved optimizer state.
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)
    # The generator alone is a plain Keras model.
    gen_path = str(tmp_path / "generator.keras")
    gan.generator.save(gen_path)
    generator = keras.saving.load_model(gen_path, safe_mode=True)
    np.testing.assert_allclose(generator(x), gan.generator(x), atol=1e-7)
    assert json.loads(json.dumps(gan.get_config()))["alpha"] == 0.3


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"target_model": "f"}, TypeError, "target_model"),
        ({"alpha": -1.0}, ValueError, "alpha"),
        ({"c": float("inf")}, ValueError, "c"),
        ({"eps": -0.1}, ValueError, "eps"),
        ({"norm": "l1"}, ValueError, "norm"),
        ({"targeted": True}, ValueError, "generator"),
        ({"target_fn": next_class}, ValueError, "target_fn"),
        ({"distillation": 3}, TypeError, "distillation"),
        # The forms before Distillation (deprecated) are checked as before.
        ({"black_box": lambda x: x}, TypeError, "black_box"),
        ({"distillation": "online"}, ValueError, "distillation"),
    ],
)
def test_invalid_arguments(kwargs, error, name):
    args = {
        "generator": dense_generator(),
        "discriminator": dense_discriminator(),
        "target_model": linear_target(),
        **kwargs,
    }
    with pytest.raises(error, match=f"`{name}`"):
        AdvGAN(**args)


def four_class_gan(**kwargs):
    return make(linear_target(4), **kwargs)


@pytest.mark.parametrize(
    "data, name",
    [
        ((points(16)[0] * 255, points(16)[1]), "`x`"),
        ((points(16)[0], np.full(16, 9)), r"y with labels in \[9, 9\]"),
        ((points(16)[0], np.full(16, -1)), r"\[0, 4\)"),
        ((points(16)[0], np.full(16, 1.5)), "`y`"),
        ((points(16)[0], np.eye(3)[np.zeros(16, int)]), "3 classes"),
    ],
)
def test_fit_and_evaluate_refuse_arrays_outside_the_target(data, name):
    gan = four_class_gan()
    with pytest.raises(ValueError, match=name):
        gan.fit(*data, verbose=0)
    with pytest.raises(ValueError, match=name):
        gan.evaluate(*data, verbose=0)
    with pytest.raises(ValueError, match=name):
        gan.fit(*points(16), validation_data=data, verbose=0)
    assert int(gan.g_optimizer.iterations) == 0  # nothing trained


@pytest.mark.parametrize(
    "scale, label, name",
    [(255.0, 0, "argument `x`"), (1.0, 9, "argument `y`")],
)
def test_pipeline_batches_are_checked_in_the_graph(scale, label, name):
    x, _ = points(16)
    data = tf.data.Dataset.from_tensor_slices(
        (x * scale, np.full(16, label))
    ).batch(8)
    gan = four_class_gan()
    with pytest.raises(tf.errors.InvalidArgumentError, match=name):
        gan.fit(data, shuffle=False, verbose=0)
    with pytest.raises(tf.errors.InvalidArgumentError, match=name):
        gan.evaluate(data, verbose=0)


@keras.saving.register_keras_serializable(package="test_advgan")
def past_the_classes(labels):
    return labels + 4


def test_targets_are_classes_of_the_target_model():
    x, y = points(4)
    gan = four_class_gan(
        generator=dense_generator(num_classes=4), targeted=True
    )
    with pytest.raises(ValueError, match="targets"):
        gan.generate(x, targets=[7, -1, 0, 1])
    with pytest.raises(ValueError, match="targets"):
        gan.generate(x, targets=[0, 1])  # one per input
    # Called directly, the graph checks them (no all-zero condition).
    with pytest.raises(tf.errors.InvalidArgumentError, match="`targets`"):
        gan([x, np.array([7, -1, 0, 1])])
    assert gan.generate(x, targets=[3, 2, 0, 1]).shape == x.shape
    drifting = four_class_gan(
        generator=dense_generator(num_classes=4),
        targeted=True,
        target_fn=past_the_classes,
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="`targets`"):
        drifting.fit(x, y, verbose=0)


def test_fit_before_compile_raises():
    gan = AdvGAN(dense_generator(), dense_discriminator(), linear_target())
    with pytest.raises((RuntimeError, ValueError), match="compile"):
        gan.fit(*points(8), verbose=0)


# ------------------------------------------------------------- black box
class ArgmaxOnly(keras.Model):
    """A classifier revealing one-hot labels only (argmax: no gradient)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def call(self, x, training=False):
        labels = keras.ops.argmax(self.inner(x), axis=-1)
        return keras.ops.one_hot(labels, 2)


def surrogate(seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(16, activation="relu", kernel_initializer=init),
            keras.layers.Dense(2, kernel_initializer=init),
        ]
    )


def test_black_box_answers_carry_no_gradient_and_are_counted():
    import tensorflow as tf

    box = BlackBox(ArgmaxOnly(linear_target()), 2, output="labels")
    x = tf.constant(points(5)[0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        answers = box(x)
    assert tape.gradient(answers, x) is None
    assert box.query_count == 5
    np.testing.assert_array_equal(np.asarray(answers).argmax(-1), points(5)[1])
    # A numpy callable (labels as ids) through tf.numpy_function.
    numpy_box = BlackBox(lambda a: (a - 0.5) @ W > 0, 2, output="labels")
    np.testing.assert_array_equal(numpy_box.labels(points(7)[0]), points(7)[1])
    assert numpy_box.query_count == 7


def black_box_advgan(mode, optimizer=None, box=None):
    box = box or BlackBox(ArgmaxOnly(linear_target()), 2, output="labels")
    gan = AdvGAN(
        dense_generator(),
        dense_discriminator(),
        surrogate(),
        eps=EPS,
        distillation=Distillation(box, mode=mode, optimizer=optimizer),
        seed=0,
    )
    gan.compile()
    return gan


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_distillation_queries_are_counted_exactly(mode):
    x, y = points(128)
    gan = black_box_advgan(mode, keras.optimizers.Adam(1e-2))
    box, student = gan.black_box, gan.target_model
    result = gan.distill(x, epochs=30, batch_size=32)
    assert result["queries"] == 128 == box.query_count
    assert result["agreement"] >= 0.9
    before = [w.copy() for w in student.get_weights()]
    history = gan.fit(x, y, batch_size=32, epochs=2, verbose=0)
    spent = 0 if mode == "static" else 2 * 2 * 128
    assert box.query_count == 128 + spent
    assert history.history["queries"][-1] == 128 + spent
    changed = any(
        not np.array_equal(a, b) for a, b in zip(before, student.get_weights())
    )
    assert changed is (mode == "dynamic")
    assert ("s_loss" in history.history) is (mode == "dynamic")


def test_a_logits_black_box_is_distilled_from_its_probabilities():
    # Its logits read as probabilities gave a negative "cross-entropy".
    x, _ = points(128)
    box = BlackBox(linear_target(), 2)
    gan = black_box_advgan("static", keras.optimizers.Adam(1e-2), box)
    result = gan.distill(x, epochs=30, batch_size=32)
    assert result["s_loss"] > 0.0
    assert result["agreement"] >= 0.9


def test_deprecated_black_box_arguments_build_a_distillation():
    x, y = points(64)
    box = BlackBox(ArgmaxOnly(linear_target()), 2, output="labels")
    with pytest.warns(DeprecationWarning, match="Distillation"):
        old = AdvGAN(
            dense_generator(),
            dense_discriminator(),
            surrogate(),
            eps=EPS,
            black_box=box,
            seed=0,
        )
    assert old.distillation.black_box is box
    assert old.distillation.mode == "dynamic"  # the default, as before
    with pytest.warns(DeprecationWarning, match="optimizer"):
        old.compile(s_optimizer=keras.optimizers.SGD(0.5))
    assert isinstance(old.s_optimizer, keras.optimizers.SGD)
    assert old.s_optimizer is old.distillation.optimizer
    # The same updates as the Distillation form.
    new = black_box_advgan("dynamic", keras.optimizers.SGD(0.5))
    for gan in (old, new):
        gan.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="`black_box`"):
        AdvGAN(
            dense_generator(),
            dense_discriminator(),
            surrogate(),
            distillation=Distillation(box),
            black_box=box,
        )


def test_save_and_load_with_a_distillation(tmp_path):
    x, y = points(64)
    gan = black_box_advgan("dynamic", keras.optimizers.Adam(1e-2))
    gan.distill(x, epochs=2, batch_size=32)
    gan.fit(x, y, batch_size=32, epochs=1, verbose=0)
    path = str(tmp_path / "black_box.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded.distillation, Distillation)
    assert loaded.distillation.mode == "dynamic"
    assert loaded.black_box is None  # not configuration
    assert loaded.s_optimizer.get_config() == gan.s_optimizer.get_config()
    # The surrogate's optimizer state is saved with the model.
    for a, b in zip(loaded.s_optimizer.variables, gan.s_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(loaded.generate(x), gan.generate(x), atol=1e-7)
    # Re-attached, the black box is queried by the next fit.
    box = BlackBox(ArgmaxOnly(linear_target()), 2, output="labels")
    loaded.distillation.black_box = box
    history = loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert box.query_count == 2 * 64 and "s_loss" in history.history


def test_configs_saved_before_distillation_still_load():
    # Before 0.2 the config held the mode alone, the compile config the
    # surrogate's optimizer.
    gan = black_box_advgan("static")
    config = gan.get_config()
    config["distillation"] = "static"
    loaded = AdvGAN.from_config(config)
    assert loaded.distillation.mode == "static"
    assert loaded.black_box is None
    compile_config = gan.get_compile_config()
    compile_config["s_optimizer"] = keras.saving.serialize_keras_object(
        keras.optimizers.SGD(0.25)
    )
    loaded.compile_from_config(compile_config)
    assert isinstance(loaded.s_optimizer, keras.optimizers.SGD)
    assert float(loaded.s_optimizer.learning_rate) == 0.25


def test_distill_without_a_black_box_raises():
    gan = make()
    with pytest.raises(ValueError, match="black box"):
        gan.distill(points(8)[0])


# ------------------------------------------- training against a generator
def test_adversarial_training_against_a_jointly_updated_generator():
    x, y = points(128)
    classifier = linear_target()
    classifier.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    gan = make(classifier)
    before = [w.copy() for w in gan.generator.get_weights()]
    attack = keras_adv.attacks.GeneratorAttack(gan)
    update = keras_adv.callbacks.AdvGANUpdate(gan, (x, y), batch_size=32)
    training = keras_adv.callbacks.AdversarialTraining(attack)
    history = classifier.fit(
        x, y, epochs=2, batch_size=32, verbose=0, callbacks=[update, training]
    )
    assert len(history.history["advgan_success_rate"]) == 2
    assert "adv_accuracy" in history.history
    assert training.objective.train_attack.generator is gan.generator
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(before, gan.generator.get_weights())
    )
    assert update.get_config() == {"epochs": 1, "freq": 1, "batch_size": 32}
    other = linear_target()
    other.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="`advgan`"):
        other.fit(x, y, epochs=1, verbose=0, callbacks=[update])


class HookByHook(AdvGAN):
    """Its discriminator updates compute their own `G(x)` each."""

    def discriminator_step(self, x, y=None, x_adv=None):
        return super().discriminator_step(x, y)


class OwnPasses(HookByHook):
    """Its generator update too computes its own `G(x)`, on its own tape."""

    def generator_step(self, x, y=None, delta=None, tape=None):
        return super().generator_step(x, y)


class CountingPerturbation(AdvGAN):
    """Counts the generator's forward passes (eager `fit`)."""

    calls = 0

    def perturbation(self, x, targets=None, training=False):
        CountingPerturbation.calls += 1
        return super().perturbation(x, targets, training)


def _built(cls, targeted, d_steps, **kwargs):
    generator = dense_generator(num_classes=2 if targeted else None)
    return make(
        generator=generator,
        cls=cls,
        targeted=targeted,
        d_steps=d_steps,
        **kwargs,
    )


@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("d_steps", [1, 2])
@pytest.mark.parametrize("cls", [HookByHook, OwnPasses])
def test_one_generator_pass_gives_the_updates_of_the_hooks(
    targeted, d_steps, cls
):
    # The training step computes G(x) once and passes it to the hooks;
    # hooks that ignore it compute G(x) each. Same updates, so the same
    # weights and logs.
    x, y = points(96)
    fused = _built(AdvGAN, targeted, d_steps)
    hooks = _built(cls, targeted, d_steps)
    logs = [
        gan.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        for gan in (fused, hooks)
    ]
    for net in ("generator", "discriminator"):
        for a, b in zip(
            getattr(fused, net).get_weights(), getattr(hooks, net).get_weights()
        ):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for key, values in logs[0].history.items():
        np.testing.assert_allclose(values, logs[1].history[key], rtol=1e-5)


def test_generator_step_takes_delta_and_its_tape_together():
    gan = make()
    x, y = points(8)
    delta = gan.perturbation(x, training=True)
    with pytest.raises(ValueError, match="`tape`"):
        gan.generator_step(x, y, delta=delta)


@pytest.mark.parametrize(
    "cls, passes", [(AdvGAN, 1), (HookByHook, 3), (OwnPasses, 4)]
)
def test_generator_forward_passes_per_step(cls, passes):
    # d_steps=2: one pass for all updates, plus one per hook call that
    # computes its own G(x) (2 discriminator updates, 1 generator update).
    counting = type("Counting", (CountingPerturbation, cls), {})
    gan = _built(counting, targeted=False, d_steps=2, run_eagerly=True)
    CountingPerturbation.calls = 0
    x, y = points(64)
    gan.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert CountingPerturbation.calls == 4 * passes
