"""Small dense AdvGAN parts shared by the AdvGAN tests.

Imported as `import _advgan_models`: `tests/` has no `__init__.py`, so
pytest puts this directory on `sys.path` (the subprocess scripts of the
distribution tests add it themselves).
"""

import keras
import numpy as np

import keras_adv
from keras_adv.testing import linear_classifier

FEATURES = 4
EPS = 0.3
# A linear classifier: class 1 iff w . (x - 0.5) > 0.
W = np.array([1.0, -1.0, 0.5, -0.5], "float32")


def linear_target(num_classes=2):
    """Two classes: the logits `+-w . (x - 0.5) / 2`; else random ones."""
    if num_classes == 2:
        weights = np.stack([-W, W], axis=1) / 2.0
        bias = np.stack([W @ np.full(4, 0.5), -(W @ np.full(4, 0.5))]) / 2.0
        return linear_classifier(weights, bias)
    rng = np.random.default_rng(7)
    return linear_classifier(rng.normal(size=(FEATURES, num_classes)))


def points(n, seed=0):
    """Inputs whose margin is below what an eps-step can undo."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.35, 0.65, size=(n, FEATURES)).astype("float32")
    y = ((x - 0.5) @ W > 0).astype("int64")
    return x, y


def dense_generator(num_classes=None, zero=False, seed=0):
    """`x` (and a one-hot target) -> a perturbation in the eps ball."""
    init = "zeros" if zero else keras.initializers.GlorotUniform(seed=seed)
    x = keras.Input((FEATURES,))
    inputs = [x]
    h = x
    if num_classes:
        t = keras.Input((num_classes,))
        inputs.append(t)
        h = keras.layers.Concatenate()([x, t])
    h = keras.layers.Dense(16, activation="relu", kernel_initializer=init)(h)
    raw = keras.layers.Dense(FEATURES, kernel_initializer=init)(h)
    delta = keras_adv.layers.PerturbationBound(EPS)(raw)
    return keras.Model(inputs if num_classes else x, delta)


def dense_discriminator(seed=1):
    """`x` -> one logit."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(8, activation="relu", kernel_initializer=init),
            keras.layers.Dense(1, kernel_initializer=init),
        ]
    )


def every_term_advgan(
    classes=2, targeted=False, target_fn=None, cls=None, **compile
):
    """A compiled dense AdvGAN (seed 0) in which every term weighs in.

    The hinge is active (`c` below the perturbation norms), the GAN term
    has weight 0.5 and D takes two steps per G step; both optimizers are
    SGD(0.1), whose steps scale with the gradients (Adam's would not).
    `cls` is the class to build (an `AdvGAN` subclass; `AdvGAN` if None);
    `compile` goes to `AdvGAN.compile` (e.g. `jit_compile`).
    """
    gan = (cls or keras_adv.models.AdvGAN)(
        dense_generator(num_classes=classes if targeted else None),
        dense_discriminator(),
        linear_target(classes),
        eps=EPS,
        targeted=targeted,
        target_fn=target_fn,
        alpha=0.5,
        beta=2.0,
        c=0.05,
        d_steps=2,
        seed=0,
    )
    gan.compile(
        d_optimizer=keras.optimizers.SGD(0.1),
        g_optimizer=keras.optimizers.SGD(0.1),
        **compile,
    )
    return gan
