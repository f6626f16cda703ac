"""`evaluate_robustness`: one honest robustness figure for a Keras model.

For every batch, the clean predictions, each attack at each eps, and the
noise baseline of the gradient-masking checks each run as one compiled
graph (the attacks' own `tf.function`s plus `tf.function`s of this module,
traced once per model and shape); only counts leave the graphs.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.evaluation import sanity
from keras_adv.evaluation.report import RobustnessReport
from keras_adv.threat_models._balls import random_normal
from keras_adv.threat_models._balls import random_uniform

# Samples kept for the unbounded-eps check (it runs a 20-step PGD).
_UNBOUNDED_SAMPLES = 256
_UNBOUNDED_STEPS = 20
_SATURATION = 1.0 - 1e-6


def default_attacks():
    """FGSM and PGD-10 (L-inf, value range [0, 1], their default eps)."""
    return {"fgsm": FGSM(), "pgd": PGD(steps=10, seed=0)}


def attack_dict(attacks):
    """Normalises `attacks` to an ordered dict `name -> Attack`.

    Accepts None (the defaults), one `Attack`, a list/tuple of attacks
    (named after their class, lower case, with `_2`, `_3`... for repeats)
    or a dict of names to attacks.
    """
    if attacks is None:
        return default_attacks()
    if isinstance(attacks, Attack):
        attacks = [attacks]
    if isinstance(attacks, dict):
        items = list(attacks.items())
    elif isinstance(attacks, list | tuple):
        items = []
        counts = {}
        for attack in attacks:
            base = type(attack).__name__.lower()
            counts[base] = counts.get(base, 0) + 1
            name = base if counts[base] == 1 else f"{base}_{counts[base]}"
            items.append((name, attack))
    else:
        raise TypeError(
            _validation.invalid(
                "attacks", "an Attack, a list of attacks or a dict", attacks
            )
        )
    if not items:
        raise ValueError(
            _validation.invalid("attacks", "at least one attack", attacks)
        )
    for name, attack in items:
        if not isinstance(attack, Attack):
            raise TypeError(
                _validation.invalid(
                    "attacks", "keras_adv.attacks.Attack objects", attack
                )
            )
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                _validation.invalid(
                    "attacks",
                    "names that are valid identifiers (letters, digits, _)",
                    name,
                )
            )
        if attack.targeted:
            raise ValueError(
                "Robustness is evaluated with untargeted attacks on the true "
                f"labels. Received: attack {name!r} with targeted=True."
            )
    return dict(items)


def check_epsilons(epsilons):
    """Returns the radii as an ascending list of unique floats."""
    if isinstance(epsilons, int | float) and not isinstance(epsilons, bool):
        epsilons = [epsilons]
    try:
        values = [
            _validation.check_number("epsilons", e, minimum=0.0)
            for e in epsilons
        ]
    except TypeError:
        raise ValueError(
            _validation.invalid("epsilons", "a list of numbers >= 0", epsilons)
        ) from None
    if not values:
        raise ValueError(
            _validation.invalid("epsilons", "at least one radius", epsilons)
        )
    return sorted(set(values))


def sparse_labels(y, name="data"):
    """Int64 labels `(n,)` from ints `(n,)`, `(n, 1)` or one-hot `(n, k)`.

    Args:
        y: The labels (array-like).
        name: The argument named in error messages. Defaults to `"data"`.

    Raises:
        ValueError: for other shapes, non-integer or negative labels.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype("int64")
    if y.ndim == 2:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            _validation.invalid(
                name,
                "labels of shape (n,), (n, 1) or one-hot (n, classes)",
                y.shape,
            )
        )
    if not np.issubdtype(y.dtype, np.number) or np.any(y != np.round(y)):
        raise ValueError(
            _validation.invalid(name, "integer class labels", y[:5].tolist())
        )
    if np.any(y < 0):
        raise ValueError(
            _validation.invalid(name, "class labels >= 0", int(y.min()))
        )
    return y.astype("int64")


