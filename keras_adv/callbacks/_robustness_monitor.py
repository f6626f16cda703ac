"""`RobustnessMonitor`: robust accuracy in the epoch logs and in TensorBoard.

The callback is a schedule, logs and summaries around the evaluation core
it shares with `evaluate_robustness` (through
`keras_adv.evaluation.SubsetEvaluation`: data validation, one compiled
graph per batch, the definitions of robust and worst case). With
`certify`, `_monitor_certification.py` adds the verified accuracy of the
bounds of `keras_adv.certification` (a lower bound beside the attacks'
upper bound); `_monitor_summaries.py` writes the TensorBoard run.
"""

import functools
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
from keras_adv.callbacks import _monitor_summaries as summaries
from keras_adv.callbacks._monitor_certification import MonitorCertification
from keras_adv.callbacks._monitor_certification import check_certify
from keras_adv.callbacks._monitor_certification import check_soundness
from keras_adv.callbacks._monitor_certification import clashing_names
from keras_adv.evaluation import SubsetEvaluation
from keras_adv.evaluation import robustness_grid
from keras_adv.evaluation._attack_set import attack_label
from keras_adv.evaluation._attack_set import attack_steps
from keras_adv.evaluation._certified import low_precision

_MonitorT = TypeVar("_MonitorT", bound="RobustnessMonitor")

# Log keys: `val_robust_accuracy`, `val_<attack>_accuracy` and, with
# `certify`, `val_verified_accuracy` (and `val_<attack>_verified_accuracy`).
ROBUST_KEY = "val_robust_accuracy"
# TensorBoard scalar tags (one run per series).
ACCURACY_TAG = summaries.ACCURACY_TAG
VERIFIED_TAG = summaries.VERIFIED_TAG
_RESERVED_NAMES = ("robust", "clean", "worst_case")


