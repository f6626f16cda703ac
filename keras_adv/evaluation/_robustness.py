"""`evaluate_robustness`: one honest robustness figure for a Keras model.

The data, the compiled per-batch graph and the definitions of robust and
worst case come from the evaluation core shared with `RobustnessMonitor`
(`_data`, `_graph`, `_accounting`); this module sweeps the radii, times
the attacks, runs the gradient-masking checks and writes the report. An
AutoAttack runs its own schedule (`AutoAttack.run_schedule`: each attack
only on the samples still robust, over all samples) after the batches.
"""

import functools
import time
import weakref
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import cast

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv._types import Array
from keras_adv._types import Config
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.attacks import AutoAttack
from keras_adv.attacks import ModelLogits
from keras_adv.evaluation import sanity
from keras_adv.evaluation._accounting import Sweep
from keras_adv.evaluation._accounting import robust_masks
from keras_adv.evaluation._attack_set import attack_dict
from keras_adv.evaluation._attack_set import check_epsilons
from keras_adv.evaluation._attack_set import default_epsilons
from keras_adv.evaluation._attack_set import warn_if_tiny
from keras_adv.evaluation._certified import Certification
from keras_adv.evaluation._certified import certificates
from keras_adv.evaluation._certified import low_precision
from keras_adv.evaluation._certified import soundness
from keras_adv.evaluation._data import Data
from keras_adv.evaluation._data import sample_rank
from keras_adv.evaluation._graph import Evaluator
from keras_adv.evaluation._graph import evaluate_arrays
from keras_adv.evaluation._graph import evaluator
from keras_adv.evaluation._report import RobustnessReport
from keras_adv.threat_models import LearnedPerturbationSet
from keras_adv.threat_models import ThreatModel

# Samples kept for the unbounded-eps check (it runs a 20-step PGD).
_UNBOUNDED_SAMPLES = 256
_UNBOUNDED_STEPS = 20
_UNBOUNDED_BATCH = 128


class _Noise(Attack):
    """Random noise of norm eps: L-inf ball corners or the L2 sphere.

    The baseline of the `noise_beats_attack` check, run by the evaluation
    graph like any attack.
    """

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        shape = ops.shape(x)
        if self.norm == "linf":
            noise = _random.random_uniform(shape, seed, -1.0, 1.0)
            delta = ops.sign(noise) * eps
        else:
            noise = _random.random_normal(shape, seed)
            axes = list(range(1, len(x.shape)))
            size = ops.sqrt(ops.sum(noise * noise, axis=axes, keepdims=True))
            delta = eps * noise / ops.maximum(size, 1e-12)
        return self.threat_model.clip(x + delta)


class _SetNoise(Attack):
    """A random member of a learned set at latent norm eps (its noise).

    The `noise_beats_attack` baseline of a non-ball threat model such as
    `LearnedPerturbationSet`: a uniformly random direction `u` of norm eps,
    decoded into a member of the set. It holds its set weakly: the cache
    of baselines must not keep the user's threat model alive.
    """

    def __init__(self, threat_model: ThreatModel) -> None:
        super().__init__(value_range=threat_model.value_range)
        self.threat_model = threat_model

    @property
    def threat_model(self) -> LearnedPerturbationSet:
        # Alive while its baseline is used (the cache is keyed by it).
        return cast(LearnedPerturbationSet, self._set())

    @threat_model.setter
    def threat_model(self, value: ThreatModel) -> None:
        self._set = weakref.ref(value)

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        tm = self.threat_model
        mean, std = tm.prior(x)
        noise = _random.random_normal(ops.shape(mean), seed)
        u = tm.ascent_direction(noise)
        return tm.decode(x, mean, std, u * tm.latent_radius(mean, eps))

    def get_config(self) -> Config:
        return {"noise_of": id(self.threat_model)}


# One noise baseline per learned set, so that its graphs are reused; keyed
# weakly (nothing is stored on the user's threat model).
_SET_NOISE: weakref.WeakKeyDictionary[ThreatModel, _SetNoise] = (
    weakref.WeakKeyDictionary()
)