def iterate_batches(data, batch_size, max_samples=None):
    """Yields `(x, y)` numpy batches from arrays or a `tf.data.Dataset`.

    Args:
        data: A pair `(x, y)` of arrays, or a `tf.data.Dataset` of
            `(x, y)` or `(x, y, sample_weight)` elements, batched or not.
        batch_size: Int, batch size for arrays and unbatched datasets.
        max_samples: Optional int, stop after this many samples.

    Returns:
        `(generator, num_batches)`, `num_batches` None when unknown.
    """
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    if max_samples is not None:
        max_samples = _validation.check_int(
            "max_samples", max_samples, minimum=1
        )
    if isinstance(data, tf.data.Dataset):
        return _dataset_batches(data, batch_size, max_samples)
    if not isinstance(data, list | tuple) or len(data) != 2:
        raise TypeError(
            _validation.invalid(
                "data", "a pair (x, y) of arrays or a tf.data.Dataset", data
            )
        )
    x, y = data
    x = np.asarray(x)
    y = sparse_labels(y)
    if len(x) != len(y):
        raise ValueError(
            f"x and y have different lengths: len(x)={len(x)}, len(y)={len(y)}"
        )
    if len(x) == 0:
        raise ValueError(_validation.invalid("data", "at least one sample", 0))
    n = len(x) if max_samples is None else min(len(x), max_samples)

    def generate():
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            yield x[start:stop], y[start:stop]

    return generate(), -(-n // batch_size)


def _dataset_batches(data, batch_size, max_samples):
    spec = data.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise ValueError(
            _validation.invalid(
                "data",
                "a tf.data.Dataset of (x, y) or (x, y, sample_weight)",
                spec,
            )
        )
    y_rank = spec[1].shape.rank
    if y_rank == 0:
        data = data.batch(batch_size)
    cardinality = int(data.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY and max_samples is None:
        raise ValueError(
            "The dataset is infinite (e.g. `.repeat()` without a count); "
            "pass `max_samples` to evaluate a fixed number of samples."
        )
    num_batches = cardinality if cardinality >= 0 else None
    if max_samples is not None:
        num_batches = None

    def generate():
        seen = 0
        for element in data:
            x = np.asarray(element[0])
            y = sparse_labels(np.asarray(element[1]))
            if len(x) != len(y):
                raise ValueError(
                    "The dataset's x and y batches have different lengths "
                    f"({len(x)} and {len(y)}). Unbatched datasets need "
                    "scalar labels; batch one-hot labels with `.batch()`."
                )
            if max_samples is not None:
                x = x[: max_samples - seen]
                y = y[: max_samples - seen]
            if len(x):
                yield x, y
            seen += len(x)
            if max_samples is not None and seen >= max_samples:
                return

    return generate(), num_batches


def take_samples(data, max_samples, batch_size=256):
    """Returns the first `max_samples` of `data` as numpy `(x, y)`."""
    batches, _ = iterate_batches(data, batch_size, max_samples)
    xs, ys = [], []
    for x, y in batches:
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError(_validation.invalid("data", "at least one sample", 0))
    return np.concatenate(xs), np.concatenate(ys)


def _noise(x, eps, norm, value_range, seed):
    """x plus random noise of norm `eps`: L-inf corners or L2 sphere."""
    if norm == "linf":
        delta = ops.sign(random_uniform(ops.shape(x), seed, -1.0, 1.0)) * eps
    else:
        g = random_normal(ops.shape(x), seed)
        axes = list(range(1, len(x.shape)))
        g_norm = ops.sqrt(ops.sum(g * g, axis=axes, keepdims=True))
        delta = eps * g / ops.maximum(g_norm, 1e-12)
    return ops.clip(x + delta, value_range[0], value_range[1])


class _Evaluator:
    """Compiled per-batch steps of `evaluate_robustness` for one model."""

    def __init__(self, model, attacks, checks, seed):
        self.model = model
        self.attacks = attacks
        self.checks = checks
        self.probe = next(iter(attacks.values()))
        self.value_range = self.probe.value_range
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.noise_steps = {}
        self.clean_step = None
        self.adv_steps = None

    def build(self, x):
        """Compiles the steps for batches shaped like `x` (any batch size)."""
        x_spec = tf.TensorSpec([None] + list(x.shape[1:]), x.dtype)
        y_spec = tf.TensorSpec([None], "int64")
        self.x_spec, self.y_spec = x_spec, y_spec
        self.clean_step = tf.function(
            self._clean, input_signature=[x_spec, y_spec]
        )
        self.adv_steps = {
            name: tf.function(
                self._make_adv_step(attack),
                input_signature=[x_spec, x_spec, y_spec],
            )
            for name, attack in self.attacks.items()
        }

    def _outputs(self, x):
        outputs = self.model(x, training=False)
        if isinstance(outputs, list | tuple | dict):
            raise ValueError(
                "evaluate_robustness needs a model with one output of shape "
                f"(batch, classes). Received {len(outputs)} outputs."
            )
        return ops.cast(outputs, "float32")

    def _correct(self, x, y):
        predicted = ops.argmax(self._outputs(x), axis=-1)
        return ops.equal(ops.cast(predicted, "int64"), y)

    def _clean(self, x, y):
        outputs = self._outputs(x)
        predicted = ops.cast(ops.argmax(outputs, axis=-1), "int64")
        result = {"correct": ops.equal(predicted, y)}
        if self.checks:
            _, grad = self.probe.objective_and_gradient(
                self.probe.model_logits(self.model),
                ops.cast(x, "float32"),
                ops.cast(y, "int32"),
            )
            axes = list(range(1, len(x.shape)))
            result["zero_grad"] = ops.equal(
                ops.max(ops.abs(grad), axis=axes), 0.0
            )
            result["bounded"] = ops.all(
                ops.logical_and(outputs >= 0.0, outputs <= 1.0), axis=-1
            )
            result["sums_to_one"] = (
                ops.abs(ops.sum(outputs, axis=-1) - 1.0) < 1e-3
            )
            result["saturated"] = ops.max(outputs, axis=-1) >= _SATURATION
        return result

    def _make_adv_step(self, attack):
        def step(x, x_adv, y):
            correct = self._correct(x_adv, y)
            norm = attack.threat_model.distance(x, x_adv)
            return correct, norm

        return step

    def noise_step(self, norm):
        fn = self.noise_steps.get(norm)
        if fn is None:

            def step(x, y, eps):
                x_noisy = _noise(
                    ops.cast(x, "float32"),
                    eps,
                    norm,
                    self.value_range,
                    self.seed_generator,
                )
                return self._correct(ops.cast(x_noisy, x.dtype), y)

            fn = tf.function(
                step,
                input_signature=[
                    self.x_spec,
                    self.y_spec,
                    tf.TensorSpec([], "float32"),
                ],
            )
            self.noise_steps[norm] = fn
        return fn


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

    Args:
        model: A Keras classifier with one output `(batch, classes)`
            (logits or probabilities).
        data: A pair `(x, y)` of arrays (x in the attacks' value range, y
            int labels or one-hot) or a `tf.data.Dataset` of `(x, y)`
            elements, batched or not.
        attacks: An attack, a list of attacks, a dict `name -> attack`, or
            None for `FGSM()` and `PGD(steps=10)` (L-inf on [0, 1]). All
            attacks must be untargeted. Defaults to `None`.
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
        seed: Int, seed of the random noise of the checks. Defaults to `0`.
        verbose: 0 (silent) or 1 (progress bar over batches). Defaults to
            `1`.

    Returns:
        A `RobustnessReport`.

    Raises:
        TypeError: for a model that is not a `keras.Model`, or attacks that
            are not keras_adv attacks.
        ValueError: for negative or empty `epsilons`, targeted attacks,
            malformed data, or inputs the attacks reject.

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
    batches, num_batches = iterate_batches(data, batch_size, max_samples)
    evaluator = _Evaluator(model, attacks, checks, seed)
    norms = sorted({attack.norm for attack in attacks.values()})

    n = 0
    clean_total = 0
    n_eps = len(epsilons)
    correct = {name: np.zeros(n_eps) for name in attacks}
    flipped = {name: np.zeros(n_eps) for name in attacks}
    norm_sum = {name: np.zeros(n_eps) for name in attacks}
    norm_max = {name: np.zeros(n_eps) for name in attacks}
    seconds = dict.fromkeys(attacks, 0.0)
    robust = np.zeros(n_eps)
    noise_correct = {norm: np.zeros(n_eps) for norm in norms}
    stats = {"zero_grad": 0, "bounded": 0, "sums_to_one": 0, "saturated": 0}
    kept_x, kept_y, kept = [], [], 0

    progbar = None
    if verbose:
        progbar = keras.utils.Progbar(
            num_batches,
            verbose=verbose,
            unit_name="batch",
            stateful_metrics=["samples"],
        )
    full = None
    step = -1
    for step, (x, y) in enumerate(batches):
        size = len(x)
        if full is None:
            full = size
        # The last batch is padded to the first one's size so that no graph
        # (attacks included) is traced twice; the padding is cut off below.
        x_np = _pad(np.asarray(x), full)
        y = _pad(np.asarray(y), full)
        x = ops.convert_to_tensor(x_np)
        y_t = ops.convert_to_tensor(y, "int64")
        if evaluator.clean_step is None:
            evaluator.build(x)
        clean = evaluator.clean_step(x, y_t)
        clean_ok = np.asarray(clean["correct"])[:size]
        n += size
        clean_total += int(clean_ok.sum())
        if checks:
            for key in stats:
                stats[key] += int(np.asarray(clean[key])[:size].sum())
            if kept < _UNBOUNDED_SAMPLES:
                take = min(_UNBOUNDED_SAMPLES - kept, size)
                kept_x.append(x_np[:take])
                kept_y.append(y[:take])
                kept += take
        for i, eps in enumerate(epsilons):
            survivors = clean_ok.copy()
            if eps == 0:
                for name in attacks:
                    correct[name][i] += clean_ok.sum()
                robust[i] += clean_ok.sum()
                for norm in norms:
                    noise_correct[norm][i] += clean_ok.sum()
                continue
            for name, attack in attacks.items():
                start = time.perf_counter()
                x_adv = attack(model, x, y_t, eps=eps)
                adv_ok, dist = evaluator.adv_steps[name](x, x_adv, y_t)
                adv_ok = np.asarray(adv_ok)[:size]
                dist = np.asarray(dist)[:size]
                seconds[name] += time.perf_counter() - start
                ok = np.logical_and(adv_ok, clean_ok)
                correct[name][i] += ok.sum()
                flipped[name][i] += np.logical_and(clean_ok, ~ok).sum()
                norm_sum[name][i] += dist.sum()
                norm_max[name][i] = max(norm_max[name][i], float(dist.max()))
                survivors &= ok
            robust[i] += survivors.sum()
            if checks:
                eps_t = ops.convert_to_tensor(eps, "float32")
                for norm in norms:
                    ok = evaluator.noise_step(norm)(x, y_t, eps_t)
                    ok = np.asarray(ok)[:size]
                    noise_correct[norm][i] += np.logical_and(ok, clean_ok).sum()
        if progbar is not None:
            progbar.update(step + 1, values=[("samples", n)])
    if n == 0:
        raise ValueError(_validation.invalid("data", "at least one sample", 0))
    if progbar is not None and num_batches is None:
        progbar.update(step + 1, values=[("samples", n)], finalize=True)

    attack_entries = {}
    for name, attack in attacks.items():
        attack_entries[name] = {
            "class_name": type(attack).__name__,
            "config": _json_config(attack),
            "norm": attack.norm,
            "steps": int(getattr(attack, "steps", 1)),
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
            model, evaluator, stats, n, noise_correct, kept_x, kept_y, seed
        )
        warnings = sanity.gradient_masking_warnings(report_data, check_data)
    return RobustnessReport(checks=check_data, warnings=warnings, **report_data)


def _pad(array, size):
    """Repeats the rows of `array` cyclically up to `size` rows."""
    if len(array) >= size:
        return array
    return np.take(array, np.arange(size) % len(array), axis=0)


def _json_config(attack):
    config = attack.get_config()
    eps = config.get("eps")
    if eps is not None and not isinstance(eps, int | float):
        config["eps"] = np.asarray(ops.convert_to_numpy(eps)).tolist()
    return config


def _run_checks(
    model, evaluator, stats, n, noise_correct, kept_x, kept_y, seed
):
    """Measurements for `sanity.gradient_masking_warnings`."""
    if stats["bounded"] == n and stats["sums_to_one"] == n:
        output_kind = "probabilities"
    elif stats["bounded"] == n:
        output_kind = "bounded"
    else:
        output_kind = "logits"
    low, high = evaluator.value_range
    unbounded_eps = high - low
    x = np.concatenate(kept_x)
    y = np.concatenate(kept_y)
    start = time.perf_counter()
    pgd = PGD(
        eps=unbounded_eps,
        steps=_UNBOUNDED_STEPS,
        loss="margin",
        value_range=(low, high),
        seed=seed,
    )
    survived = 0
    batch = min(len(x), 128)
    for begin in range(0, len(x), batch):
        size = min(batch, len(x) - begin)
        xb = ops.convert_to_tensor(_pad(x[begin : begin + batch], batch))
        yb = ops.convert_to_tensor(_pad(y[begin : begin + batch], batch))
        x_adv = pgd(model, xb, yb)
        clean_ok = np.asarray(evaluator.clean_step(xb, yb)["correct"])
        adv_ok = np.asarray(evaluator.clean_step(x_adv, yb)["correct"])
        survived += int(np.logical_and(adv_ok, clean_ok)[:size].sum())
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
        "unbounded_eps": unbounded_eps,
        "unbounded_accuracy": survived / len(x),
        "unbounded_samples": len(x),
        "unbounded_seconds": time.perf_counter() - start,
    }
