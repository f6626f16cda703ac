"""The `Attack` base class: a template method, like `keras.losses.Loss`.

`Attack.__call__` (eager) and `Attack.perturb` (graph-safe) do everything
that is not the attack's own search: argument and input validation, label
conversion, the model-to-logits adapter, the stateless seed, one cached
`tf.function` per model and configuration, and the stopped gradient. A
subclass writes one public method, `generate(model_logits, x, y, eps,
seed)`, a graph-safe function of float32 tensors.
"""

import weakref
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import keras
import tensorflow as tf
from keras import ops

from keras_adv import _random
from keras_adv import _signature
from keras_adv import _validation
from keras_adv import losses as losses_module
from keras_adv import threat_models
from keras_adv._outputs import sparse_labels
from keras_adv._types import Array
from keras_adv._types import AttackLoss
from keras_adv._types import Config
from keras_adv._types import Eps
from keras_adv._types import Norm
from keras_adv._types import Seed
from keras_adv._types import Tensor
from keras_adv._types import TensorLike
from keras_adv._types import ValueRange
from keras_adv.attacks._entry_checks import TARGETS_NEEDED
from keras_adv.attacks._entry_checks import EntryChecks
from keras_adv.attacks._logits import ModelLogits
from keras_adv.losses._margin import serialize as serialize_loss
from keras_adv.threat_models._balls import ThreatModel
from keras_adv.threat_models._learned import check_searchable

_AttackT = TypeVar("_AttackT", bound="Attack")


