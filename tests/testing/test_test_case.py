"""Every check of `keras_adv.testing.TestCase` can fail.

Each broken attack, model or callback below violates exactly one property;
the matching checklist must raise an `AssertionError` that names it. The
other checks are switched off where the breakage would trip them too, so
the failure is attributed to the right check.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from keras_adv import attacks
from keras_adv._random import fold_seed
from keras_adv.testing import TestCase
from keras_adv.testing import linear_classifier

ONLY = dict(
    run_identity_check=False,
    run_bound_check=False,
    run_success_check=False,
    run_seed_check=False,
    restarts=0,
    run_retrace_check=False,
    run_jit_check=False,
    run_validation_check=False,
    run_serialization_check=False,
)


def only(**checks):
    """run_attack_test arguments that switch on `checks` only."""
    return {**ONLY, **checks}


@pytest.fixture
def case():
    return TestCase()


def register(cls):
    return keras.saving.register_keras_serializable(
        package="keras_adv_test_case"
    )(cls)


# ---------------------------------------------------------- broken attacks
class LeavesBall(attacks.BIM):
    """Steps without projecting: 1.5 eps from x."""

    def generate(self, model_logits, x, y, eps, seed):
        _, grad = self.objective_and_gradient(model_logits, x, y)
        step = self.threat_model.ascent_direction(grad)
        return self.threat_model.clip(x + 1.5 * eps * step)


class LeavesValueRange(attacks.BIM):
    """Projects onto the ball but not onto the value range."""

    def generate(self, model_logits, x, y, eps, seed):
        _, grad = self.objective_and_gradient(model_logits, x, y)
        return x + eps * self.threat_model.ascent_direction(grad)


class NotIdentityAtZero(attacks.BIM):
    """Adds a fixed offset whatever eps is."""

    def generate(self, model_logits, x, y, eps, seed):
        return super().generate(model_logits, x, y, eps, seed) + 1e-3


class IgnoresCallEps(attacks.BIM):
    """Uses the constructor's eps, not the one of the call."""

    def generate(self, model_logits, x, y, eps, seed):
        return super().generate(model_logits, x, y, self.eps, seed)


class DoesNothing(attacks.BIM):
    def generate(self, model_logits, x, y, eps, seed):
        return x


class IgnoresStatelessSeed(attacks.PGD):
    """Draws its start from the attack's own SeedGenerator."""

    def run_once(self, model_logits, x, y, eps, step_size, seed):
        return super().run_once(
            model_logits, x, y, eps, step_size, self.seed_generator
        )


class FixedSeed(attacks.PGD):
    """Draws every start from the same constant seed."""

    def run_once(self, model_logits, x, y, eps, step_size, seed):
        fixed = ops.convert_to_tensor([4, 2], "int32")
        return super().run_once(model_logits, x, y, eps, step_size, fixed)


class RepeatsStart(attacks.PGD):
    """Every restart reuses restart 0's seed: the restarts are copies."""

    def run_once(self, model_logits, x, y, eps, step_size, seed):
        return super().run_once(
            model_logits, x, y, eps, step_size, fold_seed(self._seed, 0)
        )

    def generate(self, model_logits, x, y, eps, seed):
        self._seed = seed
        return super().generate(model_logits, x, y, eps, seed)


class KeepsLastRestart(attacks.PGD):
    """Returns the last restart instead of the per-sample strongest."""

    def generate(self, model_logits, x, y, eps, seed):
        eps_b = self.threat_model.eps_tensor(x, eps)
        step_size = self.step_size_for(eps_b)
        return self.run_once(
            model_logits,
            x,
            y,
            eps,
            step_size,
            fold_seed(seed, self.restarts - 1),
        )


class RetracesOnEps(attacks.BIM):
    """Derives its step size from eps in Python: a new graph per eps."""

    def __call__(self, model, x, y=None, eps=None):
        self.step_size = 0.25 * float(self.eps if eps is None else eps)
        return super().__call__(model, x, y, eps=eps)


class DiffersUnderJit(attacks.BIM):
    """Attacks only without XLA."""

    def generate(self, model_logits, x, y, eps, seed):
        if self.jit_compile:
            return self.threat_model.project(x + 0.5 * eps, x, eps)
        return super().generate(model_logits, x, y, eps, seed)


class AcceptsNegativeEps(attacks.BIM):
    def __init__(self, eps=0.3, **kwargs):
        super().__init__(eps=abs(eps), **kwargs)


@register
class ForgetsDecay(attacks.MIM):
    """`decay` is missing from the config: from_config changes the attack."""

    def get_config(self):
        config = super().get_config()
        del config["decay"]
        return config


@register
class NumpyConfig(attacks.BIM):
    def get_config(self):
        config = super().get_config()
        config["steps"] = np.int64(config["steps"])
        return config


