"""Quality bar of PGD adversarial training on the embedded MNIST subset.

Slow (minutes on 2 CPU cores): run with `python dev.py test --slow`.
"""

import keras
import numpy as np
import pytest

import keras_adv
from keras_adv.testing import mnist_cnn

EPS = 0.3
EPOCHS = 20


def build_cnn():
    return mnist_cnn(width=32, dense=128, seed=0)


def train(x, y, epochs, callbacks):
    keras.utils.set_random_seed(0)
    model = build_cnn()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        x, y, epochs=epochs, batch_size=16, verbose=0, callbacks=callbacks
    )
    return model


def clean_and_robust(model, x, y):
    attack = keras_adv.attacks.PGD(eps=EPS, steps=20, seed=1)
    clean, robust = [], []
    for i in range(0, len(x), 500):
        xb, yb = x[i : i + 500], y[i : i + 500]
        clean.append(np.argmax(model.predict(xb, verbose=0), 1) == yb)
        x_adv = np.asarray(attack(model, xb, yb))
        robust.append(np.argmax(model.predict(x_adv, verbose=0), 1) == yb)
    return np.mean(np.concatenate(clean)), np.mean(np.concatenate(robust))


@pytest.fixture(scope="module")
def mnist():
    return keras_adv.datasets.load_mnist_subset()


@pytest.mark.slow
def test_pgd_training_reaches_the_quality_bar(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    callback = keras_adv.callbacks.AdversarialTraining(
        keras_adv.attacks.PGD(eps=EPS, steps=7, step_size=0.1, seed=0),
        eps_warmup_epochs=EPOCHS // 3,
    )
    model = train(x_train, y_train, EPOCHS, [callback])
    clean, robust = clean_and_robust(model, x_test, y_test)
    print(f"PGD-7 training: clean {clean:.3f}, PGD-20 robust {robust:.3f}")
    assert clean >= 0.95
    assert robust >= 0.85


@pytest.mark.slow
def test_clean_training_is_not_robust(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    model = train(x_train, y_train, 5, [])
    clean, robust = clean_and_robust(model, x_test, y_test)
    print(f"clean training: clean {clean:.3f}, PGD-20 robust {robust:.3f}")
    assert clean >= 0.9  # a working classifier (5 epochs) ...
    assert robust <= 0.05  # ... with no robustness at all
