"""AutoAttack: the parameter-free ensemble that robustness numbers quote."""

import functools
import time
import warnings
from collections.abc import Callable
from typing import Any
from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd_targeted import APGDT
from keras_adv.attacks._autoattack_report import AutoAttackReport
from keras_adv.attacks._autoattack_report import _batched
from keras_adv.attacks._autoattack_report import _predictor
from keras_adv.attacks._autoattack_report import _progress_bar
from keras_adv.attacks._autoattack_report import _sanity_flags
from keras_adv.attacks._autoattack_report import _square_flag
from keras_adv.attacks._base import Attack
from keras_adv.attacks._fab import FAB
from keras_adv.attacks._logits import ModelLogits
from keras_adv.attacks._square import Square

VERSIONS = ("standard", "plus", "rand")


class EOTModelLogits(ModelLogits):
    """`ModelLogits` whose input gradient averages `iterations` passes.

    Expectation over transformation for randomised models: the objective
    and its input gradient are the means over `iterations` forward and
    backward passes (each pass draws the model's own randomness).

    Args:
        model_logits: The `ModelLogits` to average.
        iterations: Int >= 1, passes per gradient. Defaults to `20`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> adapter = keras_adv.attacks.ModelLogits(model, from_logits=True)
    >>> eot = keras_adv.attacks.EOTModelLogits(adapter, iterations=4)
    >>> x = keras.ops.ones((1, 2))
    >>> _, g1 = adapter.value_and_input_gradient(lambda z: z[:, 0], x)
    >>> _, g4 = eot.value_and_input_gradient(lambda z: z[:, 0], x)
    >>> bool(np.allclose(g1, g4))  # a deterministic model: same gradient
    True
    """

    def __init__(self, model_logits: ModelLogits, iterations: int = 20) -> None:
        self.__dict__.update(model_logits.__dict__)
        self._inner = model_logits
        self.iterations = _validation.check_int(
            "iterations", iterations, minimum=1
        )

    def value_and_input_gradient(
        self, objective_fn: Callable[[Tensor], Tensor], x: Tensor
    ) -> tuple[Tensor, Tensor]:
        def body(
            i: Tensor, carry: tuple[Tensor, Tensor]
        ) -> tuple[Tensor, Tensor]:
            value, grad = carry
            v, g = self._inner.value_and_input_gradient(objective_fn, x)
            return value + v, grad + g

        value, grad = self._inner.value_and_input_gradient(objective_fn, x)
        if self.iterations > 1:
            value, grad = ops.fori_loop(1, self.iterations, body, (value, grad))
        n = float(self.iterations)
        return value / n, grad / n


def _runs_with(name: str, classes: int) -> bool:
    """Whether component `name` can attack a `classes`-way classifier."""
    if name == "apgd-t":
        return classes >= 4  # targeted DLR needs z_pi4
    if name == "apgd-dlr":
        return classes >= 3  # DLR needs z_pi3
    return True


def _square(common: dict[str, Any]) -> Square:
    # As the reference builds it: 5,000 queries, p_init 0.8 and the
    # schedule of a 10,000-query run (`resc_schedule=False`).
    return Square(
        n_queries=5000, p_init=0.8, restarts=1, rescale_schedule=False, **common
    )


def _components(
    version: str,
    norm: str,
    eps: Eps,
    value_range: ValueRange,
    seed: int | None,
    from_logits: bool | None,
    training: bool,
) -> list[tuple[str, Attack]]:
    common: dict[str, Any] = dict(
        eps=eps,
        norm=norm,
        value_range=value_range,
        seed=seed,
        from_logits=from_logits,
        training=training,
    )
    if version == "standard":
        return [
            ("apgd-ce", APGD(loss="ce", restarts=1, **common)),
            ("apgd-t", APGDT(num_targets=9, restarts=1, **common)),
            ("fab-t", FAB(target_classes=9, restarts=1, **common)),
            ("square", _square(common)),
        ]
    if version == "plus":
        return [
            ("apgd-ce", APGD(loss="ce", restarts=5, **common)),
            ("apgd-dlr", APGD(loss="dlr", restarts=5, **common)),
            ("fab", FAB(target_classes=9, restarts=5, **common)),
            ("square", _square(common)),
            ("apgd-t", APGDT(num_targets=9, restarts=1, **common)),
            ("fab-t", FAB(target_classes=9, restarts=1, **common)),
        ]
    return [
        ("apgd-ce", _EOTAPGD(loss="ce", restarts=1, **common)),
        ("apgd-dlr", _EOTAPGD(loss="dlr", restarts=1, **common)),
    ]