class Attack(EntryChecks):
    """Base class of keras_adv attacks.

    Call an attack on a model and a batch: `x_adv = attack(model, x, y)`.
    The result has the shape and dtype of `x`, carries no gradient and lies
    in the threat model (the `norm` ball of radius `eps` around `x`,
    intersected with `value_range`).

    To write an attack, subclass `Attack` and implement `generate`; add
    constructor arguments to `get_config`. Everything else (validation,
    labels, logits, graph caching, seeds) is done here. Iterative Lp-ball
    searches subclass `IterativeAttack` instead, which adds random starts,
    steps, projection and restarts.

    Args:
        eps: Float >= 0 (or a variable): radius of the threat model in input
            units. Defaults to `0.3`.
        norm: String, `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`, the valid input range. Defaults to
            `(0.0, 1.0)`.
        targeted: Bool. If True, `y` holds target classes and the attack
            moves the prediction towards them. Defaults to `False`.
        loss: The attack loss: a name (`"ce"`, `"margin"`, or one added
            with `keras_adv.losses.register_attack_loss`) or a callable
            `(labels, logits) -> (batch,)` (see `keras_adv.losses.get`).
            Defaults to `"ce"`.
        from_logits: Bool or None. Whether the model outputs logits. None
            infers it from a final softmax layer, else from the outputs
            themselves (rows of non-negative values summing to 1 are
            probabilities). An explicit value that contradicts the model
            raises `ValueError`. Defaults to `None`.
        training: Bool, the `training` flag of the attack's forward passes
            (BatchNormalization uses batch statistics, dropout is active).
            A direct call restores the model's non-trainable variables
            (BatchNormalization moving statistics) afterwards, so attacking
            never changes the model; inside a training step (`perturb`) the
            updates are part of that step. Defaults to `False`.
        seed: Int or None, seed of the attack's randomness. Two attacks with
            the same seed produce the same results call for call.
        jit_compile: Bool, compile the attack graph with XLA. Defaults to
            `False` (XLA is slower than the default on CPU).

    Example:

    A subclass writes only `generate`; here, a uniform random point of the
    ball (a baseline, not a real attack):

    >>> import numpy as np, keras, keras_adv
    >>> class RandomPoint(keras_adv.attacks.Attack):
    ...     def generate(self, model_logits, x, y, eps, seed):
    ...         return self.threat_model.random_start(x, seed=seed, eps=eps)
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.full((2, 4), 0.5, "float32")
    >>> x_adv = RandomPoint(eps=0.1, seed=1)(model, x)
    >>> bool(np.abs(np.asarray(x_adv) - x).max() <= 0.1 + 1e-6)
    True
    """

    def __init__(
        self,
        eps: Eps = 0.3,
        norm: Norm = "linf",
        value_range: ValueRange = (0.0, 1.0),
        targeted: bool = False,
        loss: AttackLoss = "ce",
        from_logits: bool | None = None,
        training: bool = False,
        seed: int | None = None,
        jit_compile: bool = False,
    ) -> None:
        self.threat_model = threat_models.get(norm, eps, value_range)
        self.targeted = _validation.check_bool("targeted", targeted)
        self.loss = loss
        if from_logits is not None:
            from_logits = _validation.check_bool("from_logits", from_logits)
        self.from_logits = from_logits
        self.training = _validation.check_bool("training", training)
        self.jit_compile = _validation.check_bool("jit_compile", jit_compile)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._functions: weakref.WeakKeyDictionary[
            keras.Model, dict[Any, Any]
        ] = weakref.WeakKeyDictionary()
        self._model_info: weakref.WeakKeyDictionary[
            keras.Model, dict[str, Any]
        ] = weakref.WeakKeyDictionary()

    #: Whether the attack searches a learned set's latent space (True in
    #: `LatentPGD`) rather than an Lp ball of inputs.
    searches_latent_space = False

    # ------------------------------------------------------------ settings
    @property
    def threat_model(self) -> ThreatModel:
        """The threat model: where the attack may move an input."""
        return self._threat_model

    @threat_model.setter
    def threat_model(self, value: ThreatModel) -> None:
        self._threat_model = check_searchable(value, self)

    @property
    def eps(self) -> Eps:
        """The radius of the threat model (float, tensor or variable)."""
        return self.threat_model.eps

    @eps.setter
    def eps(self, value: Eps) -> None:
        self.threat_model.eps = value

    @property
    def norm(self) -> str:
        """The threat model's norm, `"linf"` or `"l2"`."""
        return self.threat_model.norm

    @property
    def value_range(self) -> tuple[float, float]:
        """The valid input range `(low, high)`."""
        return self.threat_model.value_range

    @property
    def loss(self) -> AttackLoss:
        """The attack loss as given (a name or a callable)."""
        return self._loss

    @loss.setter
    def loss(self, value: AttackLoss) -> None:
        self.loss_fn = losses_module.get(value)
        self._loss = value.lower() if isinstance(value, str) else value

    # ----------------------------------------------------- subclass hook
    def generate(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> Tensor:
        """The attack itself: returns `x_adv` for float32 `x` (graph-safe).

        Called inside the attack's `tf.function` (or the caller's traced
        step) with validated, converted arguments. Return a float32 tensor
        of the shape of `x` inside the threat model; the base class stops
        its gradient and casts it back to the input dtype.

        Args:
            model_logits: A `ModelLogits`: `model_logits(x)` gives float32
                logits and `model_logits.value_and_input_gradient` a safe
                input gradient.
            x: Float32 tensor, the clean inputs.
            y: Int32 tensor `(batch,)`: the true labels (untargeted; the
                model's predictions when the caller gave none) or the
                targets (targeted).
            eps: Float32 scalar or `(batch,)` tensor, the radius in use.
            seed: Int32 tensor of shape `(2,)`, a stateless seed (use
                `fold_seed` to derive one per restart or step).

        Returns:
            Float32 tensor of the shape of `x`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement `generate(model_logits, "
            "x, y, eps, seed)`."
        )

    def generate_with_extras(
        self,
        model_logits: ModelLogits,
        x: Tensor,
        y: Tensor,
        eps: Tensor,
        seed: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """`generate`, and per-sample extra outputs (graph-safe).

        Override this instead of `generate` in an attack that also reports
        something per sample (Square: the queries it spent); then define
        `generate` as `self.generate_with_extras(...)[0]`. The extras reach
        callers through `perturb_with_extras`, with the same validation,
        caching and seeds as every other entry point.

        Returns:
            `(x_adv, extras)`: `x_adv` as from `generate`, `extras` a dict
            of tensors with a leading batch axis (empty by default).
        """
        return self.generate(model_logits, x, y, eps, seed), {}

    # ------------------------------------------- helpers for subclasses
    def objective(self, logits: Tensor, y: Tensor) -> Tensor:
        """Per-sample value the attack maximises: the loss, or minus it.

        Untargeted attacks ascend `loss(y, logits)`; targeted ones ascend
        `-loss(target, logits)`.
        """
        value = self.loss_fn(y, logits)
        return -value if self.targeted else value

    def objective_and_gradient(
        self, model_logits: ModelLogits, x: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """`(objective (batch,), its gradient w.r.t. x)`, numerically safe."""
        return model_logits.value_and_input_gradient(
            lambda logits: self.objective(logits, y), x
        )

    def is_successful(self, logits: Tensor, y: Tensor) -> Tensor:
        """Bool `(batch,)`: misclassified (or, if targeted, on target)."""
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        if self.targeted:
            return ops.equal(predicted, y)
        return ops.not_equal(predicted, y)

    def model_logits(
        self, model: keras.Model, training: bool | None = None
    ) -> ModelLogits:
        """The `ModelLogits` adapter this attack uses for `model`.

        Args:
            model: The Keras model.
            training: Optional bool overriding the attack's `training`
                flag for these forward passes.
        """
        info = self._model_info.get(model, {})
        from_logits = info.get("from_logits", self.from_logits)
        training = self.training if training is None else training
        return ModelLogits(model, from_logits, training=training)

    # ----------------------------------------------------------- public API
    def __call__(
        self,
        model: keras.Model,
        x: Array,
        y: Array | None = None,
        eps: Eps | None = None,
    ) -> Tensor:
        """Returns adversarial examples for `x`.

        Args:
            model: A Keras model mapping a batch of inputs to logits or
                probabilities of shape `(batch, classes)`.
            x: Float array or tensor, a batch of inputs in `value_range`.
            y: Optional labels: ints of shape `(batch,)` or `(batch, 1)`, or
                one-hot `(batch, classes)`. None uses the model's own
                predictions (no label leaking). With `targeted=True`, the
                target classes (required).
            eps: Optional override of the attack's eps for this call: a
                float or a per-sample array of shape `(batch,)`.

        Returns:
            A tensor of the shape and dtype of `x`, without gradient.

        Raises:
            TypeError: if `x` is not floating point, `model` is not a Keras
                model, or labels or eps are not numeric.
            ValueError: for NaNs, inputs outside `value_range`, labels out
                of range, fractional or of the wrong batch size, a negative
                or infinite eps, unsupported model outputs, or
                `from_logits` contradicting the model.
        """
        if tf.executing_eagerly():
            return self._eager(model, x, y, eps, seed=None)[0]
        # Called inside someone's traced function: the same checks, in
        # the graph.
        x, y, eps = self._check_call(model, x, y, eps)
        return self._graph(model, x, y, eps, None, True, None)[0]

    def perturb(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None = None,
        eps: Eps | None = None,
        seed: Seed | None = None,
        check: bool = True,
        training: bool | None = None,
    ) -> Tensor:
        """Graph-safe entry point for code that is already traced.

        Used by training steps and evaluation graphs: no `tf.function` of
        its own and no eager round trips. With `check=True` the same input
        checks as `__call__` run inside the graph (dtype and label types at
        trace time; NaN, value range and integer labels as graph
        assertions, which fail the step with a message naming the
        argument).

        Args:
            model: The Keras model.
            x: Float tensor of inputs.
            y: Labels `(batch,)`, `(batch, 1)` or one-hot (targets if
                targeted), or None (the model's predictions).
            eps: Optional float or `(batch,)` tensor overriding `self.eps`.
            seed: Optional int, `(2,)` int tensor (a stateless seed: use one
                inside distribution strategies) or `SeedGenerator`.
                Defaults to the attack's own `seed_generator`.
            check: Bool, run the input checks. Defaults to `True`.
            training: Optional bool overriding the attack's `training` flag
                for this call (an adversarial-training objective runs the
                user's attack in the mode it was asked for, without copying
                it). Defaults to None (the attack's own flag).

        Returns:
            `x_adv` with the dtype of `x`, gradient stopped.
        """
        return self._graph(model, x, y, eps, seed, check, training)[0]

    def perturb_with_extras(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None = None,
        eps: Eps | None = None,
        seed: Seed | None = None,
        check: bool = True,
        training: bool | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """`(x_adv, extras)`: adversarial examples and per-sample extras.

        The extras are what `generate_with_extras` returns (Square: the
        queries spent per sample; empty for most attacks). Called eagerly,
        validates like `__call__` and runs a graph cached per model;
        inside a graph, behaves like `perturb`. Arguments as `perturb`.
        """
        if tf.executing_eagerly():
            return self._eager(model, x, y, eps, seed, training)
        return self._graph(model, x, y, eps, seed, check, training)

    # ------------------------------------------------------- entry paths
    def _graph(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None,
        eps: Eps | None,
        seed: Seed | None,
        check: bool,
        training: bool | None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The traced entry: trace-time checks, body, in-graph checks."""
        if check:
            self.check_input_types(x, y)
        eps = self.eps if eps is None else eps
        seed = self.seed_generator if seed is None else seed
        x_adv, extras = self._run(model, x, y, eps, seed, training)
        if not check:
            return x_adv, extras
        assertions = _validation.input_assertions(x, self.value_range, y)
        classes = self._num_classes(model)
        if y is not None and classes is not None:
            assertions += _validation.label_assertions(y, classes)
        with tf.control_dependencies(assertions):
            return tf.identity(x_adv), tf.nest.map_structure(
                tf.identity, extras
            )

    def _eager(
        self,
        model: keras.Model,
        x: Array,
        y: Array | None,
        eps: Eps | None,
        seed: Seed | None,
        training: bool | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The eager entry: host checks, then the cached compiled graph."""
        x, y, eps = self._check_call(model, x, y, eps)
        self._check_model_once(model, x, y)
        if seed is not None:
            seed = _random.as_stateless_seed(seed)
        training = self.training if training is None else bool(training)
        fn = self._get_function(model, y is None, seed is None, training)
        args = (x,) + (() if y is None else (y,)) + (eps,)
        args += () if seed is None else (seed,)
        # With training=True, layers such as BatchNormalization update
        # their moving statistics in the forward passes: attacking must not
        # change the model, so they are restored afterwards.
        state = (
            [(v, v.numpy()) for v in model.non_trainable_variables]
            if training
            else []
        )
        try:
            x_adv, extras, summary = self._concrete(model, fn, args)(*args)
        finally:
            for variable, value in state:
                variable.assign(value)
        # The value checks ran inside the attack graph (no extra device
        # round trip); a bad input raises here and its result is dropped.
        _validation.check_summary(summary, self.value_range)
        return x_adv, extras

    # --------------------------------------------------------- graph body
    def _run(
        self,
        model: keras.Model,
        x: TensorLike,
        y: TensorLike | None,
        eps: Eps,
        seed: Seed,
        training: bool | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        dtype = x.dtype
        x = ops.cast(x, "float32")
        eps = ops.cast(eps, "float32")
        model_logits = self.model_logits(model, training)
        if y is None:
            if self.targeted:
                raise ValueError(TARGETS_NEEDED)
            y = ops.argmax(model_logits(x), axis=-1)
        y = ops.stop_gradient(sparse_labels(y))
        seed = _random.as_stateless_seed(seed)
        x_adv, extras = self.generate_with_extras(model_logits, x, y, eps, seed)
        return ops.cast(ops.stop_gradient(x_adv), dtype), extras

    # ------------------------------------------------------ graph caching
    def _get_function(
        self,
        model: keras.Model,
        labels_from_model: bool,
        own_seed: bool,
        training: bool,
    ) -> Callable[..., Any]:
        """One `tf.function` per (model, signature, argument kinds)."""
        per_model = self._functions.setdefault(model, {})
        key = (
            _signature.graph_signature(self),
            labels_from_model,
            own_seed,
            training,
        )
        fn = per_model.get(key)
        if fn is not None:
            return fn
        model_ref = weakref.ref(model)

        def run(
            x: Tensor, *rest: Tensor
        ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
            args = list(rest)
            y = None if labels_from_model else args.pop(0)
            eps = args.pop(0)
            seed = self.seed_generator if own_seed else args.pop(0)
            x_adv, extras = self._run(model_ref(), x, y, eps, seed, training)
            return x_adv, extras, _validation.value_summary(x)

        fn = tf.function(
            run, reduce_retracing=True, jit_compile=self.jit_compile
        )
        per_model[key] = fn
        return fn

    def _concrete(
        self, model: keras.Model, fn: Any, args: tuple[Tensor, ...]
    ) -> Callable[..., Any]:
        """The concrete function of `fn` for these argument types, cached.

        Calling it directly skips `tf.function`'s per-call signature
        dispatch (a few hundred microseconds on CPU), which is most of the
        Python overhead of a single-step attack.
        """
        per_model = self._functions[model]
        key = ("concrete", id(fn)) + tuple(
            (tuple(a.shape), a.dtype.name) for a in args
        )
        concrete = per_model.get(key)
        if concrete is None:
            concrete = fn.get_concrete_function(*args)
            per_model[key] = concrete
        return concrete

    def tracing_count(self, model: keras.Model) -> int:
        """Number of graph traces made so far for `model` (for tests)."""
        return sum(
            fn.experimental_get_tracing_count()
            for key, fn in self._functions.get(model, {}).items()
            if key[0] != "concrete"
        )

    # ------------------------------------------------------- serialisation
    def get_config(self) -> Config:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        tm_config = self.threat_model.get_config()
        return {
            "eps": tm_config["eps"],
            "norm": self.norm,
            "value_range": tm_config["value_range"],
            "targeted": self.targeted,
            "loss": serialize_loss(self.loss),
            "from_logits": self.from_logits,
            "training": self.training,
            "seed": self.seed,
            "jit_compile": self.jit_compile,
        }

    @classmethod
    def from_config(cls: type[_AttackT], config: Config) -> _AttackT:
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
