"""The checks of `run_attack_test` for one attack class and norm.

Each check runs the attack through a `Runner` on one of the `Problems`
and fails with an `AssertionError` naming the attack, the norm, the
seeding path and the property.
"""

import json
from collections.abc import Mapping
from typing import Any
from typing import Literal
from typing import NoReturn

import keras
import numpy as np
import tensorflow as tf

from keras_adv.attacks import Attack
from keras_adv.testing._attack_problems import Problems
from keras_adv.testing._attack_problems import Runner
from keras_adv.testing._attack_problems import lp_distance
from keras_adv.testing._attack_problems import predictions
from keras_adv.testing.serialization import sorted_json


class AttackChecklist:
    """The checks of `run_attack_test` for one attack class and norm."""

    def __init__(
        self,
        cls: type[Attack],
        kwargs: Mapping[str, Any],
        norm: str | None,
        eps: float,
        large_eps: float,
        problems: Problems,
    ) -> None:
        self.cls = cls
        self.kwargs = kwargs
        self.norm = norm
        self.eps = eps
        self.large_eps = large_eps
        self.p = problems
        self.path: Literal["eager", "stateless"] = "eager"

    def make(self, **overrides: Any) -> Attack:
        kwargs = {"eps": self.eps, **self.kwargs, **overrides}
        return self.cls(**kwargs)

    def runner(
        self, attack: Attack, model: keras.Model, jit_compile: bool = False
    ) -> Runner:
        return Runner(attack, model, self.path, jit_compile=jit_compile)

    def where(self, check: str) -> str:
        return (
            f"{self.cls.__name__}(norm={self.norm!r}) on the {self.path} "
            f"seeding path, {check} check"
        )

    def fail(self, check: str, message: str) -> NoReturn:
        raise AssertionError(f"{self.where(check)}: {message}")

    # ------------------------------------------------------------ checks
    def check_identity(self) -> None:
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

    def check_bound(self) -> None:
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
        distance = lp_distance(self.norm, p.x_generic, out, attack)
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

    def check_success_and_retrace(
        self, threshold: float | None, check_retrace: bool
    ) -> None:
        p = self.p
        attack = self.make()
        run = self.runner(attack, p.hadamard)
        out = run(p.x, p.y)
        if threshold is not None:
            success = np.mean(predictions(p.hadamard, out) != p.y)
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
        distance = lp_distance(self.norm, p.x_new, out, attack)
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

    def check_targeted(self, threshold: float) -> None:
        p = self.p
        run = self.runner(self.make(targeted=True), p.hadamard)
        out = run(p.x, p.targets)
        success = np.mean(predictions(p.hadamard, out) == p.targets)
        if not success > threshold:
            self.fail(
                "targeted success",
                f"success rate {success:.3f} <= {threshold} at "
                f"eps={self.eps:g}",
            )

    def check_seeds(self, is_random: bool, probe: Mapping[str, Any]) -> None:
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

    def _strength(
        self,
        attack: Attack,
        model: keras.Model,
        x_adv: np.ndarray,
        y: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        logits = tf.cast(model(x_adv, training=False), tf.float32)
        labels = tf.constant(y, tf.int32)
        objective = np.asarray(attack.objective(logits, labels), "float64")
        success = np.asarray(attack.is_successful(logits, labels))
        return objective, success

    def _check_never_weaker(
        self,
        attack: Attack,
        model: keras.Model,
        y: np.ndarray,
        one: np.ndarray,
        many: np.ndarray,
        label: str,
    ) -> None:
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

    def check_restarts(self, restarts: int, probe: Mapping[str, Any]) -> None:
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

    def check_jit(
        self, jit_kwargs: tuple[Mapping[str, Any], bool], atol: float
    ) -> None:
        kwargs, comparable = jit_kwargs
        p = self.p
        model, x, y = p.generic, p.x_generic, p.y_generic
        if self.path == "eager":
            jit_attack = self.make(jit_compile=True, **kwargs)
            jitted = self.runner(jit_attack, model)(x, y)
        else:
            jit_attack = self.make(**kwargs)
            jitted = self.runner(jit_attack, model, jit_compile=True)(x, y)
        distance = lp_distance(self.norm, x, jitted, jit_attack)
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

    def check_validation(self) -> None:
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

    def check_rebuilt_from_config(self) -> None:
        p = self.p
        attack = self.make()
        rebuilt = self.cls.from_config(
            json.loads(sorted_json(attack.get_config()))
        )
        a = self.runner(attack, p.hadamard)(p.x, p.y)
        b = self.runner(rebuilt, p.hadamard)(p.x, p.y)
        if not np.array_equal(a, b):
            self.fail(
                "serialisation",
                "the attack rebuilt from its config gives other results "
                f"(max difference {np.abs(a - b).max():.3g}): get_config "
                "misses an argument",
            )
