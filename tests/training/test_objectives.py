"""The adversarial-training objectives, checked against closed forms.

On a linear model `z = x W + b` with plain SGD, one `fit` step moves the
weights by `-lr * grad`, and every loss here has a gradient in closed form
(in float64 numpy below). The objectives' `x_adv` is read back from the
step itself: `Recording*` objectives store what `adversarial_examples`
returned into a variable, so the expected update uses the very `x_adv` the
step trained on, whatever the seed derivation.

* TRADES: the step descends `mean CE(f(x), y) + beta * mean KL(f(x) ||
  f(x_adv))`, gradients through both sides of the KL.
* VAT: unlabelled samples (label -1) get no supervised gradient, only the
  LDS term `alpha * mean KL(stop(f(x)) || f(x_adv))`.
* mixed_float16 adversarial training stays close to float32.
* Each objective's degenerate setting (eps 0, weight 0) is a plain fit,
  with the callback and with AdversarialModel.
"""

import keras
import numpy as np
import pytest

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.models import AdversarialModel
from keras_adv.testing import linear_classifier
from keras_adv.training import FGSMRS
from keras_adv.training import TRADES
from keras_adv.training import VAT
from keras_adv.training import Madry

FEATURES = 5
CLASSES = 3
BATCH = 16
LR = 0.5


