"""Distillation: the black box and the surrogate's refit settings of an
AdvGAN (its use in training: `tests/models/test_advgan.py`)."""

import keras
import numpy as np
import pytest
from _advgan_models import FEATURES
from _advgan_models import points

from keras_adv.attacks import BlackBox
from keras_adv.models import Distillation
from keras_adv.models._distillation import surrogate_loss


def box():
    return BlackBox(
        lambda x: (x.mean(axis=1) > 0.5).astype("int64"), 2, "labels"
    )


def test_defaults_and_dynamic():
    distillation = Distillation(box())
    assert distillation.mode == "dynamic" and distillation.dynamic
    assert isinstance(distillation.optimizer, keras.optimizers.Adam)
    assert float(distillation.optimizer.learning_rate) == pytest.approx(1e-3)
    assert not Distillation(box(), mode="static").dynamic
    assert not Distillation(mode="dynamic").dynamic  # no black box yet


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"black_box": lambda x: x}, TypeError, "black_box"),
        ({"mode": "online"}, ValueError, "mode"),
        ({"optimizer": "no_such_optimizer"}, ValueError, None),
    ],
)
def test_invalid_arguments(kwargs, error, name):
    with pytest.raises(error, match=None if name is None else f"`{name}`"):
        Distillation(**kwargs)


def test_black_box_is_checked_when_attached():
    distillation = Distillation()
    with pytest.raises(TypeError, match="`black_box`"):
        distillation.black_box = "box"
    with pytest.raises(ValueError, match="black box"):
        distillation.check_black_box("distill()")


def test_config_round_trip_keeps_the_settings_not_the_black_box():
    optimizer = keras.optimizers.SGD(0.25, momentum=0.5)
    distillation = Distillation(box(), mode="static", optimizer=optimizer)
    config = keras.saving.serialize_keras_object(distillation)
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert isinstance(restored, Distillation)
    assert restored.mode == "static" and restored.black_box is None
    assert restored.optimizer.get_config() == optimizer.get_config()


def test_surrogate_loss_is_the_batch_mean_cross_entropy():
    answers = np.array([[1.0, 0.0], [0.25, 0.75]], "float32")
    logits = np.array([[2.0, 0.0], [0.0, 1.0]], "float32")
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean(np.sum(answers * log_p, axis=1))
    assert float(surrogate_loss(answers, logits)) == pytest.approx(expected)


def test_fit_queries_once_and_reports_the_agreement():
    x, _ = points(40)
    distillation = Distillation(box(), mode="static")
    surrogate = keras.Sequential(
        [keras.Input((FEATURES,)), keras.layers.Dense(2)]
    )
    batches = []

    def step(xb, answers):
        batches.append(len(xb))
        return {"s_loss": surrogate_loss(answers, surrogate(xb))}

    result = distillation.fit(step, surrogate, x, epochs=2, batch_size=16)
    assert batches == [16, 16, 8] * 2
    assert result["queries"] == 40 == distillation.black_box.query_count
    labels = distillation.black_box.labels(x)
    agreement = np.mean(np.asarray(surrogate(x)).argmax(-1) == labels)
    assert result["agreement"] == pytest.approx(agreement)
    assert result["s_loss"] > 0.0
