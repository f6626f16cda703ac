"""Calibrating and measuring a learned perturbation set.

* `calibrate_radius`: the whitened latent distances
  `||(mu_q - mu_p) / sigma_p||_2` of held-out pairs, their statistics and
  the radius at a percentile: the radius at which the set contains (the
  encoder's estimate of) that share of real perturbations.
* `perturbation_set_errors`: the two properties of Wong and Kolter
  (2021) as errors against held-out perturbed inputs `x~`:

  - necessary subset property (NSP), the approximation error
    `min_{||u|| <= r} err(g(u, x), x~)`: latent PGD on the error, from the
    encoder's estimate of `u` projected onto the radius (the reference's
    50 steps of `r / 20`); small when every real perturbation is close
    to some member of the set;
  - sufficient likelihood property (SLP), the expected error
    `E_u err(g(u, x), x~)` over `u ~ N(0, I)` restricted to the radius
    (draws beyond it are projected onto it); small when members look like
    real perturbations;

  next to two baselines: `x` itself as the prediction of `x~`, and one
  random member of the set (uniform direction, uniform length in the
  radius). `err` is the mean squared error per pixel.
"""

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import tensorflow as tf
from keras import ops
from numpy.typing import ArrayLike

from keras_adv import _random
from keras_adv import _validation
from keras_adv._types import Tensor

if TYPE_CHECKING:
    from keras_adv.models import PerturbationCVAE

_PERCENTILES = (25.0, 50.0, 75.0, 90.0, 99.0, 99.9)


def _check_cvae(cvae: object) -> "PerturbationCVAE":
    from keras_adv.models import PerturbationCVAE

    if not isinstance(cvae, PerturbationCVAE):
        raise TypeError(
            _validation.invalid(
                "cvae", "a keras_adv.models.PerturbationCVAE", type(cvae)
            )
        )
    return cvae


def _check_pairs(pairs: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pairs, list | tuple) or len(pairs) < 2:
        raise ValueError(
            _validation.invalid(
                "pairs", "a tuple (x, x_tilde[, y]) of arrays", type(pairs)
            )
        )
    x = np.asarray(pairs[0], "float32")
    x_tilde = np.asarray(pairs[1], "float32")
    if x.shape != x_tilde.shape or len(x) == 0:
        raise ValueError(
            _validation.invalid(
                "pairs",
                "non-empty x and x_tilde of the same shape",
                f"{x.shape} and {x_tilde.shape}",
            )
        )
    finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    finite &= np.isfinite(x_tilde.reshape(len(x), -1)).all(axis=1)
    if not finite.all():
        raise ValueError(
            _validation.invalid(
                "pairs",
                "finite values (one NaN pair makes the radius, the max and "
                "the mean NaN: drop such pairs first)",
                f"{int((~finite).sum())} of {len(x)} pairs with NaN or inf",
            )
        )
    return x, x_tilde


def min_pairs(percentile: float) -> int:
    """The fewest held-out pairs that calibrate a radius at `percentile`.

    `ceil(100 / (100 - percentile))`: the expected number of pairs beyond
    the percentile, `n (1 - q)`, must be at least 1, so that the sample
    percentile is read among pairs rather than interpolated past the
    largest one. 2 pairs for the median, 10 for the 90th percentile, 100
    for the 99th, 1000 for the 99.9th; 1 for percentile 100 (the largest
    held-out distance, which holds about `n / (n + 1)` of new pairs).

    Example:

    >>> from keras_adv.evaluation._perturbation_sets import min_pairs
    >>> min_pairs(99.0), min_pairs(50.0), min_pairs(100.0)
    (100, 2, 1)
    """
    if percentile >= 100.0:
        return 1
    # Rounded first: 100 / (100 - 99) is 100.00000000000009 in floats.
    return math.ceil(round(100.0 / (100.0 - percentile), 9))


