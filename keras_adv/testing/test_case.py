"""`TestCase`: the checklists every attack, model and callback passes.

`run_attack_test` is the attack checklist (after CleverHans' attack tests)
run on tiny deterministic models on both seeding paths; the other three
helpers check serialisation, `.keras` saving and that a callback leaves
nothing behind. Each check fails with an `AssertionError` naming the
attack, the norm, the seeding path and the property.
"""

import inspect
import json
import os
import tempfile
import unittest

import keras
import numpy as np
import tensorflow as tf

from keras_adv.testing.models import linear_classifier

#: Radii of the success checks (inputs in [0.3, 0.7], 16 features).
DEFAULT_EPS = {"linf": 0.1, "l2": 0.4}
#: Radii of the bound checks (inputs in [0, 1]: the value range clips).
LARGE_EPS = {"linf": 0.3, "l2": 2.0}
#: What the `AdversarialTraining` installation puts in a model's `__dict__`.
INSTALLED_NAMES = (
    "train_step",
    "compute_loss",
    "compute_metrics",
    "make_train_function",
)

_BATCH = 64
_FEATURES = 16
_CLASSES = 4


def hadamard_weights(features=_FEATURES, classes=_CLASSES):
    """Orthogonal +-1 class prototypes: columns from a Hadamard matrix.

    Every input coordinate pushes the classes equally hard, so an Lp-ball
    attack's success on `x @ W` is easy to predict.

    Args:
        features: Int, a power of two. Defaults to `16`.
        classes: Int < features. Defaults to `4`.

    Returns:
        Float32 array of shape `(features, classes)`.
    """
    h = np.ones((1, 1))
    while h.shape[0] < features:
        h = np.block([[h, h], [h, -h]])
    return h[1 : classes + 1].T.astype("float32")


class _Problems:
    """The tiny deterministic classification problems of the checklist.

    * `hadamard`: the Hadamard linear model on inputs in [0.3, 0.7] (the
      ball never meets the value range): success rates are predictable.
    * `generic`: a linear model with generic Gaussian weights on inputs in
      [0, 1]: no gradient coordinate is exactly zero (so XLA and the
      default graph agree on signs) and large balls meet the value range.
    """

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        w = hadamard_weights()
        self.hadamard = linear_classifier(w)
        self.x = rng.uniform(0.3, 0.7, (_BATCH, _FEATURES)).astype("float32")
        self.y = np.argmax(self.x @ w, axis=1).astype("int32")
        shift = 1 + rng.integers(0, _CLASSES - 1, size=_BATCH)
        self.targets = ((self.y + shift) % _CLASSES).astype("int32")
        self.x_new = rng.uniform(0.3, 0.7, self.x.shape).astype("float32")
        self.y_new = np.argmax(self.x_new @ w, axis=1).astype("int32")
        w_generic = rng.normal(size=(_FEATURES, _CLASSES)).astype("float32")
        self.generic = linear_classifier(w_generic)
        self.x_generic = rng.uniform(0.0, 1.0, self.x.shape).astype("float32")
        self.y_generic = np.argmax(self.x_generic @ w_generic, axis=1).astype(
            "int32"
        )


class _Runner:
    """Runs one attack instance on one model through one seeding path.

    `"eager"`: `attack(model, x, y, eps=eps)`, the attack's own
    `SeedGenerator` (the `seed` argument of `__call__` is ignored).
    `"stateless"`: `attack.perturb(..., seed=tf.constant(seed))` inside a
    user `tf.function` (optionally XLA-compiled), tensors for every
    argument.
    """

    def __init__(self, attack, model, path, jit_compile=False):
        self.attack = attack
        self.model = model
        self.path = path
        if path == "stateless":

            def run(x, y, eps, seed):
                return attack.perturb(model, x, y, eps=eps, seed=seed)

            self.function = tf.function(run, jit_compile=jit_compile)

    def __call__(self, x, y, eps=None, seed=(1, 2)):
        if self.path == "eager":
            return np.asarray(self.attack(self.model, x, y, eps=eps))
        eps = self.attack.eps if eps is None else eps
        return np.asarray(
            self.function(
                tf.convert_to_tensor(x),
                tf.constant(y, tf.int32),
                tf.cast(tf.convert_to_tensor(eps), tf.float32),
                tf.constant(seed, tf.int32),
            )
        )

    def tracing_count(self):
        if self.path == "eager":
            return self.attack.tracing_count(self.model)
        return self.function.experimental_get_tracing_count()


