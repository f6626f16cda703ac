"""The statistics of randomized smoothing, from class counts to answers.

Host-side numpy and `scipy.special` (no TensorFlow): the sampler counts,
in one compiled graph, how often the base classifier picks each class
under Gaussian noise; these functions turn counts into Cohen et al.'s
answers. Each works on a batch of count rows at once.

* `clopper_pearson_lower(k, n, alpha)`: the one-sided `(1 - alpha)` lower
  confidence bound on a binomial proportion (the exact "beta" interval),
  `Beta(alpha; k, n - k + 1)`, and 0 for `k = 0`.
* `two_sided_binomial_p_value(k, n)`: the p-value of the two-sided exact
  test of `p = 1/2` for `k >= n / 2` successes out of `n`.
* `certify_from_counts` and `predict_from_counts`: CERTIFY and PREDICT of
  Cohen et al. (2019), Algorithm 1 / Section 3.2.
* `gaussian_mass_within(radius, dim)`: the share of a standard normal's
  mass within an L2 ball, what a latent radius means under the prior.
"""

import numpy as np
from scipy import special

#: The class returned when the smoothed classifier abstains.
ABSTAIN = -1


def clopper_pearson_lower(
    successes: np.ndarray, trials: np.ndarray, alpha: float
) -> np.ndarray:
    """One-sided `(1 - alpha)` Clopper-Pearson lower bound on `p`.

    `P(p >= bound) >= 1 - alpha` for `successes ~ Binomial(trials, p)`;
    the bound solves `P(X >= successes | p = bound) = alpha`, i.e. it is
    the `alpha` quantile of `Beta(successes, trials - successes + 1)`.
    Equal to `statsmodels`' `proportion_confint(k, n, 2 * alpha,
    method="beta")[0]`.

    Args:
        successes: Int array, `0 <= successes <= trials`.
        trials: Int array (broadcast with `successes`), `trials >= 1`.
        alpha: Float in `(0, 1)`.

    Returns:
        Float64 array of bounds in `[0, 1)`.
    """
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    safe_k = np.maximum(k, 1.0)
    bound = special.betaincinv(safe_k, n - safe_k + 1.0, alpha)
    return np.where(k > 0, bound, 0.0)


def two_sided_binomial_p_value(
    successes: np.ndarray, trials: np.ndarray
) -> np.ndarray:
    """The exact two-sided binomial test of `p = 1/2`, for `k >= n / 2`.

    The distribution is symmetric, so the p-value is
    `min(1, 2 P(X >= k))` with `X ~ Binomial(n, 1/2)` (`scipy.stats.
    binomtest(k, n, 0.5).pvalue`); a tie `k = n / 2` gives 1.

    Args:
        successes: Int array `k`, the larger of the two counts.
        trials: Int array `n >= 1` (broadcast with `successes`).

    Returns:
        Float64 array of p-values in `(0, 1]`.
    """
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(trials, dtype="float64")
    # bdtrc(k - 1, n, p) = P(X > k - 1) = P(X >= k).
    upper_tail = special.bdtrc(k - 1.0, n, 0.5)
    return np.minimum(1.0, 2.0 * upper_tail)


def certify_from_counts(
    selection: np.ndarray, estimation: np.ndarray, sigma: float, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cohen et al.'s CERTIFY from two independent sets of class counts.

    The top class of the `selection` counts is the guess `c_A`; its count
    `n_A` among the `n` `estimation` samples gives the lower bound
    `p_A_lower = clopper_pearson_lower(n_A, n, alpha)`. The smoothed
    classifier is certified with L2 radius `sigma * Phi^-1(p_A_lower)`
    when `p_A_lower >= 1/2`, and abstains (`ABSTAIN`, radius 0) otherwise.

    Args:
        selection: Int array `(batch, classes)`, the `n0` selection counts.
        estimation: Int array `(batch, classes)`, the `n` estimation counts.
        sigma: Float > 0, the noise level.
        alpha: Float in `(0, 1)`, the failure probability.

    Returns:
        `(predictions, radii, p_a_lower)`: int64, float64, float64 arrays
        of shape `(batch,)`.
    """
    selection = np.asarray(selection)
    estimation = np.asarray(estimation)
    guess = np.argmax(selection, axis=1)
    n_a = np.take_along_axis(estimation, guess[:, None], axis=1)[:, 0]
    trials = estimation.sum(axis=1)
    p_a_lower = clopper_pearson_lower(n_a, trials, alpha)
    abstain = p_a_lower < 0.5
    radii = sigma * special.ndtri(np.maximum(p_a_lower, 0.5))
    predictions = np.where(abstain, ABSTAIN, guess).astype("int64")
    return predictions, np.where(abstain, 0.0, radii), p_a_lower


def predict_from_counts(
    counts: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cohen et al.'s PREDICT from one set of class counts.

    The two largest counts `n_A >= n_B` enter a two-sided binomial test
    of `p = 1/2` over `n_A + n_B` trials (Hung and Fithian 2019): the
    smoothed classifier returns the top class when the p-value is at most
    `alpha`, and abstains otherwise (so always on a tie).

    Args:
        counts: Int array `(batch, classes)`.
        alpha: Float in `(0, 1)`.

    Returns:
        `(predictions, p_values)`: int64 and float64 arrays `(batch,)`.
    """
    counts = np.asarray(counts)
    order = np.argsort(-counts, axis=1, kind="stable")
    top = order[:, 0]
    n_a = np.take_along_axis(counts, order[:, :1], axis=1)[:, 0]
    n_b = np.take_along_axis(counts, order[:, 1:2], axis=1)[:, 0]
    p_values = two_sided_binomial_p_value(n_a, n_a + n_b)
    predictions = np.where(p_values > alpha, ABSTAIN, top).astype("int64")
    return predictions, p_values


def gaussian_mass_within(radius: float | np.ndarray, dim: int) -> np.ndarray:
    """`P(||u||_2 <= radius)` for `u ~ N(0, I_dim)`: the chi-squared CDF.

    `||u||^2` has the chi-squared distribution with `dim` degrees of
    freedom, so the share is the regularised lower incomplete gamma
    function `P(dim / 2, radius^2 / 2)` (`scipy.stats.chi2.cdf(radius**2,
    dim)`). In high dimension the mass concentrates near
    `radius = sqrt(dim)`: a ball much smaller holds almost none of it.

    Args:
        radius: Float array >= 0.
        dim: Int >= 1, the dimension.

    Returns:
        Float64 array of shares in `[0, 1]`.
    """
    r = np.asarray(radius, dtype="float64")
    return special.gammainc(0.5 * dim, 0.5 * np.square(r))
