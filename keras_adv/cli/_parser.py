"""The argument parser of `keras-adv` (standard library only)."""

import argparse
import math
import sys
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import NoReturn

from keras_adv import _names
from keras_adv.cli._errors import PROG
from keras_adv.cli._errors import UsageError
from keras_adv.version import __version__

COMMANDS = ("evaluate", "train", "demo")
# The names of keras_adv.attacks.get and of the recipes' methods (the
# training objectives of keras_adv.training.get and "clean").
ATTACKS = tuple(_names.ATTACKS)
TRAIN_METHODS = _names.RECIPE_METHODS
# The methods of evaluate_robustness(certify=...): bounds and smoothing.
CERTIFY_METHODS = _names.CERTIFY_METHODS
NORMS = ("linf", "l2")
_GENERATOR = f"{_names.GENERATOR}:PATH.keras"


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


def _unknown(
    kind: str,
    text: str,
    names: Sequence[str],
    aliases: Mapping[str, str],
    extra: str = "",
) -> argparse.ArgumentTypeError:
    guess = _names.closest(text, names, aliases)
    hint = f"; did you mean {guess!r}?" if guess else ""
    return argparse.ArgumentTypeError(
        f"unknown {kind} {text.strip()!r}; choose from "
        f"{', '.join(names)}{extra}{hint}"
    )


def _attack_name(part: str) -> str:
    """The canonical name of an attack; `generator:PATH` keeps its path."""
    path = _names.generator_path(part)
    if path is not None:
        if not path:
            raise argparse.ArgumentTypeError(
                f"expected {_GENERATOR} (a saved generator); received {part!r}"
            )
        return f"{_names.GENERATOR}:{path}"
    name = _names.canonical(part, _names.ATTACKS, _names.ATTACK_ALIASES)
    if name is None:
        raise _unknown(
            "attack",
            part,
            ATTACKS,
            _names.ATTACK_ALIASES,
            extra=f" or {_GENERATOR}",
        )
    return name


def parse_attacks(text: str) -> list[str]:
    """`"fgsm,PGD"` -> `["fgsm", "pgd"]` (canonical names, no duplicates).

    The names of `keras_adv.attacks.get`; `generator:PATH.keras` names a
    saved AdvGAN generator.
    """
    parts = text.split(",")
    if not text.strip() or any(not part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(ATTACKS)} or "
            f"{_GENERATOR}; received {text!r}"
        )
    return list(dict.fromkeys(_attack_name(part) for part in parts))


def parse_certify(text: str) -> list[str]:
    """`"IBP,crown_ibp"` -> `["ibp", "crown-ibp"]` (canonical, no repeats).

    The bound methods of `keras_adv.certification.margin_bounds` and
    `smoothing` (a `SmoothedClassifier` built from `--sigma`).
    """
    parts = text.split(",")
    if not text.strip() or any(not part.strip() for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {', '.join(CERTIFY_METHODS)}"
            f"; received {text!r}"
        )
    methods = []
    for part in parts:
        method = _names.canonical(
            part, _names.CERTIFY_METHODS, _names.CERTIFY_ALIASES
        )
        if method is None:
            raise _unknown(
                "certification method",
                part,
                CERTIFY_METHODS,
                _names.CERTIFY_ALIASES,
            )
        methods.append(method)
    return list(dict.fromkeys(methods))


def parse_method(text: str) -> str:
    """A recipe method's canonical name (`"fgsm-rs"` -> `"fgsm_rs"`)."""
    method = _names.canonical(
        text, _names.RECIPE_METHODS, _names.OBJECTIVE_ALIASES
    )
    if method is None:
        raise _unknown("method", text, TRAIN_METHODS, _names.OBJECTIVE_ALIASES)
    return method


def parse_eps(text: str) -> list[float]:
    """`"0.1,0.2"` -> `[0.0, 0.1, 0.2]`: 0 (clean) is always included."""
    values = []
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                "expected comma-separated numbers >= 0, e.g. 0.1,0.2,0.3; "
                f"received {text!r}"
            ) from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(
                f"radii must be finite numbers >= 0; received {part!r}"
            )
        values.append(value)
    return sorted(set([0.0] + values))


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= {minimum}, received {text!r}"
            )
        return value

    return parse


def _radius(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a number >= 0, received {text!r}"
        )
    return value


def _sigma(text: str) -> float:
    value = _radius(text)
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a number > 0, received {text!r}"
        )
    return value


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(
            f"expected a probability in (0, 0.5], received {text!r}"
        )
    return value


