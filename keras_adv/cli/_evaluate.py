"""`keras-adv evaluate`: the robustness report of a saved classifier."""

import argparse
import zipfile
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING
from typing import Any

import keras
import numpy as np

from keras_adv.cli import _common
from keras_adv.cli._errors import UsageError
from keras_adv.cli._errors import summary

if TYPE_CHECKING:
    from keras_adv.attacks import Attack


def load_model(path: str) -> keras.Model:
    """Loads a checked `.keras` file; failures are usage errors."""
    try:
        return keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as e:
        raise UsageError(
            f"MODEL: cannot load {path} as a Keras model: {summary(e)}"
        ) from e


def _shape(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def check_model_fits(
    model: keras.Model, x: np.ndarray, y: np.ndarray, path: str, spec: str
) -> int | None:
    """One input matching the data, one `(batch, classes)` output."""
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs:
        return None  # a subclassed model: its first call will tell
    if len(inputs) != 1:
        raise ValueError(
            f"MODEL {path} has {len(inputs)} inputs; keras-adv evaluates "
            "classifiers with one input"
        )
    if len(outputs) != 1:
        raise ValueError(
            f"MODEL {path} has {len(outputs)} outputs; keras-adv evaluates "
            "classifiers with one output of shape (batch, classes)"
        )
    expected = tuple(inputs[0].shape[1:])
    received = tuple(x.shape[1:])
    if len(expected) != len(received) or any(
        e is not None and e != r for e, r in zip(expected, received)
    ):
        raise ValueError(
            f"MODEL {path} expects inputs of shape {_shape(expected)} but "
            f"--data {spec} has samples of shape {_shape(received)}"
        )
    output_shape = tuple(outputs[0].shape)
    if len(output_shape) != 2 or output_shape[-1] is None:
        raise ValueError(
            f"MODEL {path} has an output of shape {_shape(output_shape)}; "
            "keras-adv evaluates classifiers with one output of shape "
            "(batch, classes)"
        )
    num_classes = int(output_shape[-1])
    _common.check_labels(y, num_classes, path)
    return num_classes


# --steps sets the iterations of these step-counted attacks; the others
# keep their name's settings (pgd20: 20; APGD, FAB, Square: paper defaults).
STEPPED = ("pgd", "bim", "mim")


def _make_attacks(
    attacks: ModuleType, names: Sequence[str], norm: str, steps: int, seed: int
) -> dict[str, "Attack"]:
    """`name -> Attack` of `keras_adv.attacks.get` for checked names."""
    made: dict[str, Attack] = {}
    for name in names:
        if name.startswith("generator:"):
            count = sum(key.startswith("generator") for key in made)
            key = "generator" if not count else f"generator_{count + 1}"
            made[key] = _generator_attack(attacks, name, norm)
            continue
        overrides = {"norm": norm, "seed": seed}
        if name in STEPPED:
            overrides["steps"] = steps
        made[name] = attacks.get(name, **overrides)
    return made


def _generator_attack(attacks: ModuleType, name: str, norm: str) -> "Attack":
    """A `GeneratorAttack` from a saved generator; failures are usage errors."""
    try:
        return attacks.get(name, norm=norm)
    except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as e:
        raise UsageError(
            f"--attack {name}: cannot load a generator: {summary(e)}"
        ) from e


def _certify(
    certification: ModuleType, model: keras.Model, args: argparse.Namespace
) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """`certify` and `certify_options` of `evaluate_robustness` from the
    checked `--certify`, `--sigma`, `--n0`, `--n`, `--alpha`."""
    if not args.certify:
        return None, None
    certify: list[Any] = []
    options = None
    for method in args.certify:
        if method != "smoothing":
            certify.append(method)
            continue
        certify.append(
            certification.SmoothedClassifier(
                model, sigma=args.sigma, seed=args.seed
            )
        )
        # Unset options keep the library's defaults.
        options = {
            key: getattr(args, key)
            for key in ("n0", "n", "alpha")
            if getattr(args, key) is not None
        }
    return certify, options


def _certified_names(args: argparse.Namespace) -> str:
    if not args.certify:
        return ""
    names = [
        f"smoothing (sigma {args.sigma:g})" if m == "smoothing" else m
        for m in args.certify
    ]
    return f"; certified: {', '.join(names)}"


def run(args: argparse.Namespace) -> int:
    """Runs `keras-adv evaluate` with checked `args`."""
    keras_adv = _common.load_library()
    # TensorFlow loads with these: imported once the command runs.
    from keras_adv.evaluation._attack_set import attack_label
    from keras_adv.evaluation._attack_set import attack_steps

    model = load_model(args.model)
    x, y = _common.load_data(args.data, "test", args.max_samples)
    check_model_fits(model, x, y, args.model, args.data)
    attacks = _make_attacks(
        keras_adv.attacks, args.attack, args.norm, args.steps, args.seed
    )
    certify, certify_options = _certify(keras_adv.certification, model, args)
    labels = [
        attack_label(name, type(attack).__name__, attack_steps(attack))
        for name, attack in attacks.items()
    ]
    print(
        f"Evaluating {args.model} on {len(x)} samples of {args.data}: "
        f"{', '.join(labels)} ({args.norm}) at eps "
        f"{', '.join(f'{e:g}' for e in args.eps)}{_certified_names(args)}",
        flush=True,
    )
    report = keras_adv.evaluation.evaluate_robustness(
        model,
        (x, y),
        attacks=attacks,
        epsilons=args.eps,
        batch_size=args.batch_size,
        checks=not args.no_checks,
        seed=args.seed,
        verbose=_common.progress_verbosity(args.quiet),
        certify=certify,
        certify_options=certify_options,
    )
    print()
    print(report.table())
    print()
    for path in _common.write_outputs(report, args.out):
        print(f"wrote {path}")
    return 0
