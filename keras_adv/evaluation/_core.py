"""The evaluation core behind `evaluate_robustness` and `RobustnessMonitor`.

Three pieces, shared by both:

* `Data`: one iterator over `(x, y)` arrays or a `tf.data.Dataset` that
  validates as it goes (floating-point x without NaN inside every attack's
  value range; integer class ids >= 0, one-hot rows recognised only in
  batches) and yields copies, never views of the caller's arrays;
* `Evaluator`: one compiled per-batch graph `(x, y, eps per attack, seeds,
  clean) -> per-sample results` (clean prediction, correctness and logit
  margin; per attack the same plus the perturbation norm), built on
  `Attack.perturb` with stateless seeds and `ModelLogits`, traced once per
  model, attacks and input signature and cached across calls;
* `robust_masks`: the one definition of robust (correct clean and under
  the attack) and worst case (correct clean and under every attack).

This module is one of the TensorFlow seams of keras_adv (`tf.function`,
`tf.cond`, `tf.data`).
"""

import json
import os
import tempfile
import time
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv import losses
from keras_adv._outputs import check_classifier_outputs
from keras_adv._outputs import looks_like_probabilities
from keras_adv.attacks import FGSM
from keras_adv.attacks import PGD
from keras_adv.attacks import Attack
from keras_adv.attacks import ModelLogits

_SEED_MAX = 2**31 - 1
# Softmax outputs at least this close to 1 count as saturated (checks).
SATURATION = 1.0 - 1e-6
# Per-sample measurements of the gradient-masking checks (clean inputs).
CHECK_STATS = ("zero_grad", "bounded", "sums_to_one", "saturated")
# Samples of the eager model probe (output shape, logits or probabilities).
_PROBE = 32


# ---------------------------------------------------------------- attacks
def default_attacks():
    """FGSM and PGD-10 (L-inf, value range [0, 1], their default eps)."""
    return {"fgsm": FGSM(), "pgd": PGD(steps=10, seed=0)}


def attack_by_name(name):
    """A default-configured attack from its name (see `ATTACK_NAMES`).

    `"generator:PATH.keras"` loads a saved generator as a
    `keras_adv.attacks.GeneratorAttack`.
    """
    from keras_adv import attacks as attacks_module

    if isinstance(name, str) and name.lower().startswith("generator:"):
        return attacks_module.GeneratorAttack(name[len("generator:") :])
    factories = {
        "fgsm": lambda: attacks_module.FGSM(),
        "pgd": lambda: attacks_module.PGD(steps=10, seed=0),
        "pgd20": lambda: attacks_module.PGD(steps=20, seed=0),
        "apgd": lambda: attacks_module.APGD(seed=0),
        "apgd_t": lambda: attacks_module.APGDT(seed=0),
        "fab_t": lambda: attacks_module.FAB(seed=0),
        "square": lambda: attacks_module.Square(seed=0),
        "autoattack": lambda: attacks_module.AutoAttack(seed=0),
    }
    key = _validation.check_choice("attacks", name, set(factories))
    return factories[key]()


ATTACK_NAMES = (
    "fgsm",
    "pgd",
    "pgd20",
    "apgd",
    "apgd_t",
    "fab_t",
    "square",
    "autoattack",
)


def _attack_key(name):
    """The report name of an attack given by name (`generator:...` ->
    `generator`)."""
    name = name.lower()
    return "generator" if name.startswith("generator:") else name


def attack_dict(attacks):
    """Normalises `attacks` to an ordered dict `name -> Attack`.

    Accepts None (the defaults), one `Attack`, a name (`"autoattack"`,
    `"apgd"`, ... see `ATTACK_NAMES`), a list/tuple of attacks or names
    (named after their class, lower case, with `_2`, `_3`... for repeats)
    or a dict of names to attacks. Targeted attacks are refused.
    """
    if attacks is None:
        return default_attacks()
    if isinstance(attacks, str):
        return {_attack_key(attacks): attack_by_name(attacks)}
    if isinstance(attacks, Attack):
        attacks = [attacks]
    if isinstance(attacks, dict):
        items = list(attacks.items())
    elif isinstance(attacks, list | tuple):
        items, counts = [], {}
        for attack in attacks:
            if isinstance(attack, str):
                base = _attack_key(attack)
                attack = attack_by_name(attack)
            else:
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


