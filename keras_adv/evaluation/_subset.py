"""`SubsetEvaluation`: a fixed subset of data and the attacks that test it.

What `keras_adv.callbacks.RobustnessMonitor` evaluates every few epochs,
through the evaluation core it shares with `evaluate_robustness`: the same
data checks, compiled graph, seeds and definitions of robust and worst
case, so both give the same accuracies on the same data and attacks.
"""

import time
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_adv.attacks import Attack
from keras_adv.evaluation._accounting import robust_masks
from keras_adv.evaluation._attack_set import attack_dict
from keras_adv.evaluation._attack_set import scalar_eps
from keras_adv.evaluation._data import take
from keras_adv.evaluation._graph import Evaluator
from keras_adv.evaluation._graph import evaluate_arrays
from keras_adv.evaluation._graph import evaluator
from keras_adv.evaluation._plots import is_image_batch


class SubsetEvaluation:
    """A validated copy of the first samples of `data`, and its attacks.

    The data is read, checked (as in `evaluate_robustness`) and copied
    once, at construction; each `evaluate(model)` attacks it with every
    attack at its current eps (a scalar, read at each call) in the one
    compiled graph of the model and attacks, with the stateless seeds of
    `evaluate_robustness`.

    Args:
        data: A pair `(x, y)` of arrays or a `tf.data.Dataset` (see
            `evaluate_robustness`).
        attacks: What `evaluate_robustness` takes: attacks, names, a dict
            or None (FGSM and PGD-10).
        max_samples: Int, the size of the subset.
        batch_size: Int, the batch size of the evaluation.
        seed: Int, base of the attacks' stateless seeds.
        name: The argument named in data errors.
        check_names: Optional callable taking the dict `name -> Attack`,
            called before the data is read (e.g. to refuse names the
            caller reserves).

    Attributes:
        attacks: Dict `name -> Attack`.
        x, y: The subset: float inputs and int64 class ids (copies).
        is_image: Bool, whether `x` is a batch of images.
    """

    def __init__(
        self,
        data: Any,
        attacks: Attack
        | str
        | Sequence[Attack | str]
        | dict[str, Attack]
        | None,
        max_samples: int,
        batch_size: int,
        seed: int,
        name: str,
        check_names: Callable[[dict[str, Attack]], object] | None = None,
    ) -> None:
        self.attacks = attack_dict(attacks)
        if check_names is not None:
            check_names(self.attacks)
        self.eps()  # scalar radii, checked now
        self.batch_size = batch_size
        self.seed = seed
        self.name = name
        self.x, self.y = take(
            data,
            max_samples,
            batch_size=batch_size,
            name=name,
            value_ranges={n: a.value_range for n, a in self.attacks.items()},
        )
        self.is_image = is_image_batch(self.x)
        self._graph: Evaluator | None = None

    def eps(self) -> dict[str, float]:
        """Dict `name -> float`: each attack's current eps."""
        return {name: scalar_eps(name, a) for name, a in self.attacks.items()}

    def tracing_count(self) -> int:
        """Traces of the evaluation graph so far (1 after the first run)."""
        return 0 if self._graph is None else self._graph.tracing_count()

    def evaluate(self, model: keras.Model, keep: int = 0) -> dict[str, Any]:
        """Accuracies and per-sample results of `model` on the subset.

        Args:
            model: The Keras classifier.
            keep: Int, adversarial inputs kept per attack (the first).

        Returns:
            A dict with `"clean_accuracy"`, `"robust_accuracy"` (the worst
            case), `"accuracy"` and `"eps"` (name -> float), `"seconds"`
            and per-sample numpy arrays: `"clean_pred"`, `"clean_margin"`,
            and dicts name -> array `"adv_pred"`, `"adv_margin"`, `"norm"`
            (in the attack's norm), `"l2_norm"` and `"x_adv"` (the first
            `keep` adversarial inputs).
        """
        graph = self._graph = evaluator(
            model, self.attacks, self.x, keep_inputs=keep > 0
        )
        graph.check_labels(self.y, self.name)
        eps = self.eps()
        start = time.perf_counter()
        out = evaluate_arrays(
            graph,
            self.x,
            self.y,
            np.float32(list(eps.values())),  # type: ignore[arg-type]
            self.seed,
            self.batch_size,
            keep,
        )
        seconds = time.perf_counter() - start
        clean, adv = out["clean"], out["attacks"]
        robust, worst = robust_masks(
            clean["correct"], {n: r["correct"] for n, r in adv.items()}
        )

        def per_attack(key: str) -> dict[str, np.ndarray]:
            return {n: r.get(key, self.x[:0]) for n, r in adv.items()}

        return {
            "clean_accuracy": float(np.mean(clean["correct"])),
            "robust_accuracy": float(np.mean(worst)),
            "accuracy": {n: float(np.mean(ok)) for n, ok in robust.items()},
            "eps": eps,
            "seconds": seconds,
            "clean_pred": clean["pred"],
            "clean_margin": clean["margin"],
            "adv_pred": per_attack("pred"),
            "adv_margin": per_attack("margin"),
            "norm": per_attack("norm"),
            "l2_norm": per_attack("l2_norm"),
            "x_adv": per_attack("x_adv"),
        }
