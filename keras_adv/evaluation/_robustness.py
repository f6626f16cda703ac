"""`evaluate_robustness`: one honest robustness figure for a Keras model.

The data, the compiled per-batch graph and the definitions of robust and
worst case come from the evaluation core (`keras_adv.evaluation._core`),
shared with `RobustnessMonitor`; this module sweeps the radii, times the
attacks, runs the gradient-masking checks and writes the report.
"""

import functools
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.evaluation import _core
from keras_adv.evaluation import sanity
from keras_adv.evaluation._core import attack_dict  # noqa: F401
from keras_adv.evaluation._core import check_epsilons
from keras_adv.evaluation._core import default_attacks  # noqa: F401
from keras_adv.evaluation._core import take as take_samples  # noqa: F401
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
            noise = tf.random.stateless_uniform(shape, seed, -1.0, 1.0)
            delta = ops.sign(noise) * eps
        else:
            noise = tf.random.stateless_normal(shape, seed)
            axes = list(range(1, len(x.shape)))
            size = ops.sqrt(ops.sum(noise * noise, axis=axes, keepdims=True))
            delta = eps * noise / ops.maximum(size, 1e-12)
        return self.threat_model.clip(x + delta)


class _SetNoise(Attack):
    """A random member of a learned set at latent norm eps (its noise).

    The `noise_beats_attack` baseline of a non-ball threat model such as
    `LearnedPerturbationSet`: a uniformly random direction `u` of norm eps,
    decoded into a member of the set.
    """

    def __init__(self, threat_model):
        super().__init__(value_range=threat_model.value_range)
        self.threat_model = threat_model

    def generate(self, model_logits, x, y, eps, seed):
        tm = self.threat_model
        mean, std = tm.prior(x)
        noise = tf.random.stateless_normal(ops.shape(mean), seed)
        u = tm.ascent_direction(noise)
        return tm.decode(x, mean, std, u * tm.latent_radius(mean, eps))

    def get_config(self):
        return {"noise_of": id(self.threat_model)}


def _noise_for(attack, value_range):
    """The random-noise baseline of `attack`'s threat model."""
    if attack.norm in ("linf", "l2"):
        return _noise(attack.norm, value_range)
    noise = getattr(attack.threat_model, "_keras_adv_noise", None)
    if noise is None:  # one object per set, so graphs are reused
        noise = _SetNoise(attack.threat_model)
        attack.threat_model._keras_adv_noise = noise
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
    batches = _core.Data(
        data,
        batch_size,
        max_samples,
        value_ranges={n: a.value_range for n, a in attacks.items()},
        sample_rank=_core.sample_rank(model),
    )
    value_range = next(iter(attacks.values())).value_range
    norms = sorted({attack.norm for attack in attacks.values()})
    graph_attacks = dict(attacks)
    if checks:
        # Keys that are not identifiers cannot clash with attack names.
        for norm in norms:
            first = next(a for a in attacks.values() if a.norm == norm)
            graph_attacks[f"noise {norm}"] = _noise_for(first, value_range)
    zero = np.zeros(len(graph_attacks), "float32")

    n = clean_total = 0
    n_eps = len(epsilons)
    correct = {name: np.zeros(n_eps) for name in attacks}
    flipped = {name: np.zeros(n_eps) for name in attacks}
    norm_sum = {name: np.zeros(n_eps) for name in attacks}
    norm_max = {name: np.zeros(n_eps) for name in attacks}
    seconds = dict.fromkeys(attacks, 0.0)
    robust = np.zeros(n_eps)
    noise_correct = {norm: np.zeros(n_eps) for norm in norms}
    stats = dict.fromkeys(_core.CHECK_STATS, 0)
    kept_x, kept_y, kept = [], [], 0

    progbar = None
    if verbose:
        progbar = keras.utils.Progbar(
            batches.num_batches,
            verbose=verbose,
            unit_name="batch",
            stateful_metrics=["samples"],
        )
    evaluator = None
    step = -1
    for step, (x_np, y_np) in enumerate(batches):
        if evaluator is None:
            evaluator = _core.evaluator(model, graph_attacks, x_np, checks)
        evaluator.check_labels(y_np, "data", batches.one_hot_width)
        x, y = tf.convert_to_tensor(x_np), tf.convert_to_tensor(y_np)
        seeds = _core.batch_seeds(seed, len(graph_attacks), step)
        # The first call (clean inputs, every attack at eps 0) traces the
        # graph; the attacks are timed on calls that run only them.
        clean = evaluator(x, y, zero, seeds, clean=True)["clean"]
        clean_ok = clean["correct"]
        n += len(clean_ok)
        clean_total += int(clean_ok.sum())
        if checks:
            for key in stats:
                stats[key] += int(clean[key].sum())
            if kept < _UNBOUNDED_SAMPLES:
                take = min(_UNBOUNDED_SAMPLES - kept, len(x_np))
                kept_x.append(x_np[:take])
                kept_y.append(y_np[:take])
                kept += take

        for i, eps in enumerate(epsilons):
            if eps == 0:
                for name in attacks:
                    correct[name][i] += clean_ok.sum()
                robust[i] += clean_ok.sum()
                for norm in norms:
                    noise_correct[norm][i] += clean_ok.sum()
                continue
            under_attack = {}
            for name in attacks:
                start = time.perf_counter()
                result = _attack_only(evaluator, name, eps, x, y, seeds)
                seconds[name] += time.perf_counter() - start
                under_attack[name] = result["correct"]
                norm_sum[name][i] += result["norm"].sum()
                norm_max[name][i] = max(
                    norm_max[name][i], float(result["norm"].max())
                )
            survived, worst = _core.robust_masks(clean_ok, under_attack)
            for name, ok in survived.items():
                correct[name][i] += ok.sum()
                flipped[name][i] += np.logical_and(clean_ok, ~ok).sum()
            robust[i] += worst.sum()
            if checks:
                for norm in norms:
                    ok = _attack_only(
                        evaluator, f"noise {norm}", eps, x, y, seeds
                    )["correct"]
                    noise_correct[norm][i] += np.logical_and(ok, clean_ok).sum()
        if progbar is not None:
            progbar.update(step + 1, values=[("samples", n)])
    if progbar is not None and batches.num_batches is None:
        progbar.update(step + 1, values=[("samples", n)], finalize=True)

    attack_entries = {}
    for name, attack in attacks.items():
        attack_entries[name] = {
            "class_name": type(attack).__name__,
            "config": _json_config(attack),
            "norm": attack.norm,
            # None for attacks that are not step-counted searches
            # (AutoAttack, Square): they join no single/multi-step check.
            "steps": (int(attack.steps) if hasattr(attack, "steps") else None),
            "accuracy": (correct[name] / n).tolist(),
            "success_rate": (flipped[name] / max(clean_total, 1)).tolist(),
            "mean_norm": (norm_sum[name] / n).tolist(),
            "max_norm": norm_max[name].tolist(),
            "seconds": seconds[name],
        }
    report_data = {
        "num_samples": n,
        "clean_accuracy": clean_total / n,
        "epsilons": epsilons,
        "attacks": attack_entries,
        "robust_accuracy": (robust / n).tolist(),
    }
    check_data = {}
    warnings = []
    if checks:
        check_data = _run_checks(
            model, value_range, stats, n, noise_correct, kept_x, kept_y, seed
        )
        warnings = sanity.gradient_masking_warnings(report_data, check_data)
    return RobustnessReport(checks=check_data, warnings=warnings, **report_data)