def scalar_eps(name, attack):
    """The attack's current eps as a float (variables are read)."""
    eps = np.asarray(ops.convert_to_numpy(attack.eps), "float32")
    if eps.ndim != 0:
        raise ValueError(
            _validation.invalid(
                "attacks",
                f"attacks with a scalar eps (attack {name!r})",
                eps.shape,
            )
        )
    return float(eps)


# ------------------------------------------------------------------- data
def class_ids(y, name="data"):
    """Int64 class ids `(n,)` from ids `(n,)`, `(n, 1)` or one-hot `(n, k)`.

    Raises:
        ValueError: for other shapes, non-numeric, non-finite, fractional
            or negative labels.
    """
    y = np.asarray(y)
    if y.dtype.kind not in "iuf":
        raise ValueError(
            _validation.invalid(
                name, "integer class labels", f"labels of dtype {y.dtype}"
            )
        )
    if y.ndim == 2 and y.shape[1] > 1:
        if not np.all(np.isfinite(y)):
            raise ValueError(
                _validation.invalid(name, "finite one-hot labels", "NaN/inf")
            )
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
    if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise ValueError(
            _validation.invalid(name, "integer class labels", y[:5].tolist())
        )
    if np.any(y < 0):
        raise ValueError(
            _validation.invalid(name, "class labels >= 0", int(y.min()))
        )
    return y.astype("int64")


def _one_hot_width(y):
    shape = np.shape(y)
    return shape[1] if len(shape) == 2 and shape[1] > 1 else None


def _check_float(dtype, name):
    dtype = tf.as_dtype(dtype)
    if dtype.is_floating:
        return
    hint = " (e.g. `x.astype('float32') / 255.0`)"
    raise TypeError(
        _validation.invalid(
            name,
            "floating-point inputs x scaled to the attacks' value_range"
            + (hint if dtype == tf.uint8 else ""),
            f"x of dtype {dtype.name}",
        )
    )


def _is_one_hot_row(y):
    y = np.asarray(y)
    return (
        y.ndim == 1
        and y.size >= 2
        and bool(np.all((y == 0) | (y == 1)))
        and int(np.sum(y)) == 1
    )


def _dataset_layout(data, sample_rank, name):
    """`"samples"` or `"batches"`: what one element of `data` holds.

    Scalar labels mean single samples, labels of rank 2 batches. Labels of
    rank 1 are either a batch of class ids or the one-hot row of a single
    sample. The input rank of the model decides when it is known; else a
    `None` leading dimension of x and y (how `.batch()` marks batches)
    means batches and different static lengths mean a single sample; when
    both have the same static length (e.g. as many classes as the image
    height), the first labels decide: a one-hot row means a single sample.
    """
    x_spec, y_spec = data.element_spec[:2]
    x_shape, y_shape = x_spec.shape, y_spec.shape
    if x_shape.rank is None or y_shape.rank is None or y_shape.rank >= 2:
        return "batches"
    if y_shape.rank == 0:
        return "samples"
    if sample_rank is not None and x_shape.rank in (
        sample_rank,
        sample_rank + 1,
    ):
        layout = "samples" if x_shape.rank == sample_rank else "batches"
    elif x_shape.rank == 0:
        layout = "samples"
    else:
        n_x, n_y = x_shape[0], y_shape[0]
        if n_x is None and n_y is None:
            layout = "batches"
        elif n_x is not None and n_y is not None and n_x != n_y:
            layout = "samples"
        else:
            first = next(iter(data.take(1)), None)
            one_hot = first is not None and _is_one_hot_row(first[1])
            layout = "samples" if one_hot else "batches"
    if layout == "samples":
        read_as_batches = (
            "; read as batches, x and y would have different lengths"
            if x_shape.rank and x_shape[0] not in (None, y_shape[0])
            else ""
        )
        raise ValueError(
            f"Invalid value received for argument `{name}`: its elements "
            "are single samples with one-hot labels (x element shape "
            f"{tuple(x_shape)}, y element shape {tuple(y_shape)})"
            f"{read_as_batches}. Unbatched datasets need scalar labels: "
            "batch the dataset with `.batch(n)` (one-hot labels are read "
            "per batch) or map the labels to class ids with `tf.argmax`."
        )
    return layout