def _accepts(cls, name):
    """Whether `cls(...)` takes the argument `name`."""
    parameters = inspect.signature(cls.__init__).parameters
    return name in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def _distance(norm, x, x_adv, attack):
    """Per-sample distance, computed here (not by the attack) for Lp norms."""
    delta = (np.asarray(x_adv, "float64") - np.asarray(x, "float64")).reshape(
        len(x), -1
    )
    if norm == "linf":
        return np.abs(delta).max(axis=1)
    if norm == "l2":
        return np.sqrt(np.square(delta).sum(axis=1))
    return np.asarray(attack.threat_model.distance(x, x_adv))


def _predictions(model, x):
    return np.argmax(np.asarray(model(x, training=False)), axis=-1)


def _json(config):
    return json.dumps(config, sort_keys=True)


class TestCase(unittest.TestCase):
    """Base test case with the keras_adv checklists.

    A `unittest.TestCase`, so pytest collects subclasses; the `run_*`
    helpers also work on a bare instance (`TestCase().run_attack_test(...)`)
    inside plain pytest functions.

    * `run_attack_test(cls, init_kwargs)`: the attack checklist on tiny
      linear models, for every norm, on both seeding paths.
    * `run_serialization_test(instance)`: JSON round trip of `get_config`.
    * `run_model_saving_test(model, x)`: `.keras` save, `safe_mode` load,
      same outputs.
    * `run_callback_test(callback_factory, model_factory, data)`: a callback
      leaves nothing behind on the model it trained.

    Example:

    ```python
    from keras_adv.attacks import PGD
    from keras_adv.testing import TestCase


    class PGDTest(TestCase):
        def test_checklist(self):
            self.run_attack_test(PGD, {"steps": 5})
    ```
    """

    # ------------------------------------------------------------ attacks
    def run_attack_test(
        self,
        cls,
        init_kwargs=None,
        norms=("linf", "l2"),
        eps=None,
        large_eps=None,
        paths=("eager", "stateless"),
        run_identity_check=True,
        run_bound_check=True,
        run_success_check=True,
        success_threshold=0.9,
        targeted=None,
        targeted_threshold=0.7,
        random=None,
        probe_kwargs=None,
        restarts=None,
        run_seed_check=True,
        run_retrace_check=True,
        run_jit_check=True,
        jit_kwargs=None,
        jit_atol=1e-5,
        run_validation_check=True,
        run_serialization_check=True,
    ):
        """Runs the attack checklist for `cls` on tiny deterministic models.

        For every norm in `norms` and every seeding path in `paths` (eager
        `__call__` with the attack's `SeedGenerator`; `perturb` with a
        stateless `tf.constant([a, b])` seed inside a `tf.function`):

        * identity: eps=0 (constructor or call override) returns `x`
          exactly;
        * bound: results lie within the ball (1e-6, distances computed
          here) and the value range, and the attack moved;
        * success: untargeted success above `success_threshold` on the
          Hadamard model (and targeted above `targeted_threshold` when
          supported);
        * seeds: same seed, same result; different seeds give different
          results when the attack is random (consecutive eager calls too)
          and the same result when it is not;
        * restarts: `restarts` runs draw distinct starts (most samples
          change with respect to one run under `probe_kwargs`) and are
          never weaker per sample (success, then the attack's objective);
        * retrace: no retrace for new data, a new call eps or a new
          attribute eps (and new seeds on the stateless path);
        * jit: `jit_compile=True` gives the same result within `jit_atol`
          on the generic-weight model (randomness switched off with
          `jit_kwargs`, as XLA draws other random numbers);
        * validation: a negative eps raises `ValueError` at construction
          and call, inputs outside the value range fail;
        * serialisation: `run_serialization_test`, and the attack rebuilt
          from its config gives the same result.

        Args:
            cls: The attack class (a `keras_adv.attacks.Attack` subclass).
            init_kwargs: Dict of constructor arguments (without `norm` and
                `eps`, which the checklist sets). `seed` defaults to `0`.
            norms: Norms to test; `(None,)` for attacks without a `norm`
                argument (distances then come from `attack.threat_model`).
            eps: Float or `{norm: float}`, the radius of the success checks.
                Defaults to `DEFAULT_EPS`.
            large_eps: Float or `{norm: float}`, the radius of the bound
                check. Defaults to `LARGE_EPS`.
            paths: Seeding paths, among `"eager"` and `"stateless"`.
            run_identity_check: Bool, check eps=0.
            run_bound_check: Bool, check the ball and the value range.
            run_success_check: Bool, check success rates.
            success_threshold: Float, minimum untargeted success rate.
            targeted: Bool or None (the constructor takes `targeted`):
                check targeted success.
            targeted_threshold: Float, minimum targeted success rate.
            random: Bool or None (the attack's `random_start` attribute):
                whether results depend on the seed.
            probe_kwargs: Dict of constructor arguments that keep the
                random start visible in the result, for the seed and
                restart checks. Defaults to `steps=1, step_size=1e-6` where
                the constructor takes them.
            restarts: Int or None (4 if the constructor takes `restarts`
                and the attack is random, else no restart check); 0 or 1
                disables the check.
            run_seed_check: Bool, check seed determinism and sensitivity.
            run_retrace_check: Bool, check the graph is traced once.
            run_jit_check: Bool, compare with `jit_compile=True`.
            jit_kwargs: Dict of constructor arguments for the jit
                comparison. Defaults to `random_start=False` for random
                attacks that take it; a random attack without it is only
                checked to stay in the ball under XLA.
            jit_atol: Float, tolerance of the jit comparison.
            run_validation_check: Bool, check invalid eps and inputs raise.
            run_serialization_check: Bool, check the config round trip
                (the class must be registered for Keras serialisation).
        """
        init_kwargs = dict(init_kwargs or {})
        if _accepts(cls, "seed"):
            init_kwargs.setdefault("seed", 0)
        problems = _Problems()
        for norm in norms:
            kwargs = dict(init_kwargs)
            if norm is not None:
                kwargs["norm"] = norm
            radius = _per_norm(eps, DEFAULT_EPS, norm)
            checklist = _AttackChecklist(
                self,
                cls,
                kwargs,
                norm,
                radius,
                _per_norm(large_eps, LARGE_EPS, norm),
                problems,
            )
            attack = checklist.make()
            is_random = (
                bool(getattr(attack, "random_start", False))
                if random is None
                else bool(random)
            )
            probe = _probe_kwargs(cls, probe_kwargs)
            n_restarts = restarts
            if n_restarts is None:
                n_restarts = 4 if _accepts(cls, "restarts") else 0
                n_restarts = n_restarts if is_random else 0
            do_targeted = (
                _accepts(cls, "targeted") if targeted is None else targeted
            )
            for path in paths:
                checklist.path = path
                if run_identity_check:
                    checklist.check_identity()
                if run_bound_check:
                    checklist.check_bound()
                if run_success_check or run_retrace_check:
                    checklist.check_success_and_retrace(
                        success_threshold if run_success_check else None,
                        run_retrace_check,
                    )
                if run_success_check and do_targeted:
                    checklist.check_targeted(targeted_threshold)
                if run_seed_check:
                    checklist.check_seeds(is_random, probe)
                if n_restarts and n_restarts > 1:
                    checklist.check_restarts(n_restarts, probe)
                if run_jit_check:
                    checklist.check_jit(
                        _jit_kwargs(cls, jit_kwargs, is_random), jit_atol
                    )
                if run_validation_check:
                    checklist.check_validation()
            if run_serialization_check:
                self.run_serialization_test(attack)
                checklist.path = paths[0] if paths else "eager"
                checklist.check_rebuilt_from_config()

    # ------------------------------------------------------ serialisation
    def run_serialization_test(self, instance, registered=True):
        """Checks that `get_config` survives JSON and rebuilds the object.

        `config -> json.dumps -> json.loads -> cls.from_config` must give
        an object of the same class with the same config (compared as
        sorted JSON); with `registered`, so must
        `keras.saving.serialize_keras_object` through JSON and
        `deserialize_keras_object(..., safe_mode=True)`.

        Args:
            instance: An object with `get_config` and a `from_config`
                class method.
            registered: Bool, also check the Keras registry round trip
                (what `.keras` loading uses). Defaults to `True`.

        Returns:
            The object rebuilt from the JSON config.
        """
        cls = type(instance)
        name = cls.__name__
        config = instance.get_config()
        try:
            config_json = _json(config)
        except (TypeError, ValueError) as error:
            raise AssertionError(
                f"{name}.get_config() is not JSON-serialisable: {error}. "
                f"Config: {config!r}"
            ) from None
        revived = cls.from_config(json.loads(config_json))
        self.assertIs(type(revived), cls, f"{name}.from_config")
        self.assertEqual(
            _json(revived.get_config()),
            config_json,
            f"{name}: the config changed through from_config",
        )
        if registered:
            serialized = keras.saving.serialize_keras_object(instance)
            try:
                serialized_json = _json(serialized)
            except (TypeError, ValueError) as error:
                raise AssertionError(
                    f"{name}: serialize_keras_object output is not "
                    f"JSON-serialisable: {error}"
                ) from None
            try:
                restored = keras.saving.deserialize_keras_object(
                    json.loads(serialized_json), safe_mode=True
                )
            except (TypeError, ValueError) as error:
                raise AssertionError(
                    f"{name}: deserialize_keras_object failed (is the class "
                    f"registered?): {error}"
                ) from None
            self.assertIs(
                type(restored),
                cls,
                f"{name}: deserialize_keras_object (is the class registered?)",
            )
            self.assertEqual(
                _json(restored.get_config()),
                config_json,
                f"{name}: the config changed through the Keras registry",
            )
        return revived

    def run_model_saving_test(self, model, x, atol=1e-6):
        """Saves `model` as `.keras`, loads it with `safe_mode=True`.

        The loaded model must have the same class, the same weights and
        the same outputs `model(x, training=False)`.

        Args:
            model: A built Keras model.
            x: A batch of inputs for `model`.
            atol: Float, tolerance on the outputs. Defaults to `1e-6`.

        Returns:
            The loaded model.
        """
        expected = keras.ops.convert_to_numpy(model(x, training=False))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
        name = type(model).__name__
        self.assertIs(type(loaded), type(model), f"{name}: loaded class")
        weights, loaded_weights = model.get_weights(), loaded.get_weights()
        self.assertEqual(
            len(weights), len(loaded_weights), f"{name}: number of weights"
        )
        for i, (a, b) in enumerate(zip(weights, loaded_weights)):
            np.testing.assert_array_equal(
                b, a, err_msg=f"{name}: weight {i} after loading"
            )
        actual = keras.ops.convert_to_numpy(loaded(x, training=False))
        np.testing.assert_allclose(
            actual,
            expected,
            atol=atol,
            rtol=0,
            err_msg=f"{name}: outputs after .keras save and safe_mode load",
        )
        return loaded

    # ---------------------------------------------------------- callbacks
    def run_callback_test(
        self,
        callback_factory,
        model_factory,
        data,
        epochs=1,
        batch_size=32,
        atol=1e-6,
    ):
        """Checks that a callback leaves its model as a plain model.

        Fits `model_factory()` on `data` with `callback_factory()`, then:

        * nothing among `INSTALLED_NAMES` is left in the model's instance
          `__dict__`;
        * the model saves as `.keras` and loads with `safe_mode=True`
          (`run_model_saving_test`);
        * a plain later `fit` (no callback) gives the weights of a fresh
          `model_factory()` twin given the same weights and the same fit.

        The twin's optimizer starts fresh: compile in `model_factory` with
        a stateless optimizer (plain SGD) so that only the weights carry
        over.

        Args:
            callback_factory: Callable returning a new callback.
            model_factory: Callable returning a new compiled model.
            data: `(x, y)` arrays.
            epochs: Int, epochs of the fit with the callback. Defaults
                to `1`.
            batch_size: Int. Defaults to `32`.
            atol: Float, tolerance on the weights. Defaults to `1e-6`.

        Returns:
            `(model, callback)` after the checks.
        """
        x, y = data
        fit_kwargs = dict(batch_size=batch_size, shuffle=False, verbose=0)
        model = model_factory()
        callback = callback_factory()
        model.fit(x, y, epochs=epochs, callbacks=[callback], **fit_kwargs)
        name = type(callback).__name__
        left = [n for n in INSTALLED_NAMES if n in vars(model)]
        self.assertEqual(
            left,
            [],
            f"{name} left {left} in the model's instance __dict__ after fit",
        )
        self.run_model_saving_test(model, x[:batch_size])
        twin = model_factory()
        twin.set_weights(model.get_weights())
        model.fit(x, y, epochs=1, **fit_kwargs)
        twin.fit(x, y, epochs=1, **fit_kwargs)
        for i, (a, b) in enumerate(
            zip(model.get_weights(), twin.get_weights())
        ):
            np.testing.assert_allclose(
                a,
                b,
                atol=atol,
                rtol=0,
                err_msg=f"after {name}, a plain fit differs from a clean "
                f"twin's (weight {i})",
            )
        return model, callback


