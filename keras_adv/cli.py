"""The `keras-adv` command: `evaluate` a saved model, `train`, `demo`.

    keras-adv evaluate MODEL.keras --data mnist-subset --attack fgsm,pgd \\
        --eps 0.1,0.2,0.3 --out DIR
    keras-adv train MODEL.keras [--method pgd] [--eps 0.3] [--epochs 15]
    keras-adv demo [--epochs 15] [--out keras_adv_demo] [--seed 0]

Arguments are checked before any model or data is loaded. Usage errors
(unknown attack, malformed eps list, missing model or data file, bad data
spec) print one line on stderr and exit with code 2; errors while running
(e.g. a model that does not fit the data) print one line and exit with
code 1. No tracebacks.
"""

import argparse
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROG = "keras-adv"
ATTACKS = ("fgsm", "pgd", "bim", "mim")
NORMS = ("linf", "l2")
TRAIN_METHODS = ("clean", "pgd", "fgsm-rs", "trades")
DEMO_EPS = 0.3


def _progress_verbosity(quiet):
    """1 (progress bar) on a terminal, 0 when quiet or writing to a log.

    Keras' progress bar writes terminal control codes that clutter logs.
    """
    return 0 if quiet or not sys.stdout.isatty() else 1


class UsageError(Exception):
    """A bad command line: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2."""

    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ------------------------------------------------------------ parsing
def parse_attacks(text):
    """`"fgsm,pgd"` -> `["fgsm", "pgd"]` (lower case, no duplicates)."""
    names = [part.strip().lower() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise UsageError(
            f"--attack: expected a comma-separated list of {', '.join(ATTACKS)}"
            f"; received {text!r}"
        )
    unknown = [name for name in names if name not in ATTACKS]
    if unknown:
        raise UsageError(
            f"--attack: unknown attack {unknown[0]!r}; choose from "
            f"{', '.join(ATTACKS)}"
        )
    return list(dict.fromkeys(names))


def parse_eps(text):
    """`"0.1,0.2"` -> `[0.0, 0.1, 0.2]`: 0 (clean) is always included."""
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise UsageError(
                "--eps: expected comma-separated numbers >= 0, e.g. "
                f"0.1,0.2,0.3; received {text!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise UsageError(
                f"--eps: radii must be finite numbers >= 0; received {part!r}"
            )
        values.append(value)
    return sorted(set([0.0] + values))


def _positive_int(name):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, received {text!r}"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, received {text!r}"
            )
        return value

    parse.__name__ = name
    return parse


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0, received {text!r}"
        )
    return value


def _eps_value(text):
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, received {text!r}"
        )
    return value


def _check_data_spec(spec):
    """Catches malformed specs and missing files before importing TF."""
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "mnist-subset" and not arg:
        return
    if kind == "tfds" and arg:
        return
    if kind == "npz" and arg:
        if not os.path.isfile(arg):
            raise UsageError(f"--data: no such npz file: {arg}")
        return
    raise UsageError(
        f"--data: expected mnist-subset, tfds:NAME or npz:PATH; received "
        f"{spec!r}"
    )