class Data:
    """Validated `(x, y)` numpy batches from arrays or a `tf.data.Dataset`.

    Iterating yields `(x, y)` copies (never views of the caller's arrays):
    x floating point (float64 becomes float32), y int64 class ids. Every
    batch is checked on the host before it reaches a graph: x has no NaN
    and lies inside every value range of `value_ranges`; labels are
    integer-valued and >= 0 (the upper bound, the number of classes, is
    checked by `Evaluator.check_labels`). The iterator can be iterated
    more than once.

    Args:
        data: A pair `(x, y)` or triple `(x, y, sample_weight)` of arrays
            (weights ignored), or a `tf.data.Dataset` of such elements,
            batched or not.
        batch_size: Int, batch size for arrays and unbatched datasets.
        max_samples: Optional int, stop after this many samples.
        name: The argument named in error messages.
        value_ranges: Optional dict `attack name -> (low, high)`.
        sample_rank: Optional int, the rank of one input sample (the
            model's input rank without the batch axis), which tells single
            samples from batches in a dataset with labels of rank 1.

    Attributes:
        num_batches: Int, or None when unknown.
        one_hot_width: Number of columns of one-hot labels, None for ids
            (known after the first batch).
    """

    def __init__(
        self,
        data,
        batch_size,
        max_samples=None,
        name="data",
        value_ranges=None,
        sample_rank=None,
    ):
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        if max_samples is not None:
            max_samples = _validation.check_int(
                "max_samples", max_samples, minimum=1
            )
        self.max_samples = max_samples
        self.name = name
        self.value_ranges = dict(value_ranges or {})
        self.one_hot_width = None
        self._arrays = self._dataset = None
        if isinstance(data, tf.data.Dataset):
            self._dataset = self._prepare_dataset(data, sample_rank)
        elif isinstance(data, list | tuple) and len(data) in (2, 3):
            self._arrays = self._prepare_arrays(data[0], data[1])
        else:
            raise TypeError(
                _validation.invalid(
                    name,
                    "a pair (x, y) of arrays or a tf.data.Dataset",
                    type(data).__name__,
                )
            )

    def _prepare_arrays(self, x, y):
        x, y = np.asarray(x), np.asarray(y)
        if x.ndim < 2 or y.ndim == 0:
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "arrays x of shape (n, ...) and labels y of shape (n, ...)",
                    f"x of shape {x.shape} and y of shape {y.shape}",
                )
            )
        if len(x) != len(y):
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "x and y with the same number of samples",
                    f"x and y of different lengths ({len(x)} and {len(y)})",
                )
            )
        n = (
            len(x)
            if self.max_samples is None
            else min(len(x), self.max_samples)
        )
        if n == 0:
            raise ValueError(
                _validation.invalid(self.name, "at least one sample", 0)
            )
        _check_float(x.dtype, self.name)
        self.one_hot_width = _one_hot_width(y)
        self.num_batches = -(-n // self.batch_size)
        return x[:n], class_ids(y[:n], self.name)

    def _prepare_dataset(self, data, sample_rank):
        spec = data.element_spec
        if not isinstance(spec, tuple) or len(spec) not in (2, 3):
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "a tf.data.Dataset of (x, y) or (x, y, sample_weight)",
                    spec,
                )
            )
        _check_float(spec[0].dtype, self.name)
        if _dataset_layout(data, sample_rank, self.name) == "samples":
            data = data.batch(self.batch_size)
        cardinality = int(data.cardinality())
        if (
            cardinality == tf.data.INFINITE_CARDINALITY
            and self.max_samples is None
        ):
            raise ValueError(
                "The dataset is infinite (e.g. `.repeat()` without a count); "
                "pass `max_samples` to evaluate a fixed number of samples."
            )
        known = cardinality >= 0 and self.max_samples is None
        self.num_batches = cardinality if known else None
        return data

    def __iter__(self):
        if self._arrays is not None:
            x, y = self._arrays
            for start in range(0, len(x), self.batch_size):
                stop = start + self.batch_size
                yield self._check_x(x[start:stop]), y[start:stop].copy()
            return
        seen = 0
        for element in self._dataset:
            x = np.asarray(element[0])
            labels = np.asarray(element[1])
            if len(x) != len(labels):
                raise ValueError(
                    "The dataset's x and y batches have different lengths "
                    f"({len(x)} and {len(labels)}). Unbatched datasets need "
                    "scalar labels; batch one-hot labels with `.batch()`."
                )
            if self.max_samples is not None:
                x = x[: self.max_samples - seen]
                labels = labels[: self.max_samples - seen]
            if len(x):
                width = _one_hot_width(labels)
                if self.one_hot_width is None:
                    self.one_hot_width = width
                yield self._check_x(x), class_ids(labels, self.name)
            seen += len(x)
            if self.max_samples is not None and seen >= self.max_samples:
                return
        if seen == 0:
            raise ValueError(
                _validation.invalid(self.name, "at least one sample", 0)
            )

    def _check_x(self, x):
        """A float copy of the batch `x`, checked for NaN and value ranges."""
        dtype = "float32" if x.dtype == np.float64 else x.dtype
        x = np.array(x, dtype=dtype, copy=True)
        if x.ndim < 2:
            raise ValueError(
                _validation.invalid(
                    self.name, "inputs x of shape (n, ...)", x.shape
                )
            )
        if np.isnan(x).any():
            raise ValueError(
                _validation.invalid(
                    self.name,
                    "inputs x without NaN values",
                    f"x containing {int(np.isnan(x).sum())} NaN value(s)",
                )
            )
        low, high = float(np.min(x)), float(np.max(x))
        for attack, (a_low, a_high) in self.value_ranges.items():
            if low < a_low - 1e-6 or high > a_high + 1e-6:
                raise ValueError(
                    _validation.invalid(
                        self.name,
                        f"inputs in the value_range ({a_low:g}, {a_high:g}) "
                        f"of attack {attack!r} (scale the inputs or set the "
                        "attack's value_range)",
                        f"x with values in [{low:g}, {high:g}]",
                    )
                )
        return x