def _per_norm(value, default, norm):
    if value is None:
        value = default
    if isinstance(value, dict):
        if norm not in value:
            raise ValueError(f"No eps given for norm={norm!r}: {value}")
        return float(value[norm])
    return float(value)


def _probe_kwargs(cls, probe_kwargs):
    if probe_kwargs is not None:
        return dict(probe_kwargs)
    probe = {}
    if _accepts(cls, "steps"):
        probe["steps"] = 1
    if _accepts(cls, "step_size"):
        probe["step_size"] = 1e-6
    return probe


def _jit_kwargs(cls, jit_kwargs, is_random):
    if jit_kwargs is not None:
        return dict(jit_kwargs), True
    if not is_random:
        return {}, True
    if _accepts(cls, "random_start"):
        return {"random_start": False}, True
    return {}, False


class _AttackChecklist:
    """The checks of `run_attack_test` for one attack class and norm."""

    def __init__(self, case, cls, kwargs, norm, eps, large_eps, problems):
        self.case = case
        self.cls = cls
        self.kwargs = kwargs
        self.norm = norm
        self.eps = eps
        self.large_eps = large_eps
        self.p = problems
        self.path = "eager"

    def make(self, **overrides):
        kwargs = {"eps": self.eps, **self.kwargs, **overrides}
        return self.cls(**kwargs)

    def runner(self, attack, model, jit_compile=False):
        return _Runner(attack, model, self.path, jit_compile=jit_compile)

    def where(self, check):
        return (
            f"{self.cls.__name__}(norm={self.norm!r}) on the {self.path} "
            f"seeding path, {check} check"
        )

    def fail(self, check, message):
        raise AssertionError(f"{self.where(check)}: {message}")

    # ------------------------------------------------------------ checks
    def check_identity(self):
        p = self.p
        run = self.runner(self.make(), p.hadamard)
        out = run(p.x, p.y, eps=0.0)
        if not np.array_equal(out, p.x):
            self.fail(
                "identity",
                "eps=0 (call override) did not return x: max |x_adv - x| = "
                f"{np.abs(out - p.x).max():.3g}",
            )
        if self.path == "eager":
            out = self.runner(self.make(eps=0.0), p.hadamard)(p.x, p.y)
            if not np.array_equal(out, p.x):
                self.fail(
                    "identity",
                    "eps=0 (constructor) did not return x: max |x_adv - x| "
                    f"= {np.abs(out - p.x).max():.3g}",
                )

    def check_bound(self):
        p = self.p
        eps = self.large_eps
        attack = self.make(eps=eps)
        out = self.runner(attack, p.generic)(p.x_generic, p.y_generic)
        if out.shape != p.x_generic.shape or out.dtype != p.x_generic.dtype:
            self.fail(
                "bound",
                f"x_adv has shape {out.shape} and dtype {out.dtype}, x has "
                f"{p.x_generic.shape} and {p.x_generic.dtype}",
            )
        distance = _distance(self.norm, p.x_generic, out, attack)
        if not np.all(distance <= eps + 1e-6):
            self.fail(
                "bound",
                f"x_adv leaves the ball: max distance {distance.max():.6g} "
                f"> eps={eps:g} (+1e-6)",
            )
        low, high = attack.value_range
        if out.min() < low - 1e-6 or out.max() > high + 1e-6:
            self.fail(
                "bound",
                f"x_adv leaves the value range ({low:g}, {high:g}): values "
                f"in [{out.min():.6g}, {out.max():.6g}]",
            )
        if not distance.max() > 0.5 * eps:
            self.fail(
                "bound",
                f"the attack hardly moved: max distance {distance.max():.3g}"
                f" <= eps / 2 at eps={eps:g}",
            )

    def check_success_and_retrace(self, threshold, check_retrace):
        p = self.p
        attack = self.make()
        run = self.runner(attack, p.hadamard)
        out = run(p.x, p.y)
        if threshold is not None:
            success = np.mean(_predictions(p.hadamard, out) != p.y)
            if not success > threshold:
                self.fail(
                    "untargeted success",
                    f"success rate {success:.3f} <= {threshold} at "
                    f"eps={self.eps:g}",
                )
        again = self.runner(self.make(), p.hadamard)(p.x, p.y)
        if not np.array_equal(again, out):
            self.fail(
                "seed",
                "two attacks with the same seed gave different results "
                f"(max difference {np.abs(again - out).max():.3g})",
            )
        if not check_retrace:
            return
        run(p.x_new, p.y_new)
        run(p.x, p.y, eps=0.5 * self.eps)
        run(p.x, p.y, seed=(7, 8))
        attack.eps = 0.75 * self.eps
        out = run(p.x_new, p.y_new)
        distance = _distance(self.norm, p.x_new, out, attack)
        if not np.all(distance <= 0.75 * self.eps + 1e-6):
            self.fail(
                "retrace",
                "a new `attack.eps` was not used: max distance "
                f"{distance.max():.6g} > {0.75 * self.eps:g}",
            )
        traces = run.tracing_count()
        if traces != 1:
            self.fail(
                "retrace",
                f"{traces} traces for new data, a new eps and new seeds "
                "(expected 1)",
            )

    def check_targeted(self, threshold):
        p = self.p
        run = self.runner(self.make(targeted=True), p.hadamard)
        out = run(p.x, p.targets)
        success = np.mean(_predictions(p.hadamard, out) == p.targets)
        if not success > threshold:
            self.fail(
                "targeted success",
                f"success rate {success:.3f} <= {threshold} at "
                f"eps={self.eps:g}",
            )

    def check_seeds(self, is_random, probe):
        p = self.p
        model, x, y = p.generic, p.x_generic, p.y_generic
        probe = probe if is_random else {}
        if self.path == "eager":
            # The seed is the constructor's: one attack per seed.
            a, b, c = (
                self.runner(self.make(seed=seed, **probe), model)(x, y)
                for seed in (12, 12, 13)
            )
        else:
            # One traced function, the seed a tensor argument.
            run = self.runner(self.make(**probe), model)
            a, b, c = (
                run(x, y, seed=seed) for seed in ((1, 2), (1, 2), (1, 3))
            )
        if not np.array_equal(a, b):
            self.fail(
                "seed",
                "the same seed gave different results (max difference "
                f"{np.abs(a - b).max():.3g})",
            )
        if is_random and np.array_equal(a, c):
            self.fail(
                "seed",
                "different seeds gave identical results for a random "
                "attack (is the seed ignored?)",
            )
        if not is_random and not np.array_equal(a, c):
            self.fail(
                "seed",
                "different seeds changed the result of an attack declared "
                "deterministic (pass random=True)",
            )
        if is_random and self.path == "eager":
            run = self.runner(self.make(**probe), model)
            if np.array_equal(run(x, y), run(x, y)):
                self.fail(
                    "seed",
                    "two consecutive calls gave identical results: the "
                    "SeedGenerator is not advanced",
                )

    def _strength(self, attack, model, x_adv, y):
        logits = tf.cast(model(x_adv, training=False), tf.float32)
        labels = tf.constant(y, tf.int32)
        objective = np.asarray(attack.objective(logits, labels), "float64")
        success = np.asarray(attack.is_successful(logits, labels))
        return objective, success

    def _check_never_weaker(self, attack, model, y, one, many, label):
        obj_one, ok_one = self._strength(attack, model, one, y)
        obj_many, ok_many = self._strength(attack, model, many, y)
        lost = ok_one & ~ok_many
        if lost.any():
            self.fail(
                "restarts",
                f"{label}: restarts lost the success of {lost.sum()} "
                "sample(s) that one run fools",
            )
        tolerance = 1e-5 * (1.0 + np.abs(obj_one))
        weaker = (ok_one == ok_many) & (obj_many < obj_one - tolerance)
        if weaker.any():
            worst = np.max(obj_one - obj_many)
            self.fail(
                "restarts",
                f"{label}: restarts lowered the attack objective of "
                f"{weaker.sum()} sample(s) (by up to {worst:.3g})",
            )

    def check_restarts(self, restarts, probe):
        p = self.p
        for model, x, y, kwargs, label in (
            (p.generic, p.x_generic, p.y_generic, probe, "probe run"),
            (p.hadamard, p.x, p.y, {}, "default run"),
        ):
            one_attack = self.make(restarts=1, **kwargs)
            many_attack = self.make(restarts=restarts, **kwargs)
            one = self.runner(one_attack, model)(x, y)
            many = self.runner(many_attack, model)(x, y)
            self._check_never_weaker(many_attack, model, y, one, many, label)
            if kwargs is not probe:
                continue
            changed = np.mean(np.any(np.abs(many - one) > 1e-7, axis=1))
            if not changed > 0.5:
                self.fail(
                    "restarts",
                    f"with restarts={restarts} only {changed:.0%} of the "
                    "samples changed with respect to one run: the restarts "
                    "do not draw distinct starts",
                )

    def check_jit(self, jit_kwargs, atol):
        kwargs, comparable = jit_kwargs
        p = self.p
        model, x, y = p.generic, p.x_generic, p.y_generic
        if self.path == "eager":
            jit_attack = self.make(jit_compile=True, **kwargs)
            jitted = self.runner(jit_attack, model)(x, y)
        else:
            jit_attack = self.make(**kwargs)
            jitted = self.runner(jit_attack, model, jit_compile=True)(x, y)
        distance = _distance(self.norm, x, jitted, jit_attack)
        if not np.all(distance <= self.eps + 1e-6):
            self.fail(
                "jit",
                f"under XLA x_adv leaves the ball: max distance "
                f"{distance.max():.6g} > eps={self.eps:g}",
            )
        if not comparable:
            return
        plain = self.runner(self.make(**kwargs), model)(x, y)
        difference = np.abs(jitted - plain).max()
        if not difference <= atol:
            self.fail(
                "jit",
                f"jit_compile=True differs from the default graph by "
                f"{difference:.3g} > {atol:g}",
            )

    def check_validation(self):
        p = self.p
        try:
            self.make(eps=-0.1)
        except ValueError:
            pass
        else:
            self.fail("validation", "eps=-0.1 did not raise ValueError")
        attack = self.make()
        outside = p.x + 1.0
        if self.path == "eager":
            for label, call in (
                ("eps=-0.1", lambda: attack(p.hadamard, p.x, p.y, eps=-0.1)),
                (
                    "x outside the value range",
                    lambda: attack(p.hadamard, outside, p.y),
                ),
            ):
                try:
                    call()
                except ValueError:
                    continue
                self.fail("validation", f"{label} did not raise ValueError")
            return
        run = self.runner(attack, p.hadamard)
        try:
            run(outside, p.y)
        except (ValueError, tf.errors.InvalidArgumentError):
            return
        self.fail(
            "validation",
            "x outside the value range did not fail the traced step",
        )

    def check_rebuilt_from_config(self):
        p = self.p
        attack = self.make()
        rebuilt = self.cls.from_config(json.loads(_json(attack.get_config())))
        a = self.runner(attack, p.hadamard)(p.x, p.y)
        b = self.runner(rebuilt, p.hadamard)(p.x, p.y)
        if not np.array_equal(a, b):
            self.fail(
                "serialisation",
                "the attack rebuilt from its config gives other results "
                f"(max difference {np.abs(a - b).max():.3g}): get_config "
                "misses an argument",
            )
