"""`evaluate_robustness`: one honest robustness figure for a Keras model.

The data, the compiled per-batch graph and the definitions of robust and
worst case come from the evaluation core shared with `RobustnessMonitor`
(`_data`, `_graph`, `_accounting`); this module sweeps the radii, times
the attacks, runs the gradient-masking checks and writes the report.
"""

import functools
import time
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _validation
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.evaluation import sanity
from keras_adv.evaluation._accounting import Sweep
from keras_adv.evaluation._accounting import robust_masks
from keras_adv.evaluation._attack_set import attack_dict
from keras_adv.evaluation._attack_set import check_epsilons
from keras_adv.evaluation._data import Data
from keras_adv.evaluation._data import sample_rank
from keras_adv.evaluation._graph import evaluate_arrays
from keras_adv.evaluation._graph import evaluator
from keras_adv.evaluation._report import RobustnessReport

# Samples kept for the unbounded-eps check (it runs a 20-step PGD).
_UNBOUNDED_SAMPLES = 256
_UNBOUNDED_STEPS = 20
_UNBOUNDED_BATCH = 128


class _Noise(Attack):
    """Random noise of norm eps: L-inf ball corners or the L2 sphere.

    The baseline of the `noise_beats_attack` check, run by the evaluation
    graph like any attack.
    """

    def generate(self, model_logits, x, y, eps, seed):
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

    def __init__(self, threat_model):
        super().__init__(value_range=threat_model.value_range)
        self.threat_model = threat_model

    @property
    def threat_model(self):
        return self._set()

    @threat_model.setter
    def threat_model(self, value):
        self._set = weakref.ref(value)

    def generate(self, model_logits, x, y, eps, seed):
        tm = self.threat_model
        mean, std = tm.prior(x)
        noise = _random.random_normal(ops.shape(mean), seed)
        u = tm.ascent_direction(noise)
        return tm.decode(x, mean, std, u * tm.latent_radius(mean, eps))

    def get_config(self):
        return {"noise_of": id(self.threat_model)}


# One noise baseline per learned set, so that its graphs are reused; keyed
# weakly (nothing is stored on the user's threat model).
_SET_NOISE = weakref.WeakKeyDictionary()


def _noise_for(attack, value_range):
    """The random-noise baseline of `attack`'s threat model."""
    if attack.norm in ("linf", "l2"):
        return _noise(attack.norm, value_range)
    noise = _SET_NOISE.get(attack.threat_model)
    if noise is None:
        noise = _SET_NOISE[attack.threat_model] = _SetNoise(attack.threat_model)
    return noise


@functools.lru_cache(maxsize=16)
def _noise(norm, value_range):
    # One object per norm and range, so that graphs are reused across calls.
    return _Noise(norm=norm, value_range=value_range)


@functools.lru_cache(maxsize=16)
def _unbounded_pgd(value_range):
    low, high = value_range
    return PGD(
        eps=high - low,
        steps=_UNBOUNDED_STEPS,
        loss="margin",
        value_range=value_range,
    )


