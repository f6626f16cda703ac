"""`LatentSmoothedClassifier`: smoothing in a learned set's latent space.

Wong and Kolter (2021) certify robustness to a learned perturbation set
`S(x) = {g(mu_p(x) + sigma_p(x) * u, x) : ||u||_2 <= radius}` by
randomized smoothing of the base classifier `u -> f(g(mu_p(x) +
sigma_p(x) * u, x))` of the whitened latent offset `u`, centred at `u = 0`
(the prior's mean, as the reference's `Smooth` draws its noise through
the prior's reparameterisation). Cohen et al.'s theorem then gives an L2
radius in `u`, the units of the set's own radius. The Monte Carlo graph,
statistics and answers are `GaussianSmoothing`'s; this module says how a
noise draw becomes logits.
"""

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _validation
from keras_adv._types import Array
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv.certification import _statistics
from keras_adv.certification._report import CertificationReport
from keras_adv.certification._smoothing import GaussianSmoothing
from keras_adv.threat_models import LearnedPerturbationSet


class LatentSmoothedClassifier(GaussianSmoothing):
    """A classifier smoothed in a learned perturbation set's latent space.

    For an input `x` and a `LearnedPerturbationSet` with CVAE prior
    `N(mu_p(x), sigma_p(x)^2)` and decoder `g`, the base classifier is
    `h_x(u) = f(clip(g(mu_p(x) + sigma_p(x) * u, x)))` of the whitened
    latent offset `u` (`f` is `model`; `clip` is the set's value range,
    as for the set's members). Randomized smoothing of `h_x` with
    `e ~ N(0, sigma^2 I)` around the centre `u = 0`,

        G_x(u) = argmax_c P(h_x(u + e) = c),

    has, by Cohen et al.'s Theorem 1, the same class at every `u` with
    `||u||_2 < sigma * Phi^-1(p_A)`. So `certify(x, ...)` returns a class
    `c` and a latent radius `R`: with probability at least `1 - alpha`
    over the noise, for every member `g(mu_p + sigma_p * u, x)` of the set
    with `||u||_2 <= R`, the smoothed classifier evaluated at that `u`
    returns `c`. When `R` reaches the set's radius, every member of the
    learned set is certified (`report(...).certified_accuracy(
    perturbation_set.radius)`).

    The radius is in the units of the set's radius: prior standard
    deviations (the latent is whitened). `prior_mass(R)` is the share of
    the prior's draws `u ~ N(0, I)` (the set's typical members) within it.
    The certificate is about the set as the CVAE decodes it, not about
    the true transformations the CVAE learned from, and about `G_x`, not
    `model`: predict with `predict` or `certify` when you report
    certified figures. It is not a certificate in input space (two
    latents may decode to the same image).

    Args:
        model: A Keras classifier with one output `(batch, classes)`,
            logits or probabilities (only the argmax is used), taking the
            set's members as inputs.
        perturbation_set: A `keras_adv.threat_models.
            LearnedPerturbationSet` (its CVAE, radius and value range).
        sigma: Float > 0, the noise standard deviation in whitened latent
            units (the reference's noise levels: 0.84 to 3.19 for CIFAR-10
            corruptions).
        num_classes: Int >= 2 or None (read from the model's output).
            Defaults to `None`.
        batch_size: Int >= 1, decoded inputs per forward pass. Defaults to
            `1000`.
        seed: Int >= 0 or None, the seed of the noise. Defaults to `None`.

    Example:

    >>> import numpy as np, keras
    >>> from keras_adv.certification import LatentSmoothedClassifier
    >>> from keras_adv.testing import shift_cvae
    >>> from keras_adv.threat_models import LearnedPerturbationSet
    >>> # g(z, x) = x + z, prior N(0, 1): the set is an L2 ball of x.
    >>> learned = LearnedPerturbationSet(shift_cvae((1,)), radius=0.5,
    ...                                  value_range=(-10.0, 10.0))
    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2)])
    >>> model.set_weights([np.array([[-1.0, 1.0]]), np.zeros(2)])
    >>> smoothed = LatentSmoothedClassifier(model, learned, 0.5, seed=0)
    >>> x = np.array([[1.0], [-0.5], [0.0]], "float32")
    >>> predictions, radii = smoothed.certify(x, 100, 10000, 0.001)
    >>> predictions.tolist()  # x = 0 decodes onto f's boundary: abstain
    [1, 0, -1]
    >>> radii.round(1).tolist()  # |x| in latent units (prior std 1)
    [0.9, 0.5, 0.0]

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (reference
        `robustness/smoothing_core.py`); Cohen, Rosenfeld and Kolter,
        "Certified Adversarial Robustness via Randomized Smoothing", ICML
        2019, [arXiv:1902.02918](https://arxiv.org/abs/1902.02918).
    """

    norm = "latent"

    def __init__(
        self,
        model: keras.Model,
        perturbation_set: LearnedPerturbationSet,
        sigma: float,
        num_classes: int | None = None,
        batch_size: int = 1000,
        seed: int | None = None,
    ) -> None:
        if not isinstance(perturbation_set, LearnedPerturbationSet):
            raise TypeError(
                _validation.invalid(
                    "perturbation_set",
                    "a keras_adv.threat_models.LearnedPerturbationSet (wrap "
                    "a trained PerturbationCVAE: LearnedPerturbationSet("
                    "cvae, radius))",
                    type(perturbation_set).__name__,
                )
            )
        self.perturbation_set = perturbation_set
        #: Int, the number of latent dimensions (read on the first call).
        self.latent_dim: int | None = None
        super().__init__(
            model,
            sigma,
            num_classes=num_classes,
            batch_size=batch_size,
            seed=seed,
        )

    # ------------------------------------------------------------ sampling
    def _per_input(self, x: Tensor) -> tuple[Tensor, ...]:
        """The prior's `(mean, std)` of each input, and the input: the
        noise takes the latent's shape."""
        mean, std = self.perturbation_set.prior(x)
        return mean, std, x

    def _noisy_logits(self, rows: list[Tensor], noise: Tensor) -> Tensor:
        """`f(clip(g(mean + std * noise, x)))`: the set's member at the
        noisy latent offset, classified."""
        mean, std, x = rows
        members = self.perturbation_set.decode(x, mean, std, noise)
        return self.model_logits(members)

    def _check_x(self, x: Array) -> Tensor:
        """`x` checked, the decoder's output checked against it, and the
        latent dimension and classes read, from one input."""
        x = self._check_batch(x)
        first = x[:1]
        try:
            mean, std = self.perturbation_set.prior(first)
            decoded = self.perturbation_set.decode(
                first, mean, std, tf.zeros_like(mean)
            )
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as e:
            raise ValueError(
                _validation.invalid(
                    "perturbation_set",
                    f"a CVAE that takes inputs of shape {tuple(x.shape[1:])}"
                    f", the shape of `x` ({type(e).__name__}: {e})",
                    self.perturbation_set,
                )
            ) from e
        if tuple(decoded.shape[1:]) != tuple(x.shape[1:]):
            raise ValueError(
                _validation.invalid(
                    "perturbation_set",
                    f"a CVAE whose decoder outputs inputs of shape "
                    f"{tuple(x.shape[1:])}, the shape of `x`",
                    f"decoded shape {tuple(decoded.shape[1:])}",
                )
            )
        self.latent_dim = math.prod(int(d) for d in mean.shape[1:])
        if self.num_classes is None:
            self.num_classes = int(self.model_logits(decoded).shape[-1])
        return x

    # ------------------------------------------------------------- answers
    def certify(
        self,
        x: Array,
        n0: int,
        n: int,
        alpha: float,
        seed: Seed | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """CERTIFY in the latent space: `G_x(0)` and a certified radius.

        `n0` draws `u ~ N(0, sigma^2 I)` select the top class `c_A` of
        `h_x(u)`; `n` new ones count it, and the one-sided Clopper-Pearson
        bound `p_A_lower` at level `1 - alpha` gives the latent radius
        `sigma * Phi^-1(p_A_lower)`. With probability at least `1 - alpha`
        the smoothed classifier returns `c_A` at every latent offset
        within the radius. When `p_A_lower < 1/2` it abstains: class
        `ABSTAIN` (-1), radius 0.

        Args:
            x: Float array `(batch, ...)`, the inputs the set perturbs.
            n0: Int >= 1, selection samples per input (paper: 100).
            n: Int >= 1, estimation samples per input (paper: 10,000).
            alpha: Float in `(0, 1)`, the failure probability (paper:
                0.001).
            seed: Optional int or stateless `(2,)` int tensor. Defaults to
                the classifier's own seed generator.

        Returns:
            `(predictions, radii)`: an int64 and a float64 array of shape
            `(batch,)`; radii in whitened latent units.
        """
        return super().certify(x, n0, n, alpha, seed=seed)

    def prior_mass(self, radius: float | Array) -> np.ndarray:
        """Share of the prior's draws within a latent radius.

        `P(||u||_2 <= radius)` for `u ~ N(0, I)`, the chi-squared CDF
        with `latent_dim` degrees of freedom: what a certified radius
        covers of the members `g(mu_p + sigma_p * u, x)` that the CVAE
        samples (`PerturbationCVAE.sample`). In high dimension it is tiny
        for radii well below `sqrt(latent_dim)`, even when the radius
        covers the calibrated set.

        Args:
            radius: Float or float array >= 0.

        Returns:
            Float64 array of the shape of `radius`.

        Raises:
            ValueError: before the first call (`latent_dim` unknown).
        """
        if self.latent_dim is None:
            raise ValueError(
                "The latent dimension is read on the first call: certify, "
                "predict or sample_counts before prior_mass."
            )
        radius = np.asarray(radius, dtype="float64")
        if not np.all(np.isfinite(radius)) or np.any(radius < 0):
            raise ValueError(
                _validation.invalid("radius", "finite radii >= 0", radius)
            )
        return _statistics.gaussian_mass_within(radius, self.latent_dim)

    def report(
        self,
        x: Array,
        y: Array,
        n0: int,
        n: int,
        alpha: float,
        seed: Seed | None = None,
    ) -> CertificationReport:
        """`certify(x, n0, n, alpha, seed)` as a latent `CertificationReport`.

        Norm `"latent"`; the settings are `get_config()` with `n0`, `n`,
        `alpha`, `set_radius` (the set's radius, when a single number)
        and `latent_dim`, so that `table()` shows each radius as a share
        of the set's and the prior's mass within it, and
        `certified_accuracy(settings["set_radius"])` is the share of
        inputs certified on the whole learned set.

        Args:
            x: Float array `(batch, ...)`.
            y: Labels of `x` (class ids or one-hot rows).
            n0: Int >= 1, selection samples per input.
            n: Int >= 1, estimation samples per input.
            alpha: Float in `(0, 1)`, the failure probability.
            seed: Optional int or stateless `(2,)` int tensor (as in
                `certify`).
        """
        return super().report(x, y, n0, n, alpha, seed=seed)

    def _report_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"latent_dim": self.latent_dim}
        # A per-sample radius has no single share of the set.
        radius = np.asarray(self.perturbation_set.radius, dtype="float64")
        if radius.ndim == 0:
            settings["set_radius"] = float(radius)
        return settings

    def get_config(self) -> dict[str, Any]:
        """The smoothing settings (the model and the set are not part).

        `LatentSmoothedClassifier(model, perturbation_set, **config)`
        rebuilds it.
        """
        return super().get_config()
