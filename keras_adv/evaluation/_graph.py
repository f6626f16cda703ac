"""The compiled per-batch evaluation graph and its cache.

`Evaluator` is one `tf.function` `(x, y, eps per attack, seeds, clean) ->
per-sample results` (clean prediction, correctness and logit margin; per
attack the same plus the perturbation norm), built on `Attack.perturb`
with stateless seeds and `ModelLogits`, traced once per model, attacks
and input signature and cached across calls and entry points. This module
is one of the TensorFlow seams of keras_adv (`tf.function`, `tf.cond`).
"""

import weakref
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import cast

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _signature
from keras_adv import _validation
from keras_adv import losses
from keras_adv._outputs import check_classifier_outputs
from keras_adv._outputs import looks_like_probabilities
from keras_adv._types import Tensor
from keras_adv.attacks import Attack
from keras_adv.attacks import ModelLogits

# Softmax outputs at least this close to 1 count as saturated (checks).
SATURATION = 1.0 - 1e-6
# Per-sample measurements of the gradient-masking checks (clean inputs).
CHECK_STATS = ("zero_grad", "bounded", "sums_to_one", "saturated")
# Samples of the eager model probe (output shape, logits or probabilities).
_PROBE = 32


def _outcome(logits: Tensor, y: Tensor) -> dict[str, Tensor]:
    """Prediction, correctness and logit margin of float32 logits."""
    pred = ops.cast(ops.argmax(logits, axis=-1), "int64")
    return {
        "pred": pred,
        "correct": ops.equal(pred, ops.cast(y, "int64")),
        "margin": -losses.margin_loss(y, logits),
    }


def _graph_key(
    attacks: Mapping[str, Attack],
    checks: bool,
    keep_inputs: bool,
    x: np.ndarray,
) -> tuple[Any, ...]:
    """What shapes an evaluation graph: the attacks' names and graph
    signatures (their configs without eps, callables by identity), the
    options and the input signature."""
    return (
        tuple(attacks),
        tuple(_signature.graph_signature(a) for a in attacks.values()),
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

    def __init__(
        self,
        model: keras.Model,
        attacks: Mapping[str, Attack],
        x: np.ndarray,
        checks: bool = False,
        keep_inputs: bool = False,
    ) -> None:
        self.names = list(attacks)
        self.checks = bool(checks)
        self.keep_inputs = bool(keep_inputs)
        self.key = _graph_key(attacks, checks, keep_inputs, x)
        # Weak references only: the cache must not keep models or attacks
        # alive (the traced graph needs neither once built).
        self._model = weakref.ref(model)
        self._attacks = [weakref.ref(a) for a in attacks.values()]
        self.num_classes = self.probe(model, list(attacks.values()), x)
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

    def alive(self) -> bool:
        """False once the model or an attack has been garbage-collected."""
        return self._model() is not None and all(a() for a in self._attacks)

    def serves(self, attacks: Mapping[str, Attack]) -> bool:
        """True if this graph was built for exactly these attack objects."""
        return len(attacks) == len(self._attacks) and all(
            ref() is attack
            for ref, attack in zip(self._attacks, attacks.values())
        )

    @staticmethod
    def probe(
        model: keras.Model, attacks: Sequence[Attack], x: np.ndarray
    ) -> int:
        """Eager, once: output shape, and `from_logits` against the model.

        Returns the number of classes; raises `ValueError` when an attack's
        `from_logits` contradicts the model's outputs.
        """
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

    def check_labels(
        self,
        y: np.ndarray,
        name: str = "data",
        one_hot_width: int | None = None,
    ) -> None:
        """Raises unless the class ids `y` are below the model's classes."""
        if one_hot_width is not None and one_hot_width != self.num_classes:
            raise ValueError(
                f"One-hot labels have {one_hot_width} classes but the model "
                f"outputs {self.num_classes}."
            )
        _validation.check_classes(y, self.num_classes, name)

    def tracing_count(self) -> int:
        """Traces of the graph so far (1 after the first call)."""
        return self._fn.experimental_get_tracing_count()

    def __call__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        eps: Sequence[float] | np.ndarray,
        seeds: np.ndarray,
        clean: bool = True,
    ) -> dict[str, Any]:
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
    def _step(
        self, x: Tensor, y: Tensor, eps: Tensor, seeds: Tensor, clean: Tensor
    ) -> dict[str, Any]:
        model = self._model()
        # Alive while the graph is traced (`evaluator` checks `alive`).
        attacks = cast(list[Attack], [ref() for ref in self._attacks])
        probe = attacks[0]
        adapter = ModelLogits(model, probe.model_logits(model).from_logits)
        y32 = ops.cast(y, "int32")

        def evaluate_clean() -> dict[str, Tensor]:
            outputs = adapter.forward(x)
            result = _outcome(adapter.head(outputs), y32)
            if self.checks:
                result.update(self._check_stats(model, probe, x, y32, outputs))
            return result

        def skip_clean() -> dict[str, Tensor]:
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

            def run(attack: Attack = attack, i: int = i) -> dict[str, Tensor]:
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

            def skip() -> dict[str, Tensor]:
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
    def _check_stats(
        model: keras.Model, probe: Attack, x: Tensor, y: Tensor, outputs: Tensor
    ) -> dict[str, Tensor]:
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


_EVALUATORS: weakref.WeakKeyDictionary[keras.Model, list[Evaluator]] = (
    weakref.WeakKeyDictionary()
)


def evaluator(
    model: keras.Model,
    attacks: Mapping[str, Attack],
    x: np.ndarray,
    checks: bool = False,
    keep_inputs: bool = False,
) -> Evaluator:
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


def evaluate_arrays(
    evaluator: Evaluator,
    x: np.ndarray,
    y: np.ndarray,
    eps: np.ndarray,
    seed: int,
    batch_size: int,
    keep: int = 0,
) -> dict[str, Any]:
    """Runs `evaluator` over arrays in batches; merges per-sample results.

    Args:
        evaluator: An `Evaluator`.
        x, y: Validated numpy inputs and int64 class ids.
        eps: Float32 array, one eps per attack.
        seed: Int, base of the stateless seeds (`_random.batch_seeds`).
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
            x[start:stop],
            y[start:stop],
            eps,
            _random.batch_seeds(seed, count, b),
        )
        for result in out["attacks"].values():
            if "x_adv" in result:
                result["x_adv"] = result["x_adv"][: max(0, keep - start)]
        parts.append(out)

    def merge(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([row[k] for row in rows]) for k in rows[0]}

    return {
        "clean": merge([p["clean"] for p in parts]),
        "attacks": {
            name: merge([p["attacks"][name] for p in parts])
            for name in evaluator.names
        },
    }