def evaluate_robustness(
    model,
    data,
    attacks=None,
    epsilons=(0.0, 0.1, 0.2, 0.3),
    batch_size=128,
    max_samples=None,
    checks=True,
    seed=0,
    verbose=1,
):
    """Evaluates a classifier under attacks over a sweep of radii.

    Every attack runs at every eps in `epsilons` (its own `eps` is
    ignored) against the true labels. A sample counts as robust at an eps
    only if it is classified correctly clean and after the attack; the
    worst case counts it only if it survives every attack. The report also
    holds attack success rates (share of correctly classified samples the
    attack flips), mean and max perturbation norms, time per attack and
    the results of gradient-masking sanity checks (see
    `keras_adv.evaluation.sanity`) as warnings.

    The inputs are checked before any graph runs, whatever the radii:
    floating-point x without NaN inside every attack's value range, and
    integer class labels in `[0, classes)`. Evaluation is deterministic:
    random starts use stateless seeds derived from `seed`, the attack's
    position and the batch, exactly as in `RobustnessMonitor`, so both
    give the same accuracies on the same data and attacks.

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
        epsilons: Radii to sweep, numbers >= 0 (sorted, duplicates
            dropped). `0` gives the clean accuracy. Defaults to
            `(0.0, 0.1, 0.2, 0.3)`.
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
        verbose: 0 (silent) or 1 (progress bar over batches). Defaults to
            `1`.

    Returns:
        A `RobustnessReport`.

    Raises:
        TypeError: for a model that is not a `keras.Model`, attacks that
            are not keras_adv attacks, or non-float inputs (e.g. uint8).
        ValueError: for negative or empty `epsilons`, targeted attacks,
            malformed data, NaN inputs, inputs outside an attack's value
            range, or labels that are fractional, negative or not below
            the number of classes.

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

    Reference:
        Carlini et al., "On Evaluating Adversarial Robustness", 2019,
        arXiv:1902.06705. Croce and Hein, "Reliable evaluation of
        adversarial robustness with an ensemble of diverse parameter-free
        attacks", ICML 2020, arXiv:2003.01690.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))
    attacks = attack_dict(attacks)
    epsilons = check_epsilons(epsilons)
    checks = _validation.check_bool("checks", checks)
    seed = _validation.check_int("seed", seed, minimum=0)
    if verbose not in (0, 1, 2):
        raise ValueError(_validation.invalid("verbose", "0, 1 or 2", verbose))
    batches = Data(
        data,
        batch_size,
        max_samples,
        value_ranges={n: a.value_range for n, a in attacks.items()},
        sample_rank=sample_rank(model),
    )
    value_range = next(iter(attacks.values())).value_range
    norms = sorted({attack.norm for attack in attacks.values()})
    graph_attacks = _with_noise(attacks, norms, value_range, checks)
    sweep = Sweep(attacks, epsilons, norms, checks, keep=_UNBOUNDED_SAMPLES)
    progbar = _progbar(batches.num_batches, verbose)
    graph = None
    step = -1
    for step, (x, y) in enumerate(batches):
        if graph is None:
            graph = evaluator(model, graph_attacks, x, checks)
        graph.check_labels(y, "data", batches.one_hot_width)
        seeds = _random.batch_seeds(seed, len(graph_attacks), step)
        _sweep_batch(graph, sweep, x, y, seeds)
        if progbar is not None:
            progbar.update(step + 1, values=[("samples", sweep.num_samples)])
    if progbar is not None and batches.num_batches is None:
        values = [("samples", sweep.num_samples)]
        progbar.update(step + 1, values=values, finalize=True)

    fields = sweep.report_fields()
    check_data, warnings = {}, []
    if checks:
        check_data = {
            **sweep.check_fields(),
            **_unbounded_check(model, value_range, sweep, seed),
        }
        warnings = sanity.gradient_masking_warnings(fields, check_data)
    return RobustnessReport(checks=check_data, warnings=warnings, **fields)


def _with_noise(attacks, norms, value_range, checks):
    """The attacks of the graph: with checks, a noise baseline per norm."""
    graph_attacks = dict(attacks)
    if checks:
        # Keys that are not identifiers cannot clash with attack names.
        for norm in norms:
            first = next(a for a in attacks.values() if a.norm == norm)
            graph_attacks[f"noise {norm}"] = _noise_for(first, value_range)
    return graph_attacks


def _progbar(num_batches, verbose):
    if not verbose:
        return None
    return keras.utils.Progbar(
        num_batches,
        verbose=verbose,
        unit_name="batch",
        stateful_metrics=["samples"],
    )


def _sweep_batch(graph, sweep, x_np, y_np, seeds):
    """Runs one batch clean, then each attack (and noise) at each radius.

    The first call (clean inputs, every attack at eps 0) traces the graph;
    the attacks are timed on calls that run only them.
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
        for name in sweep.attacks:
            start = time.perf_counter()
            results[name] = _attack_only(graph, name, eps, x, y, seeds)
            seconds[name] = time.perf_counter() - start
        sweep.add_attacks(i, clean_ok, results, seconds)
        if sweep.checks:
            for norm in sweep.noise_correct:
                noise = _attack_only(graph, f"noise {norm}", eps, x, y, seeds)
                sweep.add_noise(i, norm, clean_ok, noise["correct"])


def _attack_only(graph, name, eps, x, y, seeds):
    """Per-sample results of one attack at `eps` (the others do not run)."""
    eps_vector = np.zeros(len(graph.names), "float32")
    eps_vector[graph.names.index(name)] = eps
    return graph(x, y, eps_vector, seeds, clean=False)["attacks"][name]


def _unbounded_check(model, value_range, sweep, seed):
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
        np.float32([high - low]),
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
