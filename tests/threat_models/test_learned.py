"""LearnedPerturbationSet on a CVAE whose set is exactly an L2 ball."""

import keras
import numpy as np
import pytest

from keras_adv.testing import shift_cvae
from keras_adv.threat_models import LearnedPerturbationSet

SCALE = 0.5


@pytest.fixture(scope="module")
def tm():
    return LearnedPerturbationSet(shift_cvae((4,), SCALE), radius=2.0)


def test_members_are_decoded_offsets_clipped_to_the_range(tm):
    x = np.full((2, 4), 0.5, "float32")
    u = np.float32([[1, 0, 0, 0], [0, -3, 0, 0]])
    np.testing.assert_allclose(
        tm.members(x, u), [[1.0, 0.5, 0.5, 0.5], [0.5, 0.0, 0.5, 0.5]]
    )


def test_project_latent_is_the_l2_ball_projection(tm):
    u = np.float32([[3.0, 4.0, 0, 0], [0.3, 0.4, 0, 0]])
    np.testing.assert_allclose(
        tm.project_latent(u), [[1.2, 1.6, 0, 0], [0.3, 0.4, 0, 0]], 1e-6
    )
    np.testing.assert_allclose(
        tm.project_latent(u, eps=np.float32([1.0, 0.1])),
        [[0.6, 0.8, 0, 0], [0.06, 0.08, 0, 0]],
        1e-6,
    )
    np.testing.assert_allclose(tm.norm_of(u), [5.0, 0.5], 1e-6)


def test_random_latent_lengths_are_uniform_in_the_radius(tm):
    mean = np.zeros((4000, 4), "float32")
    u = np.asarray(tm.random_latent(mean, seed=0))
    norms = np.linalg.norm(u, axis=1)
    assert norms.max() <= 2.0 + 1e-5
    assert abs(norms.mean() - 1.0) < 0.05  # uniform on [0, 2]
    again = np.asarray(tm.random_latent(mean, seed=0))
    np.testing.assert_array_equal(u, again)


def test_distance_is_the_whitened_latent_distance(tm):
    x = np.full((2, 4), 0.5, "float32")
    x_adv = x + np.float32([[0.3, 0.4, 0, 0], [0, 0, 0, 0.1]])
    np.testing.assert_allclose(
        tm.distance(x, x_adv), [0.5 / SCALE, 0.1 / SCALE], 1e-5
    )
    start = np.asarray(tm.random_start(x, seed=1))
    assert np.all(np.asarray(tm.distance(x, start)) <= 2.0 + 1e-5)
    assert bool(np.all(tm.contains(x, start)))


def test_no_input_projection_and_config(tm):
    x = np.zeros((1, 4), "float32")
    with pytest.raises(NotImplementedError, match="LatentPGD"):
        tm.project(x, x)
    with pytest.raises(TypeError, match="cvae"):
        LearnedPerturbationSet("not a cvae")
    with pytest.raises(ValueError, match="eps"):
        LearnedPerturbationSet(tm.cvae, radius=-1.0)
    config = tm.get_config()
    assert config["radius"] == 2.0 and tm.radius == 2.0 and tm.norm == "latent"
    again = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(tm)
    )
    assert isinstance(again, LearnedPerturbationSet)
    assert again.radius == 2.0
    assert "radius=2.0" in repr(tm)


def test_input_space_attacks_refuse_the_set_and_point_to_latent_pgd(tm):
    # Set as an Lp-ball attack's threat model, the set used to fail later
    # with KeyError: 'eps'.
    from keras_adv import attacks

    for attack in (
        attacks.PGD(eps=0.1),
        attacks.FGSM(eps=0.1),
        attacks.APGD(eps=0.1),
        attacks.Square(eps=0.1),
        attacks.CarliniWagnerL2(),
        attacks.AutoAttack(eps=0.1),
    ):
        ball = attack.threat_model
        with pytest.raises(TypeError, match="LatentPGD") as info:
            attack.threat_model = tm
        assert "`threat_model`" in str(info.value)
        assert type(attack).__name__ in str(info.value)
        assert attack.threat_model is ball
    latent = attacks.LatentPGD(tm, steps=2)
    assert latent.threat_model is tm
    latent.threat_model = LearnedPerturbationSet(tm.cvae, radius=1.0)
    assert latent.eps == 1.0