def _noise_for(attack: Attack, value_range: tuple[float, float]) -> Attack:
    """The random-noise baseline of `attack`'s threat model."""
    if attack.norm in ("linf", "l2"):
        return _noise(cast(Norm, attack.norm), value_range)
    noise = _SET_NOISE.get(attack.threat_model)
    if noise is None:
        noise = _SET_NOISE[attack.threat_model] = _SetNoise(attack.threat_model)
    return noise


@functools.lru_cache(maxsize=16)
def _noise(norm: Norm, value_range: tuple[float, float]) -> _Noise:
    # One object per norm and range, so that graphs are reused across calls.
    return _Noise(norm=norm, value_range=value_range)


@functools.lru_cache(maxsize=16)
def _unbounded_pgd(value_range: tuple[float, float]) -> PGD:
    low, high = value_range
    return PGD(
        eps=high - low,
        steps=_UNBOUNDED_STEPS,
        loss="margin",
        value_range=value_range,
    )


def evaluate_robustness(
    model: keras.Model,
    data: Sequence[Array] | tf.data.Dataset,
    attacks: Attack
    | str
    | Sequence[Attack | str]
    | dict[str, Attack]
    | None = None,
    epsilons: float | Sequence[float] | None = None,
    batch_size: int = 128,
    max_samples: int | None = None,
    checks: bool = True,
    seed: int = 0,
    verbose: int | Literal["auto"] = "auto",
    certify: Any = None,
    certify_options: Mapping[str, Any] | None = None,
) -> RobustnessReport:
    """Evaluates a classifier under attacks over a sweep of radii.

    Every attack runs at every eps in `epsilons` (its own `eps` is
    ignored) against the true labels. A sample counts as robust at an eps
    only if it is classified correctly clean and after the attack; the
    worst case counts it only if it survives every attack. The report also
    holds attack success rates (share of correctly classified samples the
    attack flips), mean and max perturbation norms, time per attack and
    the results of gradient-masking sanity checks (see
    `keras_adv.evaluation.sanity`) as warnings.

    An `AutoAttack` runs the reference's schedule, as
    `AutoAttack.evaluate`: at each eps, after the batches, each of its
    attacks runs only on the samples every earlier one left robust,
    `batch_size` at a time over all the samples (which are kept in memory
    for it). With the same `seed` and `batch_size`, an AutoAttack first in
    `attacks` gives the per-sample result of `AutoAttack(seed=seed)
    .evaluate`, at the same speed (`bench/autoattack_paths.py`). The other
    attacks run in the compiled per-batch graph.

    The inputs are checked before any graph runs, whatever the radii:
    floating-point x without NaN inside every attack's value range, and
    integer class labels in `[0, classes)`. Evaluation is deterministic:
    random starts use stateless seeds derived from `seed`, the attack's
    position and the batch, exactly as in `RobustnessMonitor`, so both
    give the same accuracies on the same data and attacks (but AutoAttack,
    which the monitor runs in one graph per batch).

    With `certify`, certified accuracy joins the attacks, on the same
    samples at the same radii: the share of samples proven robust, a lower
    bound where the attacks give upper bounds (`report.bracket(eps)`). A
    bound method (`"ibp"`, `"crown_ibp"`, `"crown"`, see
    `keras_adv.certification.margin_bounds`) verifies the model itself in
    the attacks' ball and value range; its figure never exceeds an
    attack's, and a verified sample that an attack breaks raises a
    `RuntimeError` naming it (a soundness bug; a warning under mixed
    precision). A `SmoothedClassifier` (L2 attacks only) certifies the
    smoothed classifier at L2 radius eps: another classifier, whose figure
    the attacks on the model do not bound.

    Args:
        model: A Keras classifier with one output `(batch, classes)`
            (logits or probabilities).
        data: A pair `(x, y)` of arrays (x floating point in the attacks'
            value range, y int labels or one-hot) or a `tf.data.Dataset` of
            `(x, y)` elements, batched or not (single samples need scalar
            labels).
        attacks: An attack, a name (`"autoattack"` for AutoAttack
            standard, the number to quote; also `"fgsm"`, `"pgd"`,
            `"pgd20"`, `"apgd"`, `"apgd_t"`, `"fab_t"`, `"square"`), a list
            of attacks or names, a dict `name -> attack`, or None for
            `FGSM()` and `PGD(steps=10)` (L-inf on [0, 1]). All attacks
            must be untargeted. Defaults to `None`.
        epsilons: Radii to sweep, numbers >= 0 in the units of the
            inputs (sorted, duplicates dropped). `0` gives the clean
            accuracy. Radii all below 0.2% of the width of the attacks'
            value range (e.g. 0.3 on inputs in [0, 255]) warn: they are
            almost surely in the wrong units. Defaults to `None`: 0, 0.1,
            0.2 and 0.3 times the width of the first attack's
            `value_range` (`(0.0, 0.1, 0.2, 0.3)` on [0, 1], `(0.0, 25.5,
            51.0, 76.5)` on [0, 255]).
        batch_size: Int, batch size for arrays and unbatched datasets.
            Defaults to `128`.
        max_samples: Optional int, evaluate only the first `max_samples`.
            Required for infinite datasets. Defaults to `None` (all).
        checks: Bool, run the gradient-masking checks (one extra backward
            pass on clean inputs, one forward pass with noise per eps, and
            a 20-step unbounded PGD on up to 256 samples). Defaults to
            `True`.
        seed: Int, base of the stateless seeds of the attacks' random
            starts and of the checks' noise. Defaults to `0`.
        verbose: 0 (silent), 1 (a progress bar over batches; for an
            AutoAttack, a line per attack and a bar over its batches, as
            `AutoAttack.evaluate`), 2 (one line per stage, no bars) or
            `"auto"` (1 on a terminal or in a notebook, 2 otherwise).
            Defaults to `"auto"`.
        certify: None, a bound method (`"ibp"`, `"crown_ibp"`, `"crown"`),
            a `keras_adv.certification.SmoothedClassifier` of `model`, or a
            list of them: each adds a certified row to the report
            (`report.certified_accuracy(eps, method)`). All attacks must
            share one L-inf or L2 norm. Defaults to `None`.
        certify_options: Optional dict of randomized smoothing's
            settings: `n0` (selection samples, 100), `n` (estimation
            samples, 10,000) and `alpha` (failure probability, 0.001).
            Defaults to `None`.

    Returns:
        A `RobustnessReport`.

    Raises:
        TypeError: for a model that is not a `keras.Model`, attacks that
            are not keras_adv attacks, non-float inputs (e.g. uint8), or a
            `certify` of another type.
        ValueError: for negative or empty `epsilons`, targeted attacks,
            malformed data, NaN inputs, inputs outside an attack's value
            range, or labels that are fractional, negative or not below
            the number of classes; an unknown `certify` method, a
            `SmoothedClassifier` of another model or with L-inf attacks.
        NotImplementedError: with a bound method, for a layer it cannot
            bound (named).
        RuntimeError: for a verified sample an attack breaks.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).uniform(size=(32, 4)).astype("float32")
    >>> y = np.asarray(model(x)).argmax(axis=1)
    >>> report = keras_adv.evaluation.evaluate_robustness(
    ...     model, (x, y), epsilons=[0.0, 0.5], verbose=0)
    >>> report.clean_accuracy
    1.0
    >>> report.worst_case(0.5) <= report.accuracy("fgsm", 0.5)
    True
    >>> report = keras_adv.evaluation.evaluate_robustness(
    ...     model, (x, y), epsilons=[0.0, 0.05], certify="crown_ibp",
    ...     verbose=0)
    >>> report.certified_accuracy(0.0)  # eps 0: the clean accuracy
    1.0
    >>> report.certified_accuracy(0.05) <= report.worst_case(0.05)
    True

    Reference:
        Carlini et al., "On Evaluating Adversarial Robustness", 2019,
        [arXiv:1902.06705](https://arxiv.org/abs/1902.06705). Croce and Hein,
        "Reliable evaluation of adversarial robustness with an ensemble of
        diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))
    attacks = attack_dict(attacks)
    value_range = next(iter(attacks.values())).value_range
    if epsilons is None:
        epsilons = default_epsilons(value_range)
    epsilons = check_epsilons(epsilons)
    warn_if_tiny(epsilons, value_range)
    checks = _validation.check_bool("checks", checks)
    seed = _validation.check_int("seed", seed, minimum=0)
    verbose = _validation.check_verbose(verbose)
    batches = Data(
        data,
        batch_size,
        max_samples,
        value_ranges={n: a.value_range for n, a in attacks.items()},
        sample_rank=sample_rank(model),
    )
    certification = Certification(
        certificates(certify, model, attacks, certify_options), epsilons
    )
    norms = sorted({attack.norm for attack in attacks.values()})
    scheduled = [n for n, a in attacks.items() if isinstance(a, AutoAttack)]
    # The graph runs the other attacks; it needs one attack to exist (a
    # noise baseline, not run without checks).
    named = _with_noise(
        attacks, norms, value_range, checks or len(scheduled) == len(attacks)
    )
    graph_attacks = {n: a for n, a in named.items() if n not in scheduled}
    # Seeds by position among all the attacks, as in the monitor.
    rows = [list(named).index(n) for n in graph_attacks]
    sweep = Sweep(attacks, epsilons, norms, checks, keep=_UNBOUNDED_SAMPLES)
    progbar = _progbar(batches.num_batches, verbose)
    graph = None
    step = -1
    kept = []  # the batches an AutoAttack attacks after the sweep
    for step, (x, y) in enumerate(batches):
        if graph is None:
            graph = evaluator(model, graph_attacks, x, checks)
            if scheduled:
                # An AutoAttack meets the model after the batches: its
                # `from_logits` is checked against the outputs now.
                Evaluator.probe(model, [attacks[n] for n in scheduled], x)
        graph.check_labels(y, "data", batches.one_hot_width)
        seeds = _random.batch_seeds(
            seed, len(named) + len(certification.certificates), step
        )
        # Certificates first: a layer the bounds refuse fails before the
        # attacks run.
        certification.add_batch(x, y, seeds[len(named) :])
        seeds = seeds[rows]
        clean_ok = _sweep_batch(graph, sweep, x, y, seeds)
        if scheduled:
            kept.append((x, y, clean_ok))
        if progbar is not None:
            progbar.update(step + 1, values=[("samples", sweep.num_samples)])
    if progbar is not None and batches.num_batches is None:
        values = [("samples", sweep.num_samples)]
        progbar.update(step + 1, values=values, finalize=True)
    for name in scheduled:
        position = list(named).index(name)
        _run_schedule(
            model,
            name,
            cast(AutoAttack, attacks[name]),
            sweep,
            kept,
            graph.num_classes,  # type: ignore[union-attr]  # >= 1 batch
            seed + position,
            batch_size,
            verbose,
        )

    broken = soundness(certification, sweep, low_precision(model))
    fields = sweep.report_fields()
    certified = certification.report_fields(sweep.num_samples, broken)
    check_data, warnings = {}, []
    if checks:
        check_data = {
            **sweep.check_fields(),
            **_unbounded_check(model, value_range, sweep, seed),
        }
        warnings = sanity.gradient_masking_warnings(fields, check_data)
    return RobustnessReport(
        checks=check_data, warnings=warnings, certified=certified, **fields
    )


def _with_noise(
    attacks: Mapping[str, Attack],
    norms: Sequence[str],
    value_range: tuple[float, float],
    checks: bool,
) -> dict[str, Attack]:
    """The attacks of the graph: with checks, a noise baseline per norm."""
    graph_attacks = dict(attacks)
    if checks:
        # Keys that are not identifiers cannot clash with attack names.
        for norm in norms:
            first = next(a for a in attacks.values() if a.norm == norm)
            graph_attacks[f"noise {norm}"] = _noise_for(first, value_range)
    return graph_attacks


def _progbar(
    num_batches: int | None, verbose: int
) -> keras.utils.Progbar | None:
    if not verbose:
        return None
    return keras.utils.Progbar(
        num_batches,
        verbose=verbose,
        unit_name="batch",
        stateful_metrics=["samples"],
    )


def _sweep_batch(
    graph: Evaluator,
    sweep: Sweep,
    x_np: np.ndarray,
    y_np: np.ndarray,
    seeds: np.ndarray,
) -> np.ndarray:
    """Runs one batch clean, then each attack (and noise) at each radius.

    The first call (clean inputs, every attack at eps 0) traces the graph;
    the attacks are timed on calls that run only them. Returns the batch's
    clean correctness.
    """
    x, y = tf.convert_to_tensor(x_np), tf.convert_to_tensor(y_np)
    zero = np.zeros(len(graph.names), "float32")
    clean = graph(x, y, zero, seeds, clean=True)["clean"]
    clean_ok = sweep.add_clean(clean, x_np, y_np)
    for i, eps in enumerate(sweep.epsilons):
        if eps == 0:
            sweep.add_unattacked(i, clean_ok)
            continue
        results, seconds = {}, {}
        for name in (n for n in graph.names if n in sweep.attacks):
            start = time.perf_counter()
            results[name] = _attack_only(graph, name, eps, x, y, seeds)
            seconds[name] = time.perf_counter() - start
        sweep.add_attacks(i, clean_ok, results, seconds)
        if sweep.checks:
            for norm in sweep.noise_correct:
                noise = _attack_only(graph, f"noise {norm}", eps, x, y, seeds)
                sweep.add_noise(i, norm, clean_ok, noise["correct"])
    return clean_ok


def _run_schedule(
    model: keras.Model,
    name: str,
    attack: AutoAttack,
    sweep: Sweep,
    kept: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    classes: int,
    seed: int,
    batch_size: int,
    verbose: int,
) -> None:
    """AutoAttack `name` at each radius over all the kept samples.

    `AutoAttack.run_schedule` (the loop of `AutoAttack.evaluate`) on the
    samples classified correctly clean; its per-sample results join the
    sweep's counts and worst case.
    """
    x = np.concatenate([batch[0] for batch in kept])
    y = np.concatenate([batch[1] for batch in kept])
    clean_ok = np.concatenate([batch[2] for batch in kept])
    for i, eps in enumerate(sweep.epsilons):
        if eps == 0:
            continue
        if verbose:
            print(
                f"{name}: AutoAttack {attack.version} ({attack.norm}, "
                f"eps={eps:g}) on the {int(clean_ok.sum())} of {len(x)} "
                "samples classified correctly",
                flush=True,
            )
        start = time.perf_counter()
        robust, x_adv, _, _ = attack.run_schedule(
            model,
            x,
            y,
            clean_ok,
            num_classes=classes,
            eps=eps,
            seed=seed,
            batch_size=batch_size,
            verbose=verbose,
        )
        seconds = time.perf_counter() - start
        norm = np.concatenate(
            [
                np.asarray(
                    attack.threat_model.distance(
                        x[lo : lo + batch_size], x_adv[lo : lo + batch_size]
                    )
                )
                for lo in range(0, len(x), batch_size)
            ]
        )
        sweep.add_whole(i, name, clean_ok, robust, norm, seconds)
        if verbose:
            print(
                f"{name}: robust accuracy {100 * robust.mean():.2f}% at eps "
                f"{eps:g} ({seconds:.1f} s)",
                flush=True,
            )


def _attack_only(
    graph: Evaluator,
    name: str,
    eps: float,
    x: Tensor,
    y: Tensor,
    seeds: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-sample results of one attack at `eps` (the others do not run)."""
    eps_vector = np.zeros(len(graph.names), "float32")
    eps_vector[graph.names.index(name)] = eps
    return graph(x, y, eps_vector, seeds, clean=False)["attacks"][name]


def _unbounded_check(
    model: keras.Model,
    value_range: tuple[float, float],
    sweep: Sweep,
    seed: int,
) -> dict[str, Any]:
    """Accuracy under a 20-step PGD with eps the whole value range."""
    low, high = value_range
    x = np.concatenate(sweep.kept_x)
    y = np.concatenate(sweep.kept_y)
    start = time.perf_counter()
    pgd = {"unbounded": _unbounded_pgd(value_range)}
    results = evaluate_arrays(
        evaluator(model, pgd, x),
        x,
        y,
        np.float32([high - low]),  # type: ignore[arg-type]  # an array
        seed,
        _UNBOUNDED_BATCH,
    )
    _, survived = robust_masks(
        results["clean"]["correct"],
        {"unbounded": results["attacks"]["unbounded"]["correct"]},
    )
    return {
        "unbounded_eps": high - low,
        "unbounded_accuracy": int(survived.sum()) / len(x),
        "unbounded_samples": len(x),
        "unbounded_seconds": time.perf_counter() - start,
    }