def _open_fraction(upper: float, closed: bool) -> Callable[[str], float]:
    """A number in `(0, upper]` (`closed`) or `(0, upper)`."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = 0 < value <= upper if closed else 0 <= value < upper
        if not inside:
            bounds = f"(0, {upper:g}]" if closed else f"[0, {upper:g})"
            raise argparse.ArgumentTypeError(
                f"expected a number in {bounds}, received {text!r}"
            )
        return value

    return parse


_real_fraction = _open_fraction(1.0, closed=True)
_momentum = _open_fraction(1.0, closed=False)
_positive = _integer(1)
_non_negative = _integer(0)


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
        type=parse_attacks,
        default="fgsm,pgd",
        help=f"comma-separated names of keras_adv.attacks.get among "
        f"{', '.join(ATTACKS)} and {_GENERATOR} (a saved AdvGAN "
        "generator) (default: %(default)s)",
    )
    evaluate.add_argument(
        "--eps",
        type=parse_eps,
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
        type=_positive,
        default=20,
        help="steps of pgd, bim and mim; pgd20 runs 20 and the "
        "reference-grade attacks their paper defaults (default: "
        "%(default)s)",
    )
    evaluate.add_argument(
        "--max-samples",
        type=_positive,
        default=None,
        help="evaluate only the first N samples (default: all)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=_positive,
        default=128,
        help="batch size (default: %(default)s)",
    )
    evaluate.add_argument(
        "--seed",
        type=_non_negative,
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
        type=parse_certify,
        default=None,
        help=f"comma-separated certification methods among "
        f"{', '.join(CERTIFY_METHODS)}: certified accuracy (a lower bound) "
        "beside the attacks at each eps; the bounds verify the model, "
        "smoothing (needs --sigma and --norm l2) certifies the smoothed "
        "classifier (default: none)",
    )
    evaluate.add_argument(
        "--sigma",
        type=_sigma,
        default=None,
        help="noise standard deviation of --certify smoothing, in input "
        "units: the noise the model was trained with",
    )
    evaluate.add_argument(
        "--n0",
        type=_positive,
        default=None,
        help="smoothing: noise samples per input that pick the class "
        "(default: 100)",
    )
    evaluate.add_argument(
        "--n",
        type=_positive,
        default=None,
        help="smoothing: noise samples per input that certify it "
        "(default: 10000)",
    )
    evaluate.add_argument(
        "--alpha",
        type=_alpha,
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
        type=parse_method,
        default="pgd",
        help=f"training method among {', '.join(TRAIN_METHODS)} (the "
        "objectives of keras_adv.training.get; clean: plain fit) "
        "(default: %(default)s)",
    )
    train.add_argument(
        "--eps",
        type=_radius,
        default=0.3,
        help="L-inf radius of the training attack (default: %(default)s)",
    )
    train.add_argument(
        "--steps",
        type=_positive,
        default=7,
        help="PGD steps of pgd and trades (default: %(default)s)",
    )
    train.add_argument(
        "--epochs",
        type=_positive,
        default=15,
        help="epochs; eps warms up over the first third (default: %(default)s)",
    )
    train.add_argument(
        "--batch-size",
        type=_positive,
        default=32,
        help="batch size (default: %(default)s)",
    )
    train.add_argument(
        "--max-samples",
        type=_positive,
        default=None,
        help="train on the first N samples (default: all)",
    )
    train.add_argument(
        "--seed",
        type=_non_negative,
        default=0,
        help="random seed (default: %(default)s)",
    )
    generated = train.add_argument_group(
        "generated data (Gowal et al. 2021; docs: Training on generated data)"
    )
    generated.add_argument(
        "--generated",
        type=_non_negative,
        default=0,
        metavar="N",
        help="also train on N images of a class-conditional GAN trained on "
        "the training split, labelled by a clean classifier "
        "(keras_adv.recipes.generate_training_data; 28x28 or 32x32 images) "
        "(default: %(default)s, real data only)",
    )
    generated.add_argument(
        "--real-fraction",
        type=_real_fraction,
        default=0.3,
        help="share of real images in every batch with --generated "
        "(default: %(default)s)",
    )
    generated.add_argument(
        "--gan-epochs",
        type=_positive,
        default=100,
        help="epochs of the GAN with --generated (default: %(default)s)",
    )
    train.add_argument(
        "--ema",
        type=_momentum,
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
        type=_positive,
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
        type=_non_negative,
        default=0,
        help="random seed (default: %(default)s)",
    )
    demo.add_argument(
        "--train-samples",
        type=_positive,
        default=4000,
        help="training images used, up to 4000 (default: %(default)s)",
    )
    demo.add_argument(
        "--max-samples",
        type=_positive,
        default=1000,
        help="test images of the final report, up to 1000 "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--monitor-samples",
        type=_positive,
        default=256,
        help="test images evaluated by the monitor every epoch "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--batch-size",
        type=_positive,
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
