"""`RobustnessMonitor`: robust accuracy in the epoch logs and in TensorBoard.

The callback is a schedule, logs and summaries around the evaluation core
it shares with `evaluate_robustness` (through
`keras_adv.evaluation.SubsetEvaluation`: data validation, one compiled
graph per batch, the definitions of robust and worst case). This module is
one of the TensorFlow seams (`tf.summary`).
"""

import os
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import TypeVar

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv.attacks import Attack
from keras_adv.evaluation import SubsetEvaluation
from keras_adv.evaluation import attack_config
from keras_adv.evaluation import robustness_grid
from keras_adv.evaluation._attack_set import attack_label
from keras_adv.evaluation._attack_set import attack_steps

_MonitorT = TypeVar("_MonitorT", bound="RobustnessMonitor")

# Log keys: `val_robust_accuracy` and `val_<attack>_accuracy`.
ROBUST_KEY = "val_robust_accuracy"
# TensorBoard scalar tag of the accuracies (one run per attack).
ACCURACY_TAG = "accuracy_under_attack"
# The custom-scalars plugin's reserved tag and its plugin name.
_LAYOUT_TAG = "custom_scalars__config__"
_LAYOUT_PLUGIN = "custom_scalars"
_RESERVED_NAMES = ("robust", "clean", "worst_case")
_ACCURACY_NOTE = (
    "Accuracy on the fixed validation subset: clean; under each attack "
    "(correct clean and adversarial); worst case (survives every attack)."
)
_MARGIN_NOTE = "True-class logit minus the largest other logit on"
_GRID_NOTE = (
    "Columns: fixed validation samples. Rows: clean input, then per attack "
    "the adversarial input and the perturbation (scaled per image)."
)


def _check_names(attacks: Iterable[str]) -> None:
    clash = sorted(set(attacks) & set(_RESERVED_NAMES))
    if clash:
        raise ValueError(
            _validation.invalid(
                "attacks",
                f"attack names other than {list(_RESERVED_NAMES)} "
                "(they name the log keys of the monitor)",
                clash,
            )
        )


def attack_key(name: str) -> str:
    """The epoch-logs key of the accuracy under attack `name`."""
    return f"val_{name}_accuracy"


