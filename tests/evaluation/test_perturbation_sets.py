"""calibrate_radius and the NSP/SLP errors against closed forms."""

import numpy as np
import pytest

from keras_adv.evaluation import calibrate_radius
from keras_adv.evaluation import perturbation_set_errors
from keras_adv.evaluation._perturbation_sets import min_pairs
from keras_adv.models import cvae_mnist_fc
from keras_adv.testing import shift_cvae

D = 4


def pairs(distances):
    """Pairs whose x~ - x has the given L2 norms (along one axis)."""
    x = np.full((len(distances), D), 0.5, "float32")
    x_tilde = x.copy()
    x_tilde[:, 0] += np.asarray(distances, "float32")
    return x, x_tilde


def test_calibration_statistics_are_exact():
    distances = np.linspace(0.0, 0.4, 101)
    cal = calibrate_radius(shift_cvae((D,), 0.1), pairs(distances), 90.0)
    latent = distances / 0.1
    np.testing.assert_allclose(cal.distances, latent, atol=1e-4)
    assert cal.radius == pytest.approx(np.percentile(latent, 90), abs=1e-4)
    assert cal.max == pytest.approx(4.0, abs=1e-4)
    assert cal.mean == pytest.approx(2.0, abs=1e-4)
    assert cal.to_dict()["num_pairs"] == 101
    assert "radius" in repr(cal)
    with pytest.raises(ValueError, match="percentile"):
        calibrate_radius(shift_cvae((D,)), pairs([0.1]), 120)
    with pytest.raises(TypeError, match="cvae"):
        calibrate_radius("cvae", pairs([0.1]))


def test_errors_in_closed_form():
    # Scale 0.1, radius 2: the set is the L2 ball of radius 0.2 around x.
    cvae = shift_cvae((D,), 0.1)
    inside, outside = 0.1, 0.35
    errors = perturbation_set_errors(
        cvae, pairs([inside, outside]), radius=2.0, samples=100
    )
    # NSP: 0 inside the ball; (d - 0.2)^2 / D at distance d outside.
    expected_nsp = (0.0 + (outside - 0.2) ** 2 / D) / 2
    assert errors["nsp"] == pytest.approx(expected_nsp, abs=1e-6)
    assert errors["nsp_encoder"] == pytest.approx(expected_nsp, abs=1e-6)
    # Identity baseline: d^2 / D.
    expected_id = (inside**2 + outside**2) / D / 2
    assert errors["identity"] == pytest.approx(expected_id, rel=1e-5)
    # SLP: E||0.1 u - d e1||^2 / D = (0.01 E||u||^2 + d^2) / D, with u
    # standard normal in 4 dimensions projected onto the radius 2
    # (E||u||^2 < 4): between the identity baseline and 0.04 / D above it.
    assert expected_id < errors["slp"] < expected_id + 0.04 / D
    # A random member lies within 0.2 of x: error <= (d + 0.2)^2 / D.
    bound = ((inside + 0.2) ** 2 + (outside + 0.2) ** 2) / D / 2
    assert errors["random_member"] <= bound
    assert errors["num_pairs"] == 2


def test_more_steps_never_hurt_and_validation():
    cvae = shift_cvae((D,), 0.1)
    x, x_tilde = pairs([0.3, 0.05])
    x_tilde[:, 1] -= 0.1  # off-axis: the encoder start is not optimal
    few = perturbation_set_errors(cvae, (x, x_tilde), 1.0, steps=1)
    many = perturbation_set_errors(cvae, (x, x_tilde), 1.0, steps=50)
    assert many["nsp"] <= few["nsp"] + 1e-7
    with pytest.raises(ValueError, match="radius"):
        perturbation_set_errors(cvae, (x, x_tilde), 0.0)
    with pytest.raises(ValueError, match="pairs"):
        perturbation_set_errors(cvae, (x, x_tilde[:1]), 1.0)


@pytest.mark.parametrize(
    "percentile, needed", [(99.0, 100), (90.0, 10), (50.0, 2), (99.9, 1000)]
)
def test_a_percentile_needs_enough_pairs(percentile, needed):
    assert min_pairs(percentile) == needed
    cvae = shift_cvae((D,), 0.1)
    distances = np.linspace(0.0, 0.4, needed)
    cal = calibrate_radius(cvae, pairs(distances), percentile)
    assert cal.to_dict()["num_pairs"] == needed
    with pytest.raises(ValueError, match=f"at least {needed} held-out pairs"):
        calibrate_radius(cvae, pairs(distances[:-1]), percentile)


def test_the_largest_distance_needs_one_pair():
    cal = calibrate_radius(shift_cvae((D,), 0.1), pairs([0.1, 0.3]), 100)
    assert cal.radius == cal.max == pytest.approx(3.0, abs=1e-4)


def test_nan_pairs_are_refused_with_their_count():
    x, x_tilde = pairs(np.linspace(0.0, 0.4, 100))
    x_tilde[3, 1] = np.nan
    x[7, 0] = np.inf
    with pytest.raises(ValueError, match="2 of 100 pairs with NaN or inf"):
        calibrate_radius(shift_cvae((D,), 0.1), (x, x_tilde))
    with pytest.raises(ValueError, match="2 of 100 pairs"):
        perturbation_set_errors(shift_cvae((D,), 0.1), (x, x_tilde), 1.0)


def test_pairs_outside_zero_one_are_refused():
    x = np.full((100, 2, 2, 1), 0.5, "float32")
    bernoulli = cvae_mnist_fc(hidden=8, latent_dim=2, input_shape=(2, 2, 1))
    with pytest.raises(ValueError, match="`x_tilde`"):
        calibrate_radius(bernoulli, (x, x * 255))
    calibrate_radius(bernoulli, (x, x + 0.1))
    # Gaussian: any values calibrate; the errors clip members to [0, 1].
    gaussian = shift_cvae((D,), 0.1)
    x, x_tilde = pairs(np.linspace(0.0, 0.4, 100))
    calibrate_radius(gaussian, (x * 255, x_tilde * 255))
    with pytest.raises(ValueError, match="`pairs`"):
        perturbation_set_errors(gaussian, (x * 255, x_tilde * 255), 1.0)
