"""APGDT: Auto-PGD with the targeted DLR loss (Croce and Hein 2020).

One APGD search per target class, the runner-up classes of the clean
logits in turn, on the samples still robust; the algorithm itself is
`APGD` (`_apgd.py`), which this class configures.
"""

from keras import ops

from keras_adv import _validation
from keras_adv._api import register
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Tensor
from keras_adv._types import ValueRange
from keras_adv.attacks._apgd import APGD
from keras_adv.attacks._apgd import _per_sample
from keras_adv.attacks._logits import ModelLogits
from keras_adv.losses._dlr import targeted_dlr_loss


@register
class APGDT(APGD):
    """APGD on the targeted DLR loss over the most likely wrong classes.

    For each of the `num_targets` classes ranked highest by the clean
    prediction after the predicted one (the 2nd, 3rd, ... largest clean
    logits), a full APGD run ascends the targeted DLR loss
    (`keras_adv.losses.targeted_dlr_loss`) towards that class on the
    samples still correctly classified. The result is untargeted: any
    misclassified iterate counts, the others keep the clean input. It is
    the third attack of AutoAttack. Needs at least 4 classes.

    Distance measure: L-inf or L2. Defaults from the paper: 9 target
    classes (capped at `classes - 1`), 100 iterations, one restart each.

    Args:
        eps: Float >= 0 (or a variable): radius of the ball in input units.
            Defaults to `0.3`.
        steps: Int >= 1, iterations per run. Defaults to `100`.
        num_targets: Int >= 1, how many target classes to try, capped at
            `classes - 1`. Defaults to `9`.
        restarts: Int >= 1, runs per target class. Defaults to `1`.
        rho: Float in `[0, 1]`, the checkpoint threshold. Defaults to
            `0.75`.
        norm: `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`. Defaults to `(0.0, 1.0)`.
        from_logits: Bool or None (infer). Defaults to `None`.
        training: Bool, `training` flag of the forward passes. Defaults to
            `False`.
        seed: Int or None. Defaults to `None`.
        jit_compile: Bool, XLA-compile the attack. Defaults to `False`.

    Example:

    >>> import numpy as np, keras, keras_adv
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5)])
    >>> x = np.random.default_rng(0).uniform(size=(8, 4)).astype("float32")
    >>> attack = keras_adv.attacks.APGDT(eps=0.1, steps=5, num_targets=2)
    >>> x_adv = attack(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.1 + 1e-6)
    True

    Reference:
        Croce and Hein, "Reliable evaluation of adversarial robustness with
        an ensemble of diverse parameter-free attacks", ICML 2020,
        [arXiv:2003.01690](https://arxiv.org/abs/2003.01690).
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        steps: int = 100,
        num_targets: int = 9,
        restarts: int = 1,
        rho: float = 0.75,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        super().__init__(
            eps=eps,
            steps=steps,
            restarts=restarts,
            rho=rho,
            norm=norm,
            value_range=value_range,
            targeted=False,
            loss="dlr",
            from_logits=from_logits,
            training=training,
            seed=seed,
            jit_compile=jit_compile,
        )
        self.num_targets = _validation.check_int(
            "num_targets", num_targets, minimum=1
        )

    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        eps = _per_sample(eps, x)
        clean = model_logits(x)
        classes = clean.shape[-1]
        if classes is not None and classes < 4:
            raise ValueError(
                "APGDT attacks the targeted DLR loss, which needs at least 4 "
                f"classes. Received: a model with {classes} classes. Use "
                "APGD (loss='ce') instead."
            )
        count = self.num_targets
        if classes is not None:
            count = min(count, classes - 1)
        ranked = ops.cast(ops.top_k(clean, count + 1)[1], "int32")
        robust = ops.logical_not(self.is_successful(clean, y))

        def run(
            r: Tensor,
            noise: Tensor,
            x: Tensor,
            y: Tensor,
            eps: Tensor,
            ranked: Tensor,
        ) -> tuple[Tensor, Tensor]:
            # Run r attacks the (r // restarts + 2)-th most likely class.
            target = ops.take(ranked, r // self.restarts + 1, axis=1)

            def objective_fn(logits: Tensor) -> Tensor:
                return targeted_dlr_loss(y, logits, target)

            out = self.run_once(
                model_logits,
                x,
                y,
                eps,
                self.start_point(x, eps, noise),
                objective_fn,
            )
            return out["success"], out["x_adv"]

        return self._runs(
            run, count * self.restarts, x, robust, (x, y, eps, ranked), seed
        )

    def get_config(self) -> Config:
        config = super().get_config()
        del config["targeted"], config["loss"]
        config["num_targets"] = self.num_targets
        return config
