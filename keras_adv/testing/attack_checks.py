"""`AttackChecks`: the attack checklist, a mixin of `TestCase`.

`run_attack_test` is the attack checklist (after CleverHans' attack tests)
run on tiny deterministic models on both seeding paths. Each check fails
with an `AssertionError` naming the attack, the norm, the seeding path and
the property.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Literal

from keras_adv.attacks import Attack
from keras_adv.testing._attack_checklist import AttackChecklist
from keras_adv.testing._attack_problems import DEFAULT_EPS
from keras_adv.testing._attack_problems import LARGE_EPS
from keras_adv.testing._attack_problems import Problems
from keras_adv.testing._attack_problems import accepts
from keras_adv.testing.serialization import run_serialization_test


class AttackChecks:
    """Mixin with `run_attack_test`, the attack checklist."""

    def run_attack_test(
        self,
        cls: type[Attack],
        init_kwargs: Mapping[str, Any] | None = None,
        norms: Sequence[str | None] = ("linf", "l2"),
        eps: float | dict[str, float] | None = None,
        large_eps: float | dict[str, float] | None = None,
        paths: Sequence[Literal["eager", "stateless"]] = ("eager", "stateless"),
        run_identity_check: bool = True,
        run_bound_check: bool = True,
        run_success_check: bool = True,
        success_threshold: float = 0.9,
        targeted: bool | None = None,
        targeted_threshold: float = 0.7,
        random: bool | None = None,
        probe_kwargs: Mapping[str, Any] | None = None,
        restarts: int | None = None,
        run_seed_check: bool = True,
        run_retrace_check: bool = True,
        run_jit_check: bool = True,
        jit_kwargs: Mapping[str, Any] | None = None,
        jit_atol: float = 1e-5,
        run_validation_check: bool = True,
        run_serialization_check: bool = True,
    ) -> None:
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
        if accepts(cls, "seed"):
            init_kwargs.setdefault("seed", 0)
        problems = Problems()
        for norm in norms:
            kwargs = dict(init_kwargs)
            if norm is not None:
                kwargs["norm"] = norm
            radius = _per_norm(eps, DEFAULT_EPS, norm)
            checklist = AttackChecklist(
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
                n_restarts = 4 if accepts(cls, "restarts") else 0
                n_restarts = n_restarts if is_random else 0
            do_targeted = (
                accepts(cls, "targeted") if targeted is None else targeted
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
                run_serialization_test(attack)
                checklist.path = paths[0] if paths else "eager"
                checklist.check_rebuilt_from_config()


def _per_norm(
    value: float | dict[str, float] | None,
    default: dict[str, float],
    norm: str | None,
) -> float:
    if value is None:
        value = default
    if isinstance(value, dict):
        if norm not in value:
            raise ValueError(f"No eps given for norm={norm!r}: {value}")
        return float(value[norm])
    return float(value)


def _probe_kwargs(
    cls: type[Attack], probe_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    if probe_kwargs is not None:
        return dict(probe_kwargs)
    probe: dict[str, Any] = {}
    if accepts(cls, "steps"):
        probe["steps"] = 1
    if accepts(cls, "step_size"):
        probe["step_size"] = 1e-6
    return probe


def _jit_kwargs(
    cls: type[Attack], jit_kwargs: Mapping[str, Any] | None, is_random: bool
) -> tuple[dict[str, Any], bool]:
    if jit_kwargs is not None:
        return dict(jit_kwargs), True
    if not is_random:
        return {}, True
    if accepts(cls, "random_start"):
        return {"random_start": False}, True
    return {}, False
