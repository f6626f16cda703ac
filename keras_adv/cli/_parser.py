"""The argument parser of `keras-adv` (standard library only).

The parser class (one-line errors, suggestions) and the options of each
command; the value types of the options are in `_values`.
"""

import argparse
import sys
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any
from typing import NoReturn

from keras_adv import _names
from keras_adv.cli import _values
from keras_adv.cli._errors import PROG
from keras_adv.cli._errors import UsageError
from keras_adv.version import __version__

COMMANDS = ("evaluate", "train", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit code 2.

    Errors name the help of the parser that failed (`keras-adv evaluate
    --help` for an option of `evaluate`) and suggest the closest command
    or option for a misspelt one.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: list[str] = []  # option strings, for suggestions
        # subcommand name -> parser (top level)
        self.commands: dict[str, _Parser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        action = super().add_argument(*args, **kwargs)
        self.options += action.option_strings
        return action

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")

    def parse_args(
        self,
        args: Iterable[str] | None = None,
        namespace: Any = None,
    ) -> Any:
        args = sys.argv[1:] if args is None else list(args)
        self._check_command(args)
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self.commands.get(getattr(namespace, "command", ""))
            options = self.options + (parser.options if parser else [])
            (parser or self).error(_unrecognized(extras, options))
        return namespace

    def _check_command(self, args: list[str]) -> None:
        """An unknown command or option before the command, with the
        closest one (argparse would only say that COMMAND is missing)."""
        if not self.commands:
            return
        name = next((arg for arg in args if not arg.startswith("-")), None)
        before = args if name is None else args[: args.index(name)]
        unknown = [arg for arg in before if not self._known(arg)]
        if unknown:
            self.error(_unrecognized(unknown, self.options))
        if name is None or name in self.commands:
            return
        choices = ", ".join(repr(command) for command in self.commands)
        guess = _names.closest(name, tuple(self.commands), {})
        hint = f"; did you mean {guess!r}?" if guess else ""
        self.error(
            f"argument COMMAND: invalid choice: {name!r} (choose from "
            f"{choices}){hint}"
        )

    def _known(self, arg: str) -> bool:
        """An option of this parser, or an abbreviation argparse accepts."""
        if arg in self.options:
            return True
        head = arg.partition("=")[0]
        return head.startswith("--") and any(
            option.startswith(head) for option in self.options
        )


def _unrecognized(extras: Sequence[str], options: Sequence[str]) -> str:
    """argparse's message for `extras`, with the closest known option."""
    message = f"unrecognized arguments: {' '.join(extras)}"
    for extra in extras:
        if extra.startswith("-"):
            guess = _names.closest(extra.partition("=")[0], options, {})
            if guess is not None:
                return f"{message}; did you mean {guess!r}?"
    return message


def _common(parser: argparse.ArgumentParser, quiet_help: str) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of any error",
    )


def build_parser() -> _Parser:
    """The argparse parser of `keras-adv` and its subcommands."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Adversarial robustness for Keras models: evaluate a saved model "
            "under attacks, train one, or run the adversarial-training demo."
        ),
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of any error (also accepted after "
        "the command)",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the installed keras_adv version and exit",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    sub.required = True
    _add_evaluate(sub)
    _add_train(sub)
    _add_demo(sub)
    parser.commands = sub.choices
    return parser


def _add_evaluate(sub: Any) -> None:
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
        "fashion_mnist, cifar10; prepared in the local tfds data "
        "directory) or npz:PATH (arrays x, y); the test split is used "
        "(default: %(default)s)",
    )
    evaluate.add_argument(
        "--attack",
        type=_values.parse_attacks,
        default="fgsm,pgd",
        help=f"comma-separated names of keras_adv.attacks.get among "
        f"{', '.join(_values.ATTACKS)} and {_values.GENERATOR} (a saved AdvGAN "
        "generator) (default: %(default)s)",
    )
    evaluate.add_argument(
        "--eps",
        type=_values.parse_eps,
        default="0.1,0.2,0.3",
        help="comma-separated radii in input units; 0 (clean) is always "
        "added (default: %(default)s)",
    )
    evaluate.add_argument(
        "--norm",
        default="linf",
        choices=_values.NORMS,
        help="threat model (default: %(default)s)",
    )
    evaluate.add_argument(
        "--steps",
        type=_values.positive,
        default=20,
        help="steps of pgd, bim and mim; pgd20 runs 20 and the "
        "reference-grade attacks their paper defaults (default: "
        "%(default)s)",
    )
    evaluate.add_argument(
        "--max-samples",
        type=_values.positive,
        default=None,
        help="evaluate only the first N samples (default: all)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=_values.positive,
        default=128,
        help="batch size (default: %(default)s)",
    )
    evaluate.add_argument(
        "--seed",
        type=_values.non_negative,
        default=0,
        help="seed of random starts and checks (default: %(default)s)",
    )
    evaluate.add_argument(
        "--no-checks",
        action="store_true",
        help="skip the gradient-masking sanity checks",
    )
    evaluate.add_argument(
        "--certify",
        type=_values.parse_certify,
        default=None,
        help=f"comma-separated certification methods among "
        f"{', '.join(_values.CERTIFY_METHODS)}: certified accuracy (a lower "
        "bound) "
        "beside the attacks at each eps; the bounds verify the model, "
        "smoothing (needs --sigma and --norm l2) certifies the smoothed "
        "classifier (default: none)",
    )
    evaluate.add_argument(
        "--sigma",
        type=_values.sigma,
        default=None,
        help="noise standard deviation of --certify smoothing, in input "
        "units: the noise the model was trained with",
    )
    evaluate.add_argument(
        "--n0",
        type=_values.positive,
        default=None,
        help="smoothing: noise samples per input that pick the class "
        "(default: 100)",
    )
    evaluate.add_argument(
        "--n",
        type=_values.positive,
        default=None,
        help="smoothing: noise samples per input that certify it "
        "(default: 10000)",
    )
    evaluate.add_argument(
        "--alpha",
        type=_values.alpha,
        default=None,
        help="smoothing: failure probability of each certificate "
        "(default: 0.001)",
    )
    evaluate.add_argument(
        "--out",
        default="robustness_report",
        help="output directory for report.json and robustness.png "
        "(default: %(default)s)",
    )
    _common(evaluate, "no progress bar")


def _add_train(sub: Any) -> None:
    train = sub.add_parser(
        "train",
        help="train a small CNN (optionally adversarially) and save it",
        description=(
            "Trains keras_adv.models.small_cnn on the training split of "
            "--data with keras_adv.recipes.robust_fit (the "
            "AdversarialTraining callback, an eps warm-up over the first "
            "third of the epochs and, for fgsm_rs, the OverfittingGuard) "
            "and saves it as a .keras file, ready for `keras-adv evaluate`."
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
        type=_values.parse_method,
        default="pgd",
        help=f"training method among {', '.join(_values.TRAIN_METHODS)} (the "
        "objectives of keras_adv.training.get; clean: plain fit) "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--eps",
        type=_values.radius,
        default=0.3,
        help="L-inf radius of the training attack (default: %(default)s)",
    )
    train.add_argument(
        "--steps",
        type=_values.positive,
        default=7,
        help="PGD steps of pgd and trades (default: %(default)s)",
    )
    train.add_argument(
        "--epochs",
        type=_values.positive,
        default=15,
        help="epochs; eps warms up over the first third (default: %(default)s)",
    )
    train.add_argument(
        "--batch-size",
        type=_values.positive,
        default=32,
        help="batch size (default: %(default)s)",
    )
    train.add_argument(
        "--max-samples",
        type=_values.positive,
        default=None,
        help="train on the first N samples (default: all)",
    )
    train.add_argument(
        "--seed",
        type=_values.non_negative,
        default=0,
        help="random seed (default: %(default)s)",
    )
    generated = train.add_argument_group(
        "generated data (Gowal et al. 2021; docs: Training on generated data)"
    )
    generated.add_argument(
        "--generated",
        type=_values.non_negative,
        default=0,
        metavar="N",
        help="also train on N images of a class-conditional GAN trained on "
        "the training split, labelled by a clean classifier "
        "(keras_adv.recipes.generate_training_data; 28x28 or 32x32 images) "
        "(default: %(default)s, real data only)",
    )
    generated.add_argument(
        "--real-fraction",
        type=_values.real_fraction,
        default=0.3,
        help="share of real images in every batch with --generated "
        "(default: %(default)s)",
    )
    generated.add_argument(
        "--gan-epochs",
        type=_values.positive,
        default=100,
        help="epochs of the GAN with --generated (default: %(default)s)",
    )
    train.add_argument(
        "--ema",
        type=_values.momentum,
        default=None,
        metavar="MOMENTUM",
        help="average the weights (Keras' optimizer EMA with this momentum, "
        "e.g. 0.999); the saved model holds the averages (default: off)",
    )
    _common(train, "no progress output")


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo",
        help="adversarial training + TensorBoard monitoring + final report",
        description=(
            "Runs keras_adv.recipes.mnist_adversarial_training, the "
            "README's recipe: trains keras_adv.models.mnist_cnn with PGD-7 "
            "at eps 0.3 (batch 16, eps warm-up over the first third of the "
            "epochs) on the embedded MNIST subset with the "
            "AdversarialTraining and RobustnessMonitor callbacks and Keras' "
            "TensorBoard callback, then evaluates it on the 1,000 test "
            "images (FGSM and PGD-20 at eps 0.1, 0.2, 0.3) and writes "
            "report.json, robustness.png, model.keras and TensorBoard logs "
            "to --out. Offline; the defaults take about 4 minutes on 2 CPU "
            "cores."
        ),
    )
    demo.add_argument(
        "--epochs",
        type=_values.positive,
        default=20,
        help="training epochs; eps warms up over the first third "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--out",
        default="keras_adv_demo",
        help="output directory (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=_values.non_negative,
        default=0,
        help="random seed (default: %(default)s)",
    )
    demo.add_argument(
        "--train-samples",
        type=_values.positive,
        default=4000,
        help="training images used, up to 4000 (default: %(default)s)",
    )
    demo.add_argument(
        "--max-samples",
        type=_values.positive,
        default=1000,
        help="test images of the final report, up to 1000 "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--monitor-samples",
        type=_values.positive,
        default=256,
        help="test images evaluated by the monitor every epoch "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_values.positive,
        default=16,
        help="training batch size (default: %(default)s)",
    )
    _common(demo, "no progress bars")


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in `argv`, or None (for error prefixes)."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None