class RadiusCalibration:
    """Latent distances of held-out pairs and the radius chosen from them.

    Attributes:
        distances: Float array `(n,)`, whitened latent distances.
        percentile: The percentile that chose the radius.
        radius: Float, `percentile`-th percentile of `distances`.
        max, mean, std: Floats.
        percentiles: Dict `p -> distance` for p in 25, 50, 75, 90, 99, 99.9.
    """

    def __init__(self, distances: ArrayLike, percentile: float) -> None:
        self.distances = np.asarray(distances, "float64")
        self.percentile = float(percentile)
        self.radius = float(np.percentile(self.distances, self.percentile))
        self.max = float(self.distances.max())
        self.mean = float(self.distances.mean())
        self.std = float(self.distances.std())
        self.percentiles = {
            p: float(np.percentile(self.distances, p)) for p in _PERCENTILES
        }

    def to_dict(self) -> dict[str, Any]:
        """The statistics (without the distances) as plain floats."""
        return {
            "radius": self.radius,
            "percentile": self.percentile,
            "num_pairs": int(len(self.distances)),
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "percentiles": dict(self.percentiles),
        }

    def __repr__(self) -> str:
        return (
            f"RadiusCalibration(radius={self.radius:.4g} at percentile "
            f"{self.percentile:g} of {len(self.distances)} pairs; max "
            f"{self.max:.4g}, mean {self.mean:.4g}, median "
            f"{self.percentiles[50.0]:.4g})"
        )


def calibrate_radius(
    cvae: "PerturbationCVAE",
    pairs: Sequence[ArrayLike],
    percentile: float = 99.0,
    batch_size: int = 256,
) -> RadiusCalibration:
    """Chooses the radius of a learned set from held-out pairs.

    Computes `||(mu_q(x, x~) - mu_p(x)) / sigma_p(x)||_2` for every
    held-out pair (pairs the CVAE did not train on) and takes the
    `percentile`-th percentile as the radius: the set of that radius then
    holds the encoder's estimate of that share of real perturbations.

    A percentile needs enough pairs: at least `min_pairs(percentile)` =
    `ceil(100 / (100 - percentile))` (100 pairs for the 99th percentile,
    10 for the 90th); with fewer, the "99th percentile" of 2 pairs would
    be interpolated between them and hold about half of new pairs, so
    the call is refused. Pairs with NaN or inf values are refused (with
    their count) rather than dropped, as are pairs outside `[0, 1]` for a
    CVAE with the Bernoulli reconstruction (`PerturbationCVAE.check_pairs`).

    Args:
        cvae: A trained `keras_adv.models.PerturbationCVAE`.
        pairs: Tuple `(x, x_tilde)` or `(x, x_tilde, y)` of arrays.
        percentile: Float in `(0, 100]`. Defaults to `99.0`.
        batch_size: Int >= 1. Defaults to `256`.

    Returns:
        A `RadiusCalibration` (`.radius`, `.max`, `.mean`,
        `.percentiles`, `.distances`).

    Raises:
        ValueError: for fewer than `min_pairs(percentile)` pairs, pairs
            with NaN or inf values, Bernoulli pairs outside `[0, 1]`, or
            distances the CVAE makes NaN (each with the count).

    Example:

    >>> import numpy as np, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=8, latent_dim=4,
    ...     input_shape=(2, 2, 1))
    >>> x = np.full((10, 2, 2, 1), 0.5, "float32")
    >>> cal = keras_adv.evaluation.calibrate_radius(cvae, (x, x + 0.1), 50)
    >>> cal.radius == cal.percentiles[50.0]
    True

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450).
    """
    cvae = _check_cvae(cvae)
    x, x_tilde = _check_pairs(pairs)
    percentile = _validation.check_number(
        "percentile", percentile, minimum=0.0, strict=True
    )
    if percentile > 100.0:
        raise ValueError(
            _validation.invalid(
                "percentile", "a number in (0, 100]", percentile
            )
        )
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    needed = min_pairs(percentile)
    if len(x) < needed:
        raise ValueError(
            _validation.invalid(
                "pairs",
                f"at least {needed} held-out pairs for percentile="
                f"{percentile:g} (ceil(100 / (100 - percentile)): fewer "
                "cannot place a percentile; lower the percentile or add "
                "pairs)",
                f"{len(x)} pairs",
            )
        )
    cvae.check_pairs(x, x_tilde)
    fn = tf.function(cvae.latent_distance, reduce_retracing=True)
    distances = np.concatenate(
        [
            np.asarray(fn(x[i : i + batch_size], x_tilde[i : i + batch_size]))
            for i in range(0, len(x), batch_size)
        ]
    )
    if not np.all(np.isfinite(distances)):
        raise ValueError(
            f"The CVAE gives {int((~np.isfinite(distances)).sum())} of "
            f"{len(x)} held-out pairs a NaN or infinite latent distance: "
            "no radius can be calibrated from them. Check the CVAE's "
            "training (a NaN loss) and its inputs."
        )
    return RadiusCalibration(distances, percentile)