def build_parser():
    """The argparse parser of `keras-adv` and its subcommands."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Adversarial robustness for Keras models: evaluate a saved model "
            "under attacks, or run the adversarial-training demo."
        ),
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    sub.required = True

    evaluate = sub.add_parser(
        "evaluate",
        help="robustness report of a saved .keras classifier",
        description=(
            "Evaluates a saved Keras classifier (logits or probabilities) "
            "under each attack at each eps, prints the report table and "
            "writes report.json and robustness.png to --out."
        ),
    )
    evaluate.add_argument("model", help="path of a .keras model file")
    evaluate.add_argument(
        "--data",
        default="mnist-subset",
        help="mnist-subset (embedded, offline), tfds:NAME (mnist, "
        "fashion_mnist, cifar10) or npz:PATH (arrays x, y); the test split "
        "is used (default: %(default)s)",
    )
    evaluate.add_argument(
        "--attack",
        default="fgsm,pgd",
        help=f"comma-separated attacks among {', '.join(ATTACKS)} "
        "(default: %(default)s)",
    )
    evaluate.add_argument(
        "--eps",
        default="0.1,0.2,0.3",
        help="comma-separated radii in input units; 0 (clean) is always "
        "added (default: %(default)s)",
    )
    evaluate.add_argument(
        "--norm",
        default="linf",
        choices=NORMS,
        help="threat model (default: %(default)s)",
    )
    evaluate.add_argument(
        "--steps",
        type=_positive_int("steps"),
        default=20,
        help="steps of pgd, bim and mim (default: %(default)s)",
    )
    evaluate.add_argument(
        "--max-samples",
        type=_positive_int("max_samples"),
        default=None,
        help="evaluate only the first N samples (default: all)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=_positive_int("batch_size"),
        default=128,
        help="batch size (default: %(default)s)",
    )
    evaluate.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed of random starts and checks (default: %(default)s)",
    )
    evaluate.add_argument(
        "--no-checks",
        action="store_true",
        help="skip the gradient-masking sanity checks",
    )
    evaluate.add_argument(
        "--out",
        default="robustness_report",
        help="output directory for report.json and robustness.png "
        "(default: %(default)s)",
    )
    evaluate.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar"
    )
    evaluate.set_defaults(run=run_evaluate)

    train = sub.add_parser(
        "train",
        help="train a small CNN (optionally adversarially) and save it",
        description=(
            "Trains keras_adv.testing.small_cnn on the training split of "
            "--data with the AdversarialTraining callback (or clean) and "
            "saves it as a .keras file, ready for `keras-adv evaluate`."
        ),
    )
    train.add_argument(
        "out", metavar="MODEL", help="path of the .keras file to write"
    )
    train.add_argument(
        "--data",
        default="mnist-subset",
        help="mnist-subset, tfds:NAME or npz:PATH; the train split is used "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--method",
        default="pgd",
        choices=TRAIN_METHODS,
        help="training objective (default: %(default)s)",
    )
    train.add_argument(
        "--eps",
        type=_eps_value,
        default=DEMO_EPS,
        help="L-inf radius of the training attack (default: %(default)s)",
    )
    train.add_argument(
        "--steps",
        type=_positive_int("steps"),
        default=7,
        help="PGD steps of pgd and trades (default: %(default)s)",
    )
    train.add_argument(
        "--epochs",
        type=_positive_int("epochs"),
        default=15,
        help="epochs; eps warms up over the first half (default: %(default)s)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int("batch_size"),
        default=32,
        help="batch size (default: %(default)s)",
    )
    train.add_argument(
        "--max-samples",
        type=_positive_int("max_samples"),
        default=None,
        help="train on the first N samples (default: all)",
    )
    train.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="random seed (default: %(default)s)",
    )
    train.add_argument(
        "-q", "--quiet", action="store_true", help="no progress output"
    )
    train.set_defaults(run=run_train)

    demo = sub.add_parser(
        "demo",
        help="adversarial training + TensorBoard monitoring + final report",
        description=(
            "Trains a small CNN adversarially (PGD-7, eps 0.3, with eps "
            "warm-up) on the embedded MNIST subset with the "
            "AdversarialTraining and RobustnessMonitor callbacks and "
            "Keras' TensorBoard callback, then evaluates it on the 1,000 "
            "test images (FGSM and PGD-20 at eps 0.1, 0.2, 0.3) and writes "
            "report.json, robustness.png and TensorBoard logs to --out. "
            "Offline; the defaults take about 5 minutes on 2 CPU cores."
        ),
    )
    demo.add_argument(
        "--epochs",
        type=_positive_int("epochs"),
        default=15,
        help="training epochs; eps warms up over the first half "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--out",
        default="keras_adv_demo",
        help="output directory (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="random seed (default: %(default)s)",
    )
    demo.add_argument(
        "--train-samples",
        type=_positive_int("train_samples"),
        default=4000,
        help="training images used, up to 4000 (default: %(default)s)",
    )
    demo.add_argument(
        "--max-samples",
        type=_positive_int("max_samples"),
        default=1000,
        help="test images of the final report, up to 1000 "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--monitor-samples",
        type=_positive_int("monitor_samples"),
        default=256,
        help="test images evaluated by the monitor every epoch "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive_int("batch_size"),
        default=32,
        help="training batch size (default: %(default)s)",
    )
    demo.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars"
    )
    demo.set_defaults(run=run_demo)
    return parser


def _prepare_out(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out: {path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--out: cannot create {path}: {e.strerror}") from e
    return path


def _first_line(error):
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


# ------------------------------------------------------------ commands
def _make_attacks(names, norm, steps, seed):
    from keras_adv import attacks

    classes = {
        "fgsm": attacks.FGSM,
        "pgd": attacks.PGD,
        "bim": attacks.BIM,
        "mim": attacks.MIM,
    }
    made = {}
    for name in names:
        kwargs = {"norm": norm, "seed": seed}
        if name != "fgsm":
            kwargs["steps"] = steps
        made[name] = classes[name](**kwargs)
    return made


def _write_outputs(report, out):
    """report.json and robustness.png in `out`; returns the paths."""
    from keras_adv.evaluation import plots

    paths = [os.path.join(out, "report.json")]
    report.to_json(paths[0])
    if plots.has_matplotlib():
        paths.append(report.plot(os.path.join(out, "robustness.png")))
    else:
        print(
            "(no plot: matplotlib is not installed; pip install matplotlib)",
            file=sys.stderr,
        )
    return paths


def run_evaluate(args):
    """`keras-adv evaluate`."""
    names = parse_attacks(args.attack)
    epsilons = parse_eps(args.eps)
    if not os.path.isfile(args.model):
        raise UsageError(f"MODEL: no such file: {args.model}")
    _check_data_spec(args.data)
    out = _prepare_out(args.out)

    import keras

    import keras_adv
    from keras_adv.evaluation import evaluate_robustness

    try:
        model = keras.saving.load_model(args.model, compile=False)
    except Exception as e:
        raise UsageError(
            f"MODEL: cannot load {args.model} as a Keras model: "
            f"{_first_line(e)}"
        ) from e
    try:
        x, y = keras_adv.datasets.from_spec(
            args.data, split="test", max_samples=args.max_samples
        )
    except Exception as e:
        raise UsageError(f"--data: {_first_line(e)}") from e
    attacks = _make_attacks(names, args.norm, args.steps, args.seed)
    print(
        f"Evaluating {args.model} on {len(x)} samples of {args.data}: "
        f"{', '.join(names)} ({args.norm}) at eps "
        f"{', '.join(f'{e:g}' for e in epsilons)}",
        flush=True,
    )
    report = evaluate_robustness(
        model,
        (x, y),
        attacks=attacks,
        epsilons=epsilons,
        batch_size=args.batch_size,
        checks=not args.no_checks,
        seed=args.seed,
        verbose=_progress_verbosity(args.quiet),
    )
    print()
    print(report.table())
    print()
    for path in _write_outputs(report, out):
        print(f"wrote {path}")
    return 0


def _train_callback(method, eps, steps, epochs, seed):
    from keras_adv.attacks import PGD
    from keras_adv.callbacks import AdversarialTraining

    if method == "clean":
        return []
    attack = PGD(eps=eps, steps=steps, step_size=eps / 3.0, seed=seed)
    objective = {"pgd": "adversarial"}.get(method, method)
    return [
        AdversarialTraining(
            attack, objective=objective, eps_warmup_epochs=max(1, epochs // 2)
        )
    ]


def run_train(args):
    """`keras-adv train`: a small CNN, clean or adversarially trained."""
    if not args.out.endswith(".keras"):
        raise UsageError(f"MODEL: expected a path ending in .keras: {args.out}")
    parent = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(parent):
        raise UsageError(f"MODEL: no such directory: {parent}")
    _check_data_spec(args.data)

    import keras
    import numpy as np

    import keras_adv
    from keras_adv.testing import small_cnn

    try:
        x, y = keras_adv.datasets.from_spec(
            args.data, split="train", max_samples=args.max_samples
        )
    except Exception as e:
        raise UsageError(f"--data: {_first_line(e)}") from e
    keras.utils.set_random_seed(args.seed)
    model = small_cnn(
        input_shape=x.shape[1:],
        num_classes=int(np.max(y)) + 1,
        seed=args.seed,
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    print(
        f"Training a small CNN ({args.method}, eps {args.eps:g}) on "
        f"{len(x)} samples of {args.data}, {args.epochs} epoch(s).",
        flush=True,
    )
    model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        callbacks=_train_callback(
            args.method, args.eps, args.steps, args.epochs, args.seed
        ),
        verbose=0 if args.quiet else 2,
    )
    model.save(args.out)
    print(f"wrote {args.out}")
    print(f"Evaluate it with: keras-adv evaluate {args.out} --data {args.data}")
    return 0


def run_demo(args):
    """`keras-adv demo`: adversarial training, monitoring, final report."""
    out = _prepare_out(args.out)
    log_dir = os.path.join(out, "logs")

    import keras

    import keras_adv
    from keras_adv.attacks import FGSM
    from keras_adv.attacks import PGD
    from keras_adv.testing import small_cnn

    verbose = 0 if args.quiet else 2
    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_train = x_train[: args.train_samples]
    y_train = y_train[: args.train_samples]
    x_test, y_test = x_test[: args.max_samples], y_test[: args.max_samples]

    keras.utils.set_random_seed(args.seed)
    model = small_cnn(seed=args.seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    warmup = max(1, args.epochs // 2)
    trainer = keras_adv.callbacks.AdversarialTraining(
        PGD(eps=DEMO_EPS, steps=7, step_size=0.1, seed=args.seed),
        eps_warmup_epochs=warmup,
    )
    monitor = keras_adv.callbacks.RobustnessMonitor(
        (x_test, y_test),
        attacks={
            "fgsm": FGSM(eps=DEMO_EPS),
            "pgd": PGD(eps=DEMO_EPS, steps=10, seed=args.seed),
        },
        max_samples=args.monitor_samples,
        log_dir=log_dir,
        images=8,
        seed=args.seed,
    )
    # The monitor goes before TensorBoard so that TensorBoard also logs
    # the monitor's val_* keys.
    tensorboard = keras.callbacks.TensorBoard(log_dir=log_dir)
    print(
        f"Adversarial training (PGD-7, eps {DEMO_EPS}, eps warm-up over "
        f"{warmup} epoch(s)) of a small CNN on {len(x_train)} MNIST images, "
        f"{args.epochs} epoch(s); robustness monitored on "
        f"{min(args.monitor_samples, len(x_test))} test images.",
        flush=True,
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(x_test, y_test),
        callbacks=[trainer, monitor, tensorboard],
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - start
    h = history.history
    print(
        f"Training took {train_seconds:.0f} s. Last epoch: adversarial "
        f"training accuracy {100 * h['adv_accuracy'][-1]:.1f}%, clean "
        f"validation accuracy {100 * h['val_accuracy'][-1]:.1f}%, monitor "
        f"robust accuracy {100 * h['val_robust_accuracy'][-1]:.1f}% "
        f"(eps {DEMO_EPS}).",
        flush=True,
    )
    model_path = os.path.join(out, "model.keras")
    model.save(model_path)

    print(f"\nFinal evaluation on {len(x_test)} test images:", flush=True)
    report = keras_adv.evaluation.evaluate_robustness(
        model,
        (x_test, y_test),
        attacks={
            "fgsm": FGSM(),
            "pgd": PGD(steps=20, seed=args.seed),
        },
        epsilons=[0.0, 0.1, 0.2, 0.3],
        seed=args.seed,
        verbose=_progress_verbosity(args.quiet),
    )
    print()
    print(report.table())
    print()
    for path in _write_outputs(report, out) + [model_path]:
        print(f"wrote {path}")
    print(
        f"\nReached: clean {100 * report.clean_accuracy:.1f}%, worst-case "
        f"robust accuracy {100 * report.worst_case(0.3):.1f}% at eps 0.3 "
        f"after {args.epochs} epoch(s) of PGD adversarial training."
    )
    print("\nView the training run in TensorBoard:")
    print(f"    tensorboard --logdir {log_dir}")
    return 0


# --------------------------------------------------------------- main
def main(argv=None):
    """Entry point of `keras-adv`; returns (or exits with) a status code.

    Args:
        argv: List of arguments without the program name. Defaults to
            `sys.argv[1:]`.

    Returns:
        0 on success. Usage errors exit with code 2 and runtime errors with
        code 1 (`SystemExit`), each with one line on stderr.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = argv[0] if argv and not argv[0].startswith("-") else None
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except UsageError as e:
        known = ("evaluate", "demo", "train")
        where = f"{PROG} {command}" if command in known else PROG
        print(f"{where}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"{PROG}: error: {_first_line(e)}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    sys.exit(main())
