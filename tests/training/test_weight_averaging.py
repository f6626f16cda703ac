"""Weight averaging through Keras' optimizer EMA (`use_ema=True`).

What Keras 3 does, pinned here (keras-team/keras: the optimizer's
`_backend_apply_gradients` and `finalize_variable_values`, the TensorFlow
trainer's `fit`): after every optimizer step the average of each trainable
variable is updated, `a <- m a + (1 - m) w` with `m = ema_momentum`, the
first step copying the weights (`a_1 = w_1`); training itself uses the raw
weights; at the end of `fit` (after the last epoch, before the callbacks'
`on_train_end`) `optimizer.finalize_variable_values` overwrites the
model's trainable variables with their averages. So the model that `fit`
returns, evaluates and saves is the averaged one. Non-trainable variables
(batch-norm statistics) are not averaged. Callbacks that run during `fit`
(validation, `EarlyStopping`, checkpoints, `RobustnessMonitor`) see the raw
weights unless `keras.callbacks.SwapEMAWeights` swaps them in, and
`EarlyStopping(restore_best_weights=True)` overwrites the average at the
end.

The reference below is an independent float64 numpy computation of SGD on
softmax regression and of the EMA of its iterates.
"""

import keras
import numpy as np
import pytest
from _linear_models import linear

from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.models import AdversarialModel

FEATURES, CLASSES = 3, 2
LR, MOMENTUM = 0.5, 0.8
BATCH = 4


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, FEATURES)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0.8).astype("int64")
    return x, y


def compiled(model, use_ema=True):
    model.compile(
        keras.optimizers.SGD(LR, use_ema=use_ema, ema_momentum=MOMENTUM),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit(model, epochs=2, callbacks=(), **kwargs):
    x, y = data()
    return model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        shuffle=False,
        verbose=0,
        callbacks=list(callbacks),
        **kwargs,
    )


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(weights, x, y):
    w, b = weights
    p = softmax(x.astype("float64") @ w + b)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def numpy_sgd(initial, epochs=2):
    """Every iterate of SGD on the mean cross-entropy, in float64."""
    x, y = data()
    w, b = (v.astype("float64") for v in initial)
    iterates = []
    for _ in range(epochs):
        for start in range(0, len(x), BATCH):
            xb, yb = x[start : start + BATCH], y[start : start + BATCH]
            residual = softmax(xb @ w + b) - np.eye(CLASSES)[yb]
            w = w - LR * xb.T @ residual / len(xb)
            b = b - LR * residual.sum(axis=0) / len(xb)
            iterates.append([w, b])
    return iterates


def ema(iterates, momentum=MOMENTUM):
    """Keras' EMA: the first step copies, then `m a + (1 - m) w`."""
    average = [v.copy() for v in iterates[0]]
    for weights in iterates[1:]:
        average = [
            momentum * a + (1 - momentum) * v for a, v in zip(average, weights)
        ]
    return average


class Recorder(keras.callbacks.Callback):
    """The model's weights after every training step (the raw iterates)."""

    def __init__(self):
        super().__init__()
        self.iterates = []

    def on_train_batch_end(self, batch, logs=None):
        self.iterates.append(
            [v.numpy().astype("float64") for v in self.model.trainable_weights]
        )


def assert_weights(model, expected, atol=1e-5):
    actual = [v.numpy() for v in model.trainable_weights]
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=0, atol=atol)


def test_fit_ends_with_the_ema_of_the_sgd_iterates():
    model = compiled(linear(FEATURES, CLASSES))
    initial = model.get_weights()
    fit(model)
    iterates = numpy_sgd(initial)
    assert len(iterates) == 6
    assert_weights(model, ema(iterates))
    # The raw last iterate is elsewhere: the check above is not vacuous.
    last = iterates[-1]
    assert max(np.abs(a - e).max() for a, e in zip(ema(iterates), last)) > 1e-2


def test_training_uses_the_raw_weights():
    averaged = compiled(linear(FEATURES, CLASSES))
    plain = compiled(linear(FEATURES, CLASSES), use_ema=False)
    recorder = Recorder()
    fit(averaged, callbacks=[recorder])
    fit(plain)
    # The raw trajectory is plain SGD's; only the final assignment differs.
    for a, e in zip(recorder.iterates[-1], plain.get_weights()):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-6)
    assert_weights(averaged, ema(recorder.iterates))


