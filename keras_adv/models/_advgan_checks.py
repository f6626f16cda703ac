"""Checks of `AdvGAN`'s networks and targeting arguments.

Each raises the `_validation` message naming the argument; `AdvGAN`
calls them from `__init__`, before any graph is built.
"""

import keras

from keras_adv import _validation


def check_target_model(target_model):
    """Checks that the attacked classifier is a `keras.Model`."""
    if not isinstance(target_model, keras.Model):
        raise TypeError(
            _validation.invalid("target_model", "a keras.Model", target_model)
        )
    return target_model


def num_classes_of(target_model, num_classes):
    """`num_classes` checked, or read from the target model's output."""
    if num_classes is not None:
        return _validation.check_int("num_classes", num_classes, minimum=2)
    try:
        classes = target_model.outputs[0].shape[-1]
    except (AttributeError, IndexError, TypeError, ValueError):
        classes = None
    if classes is None:
        raise ValueError(
            _validation.invalid(
                "num_classes",
                "the number of classes (it cannot be read from a subclassed "
                "or unbuilt target model)",
                None,
            )
        )
    return int(classes)


def check_target_fn(target_fn, targeted):
    """Checks that `target_fn` is None or a callable of a targeted AdvGAN."""
    if target_fn is None:
        return None
    if not callable(target_fn):
        raise TypeError(
            _validation.invalid("target_fn", "a callable", target_fn)
        )
    if not targeted:
        raise ValueError(
            _validation.invalid(
                "target_fn", "None for an untargeted AdvGAN", target_fn
            )
        )
    return target_fn


def check_generator(generator, targeted, num_classes):
    """Whether `generator` is conditioned (`[x, one-hot target]` inputs).

    Raises:
        ValueError: if the generator's inputs do not match `targeted`
            (two inputs exactly when targeted) or its target input is not
            `num_classes` wide.
    """
    inputs = getattr(generator, "inputs", None) or []
    conditioned = len(inputs) == 2
    if targeted != conditioned:
        raise ValueError(
            _validation.invalid(
                "generator",
                "a generator with inputs [x, one-hot target] for a "
                "targeted AdvGAN and one input x otherwise "
                f"(targeted={targeted})",
                f"a generator with {len(inputs)} input(s)",
            )
        )
    if conditioned and inputs[1].shape[-1] != num_classes:
        raise ValueError(
            _validation.invalid(
                "generator",
                f"a target input of width {num_classes}",
                tuple(inputs[1].shape),
            )
        )
    return conditioned