class _EOTAPGD(APGD):
    """APGD averaging 20 passes per gradient, called on its own.

    The components of the `"rand"` version: `evaluate` calls them one by
    one, and their gradients must be EOT's there too (in `generate`,
    `AutoAttack` hands them the EOT adapter itself).
    """

    def model_logits(
        self, model: keras.Model, training: bool | None = None
    ) -> ModelLogits:
        return EOTModelLogits(super().model_logits(model, training), 20)


@register
class AutoAttack(Attack):
    """AutoAttack (Croce & Hein 2020): the standard robustness evaluation.

    An ensemble of complementary, parameter-free attacks run in sequence,
    each only on the samples that are still robust; a sample counts as
    robust if it survives all of them (per-sample worst case).

    * `version="standard"`: APGD-CE, APGD-T (targeted DLR, 9 targets),
      FAB-T (9 targets), Square (5,000 queries), one restart each;
    * `"plus"`: APGD-CE and APGD-DLR (5 restarts each), FAB (FAB-T with 5
      restarts: keras_adv's FAB is the targeted variant), Square, APGD-T,
      FAB-T;
    * `"rand"`: APGD-CE and APGD-DLR with expectation over transformation
      (20 passes per gradient) for randomised models.

    `attack(model, x, y)` runs the whole chain in one compiled graph and
    returns the adversarial examples; `evaluate(model, x, y)` runs it
    attack by attack over batches and returns an `AutoAttackReport` with
    the clean accuracy, the robust accuracy after each attack (cumulative),
    the time of each and the sanity flags of the reference (randomised
    model, probability outputs, Square beating the white-box attacks, too
    few classes for targeted DLR).

    Args:
        eps: Float >= 0 (or a variable): radius of the ball. Defaults to
            `0.3`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        version: `"standard"`, `"plus"` or `"rand"`. Defaults to
            `"standard"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, the `training` flag of the forward passes.
            Defaults to `False`.
        seed: Int or None. Defaults to `0` (the reference's default).
        jit_compile: Bool, XLA-compile the whole chain. Defaults to
            `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> x = np.random.default_rng(0).uniform(size=(4, 8)).astype("float32")
    >>> attack = keras_adv.attacks.AutoAttack(eps=0.05, seed=0)
    >>> [name for name, _ in attack.components]
    ['apgd-ce', 'apgd-t', 'fab-t', 'square']
    >>> x_adv = attack(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.05 + 1e-6)
    True

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        norm: Norm = "linf",
        version: Literal["standard", "plus", "rand"] = "standard",
        value_range: ValueRange = (0.0, 1.0),
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = 0,
        jit_compile: bool = False,
    ) -> None:
        super().__init__(
            eps=eps,
            norm=norm,
            value_range=value_range,
            targeted=False,
            loss="ce",
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.version = _validation.check_choice(
            "version", version, set(VERSIONS)
        )
        self.components = _components(
            self.version,
            self.norm,
            self.eps,
            self.value_range,
            seed,
            from_logits,
            training,
        )
        for _, component in self.components:
            component.threat_model = self.threat_model  # one live eps

    # ------------------------------------------------------- one graph
    def _component_logits(
        self, name: str, model_logits: ModelLogits
    ) -> ModelLogits:
        if self.version == "rand":
            return EOTModelLogits(model_logits, 20)
        return model_logits

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        batch = ops.shape(x)[0]
        eps = ops.broadcast_to(ops.cast(eps, "float32"), (batch,))
        logits = model_logits(x)
        classes = logits.shape[-1]
        robust = ops.logical_not(self.is_successful(logits, y))
        x_adv = x
        for i, (name, component) in enumerate(self.components):
            if not _runs_with(name, classes):
                continue
            # An attack runs only if some sample is still robust: no
            # passes are spent on an empty batch (and oneDNN's Conv2D
            # mishandles empty batches on CPU).
            x_adv, robust = tf.cond(
                tf.reduce_any(robust),
                functools.partial(
                    self._run_component,
                    i,
                    name,
                    component,
                    model_logits,
                    x,
                    y,
                    eps,
                    seed,
                    x_adv,
                    robust,
                ),
                lambda x_adv=x_adv, robust=robust: (x_adv, robust),
            )
        return x_adv

    def _run_component(
        self,
        i: int,
        name: str,
        component: Attack,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
        x_adv: Tensor,
        robust: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Attack `i` on the still-robust samples; `(x_adv, robust)`."""
        index = tf.where(robust)[:, 0]
        sub_x = tf.gather(x, index)
        sub_y = tf.gather(y, index)
        sub_eps = tf.gather(eps, index)
        adv = component.generate(
            self._component_logits(name, model_logits),
            sub_x,
            sub_y,
            sub_eps,
            _random.fold_seed(seed, i),
        )
        fooled = component.is_successful(model_logits(adv), sub_y)
        hit = tf.boolean_mask(index, fooled)[:, None]
        x_adv = tf.tensor_scatter_nd_update(
            x_adv, hit, tf.boolean_mask(adv, fooled)
        )
        robust = tf.tensor_scatter_nd_update(
            robust, hit, tf.zeros_like(hit[:, 0], tf.bool)
        )
        return x_adv, robust

    # ------------------------------------------------ step by step
    def evaluate(
        self,
        model: keras.Model,
        x: Array,
        y: Array,
        batch_size: int = 500,
        verbose: int | Literal["auto"] = "auto",
    ) -> AutoAttackReport:
        """Runs the ensemble attack by attack; returns an `AutoAttackReport`.

        Each attack runs, in batches of `batch_size`, only on the samples
        that every earlier attack left robust (the schedule of the
        reference's `run_standard_evaluation`). As the reference, it
        prints as it goes: the clean accuracy, then per attack a Keras
        progress bar over its batches and the robust accuracy after it
        with its time.

        Random starts use stateless seeds: attack `i` of `components` gets
        `[seed + i, b]` on its batch `b` (a new `seed` is drawn per call if
        the attack's `seed` is None). The same call gives the same report,
        and `evaluate_robustness` with this attack (first in its list) and
        the same seed and `batch_size` gives the same per-sample result.

        Args:
            model: The Keras classifier.
            x: Float array of inputs in `value_range`.
            y: Int labels `(n,)` (or one-hot), in `[0, classes)`.
            batch_size: Int >= 1. Defaults to `500`.
            verbose: 0 (silent), 1 (progress bars and one line per
                attack), 2 (one line per attack) or `"auto"` (1 on a
                terminal or in a notebook, 2 otherwise). Defaults to
                `"auto"`.

        Returns:
            An `AutoAttackReport`.

        Raises:
            TypeError: for non-float `x` or non-numeric labels.
            ValueError: naming `y`, for labels outside the model's classes,
                fractional labels, one-hot rows of another width, or `x`
                and `y` of different lengths; naming `verbose`, for a value
                other than 0, 1, 2 or `"auto"`.
        """
        batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
        verbose = _validation.check_verbose(verbose)
        x = np.asarray(x)
        _validation.check_x_dtype(x.dtype)
        y = np.asarray(_validation.check_label_shape(y, x))
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(
                _validation.invalid(
                    "x, y", "non-empty arrays of equal length", (len(x), len(y))
                )
            )
        start = time.perf_counter()
        predict = _predictor(model, self.from_logits)
        logits = _batched(predict, x, batch_size)
        # Labels outside the classes would count as misclassified.
        _validation.check_label_values(y, logits.shape[-1])
        if y.ndim == 2 and y.shape[1] > 1:
            y = y.argmax(1)
        y = y.reshape(-1).astype("int64")
        robust = logits.argmax(1) == y
        classes = logits.shape[-1]
        report = AutoAttackReport(
            version=self.version,
            norm=self.norm,
            eps=float(np.asarray(self.eps)),
            num_samples=len(x),
            clean_accuracy=float(robust.mean()),
        )
        report.flags.extend(
            _sanity_flags(model, x[:batch_size], logits, self.version)
        )
        if verbose:
            names = [n for n, _ in self.components if _runs_with(n, classes)]
            print(
                f"AutoAttack {self.version} ({self.norm}, eps={report.eps:g}) "
                f"on {len(x)} samples: {', '.join(names)}\n"
                f"initial accuracy: {100 * report.clean_accuracy:.2f}%",
                flush=True,
            )
        robust, x_adv, report.robust_after, report.seconds = self.run_schedule(
            model,
            x,
            y,
            robust,
            num_classes=classes,
            batch_size=batch_size,
            verbose=verbose,
            predict=predict,
        )
        report.robust_accuracy = float(robust.mean())
        report.robust = robust
        report.x_adv = x_adv
        report.total_seconds = time.perf_counter() - start
        if verbose:
            print(
                f"robust accuracy: {100 * report.robust_accuracy:.2f}% "
                f"(total time {report.total_seconds:.1f} s)",
                flush=True,
            )
        report.flags.extend(_square_flag(report))
        for flag in report.flags:
            warnings.warn(flag, stacklevel=2)
        return report

    def run_schedule(
        self,
        model: keras.Model,
        x: np.ndarray,
        y: np.ndarray,
        robust: np.ndarray,
        num_classes: int,
        eps: float | None = None,
        seed: int | None = None,
        batch_size: int = 500,
        verbose: int = 0,
        predict: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, dict[str, float], dict[str, float]]:
        """The reference's schedule: each attack on the samples still robust.

        The loop behind `evaluate`, also run by `evaluate_robustness` (with
        its own eps and seed): no checks, no clean pass, no report.

        Args:
            model: The Keras classifier.
            x: Float numpy inputs, checked.
            y: Int64 numpy class ids, checked.
            robust: Bool array `(n,)`, the samples to attack (classified
                correctly clean); not modified.
            num_classes: Int, the model's classes (APGD-T needs 4).
            eps: Optional float overriding `eps`. Defaults to `None`.
            seed: Optional int, the base of the stateless seeds (attack `i`,
                batch `b`: `[seed + i, b]`). Defaults to `None` (the
                attack's `seed`, or a new one if that is None).
            batch_size: Int. Defaults to `500`.
            verbose: 0, 1 or 2 (see `evaluate`). Defaults to `0`.
            predict: Optional function numpy inputs -> numpy logits.

        Returns:
            `(robust, x_adv, robust_after, seconds)`: the per-sample
            robustness after every attack, the adversarial examples (`x`
            where no attack succeeded), and per attack the robust accuracy
            after it (cumulative) and its wall time.
        """
        predict = predict or _predictor(model, self.from_logits)
        if seed is None:
            seed = self.seed
        if seed is None:
            drawn = _random.as_stateless_seed(self.seed_generator)
            seed = int(np.asarray(drawn)[0])
        robust = np.array(robust, bool)
        x_adv = x.copy()
        robust_after, seconds = {}, {}
        start = time.perf_counter()
        for i, (name, component) in enumerate(self.components):
            if not _runs_with(name, num_classes):
                continue
            begin = time.perf_counter()
            index = np.flatnonzero(robust)
            parts = [
                index[lo : lo + batch_size]
                for lo in range(0, len(index), batch_size)
            ]
            bar = _progress_bar(name, len(index), len(parts), verbose)
            for b, part in enumerate(parts):
                seeds = _random.batch_seeds(seed, len(self.components), b)
                adv, _ = component.perturb_with_extras(
                    model, x[part], y[part], eps=eps, seed=seeds[i]
                )
                adv = np.asarray(adv)
                fooled = predict(adv).argmax(1) != y[part]
                x_adv[part[fooled]] = adv[fooled]
                robust[part[fooled]] = False
                if bar is not None:
                    values = [("robust_accuracy", robust.mean())]
                    bar.update(b + 1, values=values)
            seconds[name] = time.perf_counter() - begin
            robust_after[name] = float(robust.mean())
            if verbose:
                print(
                    f"robust accuracy after {name.upper()}: "
                    f"{100 * robust_after[name]:.2f}% ({len(index)} samples "
                    f"attacked in {seconds[name]:.1f} s, total time "
                    f"{time.perf_counter() - start:.1f} s)",
                    flush=True,
                )
        return robust, x_adv, robust_after, seconds

    def get_config(self) -> Config:
        config = super().get_config()
        for key in ("targeted", "loss"):
            config.pop(key)
        config["version"] = self.version
        return config