@pytest.mark.parametrize(
    "cls,kwargs,checks,match",
    [
        (LeavesBall, {}, only(run_bound_check=True), "leaves the ball"),
        (
            LeavesValueRange,
            {},
            only(run_bound_check=True),
            "leaves the value range",
        ),
        (
            NotIdentityAtZero,
            {},
            only(run_identity_check=True),
            "eps=0 .call override",
        ),
        (IgnoresCallEps, {}, only(run_identity_check=True), "eps=0"),
        (
            DoesNothing,
            {},
            only(run_success_check=True),
            "untargeted success",
        ),
        (
            DoesNothing,
            {},
            only(run_success_check=True, success_threshold=-1.0),
            "targeted success",
        ),
        (FixedSeed, {}, only(run_seed_check=True), "different seeds"),
        (
            RepeatsStart,
            {},
            only(restarts=4),
            "do not draw distinct starts",
        ),
        (
            KeepsLastRestart,
            {},
            only(restarts=4),
            "restarts check: .*(lost the success|lowered the attack)",
        ),
        (
            RetracesOnEps,
            {"steps": 2},
            only(run_retrace_check=True),
            "traces",
        ),
        (DiffersUnderJit, {}, only(run_jit_check=True), "jit"),
        (
            AcceptsNegativeEps,
            {},
            only(run_validation_check=True),
            "eps=-0.1",
        ),
        (
            ForgetsDecay,
            {"decay": 0.0, "steps": 3},
            only(run_serialization_check=True),
            "rebuilt from its config",
        ),
        (
            NumpyConfig,
            {},
            only(run_serialization_check=True),
            "not JSON-serialisable",
        ),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_broken_attack_fails_its_check(case, cls, kwargs, checks, match):
    with pytest.raises(AssertionError, match=match):
        case.run_attack_test(cls, kwargs, norms=("linf",), **checks)


def test_ignored_stateless_seed_fails_on_the_stateless_path_only(case):
    checks = only(run_seed_check=True)
    # Eagerly the attack's own SeedGenerator *is* the seed: fine.
    case.run_attack_test(
        IgnoresStatelessSeed, norms=("linf",), paths=("eager",), **checks
    )
    with pytest.raises(
        AssertionError,
        match="stateless seeding path, seed check: the same seed",
    ):
        case.run_attack_test(
            IgnoresStatelessSeed,
            norms=("linf",),
            paths=("stateless",),
            **checks,
        )


def test_deterministic_attack_declared_random_fails(case):
    with pytest.raises(AssertionError, match="different seeds"):
        case.run_attack_test(
            attacks.BIM,
            norms=("linf",),
            **only(run_seed_check=True),
            random=True,
        )


def test_random_attack_declared_deterministic_fails(case):
    with pytest.raises(AssertionError, match="declared deterministic"):
        case.run_attack_test(
            attacks.PGD,
            {"steps": 1, "step_size": 1e-6},
            norms=("l2",),
            **only(run_seed_check=True),
            random=False,
        )


def test_jit_with_random_start_is_compared_only_when_asked(case):
    # XLA draws other random numbers: forcing the exact comparison of a
    # random start must fail, the default (random start off) passes.
    checks = only(run_jit_check=True)
    case.run_attack_test(attacks.PGD, {"steps": 2}, norms=("linf",), **checks)
    with pytest.raises(AssertionError, match="jit_compile=True differs"):
        case.run_attack_test(
            attacks.PGD,
            {"steps": 2},
            norms=("linf",),
            jit_kwargs={},
            **checks,
        )


def test_high_thresholds_fail(case):
    with pytest.raises(AssertionError, match="untargeted success"):
        case.run_attack_test(
            attacks.FGSM,
            {},
            norms=("linf",),
            eps=0.01,
            **only(run_success_check=True),
        )


# --------------------------------------------------------- serialisation
class Unregistered:
    def __init__(self, value=1):
        self.value = value

    def get_config(self):
        return {"value": self.value}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class DropsValue(Unregistered):
    @classmethod
    def from_config(cls, config):
        return cls()


def test_serialization_test_fails_on_a_lossy_config(case):
    case.run_serialization_test(Unregistered(3), registered=False)
    with pytest.raises(AssertionError, match="config changed"):
        case.run_serialization_test(DropsValue(3), registered=False)
    with pytest.raises(AssertionError, match="registered"):
        case.run_serialization_test(Unregistered(3))


# ---------------------------------------------------------------- saving
class Scale(keras.layers.Layer):
    """Multiplies by `factor`, which `get_config` forgets."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        config = super().get_config()
        config.pop("factor", None)
        return config


register(Scale)


def test_model_saving_test_fails_when_outputs_change(case):
    model = keras.Sequential([keras.Input((3,)), Scale(2.0)])
    x = np.ones((2, 3), "float32")
    with pytest.raises(AssertionError, match="outputs after .keras save"):
        case.run_model_saving_test(model, x)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    case.run_model_saving_test(model, x)


# ------------------------------------------------------------- callbacks
def _model():
    model = linear_classifier(np.eye(4, 3, dtype="float32"))
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


DATA = (
    np.random.default_rng(0).uniform(size=(64, 4)).astype("float32"),
    np.arange(64) % 3,
)


class LeavesTrainStep(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        base = self.model.train_step
        self.model.__dict__["train_step"] = lambda data: base(data)


class ChangesLearningRate(keras.callbacks.Callback):
    def on_train_end(self, logs=None):
        self.model.optimizer.learning_rate.assign(1.0)


class LeavesTrainFunction(keras.callbacks.Callback):
    """A stale `train_function` that no longer updates: Keras reuses it."""

    def on_train_end(self, logs=None):
        @tf.function
        def no_update(iterator):
            return {"loss": tf.constant(0.0)}

        self.model.train_function = no_update


@pytest.mark.parametrize(
    "callback,match",
    [
        (LeavesTrainStep, "instance __dict__"),
        (ChangesLearningRate, "plain fit differs"),
        (LeavesTrainFunction, "plain fit differs"),
    ],
    ids=["train_step", "learning_rate", "train_function"],
)
def test_callback_test_fails_on_left_overs(case, callback, match):
    with pytest.raises(AssertionError, match=match):
        case.run_callback_test(callback, _model, DATA)


def test_callback_test_passes_a_harmless_callback(case):
    case.run_callback_test(keras.callbacks.Callback, _model, DATA)