@register
class RobustnessMonitor(keras.callbacks.Callback):
    """Measures robust accuracy every few epochs; logs it and shows it.

    At the end of every `freq`-th epoch (epochs `freq`, `2 * freq`, ...,
    counted from 1) the callback attacks a fixed subset of the validation
    data (a copy of its first `max_samples` samples, taken and validated
    at construction) with every attack at its current `eps`, against the
    true labels, and adds to the epoch `logs`, as floats,
    `val_<name>_accuracy` per attack (correct both clean and under the
    attack) and `val_robust_accuracy` (the worst case: correct clean and
    under every attack). These are the definitions, seeds and graph of
    `evaluate_robustness`: on the same data, attacks, `seed` and
    `batch_size`, both give the same accuracies.

    Put the monitor BEFORE the callbacks that read its keys (Keras passes
    one logs dict through the callbacks in list order): TensorBoard,
    EarlyStopping and ModelCheckpoint (with `mode="max"`). A `History`
    passed before it gets the values too. On epochs where the monitor does
    not run, its keys are absent from the logs (no stale values).

    With `log_dir` it writes the run `<log_dir>/robustness` (step: the
    0-based epoch): the accuracies as the scalar `accuracy_under_attack`
    in one run per series (`robustness/clean`, `robustness/<name>`,
    `robustness/worst_case`), `mean_perturbation_norm/<name>`,
    `evaluation_seconds`, the image `adversarial_examples` (the first
    `images` samples clean, adversarial and perturbed; image inputs
    only), histograms of perturbation norms and logit margins, and once
    per `fit` a text `setup` and a custom-scalars chart. See the user
    guide, `docs/robustness_monitor.md`. Under a
    `MultiWorkerMirroredStrategy` every worker evaluates (so that all
    workers' logs hold the same values) and only the chief writes.

    Args:
        validation_data: A pair `(x, y)` of arrays (x floating point in the
            attacks' `value_range`, without NaN; y int labels or one-hot)
            or a `tf.data.Dataset` of `(x, y)` elements, batched or not
            (single samples need scalar labels). It is read and copied once,
            at construction.
        attacks: An attack, a name of `keras_adv.attacks.get` (e.g.
            `"pgd20"`), a list of attacks and names (attacks named after
            their class in lower case: `"fgsm"`, `"pgd"`, repeats get `_2`,
            ...), a dict `name -> attack`, or None for `FGSM()` and
            `PGD(steps=10)` (L-inf, eps 0.3, value range [0, 1]). Attacks
            must be untargeted. Defaults to `None`.
        freq: Int >= 1, evaluate every `freq` epochs (the same name as in
            the other keras_adv callbacks). Defaults to `1`.
        max_samples: Int >= 1, size of the fixed subset. Defaults to `512`.
        log_dir: Optional path of the TensorBoard log directory (the same
            as Keras' TensorBoard callback); checked for writability at
            construction. Defaults to `None`.
        images: Int >= 0, samples in the image grid (0: no image).
            Defaults to `8`.
        batch_size: Int >= 1, batch size of the evaluation. Defaults to
            `256`.
        seed: Int >= 0, base of the fixed stateless seeds of the attacks'
            random starts. Defaults to `0`.
        verbose: 0 (silent) or 1 (print one line per evaluation with the
            clean accuracy and the time taken). Defaults to `0`.

    Raises:
        TypeError: for data that is not an `(x, y)` pair or a dataset,
            non-float inputs, a non-path `log_dir`, or foreign attacks.
        ValueError: for invalid numbers, malformed data, NaN inputs, inputs
            outside a value range, targeted attacks, non-scalar eps, attack
            names that clash with the log keys, or a `log_dir` that is a
            file or not writable.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> x = np.random.default_rng(0).uniform(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0.5).astype("int64")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> monitor = keras_adv.callbacks.RobustnessMonitor(
    ...     (x, y), attacks=keras_adv.attacks.FGSM(eps=0.1), max_samples=32)
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[monitor])
    >>> sorted(k for k in history.history if k.startswith("val_"))
    ['val_fgsm_accuracy', 'val_robust_accuracy']
    >>> len(history.history["val_robust_accuracy"])
    2

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083). Carlini et al.,
        "On Evaluating Adversarial Robustness", 2019,
        [arXiv:1902.06705](https://arxiv.org/abs/1902.06705).
    """

    def __init__(
        self,
        validation_data: Sequence[Array] | tf.data.Dataset,
        attacks: Attack
        | str
        | Sequence[Attack | str]
        | dict[str, Attack]
        | None = None,
        freq: int = 1,
        max_samples: int = 512,
        log_dir: str | os.PathLike[str] | None = None,
        images: int = 8,
        batch_size: int = 256,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        self.freq = _validation.check_int("freq", freq, minimum=1)
        self.max_samples = _validation.check_int(
            "max_samples", max_samples, minimum=1
        )
        self.images = _validation.check_int("images", images, minimum=0)
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        self.seed = _validation.check_int("seed", seed, minimum=0)
        if verbose not in (0, 1):
            raise ValueError(_validation.invalid("verbose", "0 or 1", verbose))
        self.verbose = int(verbose)
        self.log_dir = _validation.check_log_dir(log_dir, "robustness")
        self._subset = SubsetEvaluation(
            validation_data,
            attacks,
            self.max_samples,
            self.batch_size,
            self.seed,
            name="validation_data",
            check_names=_check_names,
        )
        self.attacks = self._subset.attacks
        self.x, self.y = self._subset.x, self._subset.y
        # TensorBoard writers (the chief's, while `fit` runs).
        self._writer: tf.summary.SummaryWriter | None = None
        self._series_writers: dict[str, tf.summary.SummaryWriter] = {}
        self.last_results: dict[str, Any] | None = None
        self._defined = False  # the worst case, defined once per run

    # ---------------------------------------------------------- config
    def get_config(self) -> Config:
        """The constructor arguments but `validation_data`.

        The data is an object of the training script, not configuration:
        rebuild with `RobustnessMonitor.from_config({**config,
        "validation_data": (x, y)})`.
        """
        return {
            "attacks": {
                name: keras.saving.serialize_keras_object(attack)
                for name, attack in self.attacks.items()
            },
            "freq": self.freq,
            "max_samples": self.max_samples,
            "log_dir": self.log_dir,
            "images": self.images,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "verbose": self.verbose,
        }

    @classmethod
    def from_config(cls: type[_MonitorT], config: Config) -> _MonitorT:
        config = dict(config)
        if "validation_data" not in config:
            raise ValueError(
                "RobustnessMonitor.from_config needs the validation data: "
                "pass {**config, 'validation_data': (x, y)}."
            )
        attacks = config.get("attacks")
        if isinstance(attacks, dict):
            config["attacks"] = {
                name: keras.saving.deserialize_keras_object(attack)
                if isinstance(attack, dict)
                else attack
                for name, attack in attacks.items()
            }
        return cls(**config)

    # ------------------------------------------------------ evaluation
    def tracing_count(self) -> int:
        """Traces of the evaluation graph so far (1 after the first run)."""
        return self._subset.tracing_count()

    def evaluate(self, model: keras.Model | None = None) -> dict[str, Any]:
        """Evaluates `model` (default: the trained model) on the subset.

        Returns:
            A dict: `"clean_accuracy"`, `"robust_accuracy"`, `"accuracy"`
            and `"eps"` (name -> float), `"seconds"`, and per-sample arrays
            (predictions, margins, norms, the first adversarial inputs);
            see `keras_adv.evaluation.SubsetEvaluation.evaluate`.
        """
        model = self.model if model is None else model
        keep = self.images if self._subset.is_image else 0
        return self._subset.evaluate(model, keep)

    # --------------------------------------------------------- hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._defined = False
        # Under MultiWorkerMirroredStrategy every worker evaluates (their
        # logs must agree) but only the chief writes TensorBoard events.
        strategy = getattr(self.model, "distribute_strategy", None)
        chief = strategy is None or strategy.extended.should_save_summary
        if self.log_dir is not None and self._writer is None and chief:
            run = os.path.join(self.log_dir, "robustness")
            self._writer = tf.summary.create_file_writer(run)
            self._series_writers = {
                name: tf.summary.create_file_writer(os.path.join(run, name))
                for name in ["clean", *self.attacks, "worst_case"]
            }
            self._write_setup()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        for writer in self._series_writers.values():
            writer.close()
        self._series_writers = {}
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def on_epoch_end(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if (epoch + 1) % self.freq:
            return
        results = self.last_results = self.evaluate()
        values = {attack_key(n): a for n, a in results["accuracy"].items()}
        values[ROBUST_KEY] = results["robust_accuracy"]
        if logs is not None:
            logs.update(values)
        self._backfill_history(epoch, values)
        if self.verbose:
            print(
                f"RobustnessMonitor epoch {epoch + 1}: clean "
                f"{100 * results['clean_accuracy']:.1f}%, "
                f"{self._summary(results, '.1f')} on {len(self.x)} samples "
                f"({results['seconds']:.1f} s)"
            )
            if not self._defined:
                print(
                    "  (worst case: a sample counts as robust only if it "
                    "resists every attack)"
                )
                self._defined = True
        if self._writer is not None:
            self._write_summaries(epoch, results)

    def _backfill_history(
        self, epoch: int, values: Mapping[str, float]
    ) -> None:
        """Adds the values to a `History` that already ran for `epoch`."""
        history = getattr(self.model, "history", None)
        if not isinstance(history, keras.callbacks.History):
            return
        epochs = getattr(history, "epoch", None)
        if not epochs or epochs[-1] != epoch:
            return  # History comes after the monitor: it sees the logs.
        for key, value in values.items():
            series = history.history.setdefault(key, [])
            if len(series) < len(epochs):
                series.append(value)

    def _labels(self) -> dict[str, str]:
        """Dict name -> the attack's label in text (`pgd-20` for a 20-step
        PGD named `pgd`); the log keys keep the names."""
        return {
            name: attack_label(
                name, type(attack).__name__, attack_steps(attack)
            )
            for name, attack in self.attacks.items()
        }

    def _summary(self, results: Mapping[str, Any], fmt: str) -> str:
        """`"fgsm 80.0%, pgd-20 60.0%, worst case 50.0%"`."""
        labels = self._labels()
        parts = [
            f"{labels[n]} {100 * a:{fmt}}%"
            for n, a in results["accuracy"].items()
        ]
        worst = 100 * results["robust_accuracy"]
        return ", ".join([*parts, f"worst case {worst:{fmt}}%"])

    # ---------------------------------------------------- TensorBoard
    def _write_setup(self) -> None:
        from tensorboard.plugins.custom_scalar import layout_pb2 as pb

        chart = pb.Chart(
            title="accuracy under attack (validation subset)",
            multiline=pb.MultilineChartContent(tag=[f"^{ACCURACY_TAG}$"]),
        )
        layout = pb.Layout(
            category=[pb.Category(title="robustness", chart=[chart])]
        )
        metadata = tf.compat.v1.SummaryMetadata()
        metadata.plugin_data.plugin_name = _LAYOUT_PLUGIN
        text = [
            f"Robustness of the model on a fixed subset of **{len(self.x)}** "
            f"validation samples, every {self.freq} epoch(s). A sample "
            "counts as robust to an attack when it is classified correctly "
            "both clean and under the attack; the **worst case** counts it "
            "only if it survives every attack.",
            "",
            "| attack | class | norm | eps | settings |",
            "|---|---|---|---|---|",
        ]
        eps = self._subset.eps()
        for name, attack in self.attacks.items():
            config = attack_config(attack)
            details = ", ".join(
                f"{k}={config[k]}"
                for k in ("steps", "step_size", "restarts", "loss")
                if config.get(k) is not None
            )
            text.append(
                f"| {name} | {type(attack).__name__} | {attack.norm} | "
                f"{eps[name]:g} | {details} |"
            )
        with self._writer.as_default():  # type: ignore[union-attr]
            tf.summary.write(
                _LAYOUT_TAG,
                tf.constant(layout.SerializeToString()),
                step=0,
                metadata=metadata,
            )
            tf.summary.text("setup", "\n".join(text), step=0)
        self._writer.flush()  # type: ignore[union-attr]

    def _write_summaries(self, epoch: int, results: Mapping[str, Any]) -> None:
        accuracies = {
            "clean": results["clean_accuracy"],
            **results["accuracy"],
            "worst_case": results["robust_accuracy"],
        }
        for name, value in accuracies.items():
            with self._series_writers[name].as_default():
                tf.summary.scalar(
                    ACCURACY_TAG, value, step=epoch, description=_ACCURACY_NOTE
                )
            self._series_writers[name].flush()
        histograms = {
            "logit_margin/clean": (
                results["clean_margin"],
                f"{_MARGIN_NOTE} clean inputs; < 0 means misclassified.",
            )
        }
        for name, attack in self.attacks.items():
            # Rounded: an L-inf attack puts every norm at eps up to float
            # noise, which would make the histogram axis unreadable.
            histograms[f"perturbation_norm/{name}"] = (
                np.round(results["norm"][name], 4),
                f"Per-sample {attack.norm} norm of x_adv - x under {name} "
                f"(at most eps={results['eps'][name]:g}).",
            )
            if attack.norm != "l2":
                histograms[f"perturbation_l2_norm/{name}"] = (
                    results["l2_norm"][name],
                    f"Per-sample L2 norm of x_adv - x under {name}: how many "
                    "inputs the attack changes, and how much.",
                )
            histograms[f"logit_margin/{name}"] = (
                results["adv_margin"][name],
                f"{_MARGIN_NOTE} {name} adversarials; < 0 means fooled.",
            )
        with self._writer.as_default():  # type: ignore[union-attr]
            for name in self.attacks:
                tf.summary.scalar(
                    f"mean_perturbation_norm/{name}",
                    results["norm"][name].mean(),
                    step=epoch,
                )
            tf.summary.scalar(
                "evaluation_seconds", results["seconds"], step=epoch
            )
            for tag, (values, note) in histograms.items():
                tf.summary.histogram(tag, values, step=epoch, description=note)
            grid = self.grid_image(epoch, results)
            if grid is not None:
                tf.summary.image(
                    "adversarial_examples",
                    grid[None],
                    step=epoch,
                    description=_GRID_NOTE,
                )
        self._writer.flush()  # type: ignore[union-attr]

    def grid_image(
        self, epoch: int, results: Mapping[str, Any]
    ) -> np.ndarray | None:
        """The uint8 grid image of an evaluation, or None (no images)."""
        n = min(self.images, len(self.x))
        if n == 0 or not self._subset.is_image:
            return None
        labels = self._labels()
        adversarial = {
            f"{labels[name]}\n{attack.norm} eps={results['eps'][name]:g}": (
                results["x_adv"][name][:n],
                results["adv_pred"][name][:n],
            )
            for name, attack in self.attacks.items()
        }
        title = (
            f"epoch {epoch + 1}: accuracy clean "
            f"{100 * results['clean_accuracy']:.0f}%, "
            f"{self._summary(results, '.0f')} ({len(self.x)} samples)"
        )
        return robustness_grid(
            self.x[:n],
            self.y[:n],
            results["clean_pred"][:n],
            adversarial,
            value_range=next(iter(self.attacks.values())).value_range,
            title=title,
        )
