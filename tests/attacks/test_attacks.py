"""The attack checklist, for every attack and norm.

eps=0 is the identity; results stay inside the ball and the value range;
invalid arguments raise; untargeted and targeted attacks succeed on tiny
hand-weighted models; restarts never weaken PGD; same seed, same result;
no retrace for new data or a new eps; serialisation round trips.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv import attacks
from keras_adv.testing import assert_config_round_trip
from keras_adv.testing import linear_classifier
from keras_adv.testing import small_cnn

ATTACKS = [attacks.FGSM, attacks.PGD, attacks.BIM, attacks.MIM]
EPS = {"linf": 0.1, "l2": 0.4}
CASES = [(cls, norm) for cls in ATTACKS for norm in ("linf", "l2")]
IDS = [f"{cls.__name__}-{norm}" for cls, norm in CASES]


def _np(t):
    return np.asarray(t)


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_eps_zero_is_identity(cls, norm, hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    x_adv = cls(eps=0.0, norm=norm, seed=0)(model, x, y)
    np.testing.assert_array_equal(_np(x_adv), x)


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_inside_ball_and_value_range(cls, norm):
    rng = np.random.default_rng(1)
    model = small_cnn(input_shape=(12, 12, 1), num_classes=3, width=4)
    x = rng.uniform(0.0, 1.0, size=(16, 12, 12, 1)).astype("float32")
    eps = 0.3 if norm == "linf" else 2.0
    attack = cls(eps=eps, norm=norm, seed=0)
    x_adv = attack(model, x)
    dist = _np(attack.threat_model.distance(x, x_adv))
    assert dist.max() <= eps + 1e-6
    assert dist.max() > 0.5 * eps  # the attack moved
    assert _np(x_adv).min() >= 0.0 and _np(x_adv).max() <= 1.0
    assert x_adv.shape == x.shape and x_adv.dtype == tf.float32


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_untargeted_success(cls, norm, hadamard_problem):
    model, w, x, y, _ = hadamard_problem
    x_adv = _np(cls(eps=EPS[norm], norm=norm, seed=0)(model, x, y))
    success = np.mean(np.argmax(x_adv @ w, axis=1) != y)
    assert success > 0.9


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_targeted_success(cls, norm, hadamard_problem):
    model, w, x, _, targets = hadamard_problem
    attack = cls(eps=EPS[norm], norm=norm, targeted=True, seed=0)
    x_adv = _np(attack(model, x, targets))
    success = np.mean(np.argmax(x_adv @ w, axis=1) == targets)
    assert success > 0.7


@pytest.mark.parametrize("cls,norm", CASES, ids=IDS)
def test_same_seed_same_result(cls, norm):
    rng = np.random.default_rng(2)
    model = small_cnn(input_shape=(12, 12, 1), num_classes=3, width=4)
    x = rng.uniform(0.0, 1.0, size=(8, 12, 12, 1)).astype("float32")
    eps = EPS[norm]
    a = _np(cls(eps=eps, norm=norm, seed=5)(model, x))
    b = _np(cls(eps=eps, norm=norm, seed=5)(model, x))
    np.testing.assert_array_equal(a, b)


def test_different_seeds_differ_with_random_start():
    model = linear_classifier(np.eye(4, 3, dtype="float32"))
    x = np.full((4, 4), 0.5, "float32")
    a = _np(attacks.PGD(eps=0.1, steps=1, seed=1)(model, x))
    b = _np(attacks.PGD(eps=0.1, steps=1, seed=2)(model, x))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_restarts_never_weaker(norm):
    rng = np.random.default_rng(3)
    model = small_cnn(input_shape=(12, 12, 1), num_classes=5, width=4, seed=3)
    x = rng.uniform(0.0, 1.0, size=(64, 12, 12, 1)).astype("float32")
    y = np.argmax(_np(model(x)), axis=1)
    eps = 0.02 if norm == "linf" else 0.1  # small: some samples resist
    kwargs = {"eps": eps, "norm": norm, "steps": 3, "seed": 11}
    one = _np(attacks.PGD(restarts=1, **kwargs)(model, x, y))
    four = _np(attacks.PGD(restarts=4, **kwargs)(model, x, y))
    fooled_one = np.argmax(_np(model(one)), axis=1) != y
    fooled_four = np.argmax(_np(model(four)), axis=1) != y
    assert 0 < fooled_one.mean() < 1  # the comparison is informative
    assert np.all(fooled_four[fooled_one])  # per sample, never weaker
    ce = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction=None
    )
    loss_one = _np(ce(y, model(one)))
    loss_four = _np(ce(y, model(four)))
    keep = ~fooled_one & ~fooled_four
    assert np.all(loss_four[keep] >= loss_one[keep] - 1e-5)


def test_no_retrace_for_new_data_or_eps(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    eps_var = tf.Variable(0.05)
    attack = attacks.PGD(eps=eps_var, steps=2, seed=0)
    attack(model, x[:32], y[:32])
    attack(model, x[32:64], y[32:64])
    attack(model, x[:32], y[:32], eps=0.2)
    eps_var.assign(0.07)
    attack.eps = eps_var
    out = attack(model, x[:32], y[:32])
    attack.eps = 0.01
    attack(model, x[:32], y[:32])
    assert attack.tracing_count(model) == 1
    assert _np(attack.threat_model.distance(x[:32], out)).max() == (
        pytest.approx(0.07, abs=1e-6)
    )


def test_step_size_change_retraces_once_and_takes_effect(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    attack = attacks.BIM(eps=0.1, steps=1, step_size=0.01)
    small = _np(attack(model, x[:8], y[:8]))
    attack.step_size = 0.02
    large = _np(attack(model, x[:8], y[:8]))
    attack(model, x[8:16], y[8:16])
    assert attack.tracing_count(model) == 2
    np.testing.assert_allclose(np.abs(small - x[:8]).max(), 0.01, atol=1e-6)
    np.testing.assert_allclose(np.abs(large - x[:8]).max(), 0.02, atol=1e-6)


def test_per_sample_eps(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    eps = np.array([0.0, 0.05, 0.1, 0.0], "float32")
    attack = attacks.PGD(eps=0.3, steps=3, seed=0)
    x_adv = attack(model, x[:4], y[:4], eps=eps)
    dist = _np(attack.threat_model.distance(x[:4], x_adv))
    np.testing.assert_array_equal(_np(x_adv)[[0, 3]], x[[0, 3]])
    assert np.all(dist <= eps + 1e-6) and dist[2] > 0.05


def test_output_dtype_follows_input(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    x64 = x[:4].astype("float64")
    x_adv = attacks.FGSM(eps=0.1)(model, x64, y[:4])
    assert x_adv.dtype == tf.float64 and x_adv.shape == x64.shape


def test_labels_default_to_model_predictions(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    with_labels = attacks.BIM(eps=0.1, steps=3)(model, x, y)
    without = attacks.BIM(eps=0.1, steps=3)(model, x)
    np.testing.assert_array_equal(_np(with_labels), _np(without))


def test_one_hot_labels(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    sparse = attacks.FGSM(eps=0.1)(model, x, y)
    one_hot = attacks.FGSM(eps=0.1)(model, x, np.eye(4)[y])
    column = attacks.FGSM(eps=0.1)(model, x, y[:, None])
    np.testing.assert_array_equal(_np(sparse), _np(one_hot))
    np.testing.assert_array_equal(_np(sparse), _np(column))


def test_margin_loss_attacks_succeed(hadamard_problem):
    model, w, x, y, targets = hadamard_problem
    x_adv = _np(attacks.PGD(eps=0.1, loss="margin", seed=0)(model, x, y))
    assert np.mean(np.argmax(x_adv @ w, axis=1) != y) > 0.9
    attack = attacks.PGD(eps=0.1, loss="margin", targeted=True, seed=0)
    x_t = _np(attack(model, x, targets))
    assert np.mean(np.argmax(x_t @ w, axis=1) == targets) > 0.7


# ------------------------------------------------------------ model kinds


class SubclassedNet(keras.Model):
    def __init__(self, softmax=False):
        super().__init__()
        self.dense = keras.layers.Dense(4)
        self.softmax = softmax

    def call(self, x):
        z = self.dense(x)
        return keras.ops.softmax(z) if self.softmax else z


def _model_variants(w):
    sequential = linear_classifier(w)
    inputs = keras.Input((16,))
    functional = keras.Model(inputs, keras.layers.Dense(4)(inputs))
    functional.set_weights(sequential.get_weights())
    sub = SubclassedNet()
    sub(np.zeros((1, 16), "float32"))
    sub.set_weights(sequential.get_weights())
    sub_softmax = SubclassedNet(softmax=True)
    sub_softmax(np.zeros((1, 16), "float32"))
    sub_softmax.set_weights(sequential.get_weights())
    seq_softmax = linear_classifier(w, softmax=True)
    log_softmax = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(4, activation="log_softmax")]
    )
    log_softmax.set_weights(sequential.get_weights())
    return {
        "sequential_log_softmax": log_softmax,
        "sequential": sequential,
        "functional": functional,
        "subclassed": sub,
        "subclassed_softmax": sub_softmax,
        "sequential_softmax": seq_softmax,
    }


@pytest.mark.parametrize("cls", ATTACKS)
def test_same_result_on_every_model_kind(cls, hadamard_problem):
    # Log-probabilities are logits up to a constant, so an attack on the
    # softmax version of a model follows exactly the same path.
    # Generic weights: the Hadamard prototypes have exactly-zero gradient
    # coordinates, whose sign would be decided by rounding noise.
    _, _, x, y, _ = hadamard_problem
    w = np.random.default_rng(4).normal(size=(16, 4)).astype("float32")
    results = {
        name: _np(cls(eps=0.1, steps=3, seed=0)(model, x[:32], y[:32]))
        if cls is not attacks.FGSM
        else _np(cls(eps=0.1, seed=0)(model, x[:32], y[:32]))
        for name, model in _model_variants(w).items()
    }
    reference = results.pop("sequential")
    for name, value in results.items():
        np.testing.assert_allclose(value, reference, atol=1e-6, err_msg=name)


# ------------------------------------------------------------ bad input


def test_invalid_constructor_arguments():
    cases = [
        (attacks.PGD, {"eps": -0.1}, ValueError, "eps"),
        (attacks.PGD, {"steps": 0}, ValueError, "steps"),
        (attacks.PGD, {"steps": 2.5}, ValueError, "steps"),
        (attacks.PGD, {"step_size": 0.0}, ValueError, "step_size"),
        (attacks.PGD, {"step_size": -1.0}, ValueError, "step_size"),
        (attacks.PGD, {"restarts": 0}, ValueError, "restarts"),
        (attacks.PGD, {"value_range": (1.0, 0.0)}, ValueError, "value_range"),
        (attacks.FGSM, {"norm": "inf"}, ValueError, "norm"),
        (attacks.FGSM, {"norm": np.inf}, ValueError, "norm"),
        (attacks.BIM, {"loss": "hinge"}, ValueError, "loss"),
        (attacks.MIM, {"decay": -1.0}, ValueError, "decay"),
        (attacks.MIM, {"targeted": "yes"}, TypeError, "targeted"),
        (attacks.PGD, {"seed": -3}, ValueError, "seed"),
    ]
    for cls, kwargs, error, name in cases:
        with pytest.raises(error, match=f"`{name}`"):
            cls(**kwargs)


def test_invalid_call_arguments(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    attack = attacks.PGD(eps=0.1, steps=1)
    with pytest.raises(TypeError, match="uint8"):
        attack(model, (x * 255).astype("uint8"), y)
    with pytest.raises(TypeError, match="model"):
        attack(lambda t: t, x, y)
    with pytest.raises(ValueError, match="outside value_range"):
        attack(model, x + 1.0, y)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        attack(model, bad, y)
    with pytest.raises(ValueError, match="batch sizes"):
        attack(model, x, y[:-1])
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 4\)"):
        attack(model, x, y + 4)
    with pytest.raises(ValueError, match=r"Labels must be in \[0, 4\)"):
        attack(model, x, y - 1)
    with pytest.raises(ValueError, match="eps"):
        attack(model, x, y, eps=-0.5)
    with pytest.raises(ValueError, match="eps"):
        attack(model, x, y, eps=np.zeros(3, "float32"))
    with pytest.raises(ValueError, match="target classes"):
        attacks.PGD(eps=0.1, targeted=True)(model, x)


def test_from_logits_contradicting_the_model_raises(hadamard_problem):
    _, w, x, y, _ = hadamard_problem
    variants = _model_variants(w)
    with pytest.raises(ValueError, match="softmax"):
        attacks.FGSM(eps=0.1, from_logits=True)(
            variants["sequential_softmax"], x, y
        )
    with pytest.raises(ValueError, match="probabilities"):
        attacks.FGSM(eps=0.1, from_logits=True)(
            variants["subclassed_softmax"], x, y
        )
    with pytest.raises(ValueError, match="logits"):
        attacks.FGSM(eps=0.1, from_logits=False)(variants["sequential"], x, y)
    with pytest.raises(ValueError, match="not probabilities"):
        attacks.FGSM(eps=0.1, from_logits=False)(variants["subclassed"], x, y)


def test_unsupported_model_outputs():
    x = np.full((2, 3), 0.5, "float32")
    single = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="classes >= 2"):
        attacks.FGSM(eps=0.1)(single, x)
    inputs = keras.Input((3,))
    two_heads = keras.Model(
        inputs, [keras.layers.Dense(2)(inputs), keras.layers.Dense(2)(inputs)]
    )
    with pytest.raises(ValueError, match="one output tensor"):
        attacks.FGSM(eps=0.1)(two_heads, x)


# ------------------------------------------------------------ numerics


def test_mixed_float16_gradients_do_not_underflow():
    # A confident float16 model has tiny loss gradients: 1 - p_y ~ 1e-6
    # underflows in float16 without loss scaling.
    w = np.concatenate(
        [np.full((16, 1), 2.0), np.full((16, 1), -2.0)], axis=1
    ).astype("float32")
    w[::2] *= -0.5
    keras.mixed_precision.set_global_policy("mixed_float16")
    model16 = linear_classifier(w)
    keras.mixed_precision.set_global_policy("float32")
    model32 = linear_classifier(w)
    x = np.full((4, 16), 0.9, "float32")
    x[:, ::2] = 0.1
    y = np.argmax(_np(model32(x)), axis=1)
    a16 = _np(attacks.FGSM(eps=0.1)(model16, x, y))
    a32 = _np(attacks.FGSM(eps=0.1)(model32, x, y))
    assert a16.dtype == np.float32
    np.testing.assert_allclose(a16, a32, atol=1e-6)
    assert np.abs(a16 - x).max() == pytest.approx(0.1, abs=1e-6)


def test_probability_model_does_not_saturate():
    # p_y of this confident softmax model rounds to exactly 1.0 in float32
    # (1 - p_y ~ 2e-16); the attack on log-probabilities still moves.
    w = np.array([[5.0, -5.0]] * 4, "float32")
    model = linear_classifier(w, softmax=True)
    x = np.full((2, 4), 0.9, "float32")
    x_adv = _np(attacks.FGSM(eps=0.1)(model, x, np.array([0, 0])))
    np.testing.assert_allclose(x_adv, 0.8, atol=1e-6)


# ------------------------------------------------------------ saving


@pytest.mark.parametrize("cls", ATTACKS)
def test_config_round_trip(cls):
    attack = cls(eps=0.2, norm="l2", targeted=True, loss="margin", seed=3)
    restored = assert_config_round_trip(attack)
    assert restored.eps == 0.2 and restored.norm == "l2"
    assert restored.targeted and restored.seed == 3


def test_config_round_trip_with_variable_eps():
    attack = attacks.PGD(eps=tf.Variable(0.15), steps=4, restarts=2)
    config = attack.get_config()
    assert config["eps"] == pytest.approx(0.15)
    assert attacks.PGD.from_config(config).restarts == 2


def test_public_names():
    for name in keras_adv.attacks.__all__:
        assert hasattr(keras_adv.attacks, name)
    assert "PGD" in keras_adv.attacks.__all__


# ------------------------------------------------------------ graph use


@pytest.mark.parametrize("cls", [attacks.FGSM, attacks.BIM, attacks.MIM])
def test_jit_compile_matches_default(cls, generic_problem):
    model, _, x, y = generic_problem
    plain = _np(cls(eps=0.1)(model, x, y))
    jitted = _np(cls(eps=0.1, jit_compile=True)(model, x, y))
    np.testing.assert_allclose(jitted, plain, atol=1e-5)


def test_jit_compile_pgd_with_random_start(hadamard_problem):
    # XLA may use another stateless RNG algorithm, so the random start
    # differs from the default graph's; the result keeps its properties.
    model, w, x, y, _ = hadamard_problem
    attack = attacks.PGD(eps=0.1, steps=5, seed=0, jit_compile=True)
    x_adv = _np(attack(model, x, y))
    assert np.abs(x_adv - x).max() <= 0.1 + 1e-6
    assert np.mean(np.argmax(x_adv @ w, axis=1) != y) > 0.9
    np.testing.assert_array_equal(
        x_adv,
        _np(
            attacks.PGD(eps=0.1, steps=5, seed=0, jit_compile=True)(model, x, y)
        ),
    )


def test_perturb_inside_user_graph(hadamard_problem):
    model, w, x, y, _ = hadamard_problem
    attack = attacks.PGD(eps=0.1, steps=3, seed=0)
    eps = tf.Variable(0.1)

    @tf.function
    def step(x, y):
        seed = tf.constant([1, 2], tf.int32)
        return attack.perturb(model, x, y, eps=eps, seed=seed)

    out = _np(step(x, y))
    assert np.abs(out - x).max() <= 0.1 + 1e-6
    assert np.mean(np.argmax(out @ w, axis=1) != y) > 0.9
    np.testing.assert_array_equal(out, _np(step(x, y)))  # stateless seed
    eps.assign(0.0)
    np.testing.assert_array_equal(_np(step(x, y)), x)
    assert step.experimental_get_tracing_count() == 1


def _restart_starts(attack, model, x, y, seed):
    """x_adv of each restart alone (steps=1 keeps the start visible)."""
    if seed is None:
        return _np(attack(model, x, y))
    return _np(attack.perturb(model, x, y, seed=tf.constant(seed)))


@pytest.mark.parametrize("path", ["seed_generator", "stateless"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_restarts_draw_distinct_starts_on_every_seeding_path(
    path, norm, hadamard_problem
):
    # A model whose loss is flat in x: no restart can beat another, so
    # x_adv is the first start unless the starts themselves differ; use
    # a random start and zero steps' worth of progress (step_size tiny).
    model, _, x, y, _ = hadamard_problem
    x, y = x[:32], y[:32]
    eps = EPS[norm]
    seed = None if path == "seed_generator" else [1, 2]
    kwargs = dict(eps=eps, norm=norm, steps=1, step_size=1e-6, seed=0)
    one = _restart_starts(attacks.PGD(restarts=1, **kwargs), model, x, y, seed)
    four = _restart_starts(attacks.PGD(restarts=4, **kwargs), model, x, y, seed)
    # Restart 0 is the single run; the others are new draws, so with four
    # restarts most samples keep a different (stronger) start.
    changed = np.any(np.abs(four - one) > 1e-6, axis=1).mean()
    assert changed > 0.5
    attack = attacks.PGD(restarts=4, **kwargs)
    loss_one = _np(attack.loss_fn(y, model(one)))
    loss_four = _np(attack.loss_fn(y, model(four)))
    assert np.all(loss_four >= loss_one - 1e-6)


def test_stateless_seed_is_reproducible_and_seed_sensitive(hadamard_problem):
    model, _, x, y, _ = hadamard_problem
    attack = attacks.PGD(eps=0.1, steps=2, restarts=2, seed=0)
    a = _np(attack.perturb(model, x[:16], y[:16], seed=tf.constant([3, 4])))
    b = _np(attack.perturb(model, x[:16], y[:16], seed=tf.constant([3, 4])))
    c = _np(attack.perturb(model, x[:16], y[:16], seed=tf.constant([3, 5])))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0