def take(data, max_samples, batch_size=256, **kwargs):
    """The first `max_samples` of `data` as validated numpy copies `(x, y)`.

    Keyword arguments go to `Data`.
    """
    batches = Data(data, batch_size, max_samples, **kwargs)
    xs, ys = zip(*batches, strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def sample_rank(model):
    """The rank of one input sample of `model`, None when unknown."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not isinstance(inputs, list | tuple) or len(inputs) != 1:
        return None
    return len(inputs[0].shape) - 1


# ----------------------------------------------------------- accounting
def robust_masks(clean_correct, correct):
    """Per-sample robustness at one eps, the one definition of keras_adv.

    A sample is robust to an attack iff it is classified correctly both
    clean and under the attack; it is robust in the worst case iff it is
    classified correctly clean and under every attack.

    Args:
        clean_correct: Bool array `(n,)`.
        correct: Dict `name -> bool array (n,)`: correct under the attack.

    Returns:
        `(robust, worst)`: a dict `name -> bool array` and a bool array.
    """
    clean_correct = np.asarray(clean_correct, bool)
    robust = {
        name: np.logical_and(clean_correct, np.asarray(ok, bool))
        for name, ok in correct.items()
    }
    worst = np.logical_and.reduce([clean_correct, *robust.values()])
    return robust, worst


def batch_seeds(seed, count, batch_index):
    """Stateless seeds `(count, 2)` of the attacks for batch `batch_index`.

    Attack `i` gets `[seed + i, batch_index]`: the same seed gives the
    same random starts, whichever entry point runs the attack.
    """
    first = (int(seed) + np.arange(count)) % _SEED_MAX
    return np.stack(
        [first, np.full(count, int(batch_index) % _SEED_MAX)], axis=1
    ).astype("int32")


# ----------------------------------------------------------------- graph
def _outcome(logits, y):
    """Prediction, correctness and logit margin of float32 logits."""
    pred = ops.cast(ops.argmax(logits, axis=-1), "int64")
    return {
        "pred": pred,
        "correct": ops.equal(pred, ops.cast(y, "int64")),
        "margin": -losses.margin_loss(y, logits),
    }


def _graph_key(attacks, checks, keep_inputs, x):
    """What shapes an evaluation graph: attack configs (all but eps), etc."""
    configs = []
    for attack in attacks.values():
        config = dict(attack.get_config())
        config.pop("eps", None)
        configs.append(json.dumps(config, sort_keys=True, default=repr))
    return (
        tuple(attacks),
        tuple(configs),
        bool(checks),
        bool(keep_inputs),
        tuple(x.shape[1:]),
        str(x.dtype),
    )


class Evaluator:
    """One compiled per-batch graph for a model and its attacks.

    Call it with a batch, one eps and one stateless seed per attack and
    whether to evaluate the clean inputs; it returns per-sample numpy
    results: `{"clean": {"pred", "correct", "margin"[, check stats]},
    "attacks": {name: {"pred", "correct", "margin", "norm", "l2_norm"[,
    "x_adv"]}}}`. An attack whose eps is 0 is not run (its `x_adv` is `x`
    and its results are the clean ones). The graph has a `None` batch
    dimension and takes eps and seeds as tensors: it is traced once.

    Build one with `evaluator(...)`, which caches it per model.
    """

    def __init__(self, model, attacks, x, checks=False, keep_inputs=False):
        self.names = list(attacks)
        self.checks = bool(checks)
        self.keep_inputs = bool(keep_inputs)
        self.key = _graph_key(attacks, checks, keep_inputs, x)
        # Weak references only: the cache must not keep models or attacks
        # alive (the traced graph needs neither once built).
        self._model = weakref.ref(model)
        self._attacks = [weakref.ref(a) for a in attacks.values()]
        self.num_classes = self._probe(model, list(attacks.values()), x)
        spec = [None, *x.shape[1:]]
        self._fn = tf.function(
            self._step,
            input_signature=[
                tf.TensorSpec(spec, tf.as_dtype(x.dtype)),
                tf.TensorSpec([None], tf.int64),
                tf.TensorSpec([len(self.names)], tf.float32),
                tf.TensorSpec([len(self.names), 2], tf.int32),
                tf.TensorSpec([], tf.bool),
            ],
        )

    def alive(self):
        """False once the model or an attack has been garbage-collected."""
        return self._model() is not None and all(a() for a in self._attacks)

    def serves(self, attacks):
        """True if this graph was built for exactly these attack objects."""
        return len(attacks) == len(self._attacks) and all(
            ref() is attack
            for ref, attack in zip(self._attacks, attacks.values())
        )

    @staticmethod
    def _probe(model, attacks, x):
        """Eager, once: output shape, and `from_logits` against the model."""
        outputs = model(ops.convert_to_tensor(x[:_PROBE]), training=False)
        outputs = ops.cast(check_classifier_outputs(outputs), "float32")
        probabilities = bool(looks_like_probabilities(outputs))
        for attack in attacks:
            if attack.from_logits is True and probabilities:
                raise ValueError(
                    "The model's outputs are probabilities (non-negative rows "
                    "summing to 1) but an attack has from_logits=True. Pass "
                    "from_logits=False or from_logits=None (infer)."
                )
            if attack.from_logits is False and not probabilities:
                raise ValueError(
                    "An attack has from_logits=False but the model's outputs "
                    "are not probabilities (rows must be non-negative and sum "
                    "to 1). Pass from_logits=True or None (infer)."
                )
            attack.model_logits(model)  # contradictions with the structure
        return int(outputs.shape[-1])

    def check_labels(self, y, name="data", one_hot_width=None):
        """Raises unless the class ids `y` are below the model's classes."""
        if one_hot_width is not None and one_hot_width != self.num_classes:
            raise ValueError(
                f"One-hot labels have {one_hot_width} classes but the model "
                f"outputs {self.num_classes}."
            )
        if len(y) and int(np.max(y)) >= self.num_classes:
            raise ValueError(
                _validation.invalid(
                    name,
                    f"labels < {self.num_classes} (the model's classes)",
                    int(np.max(y)),
                )
            )

    def tracing_count(self):
        """Traces of the graph so far (1 after the first call)."""
        return self._fn.experimental_get_tracing_count()

    def __call__(self, x, y, eps, seeds, clean=True):
        out = self._fn(
            tf.convert_to_tensor(x),
            tf.convert_to_tensor(y, tf.int64),
            tf.convert_to_tensor(np.asarray(eps, "float32")),
            tf.convert_to_tensor(np.asarray(seeds, "int32")),
            tf.convert_to_tensor(bool(clean)),
        )
        out = tf.nest.map_structure(np.asarray, out)
        return {
            "clean": out["clean"],
            "attacks": dict(zip(self.names, out["attacks"], strict=True)),
        }

    # ------------------------------------------------------- graph body
    def _step(self, x, y, eps, seeds, clean):
        model = self._model()
        attacks = [ref() for ref in self._attacks]
        probe = attacks[0]
        adapter = ModelLogits(model, probe.model_logits(model).from_logits)
        y32 = ops.cast(y, "int32")

        def evaluate_clean():
            outputs = adapter.forward(x)
            result = _outcome(adapter.head(outputs), y32)
            if self.checks:
                result.update(self._check_stats(model, probe, x, y32, outputs))
            return result

        def skip_clean():
            size = ops.shape(y)[0]
            blank = {
                "pred": ops.zeros([size], "int64"),
                "correct": ops.zeros([size], "bool"),
                "margin": ops.zeros([size], "float32"),
            }
            if self.checks:
                blank.update(
                    {k: ops.zeros([size], "bool") for k in CHECK_STATS}
                )
            return blank

        clean_result = tf.cond(clean, evaluate_clean, skip_clean)
        results = []
        for i, attack in enumerate(attacks):

            def run(attack=attack, i=i):
                x_adv = attack.perturb(
                    model, x, y32, eps=eps[i], seed=seeds[i], check=False
                )
                result = _outcome(adapter(x_adv), y32)
                delta = ops.cast(x_adv, "float32") - ops.cast(x, "float32")
                result["norm"] = attack.threat_model.distance(x, x_adv)
                result["l2_norm"] = ops.sqrt(
                    ops.sum(delta * delta, axis=list(range(1, len(x.shape))))
                )
                if self.keep_inputs:
                    result["x_adv"] = x_adv
                return result

            def skip():
                zero = ops.zeros([ops.shape(y)[0]], "float32")
                result = {k: clean_result[k] for k in ("pred", "correct")}
                result.update(margin=clean_result["margin"])
                result.update(norm=zero, l2_norm=zero)
                if self.keep_inputs:
                    result["x_adv"] = x
                return result

            results.append(tf.cond(eps[i] > 0.0, run, skip))
        return {"clean": clean_result, "attacks": results}

    @staticmethod
    def _check_stats(model, probe, x, y, outputs):
        """Per-sample measurements of the gradient-masking checks."""
        _, grad = probe.objective_and_gradient(
            probe.model_logits(model), ops.cast(x, "float32"), y
        )
        outputs = ops.cast(outputs, "float32")
        axes = list(range(1, len(x.shape)))
        return {
            "zero_grad": ops.equal(ops.max(ops.abs(grad), axis=axes), 0.0),
            "bounded": ops.all(
                ops.logical_and(outputs >= 0.0, outputs <= 1.0), axis=-1
            ),
            "sums_to_one": ops.abs(ops.sum(outputs, axis=-1) - 1.0) < 1e-3,
            "saturated": ops.max(outputs, axis=-1) >= SATURATION,
        }


_EVALUATORS = weakref.WeakKeyDictionary()


def evaluator(model, attacks, x, checks=False, keep_inputs=False):
    """The `Evaluator` of `model` and `attacks` for inputs shaped like `x`.

    Cached per model (weakly): the same model, attack objects and
    configuration (eps aside) and input shape reuse one traced graph
    across calls and entry points. Building one calls the model eagerly
    on a few samples of `x` to check its outputs.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))
    cached = [e for e in _EVALUATORS.get(model, []) if e.alive()]
    key = _graph_key(attacks, checks, keep_inputs, x)
    for candidate in cached:
        if candidate.key == key and candidate.serves(attacks):
            return candidate
    made = Evaluator(model, attacks, x, checks, keep_inputs)
    _EVALUATORS[model] = [*cached, made]
    return made


def evaluate_arrays(evaluator, x, y, eps, seed, batch_size, keep=0):
    """Runs `evaluator` over arrays in batches; merges per-sample results.

    Args:
        evaluator: An `Evaluator`.
        x, y: Validated numpy inputs and int64 class ids.
        eps: Float32 array, one eps per attack.
        seed: Int, base of the stateless seeds (see `batch_seeds`).
        batch_size: Int.
        keep: Int, adversarial inputs kept per attack (the first ones).

    Returns:
        The evaluator's result structure over all samples.
    """
    parts = []
    count = len(evaluator.names)
    for b, start in enumerate(range(0, len(x), batch_size)):
        stop = start + batch_size
        out = evaluator(
            x[start:stop], y[start:stop], eps, batch_seeds(seed, count, b)
        )
        for result in out["attacks"].values():
            if "x_adv" in result:
                result["x_adv"] = result["x_adv"][: max(0, keep - start)]
        parts.append(out)

    def merge(rows):
        return {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}

    return {
        "clean": merge([p["clean"] for p in parts]),
        "attacks": {
            name: merge([p["attacks"][name] for p in parts])
            for name in evaluator.names
        },
    }


def evaluate_subset(evaluator, x, y, eps, seed, batch_size, keep=0):
    """Accuracies and per-sample results on a fixed subset (the monitor's).

    Every attack runs at its entry of `eps` with the seeds of
    `batch_seeds`; accuracies follow `robust_masks`.

    Returns:
        A dict with `"clean_accuracy"`, `"robust_accuracy"`, `"accuracy"`
        (name -> float), `"eps"` (name -> float), `"seconds"` and
        per-sample numpy arrays: `"clean_pred"`, `"clean_margin"`, and
        dicts name -> array `"adv_pred"`, `"adv_margin"`, `"norm"` (in the
        attack's norm), `"l2_norm"` and `"x_adv"` (the first `keep`
        adversarial inputs).
    """
    eps = [float(e) for e in eps]
    start = time.perf_counter()
    out = evaluate_arrays(
        evaluator, x, y, np.float32(eps), seed, batch_size, keep
    )
    seconds = time.perf_counter() - start
    clean, adv = out["clean"], out["attacks"]
    robust, worst = robust_masks(
        clean["correct"], {n: r["correct"] for n, r in adv.items()}
    )

    def per_attack(key):
        return {n: r.get(key, x[:0]) for n, r in adv.items()}

    return {
        "clean_accuracy": float(np.mean(clean["correct"])),
        "robust_accuracy": float(np.mean(worst)),
        "accuracy": {n: float(np.mean(ok)) for n, ok in robust.items()},
        "eps": dict(zip(evaluator.names, eps, strict=True)),
        "seconds": seconds,
        "clean_pred": clean["pred"],
        "clean_margin": clean["margin"],
        "adv_pred": per_attack("pred"),
        "adv_margin": per_attack("margin"),
        "norm": per_attack("norm"),
        "l2_norm": per_attack("l2_norm"),
        "x_adv": per_attack("x_adv"),
    }


# -------------------------------------------------------------- summaries
def check_log_dir(log_dir, run):
    """`log_dir` as a string; raises now, not at train start, if the run
    `<log_dir>/<run>` cannot be written (a path component is a file, or
    the deepest existing directory is not writable). Remote paths (`gs://`
    and the like) are left to `tf.summary`.
    """
    if log_dir is None:
        return None
    if not isinstance(log_dir, str | os.PathLike):
        raise TypeError(
            _validation.invalid("log_dir", "a path or None", log_dir)
        )
    log_dir = os.fspath(log_dir)
    if "://" in log_dir:
        return log_dir
    path = os.path.abspath(os.path.join(log_dir, run))
    while not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        if not os.path.isdir(path):
            raise NotADirectoryError(f"{path!r} is an existing file")
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise ValueError(
            _validation.invalid(
                "log_dir", f"a writable directory ({e})", log_dir
            )
        ) from None
    return log_dir
