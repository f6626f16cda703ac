"""Softmax-regression models shared by the training tests.

Imported as `from _linear_models import ...`: `tests/` has no
`__init__.py`, so pytest puts this directory on `sys.path`.
"""

import keras


def linear(features, classes, seed=0):
    """A Glorot-initialised `Dense(classes)` on `features` inputs (logits)."""
    init = keras.initializers.GlorotUniform(seed=seed)
    return keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(classes, kernel_initializer=init),
        ]
    )


def compiled(model, learning_rate):
    """`model` compiled with plain SGD and cross-entropy on logits."""
    model.compile(
        keras.optimizers.SGD(learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model