def test_the_saved_model_holds_the_averaged_weights(tmp_path):
    model = compiled(linear(FEATURES, CLASSES))
    initial = model.get_weights()
    fit(model)
    expected = ema(numpy_sgd(initial))
    path = str(tmp_path / "averaged.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert_weights(loaded, expected)
    x, _ = data()
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert loaded.optimizer.use_ema and loaded.optimizer.ema_momentum == 0.8


def test_adversarial_training_callback_averages_too():
    # eps = 0: the degenerate setting equals plain SGD, known in numpy.
    model = compiled(linear(FEATURES, CLASSES))
    initial = model.get_weights()
    fit(model, callbacks=[AdversarialTraining(PGD(eps=0.0, steps=1))])
    assert_weights(model, ema(numpy_sgd(initial)))
    # eps > 0: the final weights are the EMA of the adversarial iterates.
    model = compiled(linear(FEATURES, CLASSES))
    recorder = Recorder()
    training = AdversarialTraining(PGD(eps=0.1, steps=2, seed=0))
    fit(model, callbacks=[training, recorder])
    assert len(recorder.iterates) == 6
    assert_weights(model, ema(recorder.iterates))


def test_adversarial_model_averages_its_classifier():
    classifier = linear(FEATURES, CLASSES)
    model = compiled(AdversarialModel(classifier, PGD(eps=0.1, steps=2)))
    recorder = Recorder()
    fit(model, callbacks=[recorder])
    assert_weights(model, ema(recorder.iterates))
    assert_weights(classifier, ema(recorder.iterates))


def test_validation_during_fit_sees_the_raw_weights_unless_swapped():
    x_val, y_val = data(8, seed=1)
    model = compiled(linear(FEATURES, CLASSES))
    initial = model.get_weights()
    iterates = numpy_sgd(initial)
    history = fit(model, validation_data=(x_val, y_val))
    raw = cross_entropy(iterates[-1], x_val, y_val)
    averaged = cross_entropy(ema(iterates), x_val, y_val)
    assert abs(raw - averaged) > 1e-3
    assert history.history["val_loss"][-1] == pytest.approx(raw, abs=1e-5)
    # keras.callbacks.SwapEMAWeights evaluates with the averages.
    model = compiled(linear(FEATURES, CLASSES))
    model.set_weights(initial)
    history = fit(
        model,
        validation_data=(x_val, y_val),
        callbacks=[keras.callbacks.SwapEMAWeights()],
    )
    assert history.history["val_loss"][-1] == pytest.approx(averaged, abs=1e-5)
    assert_weights(model, ema(iterates))


def test_early_stopping_restoring_weights_replaces_the_average():
    model = compiled(linear(FEATURES, CLASSES))
    initial = model.get_weights()
    stop = keras.callbacks.EarlyStopping(
        "loss", patience=10, restore_best_weights=True
    )
    fit(model, callbacks=[stop])
    iterates = numpy_sgd(initial)
    # The loss fell every epoch: the best epoch is the last, whose raw
    # weights are restored after the average was put in.
    assert stop.best_epoch == 1
    assert_weights(model, iterates[-1])


def test_batch_norm_statistics_are_not_averaged():
    def network():
        return keras.Sequential(
            [
                keras.Input((FEATURES,)),
                keras.layers.BatchNormalization(momentum=0.5),
                keras.layers.Dense(CLASSES, kernel_initializer="zeros"),
            ]
        )

    averaged = compiled(network())
    plain = compiled(network(), use_ema=False)
    fit(averaged)
    fit(plain)
    bn_averaged = averaged.layers[0].non_trainable_weights
    bn_plain = plain.layers[0].non_trainable_weights
    for a, b in zip(bn_averaged, bn_plain):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    kernel_averaged = averaged.layers[1].kernel.numpy()
    assert not np.allclose(kernel_averaged, plain.layers[1].kernel.numpy())
