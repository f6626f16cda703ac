"""Recipes of robust training on real data: `robust_fit` and the MNIST recipe.

* `robust_fit`: trains any compiled (or not yet compiled) Keras classifier
  with the recipe's callbacks for a method: `AdversarialTraining` (PGD-k,
  TRADES, FGSM-RS, N-FGSM or Free-4 from `keras_adv.training.get`, with an
  eps warm-up),
  `OverfittingGuard` for FGSM-RS,
  `RobustnessMonitor` on validation data and Keras' `TensorBoard` when a
  log directory is given.

The MNIST recipe of the README (`mnist_adversarial_training`) is in
`_mnist.py`.
"""

import dataclasses
import os
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from numpy.typing import ArrayLike

from keras_adv import _names
from keras_adv import _validation
from keras_adv import training
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.callbacks import OverfittingGuard
from keras_adv.callbacks import RobustnessMonitor
from keras_adv.datasets import mix_datasets
from keras_adv.evaluation import RobustnessReport

if TYPE_CHECKING:
    from keras_adv.recipes._generated import GeneratedData

__all__ = ["METHODS", "TrainingRun", "robust_fit"]

METHODS = _names.RECIPE_METHODS
"""The training methods of the recipes: `"clean"` (plain `fit`) and the
objectives of `keras_adv.training.get` they have settings for. The old
spellings `"fgsm-rs"` and `"n-fgsm"` (and the objective aliases `"madry"`,
`"adversarial"` for `"pgd"`) are accepted too."""

# Settings of the recipes (the README's PGD-7 recipe and its relatives).
_GUARD_SAMPLES = 500  # training samples watched by the FGSM-RS guard
_GUARD_STEPS = 10  # PGD steps of the guard's attack
_MONITOR_STEPS = 10  # PGD steps of the per-epoch monitor
# After fit: clean accuracy on this many training samples (spread over the
# data) against always predicting their most frequent class.
_CHANCE_SAMPLES = 1000
_CHANCE_MARGIN = 0.05
# Objective arguments by method (Free-m: every minibatch replayed m times).
_OBJECTIVE_SETTINGS: dict[str, dict[str, Any]] = {
    "trades": {"beta": 6.0},
    "fgsm_rs": {"step_factor": 1.25},
    "free": {"replays": 4},
}


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """What a recipe trained and measured.

    Attributes:
        model: The trained `keras.Model` (the adversarial step is removed
            after `fit`: it saves and loads as a plain Keras model).
        history: The `keras.callbacks.History` of `fit`: `loss` (the loss
            minimised) and the accuracy on the batches trained on:
            `adv_accuracy` (on `x_adv`) for the methods that train on
            adversarial examples alone (`"pgd"`, `"fgsm_rs"`, `"n_fgsm"`,
            `"free"`), `accuracy` (clean), `adv_loss` and `adv_accuracy`
            for `"trades"`, `accuracy` for `"clean"`;
            `guard_robust_accuracy` (FGSM-RS), `val_*` keys (clean) with
            validation data and the monitor's `val_robust_accuracy`.
        train_seconds: Float, wall-clock seconds spent in `fit`.
        stopped_epoch: Int or None, the epoch (0-based) after which the
            FGSM-RS overfitting guard stopped training and restored the
            previous epoch's weights; None if it did not fire.
        report: A `keras_adv.evaluation.RobustnessReport` of the final
            evaluation, or None if the recipe did not evaluate.
        warnings: Tuple of strings, what makes the run questionable (each
            also issued as a `UserWarning`): a model that classifies its
            training data no better than always predicting the most
            frequent class. Empty if none.
        generated: The `keras_adv.recipes.GeneratedData` trained on (the
            pseudo-labeller, the generator, their figures and times), or
            None for a run on real data alone.
    """

    model: keras.Model
    history: keras.callbacks.History
    train_seconds: float
    stopped_epoch: int | None = None
    report: RobustnessReport | None = None
    warnings: tuple[str, ...] = ()
    generated: "GeneratedData | None" = None

    @property
    def epochs(self) -> int:
        """Int, the number of epochs actually trained."""
        return len(self.history.epoch)


