"""Shared steps of the commands (imported after the arguments are checked)."""

import importlib.util
import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

import keras_adv
from keras_adv import _validation
from keras_adv.cli._errors import UsageError
from keras_adv.cli._errors import summary

if TYPE_CHECKING:
    from keras_adv.evaluation import RobustnessReport


def load_library() -> ModuleType:
    """Imports every keras_adv subpackage (registers its classes)."""
    for name in keras_adv.__all__:
        getattr(keras_adv, name)
    return keras_adv


def progress_verbosity(quiet: bool) -> int:
    """`fit` verbosity: bars on a terminal, one line per epoch in a log."""
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def load_data(
    spec: str, split: str, max_samples: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """`(x, y)` from a checked data spec; bad contents are usage errors."""
    try:
        return keras_adv.datasets.from_spec(
            spec, split=split, max_samples=max_samples
        )
    except (ValueError, OSError) as error:
        raise UsageError(f"--data: {summary(error)}") from error


def check_labels(
    y: np.ndarray, num_classes: int | None = None, model: str | None = None
) -> None:
    """Labels must be class ids in `[0, num_classes)` (the shared check)."""
    ids = _validation.class_ids(y, "--data", one_hot=False)
    if num_classes is not None:
        owner = f"the {num_classes} outputs of MODEL {model}"
        _validation.check_classes(ids, num_classes, "--data", owner)


def write_outputs(report: "RobustnessReport", out: str) -> list[str]:
    """report.json and robustness.png in `out`; returns the paths."""
    paths = [os.path.join(out, "report.json")]
    report.to_json(paths[0])
    if importlib.util.find_spec("matplotlib") is not None:
        paths.append(report.plot(os.path.join(out, "robustness.png")))
    else:
        print(
            "(no plot: matplotlib is not installed; pip install matplotlib)",
            file=sys.stderr,
        )
    return paths