def _mse(a: Tensor, b: Tensor) -> Tensor:
    d = ops.reshape(a - b, [ops.shape(a)[0], -1])
    return ops.mean(ops.square(d), axis=1)


def _l2(u: Tensor) -> Tensor:
    return ops.sqrt(
        ops.sum(ops.square(u), axis=list(range(1, len(u.shape))), keepdims=True)
    )


def _project(u: Tensor, radius: float | Tensor) -> Tensor:
    return u * ops.minimum(1.0, radius / ops.maximum(_l2(u), 1e-12))


def _batch_errors(
    cvae: "PerturbationCVAE",
    x: Tensor,
    x_tilde: Tensor,
    radius: float,
    steps: int,
    step_size: float,
    samples: int,
    seed: Tensor,
) -> dict[str, Tensor]:
    """Per-sample errors of one batch (graph body)."""
    mean, log_var = cvae.encode_prior(x)
    std = ops.exp(0.5 * log_var)

    def decode(u: Tensor) -> Tensor:
        return ops.clip(cvae.decode(x, mean + std * u), 0.0, 1.0)

    u0 = _project(cvae.latent_offset(x, x_tilde), radius)
    encoder = _mse(decode(u0), x_tilde)

    def body(i: Tensor, u: Tensor) -> Tensor:
        with tf.GradientTape() as tape:
            tape.watch(u)
            loss = ops.sum(_mse(decode(u), x_tilde))
        grad = tape.gradient(loss, u)
        grad = ops.where(ops.isfinite(grad), grad, 0.0)
        u = u - step_size * grad / ops.maximum(_l2(grad), 1e-12)
        return _project(u, radius)

    u = ops.fori_loop(0, steps, body, u0)
    nsp = ops.minimum(_mse(decode(u), x_tilde), encoder)

    def draw(k: Tensor, total: Tensor) -> Tensor:
        u = _random.random_normal(ops.shape(mean), _random.fold_seed(seed, k))
        return total + _mse(decode(_project(u, radius)), x_tilde)

    slp = ops.fori_loop(0, samples, draw, ops.zeros_like(nsp)) / samples

    direction = _random.random_normal(
        ops.shape(mean), _random.fold_seed(seed, samples)
    )
    direction = direction / ops.maximum(_l2(direction), 1e-12)
    length = _random.random_uniform(
        [ops.shape(mean)[0]] + [1] * (len(mean.shape) - 1),
        _random.fold_seed(seed, samples + 1),
    )
    random_member = _mse(decode(direction * length * radius), x_tilde)
    identity = _mse(ops.cast(x, "float32"), x_tilde)
    return {
        "nsp": nsp,
        "nsp_encoder": encoder,
        "slp": slp,
        "identity": identity,
        "random_member": random_member,
    }