def _check_names(attacks: Iterable[str], certify: str | None = None) -> None:
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
    clash = clashing_names(set(attacks)) if certify else []
    if clash:
        raise ValueError(
            _validation.invalid(
                "attacks",
                "with certify, attack names other than 'verified' and "
                "'<name>_verified' for an attack <name> (they name the "
                "verified log keys)",
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

    With `certify` (a bound method of `keras_adv.certification`: `"ibp"`,
    `"crown_ibp"` or `"crown"`) it also adds `val_verified_accuracy`: the
    share of the same samples PROVEN robust (`verified_mask`) at every
    attack's ball (its norm, current eps and value range), a lower bound
    on robust accuracy beside the attacks' upper bound
    (`val_verified_accuracy <= val_robust_accuracy`). When the attacks'
    balls differ at construction, it adds `val_<name>_verified_accuracy`
    per attack too. The bounds run in one compiled function per model and
    (norm, value range), traced at train begin, where a model the bounds
    cannot handle fails, naming the layer.

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
    per `fit` a text `setup` and a custom-scalars chart. With `certify`,
    the verified shares as the scalar `verified_accuracy` in the runs
    `robustness/verified` (and `robustness/<name>_verified`), on the same
    custom-scalars chart as the accuracies under attack. See the user
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
        certify: None, or the bound method of the verified accuracy:
            `"ibp"` (interval bounds, about two forward passes),
            `"crown_ibp"` (tighter; Dense, convolution and ReLU-like
            layers) or `"crown"` (tightest; small fully connected models).
            Needs a Sequential or Functional model of supported layers
            (see `keras_adv.certification.interval_bounds`) and L-inf or
            L2 attacks. Defaults to `None`.

    Raises:
        TypeError: for data that is not an `(x, y)` pair or a dataset,
            non-float inputs, a non-path `log_dir`, foreign attacks, or a
            `certify` that is not None or a string.
        ValueError: for invalid numbers, malformed data, NaN inputs, inputs
            outside a value range, targeted attacks, non-scalar eps, attack
            names that clash with the log keys, a `log_dir` that is a
            file or not writable, an unknown `certify` method, or with
            `certify` an attack outside an L-inf or L2 ball.
        NotImplementedError: at train begin, with `certify`, for a model
            with a layer the bounds cannot handle (named).

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
    >>> monitor = keras_adv.callbacks.RobustnessMonitor(
    ...     (x, y), attacks=keras_adv.attacks.FGSM(eps=0.1), max_samples=32,
    ...     certify="ibp")
    >>> history = model.fit(x, y, epochs=1, verbose=0, callbacks=[monitor])
    >>> logs = {k: v[-1] for k, v in history.history.items()}
    >>> logs["val_verified_accuracy"] <= logs["val_robust_accuracy"]
    True

    Reference:
        Madry, Makelov, Schmidt, Tsipras and Vladu, "Towards Deep Learning
        Models Resistant to Adversarial Attacks", ICLR 2018,
        [arXiv:1706.06083](https://arxiv.org/abs/1706.06083). Carlini et al.,
        "On Evaluating Adversarial Robustness", 2019,
        [arXiv:1902.06705](https://arxiv.org/abs/1902.06705). With
        `certify`: Gowal et al., "On the Effectiveness of Interval Bound
        Propagation for Training Verifiably Robust Models", 2018,
        [arXiv:1810.12715](https://arxiv.org/abs/1810.12715); Zhang et
        al., "Towards Stable and Efficient Training of Verifiably Robust
        Neural Networks", ICLR 2020,
        [arXiv:1906.06316](https://arxiv.org/abs/1906.06316).
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
        certify: str | None = None,
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
        self.log_dir = _validation.check_log_dir(log_dir, summaries.RUN)
        self.certify = check_certify(certify)
        self._subset = SubsetEvaluation(
            validation_data,
            attacks,
            self.max_samples,
            self.batch_size,
            self.seed,
            name="validation_data",
            check_names=functools.partial(_check_names, certify=self.certify),
        )
        self.attacks = self._subset.attacks
        self.x, self.y = self._subset.x, self._subset.y
        self._certification = (
            None
            if self.certify is None
            else MonitorCertification(
                self.certify, self.attacks, self._subset.eps()
            )
        )
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
            "certify": self.certify,
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

    def certification_tracing_count(self) -> int:
        """Traces of the certification graphs so far (0 without `certify`).

        One per model and distinct (norm, value range) of the attacks,
        traced at train begin (or by the first `evaluate`).
        """
        if self._certification is None:
            return 0
        return self._certification.tracing_count()

    def log_keys(self) -> list[str]:
        """The keys the monitor adds to the epoch logs, in order."""
        keys = [attack_key(name) for name in self.attacks]
        keys.append(ROBUST_KEY)
        if self._certification is not None:
            keys += self._certification.keys()
        return keys

    def evaluate(self, model: keras.Model | None = None) -> dict[str, Any]:
        """Evaluates `model` (default: the trained model) on the subset.

        Returns:
            A dict: `"clean_accuracy"`, `"robust_accuracy"`, `"accuracy"`
            and `"eps"` (name -> float), `"seconds"`, and per-sample arrays
            (predictions, margins, norms, the first adversarial inputs);
            see `keras_adv.evaluation.SubsetEvaluation.evaluate`. With
            `certify` also `"verified_accuracy"` (at every attack's ball),
            `"verified"` (name -> float, at that attack's ball),
            `"verified_mask"` (per sample, at every ball),
            `"verified_masks"` (name -> per sample, at that attack's ball)
            and `"verified_seconds"`.

        Raises:
            NotImplementedError: with `certify`, for a layer the bounds
                cannot handle (named).
            RuntimeError: with `certify`, when an attack breaks a sample
                the bounds verified at its ball (a soundness bug; a
                `UserWarning` when the model computes in float16 or
                bfloat16).
        """
        model = self.model if model is None else model
        keep = self.images if self._subset.is_image else 0
        if self._certification is not None:
            self._certification.prepare(model, self.x)
        results = self._subset.evaluate(model, keep)
        if self._certification is not None:
            results.update(
                self._certification.evaluate(
                    model, self.x, self.y, results["eps"], self.batch_size
                )
            )
            check_soundness(results, self.y, low_precision(model))
        return results

    # --------------------------------------------------------- hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._defined = False
        if self._certification is not None:
            # Traced now: a model the bounds cannot handle fails before
            # the first epoch, naming the layer.
            self._certification.prepare(self.model, self.x)
        # Under MultiWorkerMirroredStrategy every worker evaluates (their
        # logs must agree) but only the chief writes TensorBoard events.
        strategy = getattr(self.model, "distribute_strategy", None)
        chief = strategy is None or strategy.extended.should_save_summary
        if self.log_dir is not None and self._writer is None and chief:
            series = ["clean", *self.attacks, "worst_case"]
            if self._certification is not None:
                series += self._certification.runs()
            self._writer, self._series_writers = summaries.open_writers(
                self.log_dir, series
            )
            summaries.write_setup(
                self._writer,
                summaries.layout(self.certify),
                summaries.setup_text(
                    len(self.x),
                    self.freq,
                    self.attacks,
                    self._subset.eps(),
                    self.certify,
                ),
            )

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
        verified = None
        if self._certification is not None:
            found = self._certification.values(results)
            values.update(zip(self._certification.keys(), found))
            verified = dict(zip(self._certification.runs(), found))
        if logs is not None:
            logs.update(values)
        self._backfill_history(epoch, values)
        if self.verbose:
            seconds = f"{results['seconds']:.1f} s"
            if "verified_seconds" in results:
                seconds += f" + {results['verified_seconds']:.1f} s bounds"
            print(
                f"RobustnessMonitor epoch {epoch + 1}: clean "
                f"{100 * results['clean_accuracy']:.1f}%, "
                f"{self._summary(results, '.1f')} on {len(self.x)} samples "
                f"({seconds})"
            )
            if not self._defined:
                print(
                    "  (worst case: a sample counts as robust only if it "
                    "resists every attack)"
                )
                self._defined = True
        if self._writer is not None:
            summaries.write_epoch(
                self._writer,
                self._series_writers,
                epoch,
                results,
                self.attacks,
                self.grid_image(epoch, results),
                verified,
                self.certify,
            )

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
        parts.append(f"worst case {100 * results['robust_accuracy']:{fmt}}%")
        if "verified_accuracy" in results:
            parts.append(
                f"verified ({self.certify}) "
                f"{100 * results['verified_accuracy']:{fmt}}%"
            )
        return ", ".join(parts)

    # --------------------------------------------------------- images
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