# ------------------------------------------------------------- helpers
def linear_problem(seed=0):
    """Generic weights, inputs in [0.2, 0.8], random labels."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(FEATURES, CLASSES)).astype("float32")
    b = rng.normal(scale=0.1, size=CLASSES).astype("float32")
    x = rng.uniform(0.2, 0.8, size=(BATCH, FEATURES)).astype("float32")
    y = rng.integers(0, CLASSES, size=BATCH).astype("int64")
    return w, b, x, y


def compile_sgd(model, lr=LR, from_logits=True):
    model.compile(
        keras.optimizers.SGD(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
    )
    return model


def one_step(engine, objective, w, b, x, y, softmax=False, weights=None):
    """Weights `(W, b)` after one full-batch SGD step with `objective`."""
    model = linear_classifier(w, b, softmax=softmax)
    if engine == "callback":
        compile_sgd(model, from_logits=not softmax)
        callbacks = [AdversarialTraining(objective=objective)]
        trained = model
    else:
        trained = compile_sgd(
            AdversarialModel(model, objective=objective),
            from_logits=not softmax,
        )
        callbacks = []
    trained.fit(
        x,
        y,
        sample_weight=weights,
        batch_size=len(x),
        epochs=1,
        verbose=0,
        shuffle=False,  # the recorded x_adv rows stay aligned with x
        callbacks=callbacks,
    )
    return [np.asarray(v, "float64") for v in model.get_weights()]


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def one_hot(y, n=CLASSES):
    return np.eye(n)[y]


class _Recording:
    """Mixin: keeps the last `x_adv` the training step built."""

    def adversarial_examples(self, model, x, y, eps, seed):
        x_adv = super().adversarial_examples(model, x, y, eps, seed)
        if not hasattr(self, "recorded"):
            raise AssertionError("call record(batch_shape) first")
        self.recorded.assign(x_adv)
        return x_adv

    def record(self, shape):
        self.recorded = keras.Variable(
            np.zeros(shape, "float32"), trainable=False
        )
        return self


class RecordingTRADES(_Recording, TRADES):
    pass


class RecordingVAT(_Recording, VAT):
    pass


def kl_gradients(p, q):
    """Per-sample `d KL(p || q) / d z_p` and `/ d z_q` (softmax logits)."""
    kl = np.sum(p * (np.log(p) - np.log(q)), axis=1, keepdims=True)
    return p * (np.log(p) - np.log(q) - kl), q - p


def sgd(params, grads, lr=LR):
    return [p - lr * g for p, g in zip(params, grads)]


def assert_params_close(actual, expected, atol=1e-5):
    for a, e, name in zip(actual, expected, ("W", "b")):
        np.testing.assert_allclose(a, e, atol=atol, rtol=0, err_msg=name)


def max_difference(a, b):
    return max(float(np.abs(u - v).max()) for u, v in zip(a, b))


# ---------------------------------------------------------------- TRADES
@pytest.mark.parametrize(
    "weighted", [False, True], ids=["unweighted", "weighted"]
)
@pytest.mark.parametrize(
    "softmax_output", [False, True], ids=["logits", "probs"]
)
@pytest.mark.parametrize("engine", ["callback", "model"])
def test_trades_step_is_the_closed_form_gradient(
    engine, softmax_output, weighted
):
    w, b, x, y = linear_problem()
    beta, eps = 3.0, 0.2
    # Sample weights scale both terms, averaged over the batch size.
    rng = np.random.default_rng(5)
    sw = rng.uniform(0.0, 2.0, size=len(x)) if weighted else np.ones(len(x))
    objective = RecordingTRADES(
        PGD(eps=eps, steps=3, seed=0), beta=beta
    ).record(x.shape)
    new_w, new_b = one_step(
        engine,
        objective,
        w,
        b,
        x,
        y,
        softmax=softmax_output,
        weights=sw.astype("float32") if weighted else None,
    )
    x_adv = np.asarray(objective.recorded, "float64")
    # The inner maximisation ran: x_adv is in the ball, far from x.
    distance = np.abs(x_adv - x).max(axis=1)
    assert distance.max() <= eps + 1e-6 and distance.min() > 0.5 * eps

    x64, w64, b64 = (v.astype("float64") for v in (x, w, b))
    p = softmax(x64 @ w64 + b64)
    q = softmax(x_adv @ w64 + b64)
    d_clean, d_adv = kl_gradients(p, q)
    n, s = len(x), sw[:, None]
    g_clean = s * (p - one_hot(y)) / n + beta * s * d_clean / n
    g_adv = beta * s * d_adv / n
    grad_w = x64.T @ g_clean + x_adv.T @ g_adv
    grad_b = g_clean.sum(axis=0) + g_adv.sum(axis=0)
    expected = sgd([w64, b64], [grad_w, grad_b])
    assert_params_close([new_w, new_b], expected)
    # The KL term matters at this tolerance: CE alone predicts otherwise.
    ce_only = sgd([w64, b64], [x64.T @ (s * (p - one_hot(y))) / n, grad_b])
    assert abs(ce_only[0] - expected[0]).max() > 1e-2


# ------------------------------------------------------------------- VAT
def partially_labelled():
    w, b, x, y = linear_problem(seed=1)
    y = y.copy()
    y[::3] = -1  # 6 of 16 unlabelled
    return w, b, x, y


@pytest.mark.parametrize("engine", ["callback", "model"])
def test_vat_unlabelled_samples_get_no_supervised_gradient(engine):
    w, b, x, y = partially_labelled()
    labelled = y >= 0
    # alpha=0: only the supervised part, over the labelled samples, with
    # Keras' "sum_over_batch_size" reduction (divided by the whole batch).
    objective = VAT(PGD(eps=0.5, norm="l2"), alpha=0.0)
    new_w, new_b = one_step(engine, objective, w, b, x, y)
    x64 = x.astype("float64")
    p = softmax(x64 @ w + b)
    residual = (p - one_hot(np.maximum(y, 0))) * labelled[:, None] / len(x)
    expected = sgd([w, b], [x64.T @ residual, residual.sum(axis=0)])
    assert_params_close([new_w, new_b], expected)
    # The same as a plain fit on the labelled samples alone, whose mean
    # divides by their number: scale the learning rate by n_l / n.
    plain = compile_sgd(
        linear_classifier(w, b), lr=LR * labelled.sum() / len(x)
    )
    plain.fit(x[labelled], y[labelled], batch_size=len(x), epochs=1, verbose=0)
    assert_params_close([new_w, new_b], plain.get_weights())


@pytest.mark.parametrize("engine", ["callback", "model"])
def test_vat_step_is_supervised_plus_lds_closed_form(engine):
    w, b, x, y = partially_labelled()
    alpha, eps = 2.0, 0.5
    objective = RecordingVAT(
        PGD(eps=eps, norm="l2", seed=0), alpha=alpha
    ).record(x.shape)
    new_w, new_b = one_step(engine, objective, w, b, x, y)
    x_adv = np.asarray(objective.recorded, "float64")
    radius = np.sqrt(np.square(x_adv - x).sum(axis=1))
    assert radius.max() <= eps + 1e-5 and radius.min() > 0.5 * eps

    x64, n = x.astype("float64"), len(x)
    p = softmax(x64 @ w + b)
    q = softmax(x_adv @ w + b)
    residual = (p - one_hot(np.maximum(y, 0))) * (y >= 0)[:, None] / n
    lds = alpha * (q - p) / n  # KL(stop(p) || q): only the x_adv side
    grad_w = x64.T @ residual + x_adv.T @ lds
    grad_b = residual.sum(axis=0) + lds.sum(axis=0)
    assert_params_close(
        [new_w, new_b], sgd([w.astype("float64"), b], [grad_w, grad_b])
    )


# --------------------------------------------------------- mixed float16
MIXED_FEATURES = 6

# Tolerances on the weights after 6 SGD steps (lr 0.1) of a small MLP.
# float16's unit roundoff is u = 2**-11 ~ 4.9e-4; the forward and backward
# passes in float16 give gradients with relative errors of a few u, so 6
# steps of size lr * |grad| (|grad| <= ~1) drift by at most ~6 * 0.1 *
# 10u ~ 3e-3: 1e-3 for the substitution objectives (the attack's gradient
# signs agree; observed ~3e-5). TRADES starts its inner maximisation at
# x + 0.001 N(0, 1) and VAT probes at xi = 1e-2, where the KL gradient is
# at the float16 resolution of the logits, so a few first-step signs can
# differ: 1e-2 (observed ~1e-3 to 7e-3). The float32 adversarial run is
# >= 5 times farther from clean training than that (asserted).
MIXED_CASES = {
    "madry": (lambda a: Madry(a), 1e-3),
    "fgsm-rs": (lambda a: FGSMRS(a), 1e-3),
    "trades": (lambda a: TRADES(a, beta=6.0), 1e-2),
    "vat": (lambda a: VAT(a, alpha=10.0, xi=1e-2), 1e-2),
}


@pytest.fixture(scope="module")
def mixed_data():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(96, MIXED_FEATURES)).astype("float32")
    w = rng.normal(size=(MIXED_FEATURES, CLASSES))
    y = np.argmax((x - 0.5) @ w, axis=1).astype("int64")
    return x, y


def mlp(policy):
    keras.config.set_dtype_policy(policy)
    try:
        init = keras.initializers.GlorotUniform(seed=0)
        return keras.Sequential(
            [
                keras.Input((MIXED_FEATURES,)),
                keras.layers.Dense(
                    8, activation="relu", kernel_initializer=init
                ),
                keras.layers.Dense(CLASSES, kernel_initializer=init),
            ]
        )
    finally:
        keras.config.set_dtype_policy("float32")


def train_mlp(data, policy, objective=None, engine="callback"):
    x, y = data
    model = mlp(policy)
    trained, callbacks = model, []
    if objective is not None and engine == "callback":
        callbacks = [AdversarialTraining(objective=objective)]
    elif objective is not None:
        trained = AdversarialModel(model, objective=objective)
    compile_sgd(trained, lr=0.1).fit(
        x,
        y,
        batch_size=32,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
    )
    return model.get_weights()


@pytest.fixture(scope="module")
def clean_float32(mixed_data):
    return train_mlp(mixed_data, "float32")


@pytest.mark.parametrize(
    "name,engine",
    [(name, "callback") for name in MIXED_CASES]
    + [("madry", "model"), ("trades", "model")],
)
def test_mixed_float16_stays_close_to_float32(
    mixed_data, clean_float32, name, engine
):
    make, tolerance = MIXED_CASES[name]

    def run(policy):
        objective = make(PGD(eps=0.3, steps=3, seed=0))
        return train_mlp(mixed_data, policy, objective, engine)

    float32, mixed = run("float32"), run("mixed_float16")
    assert all(v.dtype == np.float32 for v in mixed)  # float32 variables
    assert max_difference(mixed, float32) <= tolerance
    assert max_difference(float32, clean_float32) > 5 * tolerance


# ---------------------------------------------- degenerate = plain fit
DEGENERATE = {
    "madry-weight0": lambda a: Madry(a, adv_weight=0.0),
    "madry-eps0": lambda a: Madry(a),
    "fgsm-rs-weight0": lambda a: FGSMRS(a, adv_weight=0.0),
    "fgsm-rs-eps0": lambda a: FGSMRS(a),
    "trades-beta0": lambda a: TRADES(a, beta=0.0),
    "trades-eps0": lambda a: TRADES(a, beta=6.0),
    "vat-alpha0": lambda a: VAT(a, alpha=0.0),
    "vat-eps0": lambda a: VAT(a, alpha=3.0),
}


@pytest.fixture(scope="module")
def degenerate_data():
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(96, MIXED_FEATURES)).astype("float32")
    w = rng.normal(size=(MIXED_FEATURES, CLASSES))
    y = np.argmax((x - 0.5) @ w, axis=1).astype("int64")
    return x, y


@pytest.fixture(scope="module")
def plain_float32(degenerate_data):
    return train_mlp(degenerate_data, "float32")


@pytest.mark.parametrize("engine", ["callback", "model"])
@pytest.mark.parametrize("setting", sorted(DEGENERATE))
def test_degenerate_setting_is_plain_fit(
    degenerate_data, plain_float32, setting, engine
):
    eps = 0.0 if setting.endswith("eps0") else 0.3
    objective = DEGENERATE[setting](PGD(eps=eps, steps=2, seed=0))
    weights = train_mlp(degenerate_data, "float32", objective, engine)
    for a, b in zip(weights, plain_float32):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    # The same objective at full strength does change the training.
    if eps == 0.0:
        strong = DEGENERATE[setting](PGD(eps=0.3, steps=2, seed=0))
        weights = train_mlp(degenerate_data, "float32", strong, engine)
        assert max_difference(weights, plain_float32) > 1e-3


# ------------------------------------------------- the user's own attack
def _cross_entropy_lambda():
    return lambda y, z: keras.losses.sparse_categorical_crossentropy(
        y, z, from_logits=True
    )


@pytest.mark.parametrize("objective", ["madry", "trades", "fgsm_rs"])
@pytest.mark.parametrize("engine", ["callback", "model"])
def test_a_callable_loss_trains_like_its_registered_twin(objective, engine):
    # An attack with an unregistered callable loss (the same math as
    # "ce") trains exactly like the attack with loss="ce": the step runs
    # the user's attack itself, no config round trip that would refuse
    # the lambda.
    w, b, x, y = linear_problem()
    weights = []
    for loss in ("ce", _cross_entropy_lambda()):
        attack = PGD(eps=0.1, steps=3, loss=loss, seed=0)
        model = linear_classifier(w, b)
        if engine == "model":
            model = AdversarialModel(model, attack, objective=objective)
            callbacks = []
        else:
            callbacks = [AdversarialTraining(attack, objective=objective)]
        compile_sgd(model)
        model.fit(
            x,
            y,
            batch_size=BATCH,
            epochs=2,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        if engine == "callback":
            objective_object = callbacks[0].objective
            assert objective_object.attack is attack
        weights.append([np.asarray(w) for w in model.get_weights()])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_callable_loss_refuses_to_save_not_to_run():
    attack = PGD(eps=0.1, steps=2, loss=_cross_entropy_lambda())
    with pytest.raises(ValueError, match="cannot be serialised"):
        attack.get_config()