def _check_data(
    name: str, data: Sequence[ArrayLike], num_classes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """`(x, y)` with float inputs and integer labels in `[0, classes)`."""
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise ValueError(
            _validation.invalid(
                name, "a pair (x, y) of arrays", type(data).__name__
            )
        )
    x, y = np.asarray(data[0]), np.asarray(data[1])
    _validation.check_x_dtype(x.dtype, name)
    if x.ndim == 0 or len(x) == 0 or y.ndim == 0:
        raise ValueError(
            _validation.invalid(
                name,
                "non-empty arrays x and y",
                f"x of shape {x.shape} and y of shape {y.shape}",
            )
        )
    _validation.check_same_length(x, y, name)
    y = _validation.class_ids(y, name, one_hot=False)
    if num_classes is not None:
        owner = f"a model with {num_classes} outputs"
        _validation.check_classes(y, num_classes, name, owner)
    return x, y


def _check_method(method: str) -> str:
    """The canonical name of a recipe method (aliases accepted)."""
    name = _names.canonical(method, METHODS, _names.OBJECTIVE_ALIASES)
    if name is None:
        raise ValueError(
            _names.unknown(
                "method", "method", method, METHODS, _names.OBJECTIVE_ALIASES
            )
        )
    return name


def _num_classes(model: keras.Model) -> int | None:
    try:
        return int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _chance_warning(
    model: keras.Model, x: np.ndarray, y: np.ndarray
) -> str | None:
    """A message if the model does no better than a constant guess.

    The clean accuracy on up to `_CHANCE_SAMPLES` training samples spread
    over the data, against always predicting their most frequent class.
    """
    index = np.unique(np.linspace(0, len(x) - 1, _CHANCE_SAMPLES).astype(int))
    x, y = x[index], y[index]
    outputs = model.predict(x, batch_size=256, verbose=0)
    accuracy = float(np.mean(np.argmax(outputs, axis=-1) == y))
    majority = float(np.max(np.bincount(y)) / len(y))
    if accuracy > majority + _CHANCE_MARGIN:
        return None
    return (
        f"The trained model classifies {accuracy:.1%} of {len(y)} "
        "training samples correctly (clean inputs), no better than always "
        f"predicting their most frequent class ({majority:.1%}): it has "
        "not learned the task, and robustness measured on it means "
        "nothing. Train for more epochs, with a smaller eps or a longer "
        "eps warm-up, or check the data and labels."
    )


def _callbacks(
    method: str,
    eps: float,
    steps: int,
    eps_warmup_epochs: int,
    seed: int,
    guard_data: tuple[np.ndarray, np.ndarray],
    validation_data: tuple[np.ndarray, np.ndarray] | None,
    monitor_samples: int,
    log_dir: str | None,
) -> list[keras.callbacks.Callback]:
    """The recipe's callbacks, in the order they must run."""
    callbacks = []
    if method != "clean":
        attack = PGD(eps=eps, steps=steps, step_size=eps / 3.0, seed=seed)
        settings = _OBJECTIVE_SETTINGS.get(method, {})
        objective = training.get(method, attack, **settings)
        callbacks.append(
            AdversarialTraining(
                objective=objective, eps_warmup_epochs=eps_warmup_epochs
            )
        )
    if method == "fgsm_rs":
        # Catastrophic overfitting: PGD-10 accuracy on a fixed training
        # batch after every epoch; on a collapse, stop and restore.
        callbacks.append(
            OverfittingGuard(
                guard_data,
                PGD(eps=eps, steps=_GUARD_STEPS, seed=seed),
                drop=0.2,
                restore_best_weights=True,
            )
        )
    if validation_data is not None:
        callbacks.append(
            RobustnessMonitor(
                validation_data,
                attacks={
                    "fgsm": FGSM(eps=eps),
                    "pgd": PGD(eps=eps, steps=_MONITOR_STEPS, seed=seed),
                },
                max_samples=min(monitor_samples, len(validation_data[0])),
                log_dir=log_dir,
                images=8 if log_dir is not None else 0,
                seed=seed,
            )
        )
    if log_dir is not None:
        # After the monitor, so that TensorBoard also logs its keys.
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
    return callbacks


def robust_fit(
    model: keras.Model,
    data: Sequence[ArrayLike],
    method: str = "pgd",
    epochs: int = 20,
    batch_size: int = 16,
    eps: float = 0.3,
    steps: int = 7,
    eps_warmup_epochs: int | None = None,
    validation_data: Sequence[ArrayLike] | None = None,
    monitor: bool = True,
    monitor_samples: int = 256,
    log_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    verbose: int = 0,
    generated: Sequence[ArrayLike] | tf.data.Dataset | None = None,
    real_fraction: float = 0.3,
    ema_momentum: float | None = None,
) -> TrainingRun:
    """Trains a classifier robustly with the recipe's callbacks.

    Methods (all L-inf on `[0, 1]` inputs, through one
    `keras_adv.callbacks.AdversarialTraining` callback with a linear eps
    warm-up):

    * `"pgd"`: Madry et al.'s PGD adversarial training, `steps` steps of
      `eps / 3` from a random start (PGD-7 at eps 0.3 on MNIST);
    * `"trades"`: TRADES with `beta=6` and the same PGD settings;
    * `"fgsm_rs"`: FGSM from a random start with a step of `1.25 eps`, with
      a `keras_adv.callbacks.OverfittingGuard` (PGD-10 accuracy on the
      first 500 training samples after every epoch; on a collapse of more
      than 0.2 it stops training and restores the previous epoch);
    * `"n_fgsm"`: N-FGSM, one FGSM step of `eps` from uniform noise of
      radius `2 eps`, not projected back onto the ball (single-step cost);
    * `"free"`: Free-4, every minibatch replayed 4 times, each replay one
      forward-backward pass that updates the weights and the perturbation
      (4 optimizer updates per batch: pass about a quarter of the epochs
      of the other methods);
    * `"clean"`: plain `fit`, the baseline.

    Measured on the MNIST recipe (`bench/fast_training.py`, standard
    AutoAttack on the 1,000 test images): at eps 0.3 PGD-7 reaches 80.1%,
    Free-4 for 10 epochs 65.8% and N-FGSM 19.5%; at eps 0.2 N-FGSM
    matches PGD-7 (84.0% against 83.8%) at 1.3x the time of clean
    training.

    With `validation_data`, `fit` also reports `val_loss` and
    `val_accuracy`, and (with `monitor=True`) a
    `keras_adv.callbacks.RobustnessMonitor` adds the FGSM and PGD-10
    accuracies at `eps` on the first `monitor_samples` validation samples
    (`val_robust_accuracy`, ...). With `log_dir`, the monitor writes
    TensorBoard images and histograms there and Keras' `TensorBoard`
    callback (placed after the monitor) logs every epoch key.

    With `generated` data (Gowal et al. 2021; see
    `keras_adv.recipes.generate_training_data`), every batch holds exactly
    `round(real_fraction * batch_size)` real samples and generated ones
    for the rest (`keras_adv.datasets.mix_datasets`), and an epoch is one
    pass over the real data: at 30 % real and batch 16, 800 steps for
    4,000 real images instead of 250.

    An uncompiled model is compiled with `Adam(1e-3)` (with
    `ema_momentum`, `Adam(1e-3, use_ema=True, ema_momentum=...)`: Keras
    keeps an exponential moving average of the weights and writes it into
    the model at the end of `fit`, so the returned and saved model holds
    the averaged weights), sparse categorical cross-entropy on logits and
    accuracy; compile it yourself for other settings. The function sets
    Keras' global seed (`keras.utils.set_random_seed(seed)`) so that runs
    repeat.

    Args:
        model: A Keras classifier with one input and one output of logits
            `(batch, classes)`.
        data: `(x, y)` training arrays: float inputs in `[0, 1]`, integer
            labels.
        method: One of `"pgd"`, `"trades"`, `"fgsm_rs"`, `"n_fgsm"`,
            `"free"`, `"clean"` (see `METHODS`; `"fgsm-rs"` and
            `"n-fgsm"` are aliases). Defaults to `"pgd"`.
        epochs: Int >= 1. Defaults to `20`.
        batch_size: Int >= 1. Defaults to `16`.
        eps: Float >= 0, the L-inf radius. Defaults to `0.3`.
        steps: Int >= 1, PGD steps of `"pgd"` and `"trades"`. Defaults to
            `7`.
        eps_warmup_epochs: Int >= 0, epochs of the linear eps ramp, or None
            for `epochs // 3` (6 of 20 epochs). Defaults to `None`.
        validation_data: Optional `(x, y)` arrays for validation and the
            monitor. Defaults to `None`.
        monitor: Bool, add the `RobustnessMonitor` (needs
            `validation_data`). Defaults to `True`.
        monitor_samples: Int >= 1, validation samples the monitor attacks
            every epoch. Defaults to `256`.
        log_dir: Optional TensorBoard log directory. Defaults to `None`.
        seed: Int >= 0, seed of the weights order, attacks and monitor.
            Defaults to `0`.
        verbose: Verbosity of `fit` (0, 1 or 2). Defaults to `0`.
        generated: Optional generated training data: `(x, y)` arrays (e.g.
            `GeneratedData.data` or `keras_adv.datasets.make_pseudo_labelled`)
            or a `tf.data.Dataset` of unbatched `(x, y)` samples (e.g. the
            endless `keras_adv.datasets.pseudo_labelled_dataset`). Defaults
            to `None` (real data alone).
        real_fraction: Float in `(0, 1]`, the share of real samples in
            every batch when `generated` is given. Defaults to `0.3`
            (Gowal et al.'s best).
        ema_momentum: Optional float in `[0, 1)`: weight averaging with
            Keras' optimizer EMA. Only for a model `robust_fit` compiles; a
            compiled model keeps its optimizer (compile it with
            `use_ema=True` yourself). Defaults to `None` (no averaging).

    After `fit`, the clean accuracy on up to 1,000 training samples
    (spread over the data) is compared with always predicting their most
    frequent class: a model no better than that (within 5 points) gets a
    `UserWarning`, also kept in `TrainingRun.warnings`.

    Returns:
        A `TrainingRun` (`report` is None).

    Raises:
        ValueError: for an unknown method, invalid numbers, labels
            outside `[0, classes)`, or `ema_momentum` with a compiled
            model.
        TypeError: for non-float inputs.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> x = np.random.default_rng(0).uniform(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile(keras.optimizers.Adam(0.1),
    ...     keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...     metrics=["accuracy"])
    >>> run = keras_adv.recipes.robust_fit(
    ...     model, (x, y), method="trades", epochs=2, eps=0.1, steps=2)
    >>> run.epochs, sorted(run.history.history), run.warnings
    (2, ['accuracy', 'adv_accuracy', 'adv_loss', 'loss'], ())

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083). Zhang et al.,
        "Theoretically Principled Trade-off between Robustness and Accuracy",
        ICML 2019, [arXiv:1901.08573](https://arxiv.org/abs/1901.08573). Wong,
        Rice and Kolter, "Fast is better than free: Revisiting adversarial
        training", ICLR 2020,
        [arXiv:2001.03994](https://arxiv.org/abs/2001.03994). de Jorge et al.,
        "Make Some Noise: Reliable and Efficient Single-Step Adversarial
        Training", NeurIPS 2022,
        [arXiv:2202.01181](https://arxiv.org/abs/2202.01181). Shafahi et al.,
        "Adversarial Training for Free!", NeurIPS 2019,
        [arXiv:1904.12843](https://arxiv.org/abs/1904.12843).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))
    method = _check_method(method)
    epochs = _validation.check_int("epochs", epochs, minimum=1)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    eps = _validation.check_number("eps", eps, minimum=0.0)
    steps = _validation.check_int("steps", steps, minimum=1)
    if eps_warmup_epochs is None:
        eps_warmup_epochs = epochs // 3
    eps_warmup_epochs = _validation.check_int(
        "eps_warmup_epochs", eps_warmup_epochs, minimum=0
    )
    monitor = _validation.check_bool("monitor", monitor)
    monitor_samples = _validation.check_int(
        "monitor_samples", monitor_samples, minimum=1
    )
    seed = _validation.check_int("seed", seed, minimum=0)
    num_classes = _num_classes(model)
    x, y = _check_data("data", data, num_classes)
    if validation_data is not None:
        validation_data = _check_data(
            "validation_data", validation_data, num_classes
        )
    if log_dir is not None:
        log_dir = str(log_dir)
    train = None
    if generated is not None:
        real_fraction = _validation.check_number(
            "real_fraction", real_fraction, minimum=0.0, maximum=1.0
        )
        if real_fraction == 0.0:
            raise ValueError(
                _validation.invalid(
                    "real_fraction",
                    "a share of real samples in (0, 1] (an epoch is one "
                    "pass over the real data)",
                    real_fraction,
                )
            )
        if not isinstance(generated, tf.data.Dataset):
            generated = _check_data("generated", generated, num_classes)
        train = mix_datasets(
            (x, y),
            generated,
            real_fraction=real_fraction,
            batch_size=batch_size,
            seed=seed,
        )
    compiled = getattr(model, "compiled", False)
    if ema_momentum is not None:
        ema_momentum = _validation.check_number(
            "ema_momentum", ema_momentum, minimum=0.0, maximum=1.0
        )
        if ema_momentum >= 1.0 or compiled:
            raise ValueError(
                _validation.invalid(
                    "ema_momentum",
                    "a float in [0, 1) for a model robust_fit compiles (a "
                    "compiled model keeps its optimizer: compile it with "
                    "use_ema=True and ema_momentum yourself)",
                    f"{ema_momentum} for a "
                    + ("compiled" if compiled else "uncompiled")
                    + " model",
                )
            )
    if not compiled:
        model.compile(
            keras.optimizers.Adam(
                1e-3,
                use_ema=ema_momentum is not None,
                ema_momentum=0.99 if ema_momentum is None else ema_momentum,
            ),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    callbacks = _callbacks(
        method,
        eps,
        steps,
        eps_warmup_epochs,
        seed,
        guard_data=(x[:_GUARD_SAMPLES], y[:_GUARD_SAMPLES]),
        validation_data=validation_data if monitor else None,
        monitor_samples=monitor_samples,
        log_dir=log_dir,
    )
    keras.utils.set_random_seed(seed)
    start = time.perf_counter()
    if train is None:
        history = model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        history = model.fit(
            train,
            epochs=epochs,
            validation_data=validation_data,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the mixed batches are shuffled already
        )
    seconds = time.perf_counter() - start
    guards = [cb for cb in callbacks if isinstance(cb, OverfittingGuard)]
    chance = _chance_warning(model, x, y)
    if chance is not None:
        warnings.warn(chance, UserWarning, stacklevel=2)
    return TrainingRun(
        model=model,
        history=history,
        train_seconds=seconds,
        stopped_epoch=guards[0].stopped_epoch if guards else None,
        warnings=() if chance is None else (chance,),
    )
