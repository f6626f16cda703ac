"""CVAE losses against closed forms; the beta schedule in one graph."""

import numpy as np
import pytest
import tensorflow as tf

from keras_adv.losses import BetaSchedule
from keras_adv.losses import bernoulli_reconstruction
from keras_adv.losses import gaussian_kl
from keras_adv.losses import gaussian_reconstruction


def kl_reference(mq, lq, mp, lp):
    vq, vp = np.exp(lq), np.exp(lp)
    one = 0.5 * (np.log(vp / vq) + (vq + (mq - mp) ** 2) / vp - 1.0)
    return one.reshape(len(mq), -1).sum(1)


def test_kl_matches_the_closed_form_per_example():
    rng = np.random.default_rng(0)
    args = [rng.normal(size=(5, 3, 2)).astype("float32") for _ in range(4)]
    got = np.asarray(gaussian_kl(*args))
    np.testing.assert_allclose(got, kl_reference(*args), rtol=1e-5)
    assert got.shape == (5,)


def test_kl_is_zero_iff_equal_and_positive_otherwise():
    m = np.float32([[0.3, -1.0]])
    lv = np.float32([[0.5, -0.2]])
    assert float(gaussian_kl(m, lv, m, lv)[0]) == pytest.approx(0.0, abs=1e-6)
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension.
    one = np.ones((1, 4), "float32")
    assert float(gaussian_kl(one, 0 * one, 0 * one, 0 * one)[0]) == 2.0


def test_reconstructions_are_summed_per_example():
    x = np.float32([[[0.0, 1.0], [0.5, 0.2]]])
    p = np.float32([[[0.1, 0.9], [0.5, 0.4]]])
    bce = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum()
    assert float(bernoulli_reconstruction(x, p)[0]) == pytest.approx(bce, 1e-5)
    sq = ((x - p) ** 2).sum()
    assert float(gaussian_reconstruction(x, p)[0]) == pytest.approx(sq, 1e-6)
    # Saturated predictions stay finite.
    assert np.isfinite(float(bernoulli_reconstruction(x, 1 - x)[0]))


def test_beta_schedule_interpolates_and_never_retraces():
    schedule = BetaSchedule([0, 10, 30], [0.0, 1e-3, 1e-2])
    expected = np.interp([0, 5, 10, 20, 30, 99], [0, 10, 30], [0, 1e-3, 1e-2])
    fn = tf.function(schedule)
    step = tf.Variable(0, dtype=tf.int64)
    got = []
    for value in (0, 5, 10, 20, 30, 99):
        step.assign(value)
        got.append(float(fn(step)))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    assert fn.experimental_get_tracing_count() == 1
    assert float(BetaSchedule([3], [0.5])(100)) == 0.5


def test_beta_schedule_validation_and_config():
    with pytest.raises(ValueError, match="boundaries"):
        BetaSchedule([5, 5], [0.0, 1.0])
    with pytest.raises(ValueError, match="values"):
        BetaSchedule([0, 5], [0.0])
    with pytest.raises(ValueError, match="values"):
        BetaSchedule([0], [-1.0])
    schedule = BetaSchedule([0, 4], [0.0, 2.0])
    again = BetaSchedule.from_config(schedule.get_config())
    assert float(again(2)) == 1.0