def _attack_only(evaluator, name, eps, x, y, seeds):
    """Per-sample results of one attack at `eps` (the others do not run)."""
    eps_vector = np.zeros(len(evaluator.names), "float32")
    eps_vector[evaluator.names.index(name)] = eps
    return evaluator(x, y, eps_vector, seeds, clean=False)["attacks"][name]


def _json_config(attack):
    config = attack.get_config()
    eps = config.get("eps")
    if eps is not None and not isinstance(eps, int | float):
        config["eps"] = np.asarray(ops.convert_to_numpy(eps)).tolist()
    return config


def _run_checks(
    model, value_range, stats, n, noise_correct, kept_x, kept_y, seed
):
    """Measurements for `sanity.gradient_masking_warnings`."""
    if stats["bounded"] == n and stats["sums_to_one"] == n:
        output_kind = "probabilities"
    elif stats["bounded"] == n:
        output_kind = "bounded"
    else:
        output_kind = "logits"
    low, high = value_range
    x = np.concatenate(kept_x)
    y = np.concatenate(kept_y)
    start = time.perf_counter()
    pgd = {"unbounded": _unbounded_pgd(value_range)}
    evaluator = _core.evaluator(model, pgd, x)
    results = _core.evaluate_arrays(
        evaluator, x, y, np.float32([high - low]), seed, _UNBOUNDED_BATCH
    )
    _, survived = _core.robust_masks(
        results["clean"]["correct"],
        {"unbounded": results["attacks"]["unbounded"]["correct"]},
    )
    return {
        "output_kind": output_kind,
        "zero_gradient_share": stats["zero_grad"] / n,
        "saturated_share": (
            stats["saturated"] / n if output_kind == "probabilities" else None
        ),
        "noise_accuracy": {
            norm: (counts / n).tolist()
            for norm, counts in noise_correct.items()
        },
        "unbounded_eps": high - low,
        "unbounded_accuracy": int(survived.sum()) / len(x),
        "unbounded_samples": len(x),
        "unbounded_seconds": time.perf_counter() - start,
    }