def perturbation_set_errors(
    cvae: "PerturbationCVAE",
    pairs: Sequence[ArrayLike],
    radius: float,
    steps: int = 50,
    step_size: float | None = None,
    samples: int = 5,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, float]:
    """NSP and SLP errors of a learned set on held-out pairs, with baselines.

    All errors are mean squared errors per pixel against the held-out
    `x~`, averaged over the pairs:

    * `"nsp"`: approximation error, `min err(g(u, x), x~)` over
      `||u|| <= radius` by `steps` latent PGD steps of `step_size` from the
      encoder's estimate (the smaller of the start and the end);
    * `"nsp_encoder"`: the error at the encoder's estimate alone;
    * `"slp"`: expected error of `samples` members with `u ~ N(0, I)`
      (projected onto the radius when beyond it);
    * `"identity"`: baseline `err(x, x~)`;
    * `"random_member"`: baseline, one uniformly random member.

    Args:
        cvae: A trained `keras_adv.models.PerturbationCVAE`.
        pairs: Tuple `(x, x_tilde)` or `(x, x_tilde, y)`, finite values
            in [0, 1] (the members of the set are clipped to it; other
            values raise a `ValueError` naming `pairs`).
        radius: Float > 0, the latent radius.
        steps: Int >= 0. Defaults to `50`.
        step_size: Float > 0 or None for `radius / 20`. Defaults to `None`.
        samples: Int >= 1, SLP draws per pair. Defaults to `5`.
        batch_size: Int >= 1. Defaults to `256`.
        seed: Int. Defaults to `0`.

    Returns:
        A dict of floats with the keys above and `"num_pairs"`.

    Example:

    >>> import numpy as np, keras_adv
    >>> cvae = keras_adv.models.cvae_mnist_fc(hidden=8, latent_dim=4,
    ...     input_shape=(2, 2, 1))
    >>> x = np.full((4, 2, 2, 1), 0.5, "float32")
    >>> errors = keras_adv.evaluation.perturbation_set_errors(
    ...     cvae, (x, x + 0.1), radius=1.0, steps=2)
    >>> round(errors["identity"], 4), errors["nsp"] <= errors["nsp_encoder"]
    (0.01, True)

    Reference:
        Wong and Kolter, "Learning perturbation sets for robust machine
        learning", ICLR 2021,
        [arXiv:2007.08450](https://arxiv.org/abs/2007.08450) (Section 3 and the
        reference's evaluation script).
    """
    cvae = _check_cvae(cvae)
    x, x_tilde = _check_pairs(pairs)
    for values in (x, x_tilde):
        _validation.check_value_range_of(values, (0.0, 1.0), name="pairs")
    radius = _validation.check_number(
        "radius", radius, minimum=0.0, strict=True
    )
    steps = _validation.check_int("steps", steps, minimum=0)
    if step_size is None:
        step_size = radius / 20.0
    step_size = _validation.check_number(
        "step_size", step_size, minimum=0.0, strict=True
    )
    samples = _validation.check_int("samples", samples, minimum=1)
    batch_size = _validation.check_int("batch_size", batch_size, minimum=1)
    seed = _validation.check_int("seed", seed, minimum=0)

    def run(xb: Tensor, tb: Tensor, batch_seed: Tensor) -> dict[str, Tensor]:
        return _batch_errors(
            cvae, xb, tb, radius, steps, step_size, samples, batch_seed
        )

    fn = tf.function(run, reduce_retracing=True)
    totals: dict[str, list[np.ndarray]] = {}
    for b, i in enumerate(range(0, len(x), batch_size)):
        out = fn(
            x[i : i + batch_size],
            x_tilde[i : i + batch_size],
            tf.constant([seed, b], tf.int32),
        )
        for key, value in out.items():
            totals.setdefault(key, []).append(np.asarray(value))
    result = {k: float(np.concatenate(v).mean()) for k, v in totals.items()}
    result["num_pairs"] = int(len(x))
    return result
