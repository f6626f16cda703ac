"""`SmoothedClassifier`: randomized smoothing (Cohen et al. 2019).

The smoothed classifier `g(x) = argmax_c P(f(x + e) = c)`, `e ~ N(0,
sigma^2 I)`, of a base classifier `f` (a Keras model). The Monte Carlo
counts of `f`'s classes under noise come from one compiled `tf.function`
per classifier (a `tf.while_loop` over noise batches, counts accumulated
in the graph, stateless seeds); `_statistics` turns them into
predictions, radii and abstentions on the host.

`GaussianSmoothing` holds that machinery for any space the noise is added
in: `SmoothedClassifier` adds it to the inputs, `LatentSmoothedClassifier`
(`_latent.py`) to the latent code of a learned perturbation set. A
subclass says what each input contributes to the graph (`_per_input`)
and how a noise draw becomes logits (`_noisy_logits`).
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _random
from keras_adv import _validation
from keras_adv._types import Array
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv.attacks import ModelLogits
from keras_adv.certification import _statistics
from keras_adv.certification._report import CertificationReport


class GaussianSmoothing:
    """Monte Carlo randomized smoothing, whatever space the noise lives in.

    Not public: `SmoothedClassifier` and `LatentSmoothedClassifier` are.
    Subclasses override `_per_input` and `_noisy_logits` (and may extend
    `_check_x` and `_report_settings`); `norm` names the space of the
    certified radii.
    """

    #: The class returned when the smoothed classifier abstains.
    ABSTAIN = _statistics.ABSTAIN
    #: The space of the certified radii (`CertificationReport`'s `norm`).
    norm = "l2"

    def __init__(
        self,
        model: keras.Model,
        sigma: float,
        num_classes: int | None = None,
        batch_size: int = 1000,
        seed: int | None = None,
    ) -> None:
        self.model_logits = ModelLogits(model)
        self.model = model
        self.sigma = _validation.check_number(
            "sigma", sigma, minimum=0.0, strict=True
        )
        if num_classes is not None:
            num_classes = _validation.check_int(
                "num_classes", num_classes, minimum=2
            )
        self.num_classes = num_classes
        self.batch_size = _validation.check_int(
            "batch_size", batch_size, minimum=1
        )
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._sampler = tf.function(self._sample, reduce_retracing=True)

    # ------------------------------------------------------------ sampling
    def sample_counts(
        self, x: Array, n: int, seed: Seed | None = None
    ) -> np.ndarray:
        """How often the model picks each class among `n` noisy copies.

        Args:
            x: Float array `(batch, ...)`, the model's input shape.
            n: Int >= 1, noise samples per input.
            seed: Optional int or stateless `(2,)` int tensor. Defaults to
                the classifier's own seed generator.

        Returns:
            Int32 array `(batch, num_classes)`, rows summing to `n`.
        """
        x = self._check_x(x)
        n = _validation.check_int("n", n, minimum=1)
        seed = _random.as_stateless_seed(
            self.seed_generator if seed is None else seed
        )
        return self._counts(x, n, seed)

    def _counts(self, x: Tensor, n: int, seed: Tensor) -> np.ndarray:
        counts = self._sampler(
            x,
            tf.constant(n, tf.int64),
            tf.constant(self.sigma, tf.float32),
            seed,
        )
        return np.asarray(counts)

    def _per_input(self, x: Tensor) -> tuple[Tensor, ...]:
        """In the graph, once per call: what each input contributes.

        Tensors with the batch axis of `x`; the noise of a draw has the
        shape of the first one's row. Here the input itself.
        """
        return (x,)

    def _noisy_logits(self, rows: list[Tensor], noise: Tensor) -> Tensor:
        """In the graph: logits of the draws, from `_per_input`'s rows
        (gathered per draw) and `sigma`-scaled noise. Here `f(x + noise)`.
        """
        return self.model_logits(rows[0] + noise)

    def _sample(
        self, x: Tensor, n: Tensor, sigma: Tensor, seed: Tensor
    ) -> Tensor:
        """The graph: counts `(batch, classes)` of `n` draws per input.

        Draw `i` of all `batch * n` (input `i // n`) is drawn in noise
        batch `i // batch_size`, whose noise comes from the stateless
        seed `fold_seed(seed, batch index)`.
        """
        num_classes = self.num_classes
        per_input = self._per_input(x)
        rows = tf.shape(x, out_type=tf.int64)[0]
        total = rows * n
        batch = tf.constant(self.batch_size, tf.int64)
        num_batches = (total + batch - 1) // batch

        def body(index: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
            start = index * batch
            draws = tf.range(start, tf.minimum(start + batch, total))
            owners = draws // n
            owned = [tf.gather(t, owners) for t in per_input]
            noise = tf.random.stateless_normal(
                tf.shape(owned[0]),
                seed=_random.fold_seed(seed, tf.cast(index, tf.int32)),
            )
            logits = self._noisy_logits(owned, sigma * noise)
            if logits.shape[-1] is not None and logits.shape[-1] != (
                num_classes
            ):
                raise ValueError(
                    _validation.invalid(
                        "num_classes",
                        f"the model's number of classes, {logits.shape[-1]}",
                        num_classes,
                    )
                )
            classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
            indices = tf.stack([owners, classes], axis=1)
            ones = tf.ones_like(draws, dtype=tf.int32)
            return index + 1, tf.tensor_scatter_nd_add(counts, indices, ones)

        counts = tf.zeros([rows, num_classes], tf.int32)
        counts = tf.ensure_shape(counts, [x.shape[0], num_classes])
        _, counts = tf.while_loop(
            lambda index, _: index < num_batches,
            body,
            (tf.constant(0, tf.int64), counts),
        )
        return counts

    def _check_x(self, x: Array) -> Tensor:
        x = self._check_batch(x)
        if self.num_classes is None:
            # One forward pass of one input reads (and checks) the classes.
            self.num_classes = int(self.model_logits(x[:1]).shape[-1])
        return x

    def _check_batch(self, x: Array) -> Tensor:
        """`x` as a float32 tensor: a non-empty batch of finite values."""
        x = tf.cast(_validation.check_x(x), tf.float32)
        if len(x.shape) < 2 or x.shape[0] == 0:
            raise ValueError(
                _validation.invalid(
                    "x", "a non-empty batch (batch, ...) of inputs", x.shape
                )
            )
        if not bool(tf.reduce_all(tf.math.is_finite(x))):
            raise ValueError(
                _validation.invalid("x", "finite values", "NaN or inf")
            )
        return x

    # ------------------------------------------------------------- answers
    def predict(
        self, x: Array, n: int, alpha: float, seed: Seed | None = None
    ) -> np.ndarray:
        """Cohen et al.'s PREDICT: `g(x)`, or `ABSTAIN` when undecided.

        The two most frequent classes among `n` noisy copies of each input
        enter a two-sided binomial test; the top class is returned when
        its p-value is at most `alpha`, so a returned class differs from
        `g(x)` with probability at most `alpha`. Ties always abstain.

        Args:
            x: Float array `(batch, ...)`.
            n: Int >= 1, noise samples per input.
            alpha: Float in `(0, 1)`, the failure probability.
            seed: Optional int or stateless `(2,)` int tensor. Defaults to
                the classifier's own seed generator.

        Returns:
            Int64 array `(batch,)` of classes, `ABSTAIN` (-1) where it
            abstains.
        """
        alpha = _check_alpha(alpha)
        counts = self.sample_counts(x, n, seed=seed)
        return _statistics.predict_from_counts(counts, alpha)[0]

    def certify(
        self,
        x: Array,
        n0: int,
        n: int,
        alpha: float,
        seed: Seed | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cohen et al.'s CERTIFY: `g(x)` and a certified L2 radius.

        `n0` noisy copies select the top class `c_A`; `n` new ones count
        it, and the one-sided Clopper-Pearson bound `p_A_lower` at level
        `1 - alpha` gives the radius `sigma * Phi^-1(p_A_lower)`. With
        probability at least `1 - alpha` (over the noise) the returned
        class is `g(x)` and `g` returns it everywhere within the radius.
        When `p_A_lower < 1/2` the classifier abstains: class `ABSTAIN`
        (-1), radius 0.

        Args:
            x: Float array `(batch, ...)`.
            n0: Int >= 1, selection samples per input (Cohen et al.: 100).
            n: Int >= 1, estimation samples per input (Cohen et al.:
                100,000; the radius grows with `n` towards
                `sigma * Phi^-1(p_A)`).
            alpha: Float in `(0, 1)`, the failure probability (Cohen et
                al.: 0.001).
            seed: Optional int or stateless `(2,)` int tensor. Defaults to
                the classifier's own seed generator.

        Returns:
            `(predictions, radii)`: an int64 and a float64 array of shape
            `(batch,)`.
        """
        alpha = _check_alpha(alpha)
        n0 = _validation.check_int("n0", n0, minimum=1)
        n = _validation.check_int("n", n, minimum=1)
        x = self._check_x(x)
        seed = _random.as_stateless_seed(
            self.seed_generator if seed is None else seed
        )
        selection = self._counts(x, n0, _random.fold_seed(seed, 0))
        estimation = self._counts(x, n, _random.fold_seed(seed, 1))
        predictions, radii, _ = _statistics.certify_from_counts(
            selection, estimation, self.sigma, alpha
        )
        return predictions, radii

    def report(
        self,
        x: Array,
        y: Array,
        n0: int,
        n: int,
        alpha: float,
        seed: Seed | None = None,
    ) -> CertificationReport:
        """`certify(x, n0, n, alpha, seed)` as a `CertificationReport`.

        The report's `norm` is the classifier's and its settings are
        `get_config()` with `n0`, `n` and `alpha`.

        Args:
            x: Float array `(batch, ...)`.
            y: Labels of `x` (class ids or one-hot rows).
            n0: Int >= 1, selection samples per input.
            n: Int >= 1, estimation samples per input.
            alpha: Float in `(0, 1)`, the failure probability.
            seed: Optional int or stateless `(2,)` int tensor (as in
                `certify`).
        """
        predictions, radii = self.certify(x, n0, n, alpha, seed=seed)
        settings = {**self.get_config(), "n0": n0, "n": n, "alpha": alpha}
        settings.update(self._report_settings())
        return CertificationReport(
            predictions, radii, y, norm=self.norm, settings=settings
        )

    def _report_settings(self) -> dict[str, Any]:
        """Extra report settings of a subclass."""
        return {}

    def get_config(self) -> dict[str, Any]:
        """The smoothing settings (the model is not part of them).

        `SmoothedClassifier(model, **smoothed.get_config())` rebuilds it.
        """
        return {
            "sigma": self.sigma,
            "num_classes": self.num_classes,
            "batch_size": self.batch_size,
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({self.model.name!r}, {settings})"


class SmoothedClassifier(GaussianSmoothing):
    """A classifier smoothed with Gaussian noise, with L2 certificates.

    Randomized smoothing turns any base classifier `f` (here `model`)
    into `g(x) = argmax_c P(f(x + e) = c)` with `e ~ N(0, sigma^2 I)`. If
    `g`'s top class has probability at least `p_A > 1/2` under the noise,
    `g` predicts that class everywhere in the L2 ball of radius
    `sigma * Phi^-1(p_A)` around `x` (Cohen et al. 2019, Theorem 1). The
    probabilities are estimated by Monte Carlo, so each answer holds with
    probability at least `1 - alpha` over the noise, and the classifier
    abstains (returns `SmoothedClassifier.ABSTAIN`, -1) when the samples
    do not decide.

    The certificate is about `g`, not about `model`: predict with
    `predict` (or `certify`), never with `model` itself, when you report
    certified figures. L2 only; the noise is not clipped to the input's
    value range.

    Noise is drawn in batches of `batch_size` model inputs inside one
    compiled graph per classifier; the same `seed` gives the same results
    call for call (for the same inputs and `batch_size`), and new inputs
    of the same shape, or a new `n`, do not retrace it.

    Args:
        model: A Keras classifier with one output `(batch, classes)`,
            logits or probabilities (only the argmax is used).
        sigma: Float > 0, the noise standard deviation, in input units
            (train the model with the same noise: `docs/certification.md`).
        num_classes: Int >= 2 or None (read from the model's output).
            Defaults to `None`.
        batch_size: Int >= 1, the number of noisy inputs per forward pass.
            Defaults to `1000`.
        seed: Int >= 0 or None, the seed of the noise. Defaults to `None`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import SmoothedClassifier
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[-1.0, 1.0]]), np.zeros(2)])
    >>> smoothed = SmoothedClassifier(model, sigma=0.5, seed=0)
    >>> x = np.array([[1.0], [-0.5], [0.0]], "float32")
    >>> predictions, radii = smoothed.certify(x, n0=100, n=10000, alpha=0.001)
    >>> predictions.tolist()  # x = 0 is on f's boundary: g abstains
    [1, 0, -1]
    >>> radii.round(1).tolist()  # the distances to the boundary, |x|
    [0.9, 0.5, 0.0]

    Reference:
        Cohen, Rosenfeld and Kolter, "Certified Adversarial Robustness via
        Randomized Smoothing", ICML 2019,
        [arXiv:1902.02918](https://arxiv.org/abs/1902.02918).
    """


def _check_alpha(alpha: float) -> float:
    alpha = _validation.check_number("alpha", alpha, minimum=0.0, strict=True)
    if not alpha < 1.0:
        raise ValueError(_validation.invalid("alpha", "a number < 1", alpha))
    return alpha
