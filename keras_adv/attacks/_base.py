"""The `Attack` base class: a template method, like `keras.losses.Loss`.

`Attack.__call__` (eager) and `Attack.perturb` (graph-safe) do everything
that is not the attack's own search: argument and input validation, label
conversion, the model-to-logits adapter, the stateless seed, one cached
`tf.function` per model and configuration, and the stopped gradient. A
subclass writes one public method, `generate(model_logits, x, y, eps,
seed)`, a graph-safe function of float32 tensors.
"""

import json
import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv import losses as losses_module
from keras_adv import threat_models
from keras_adv.attacks._logits import ModelLogits
from keras_adv.attacks._logits import check_classifier_outputs
from keras_adv.attacks._logits import looks_like_probabilities
from keras_adv.attacks._logits import sparse_labels

_SEED_MAX = 2**31 - 1


def _value_summary(x):
    """[any NaN, min, max] of `x` (graph-safe; checked after the attack)."""
    x = tf.cast(x, tf.float32)
    return tf.stack(
        [
            tf.cast(tf.reduce_any(tf.math.is_nan(x)), tf.float32),
            tf.reduce_min(x),
            tf.reduce_max(x),
        ]
    )


def as_stateless_seed(seed):
    """A `(2,)` int32 seed tensor from an int, a (2,) tensor or a generator.

    A `keras.random.SeedGenerator` is advanced (one draw), so consecutive
    calls give new seeds; ints and tensors are deterministic.
    """
    if isinstance(seed, keras.random.SeedGenerator):
        return keras.random.randint(
            (2,), 0, _SEED_MAX, seed=seed, dtype="int32"
        )
    if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        return tf.constant([int(seed), 0], tf.int32)
    seed = tf.convert_to_tensor(seed)
    if seed.dtype.is_floating or tuple(seed.shape) != (2,):
        raise ValueError(
            _validation.invalid(
                "seed",
                "an int, an int tensor of shape (2,) or a SeedGenerator",
                seed,
            )
        )
    return tf.cast(seed, tf.int32)


def fold_seed(seed, index):
    """A new stateless seed from `seed` and an int `index` (restarts, steps).

    Different indices give statistically independent streams.
    """
    return tf.random.experimental.stateless_fold_in(
        tf.cast(seed, tf.int32), index
    )


def input_assertions(x, value_range, y=None):
    """In-graph checks of attack inputs: NaN, value range, integer labels.

    Returns a list of assertion ops (run them with `tf.control_dependencies`
    before the result that depends on the inputs). A failed check stops
    the step with a message naming the argument. Graph-safe and cheap (one
    reduction over `x`).

    Args:
        x: Float tensor of inputs.
        value_range: Pair `(low, high)`.
        y: Optional labels; fractional sparse labels fail.
    """
    x32 = tf.cast(x, tf.float32)
    low, high = value_range
    x_min, x_max = tf.reduce_min(x32), tf.reduce_max(x32)
    checks = [
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(tf.math.is_nan(x32))),
            ["Received: x containing NaN values."],
        ),
        tf.debugging.Assert(
            tf.logical_and(x_min >= low - 1e-6, x_max <= high + 1e-6),
            [
                "Received: x with values in [min, max] =",
                x_min,
                x_max,
                f"outside the attack's value_range=({low:g}, {high:g}). "
                "Scale the inputs (e.g. x / 255) or set the attack's "
                "value_range.",
            ],
        ),
    ]
    if y is not None:
        y = tf.convert_to_tensor(y)
        sparse = len(y.shape) < 2 or y.shape[-1] == 1
        if sparse and y.dtype.is_floating:
            checks.append(
                tf.debugging.Assert(
                    tf.reduce_all(tf.equal(y, tf.round(y))),
                    ["Received: y with fractional class labels."],
                )
            )
    return checks


class Attack:
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
        eps=0.3,
        norm="linf",
        value_range=(0.0, 1.0),
        targeted=False,
        loss="ce",
        from_logits=None,
        training=False,
        seed=None,
        jit_compile=False,
    ):
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
        self._functions = weakref.WeakKeyDictionary()
        self._model_info = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------ settings
    @property
    def eps(self):
        """The radius of the threat model (float, tensor or variable)."""
        return self.threat_model.eps

    @eps.setter
    def eps(self, value):
        self.threat_model.eps = value

    @property
    def norm(self):
        """The threat model's norm, `"linf"` or `"l2"`."""
        return self.threat_model.norm

    @property
    def value_range(self):
        """The valid input range `(low, high)`."""
        return self.threat_model.value_range

    @property
    def loss(self):
        """The attack loss as given (a name or a callable)."""
        return self._loss

    @loss.setter
    def loss(self, value):
        self.loss_fn = losses_module.get(value)
        self._loss = value.lower() if isinstance(value, str) else value

    # ----------------------------------------------------- subclass hook
    def generate(self, model_logits, x, y, eps, seed):
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

    # ------------------------------------------- helpers for subclasses
    def objective(self, logits, y):
        """Per-sample value the attack maximises: the loss, or minus it.

        Untargeted attacks ascend `loss(y, logits)`; targeted ones ascend
        `-loss(target, logits)`.
        """
        value = self.loss_fn(y, logits)
        return -value if self.targeted else value

    def objective_and_gradient(self, model_logits, x, y):
        """`(objective (batch,), its gradient w.r.t. x)`, numerically safe."""
        return model_logits.value_and_input_gradient(
            lambda logits: self.objective(logits, y), x
        )

    def is_successful(self, logits, y):
        """Bool `(batch,)`: misclassified (or, if targeted, on target)."""
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        if self.targeted:
            return ops.equal(predicted, y)
        return ops.not_equal(predicted, y)

    def model_logits(self, model):
        """The `ModelLogits` adapter this attack uses for `model`."""
        info = self._model_info.get(model, {})
        from_logits = info.get("from_logits", self.from_logits)
        return ModelLogits(model, from_logits, training=self.training)

    # ----------------------------------------------------------- public API
    def __call__(self, model, x, y=None, eps=None):
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
        if not isinstance(model, keras.Model):
            raise TypeError(
                _validation.invalid("model", "a keras.Model", type(model))
            )
        x = self._check_x(x)
        if y is not None:
            y = self._check_y(y, x)
        elif self.targeted:
            raise ValueError(
                "A targeted attack needs `y`: the target classes. "
                "Received: y=None"
            )
        eps = self._check_call_eps(eps, x)
        eager = tf.executing_eagerly()
        if eager:
            self._check_model_once(model, x, y)
        fn = self._get_function(model, y is None)
        args = (x, eps) if y is None else (x, y, eps)
        if not eager:
            return fn(*args)[0]
        # With training=True, layers such as BatchNormalization update
        # their moving statistics in the forward passes: attacking must not
        # change the model, so they are restored afterwards.
        state = (
            [(v, v.numpy()) for v in model.non_trainable_variables]
            if self.training
            else []
        )
        try:
            x_adv, summary = self._concrete(model, fn, args)(*args)
        finally:
            for variable, value in state:
                variable.assign(value)
        # The value checks ran inside the attack graph (no extra device
        # round trip); a bad input raises here and its result is dropped.
        self._check_summary(summary)
        return x_adv

    def perturb(self, model, x, y=None, eps=None, seed=None, check=True):
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

        Returns:
            `x_adv` with the dtype of `x`, gradient stopped.
        """
        if check:
            self.check_input_types(x, y)
        eps = self.eps if eps is None else eps
        seed = self.seed_generator if seed is None else seed
        x_adv = self._run(model, x, y, eps, seed)
        if not check:
            return x_adv
        with tf.control_dependencies(input_assertions(x, self.value_range, y)):
            return tf.identity(x_adv)

    # --------------------------------------------------------- graph body
    def _run(self, model, x, y, eps, seed):
        dtype = x.dtype
        x = ops.cast(x, "float32")
        eps = ops.cast(eps, "float32")
        model_logits = self.model_logits(model)
        if y is None:
            if self.targeted:
                raise ValueError(
                    "A targeted attack needs `y`: the target classes. "
                    "Received: y=None"
                )
            y = ops.argmax(model_logits(x), axis=-1)
        y = ops.stop_gradient(sparse_labels(y))
        seed = as_stateless_seed(seed)
        x_adv = self.generate(model_logits, x, y, eps, seed)
        return ops.cast(ops.stop_gradient(x_adv), dtype)

    # ------------------------------------------------------ graph caching
    def _graph_key(self):
        """The configuration that shapes the graph (all but eps).

        A callable loss that cannot be serialised (a lambda) still works
        for attacking: it enters the key by identity.
        """
        loss = self._loss
        try:
            config = dict(self.get_config())
        except ValueError:  # only the loss can fail to serialise here
            self._loss = "ce"  # placeholder for get_config only
            try:
                config = dict(self.get_config())
            finally:
                self._loss = loss
            config["loss"] = f"<callable {id(loss)}>"
        config.pop("eps", None)
        return json.dumps(config, sort_keys=True, default=repr)

    def _get_function(self, model, labels_from_model):
        """One `tf.function` per (model, configuration, y given or not)."""
        per_model = self._functions.setdefault(model, {})
        key = (self._graph_key(), labels_from_model)
        fn = per_model.get(key)
        if fn is not None:
            return fn
        model_ref = weakref.ref(model)

        if labels_from_model:

            def run(x, eps):
                x_adv = self._run(
                    model_ref(), x, None, eps, self.seed_generator
                )
                return x_adv, _value_summary(x)
        else:

            def run(x, y, eps):
                x_adv = self._run(model_ref(), x, y, eps, self.seed_generator)
                return x_adv, _value_summary(x)

        fn = tf.function(
            run, reduce_retracing=True, jit_compile=self.jit_compile
        )
        per_model[key] = fn
        return fn

    def _concrete(self, model, fn, args):
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

    def tracing_count(self, model):
        """Number of graph traces made so far for `model` (for tests)."""
        return sum(
            fn.experimental_get_tracing_count()
            for key, fn in self._functions.get(model, {}).items()
            if key[0] != "concrete"
        )

    # ----------------------------------------------------------- checking
    def _check_call_eps(self, eps, x):
        eps = self.eps if eps is None else _validation.check_eps(eps)
        # A plain float32 tensor (a variable is read): one trace for all.
        eps = tf.cast(tf.convert_to_tensor(eps), tf.float32)
        if len(eps.shape) == 1 and tf.executing_eagerly():
            if eps.shape[0] != x.shape[0]:
                raise ValueError(
                    _validation.invalid(
                        "eps",
                        f"a scalar or shape ({x.shape[0]},) matching x",
                        tuple(eps.shape),
                    )
                )
        return eps

    @staticmethod
    def _check_x_dtype(dtype):
        dtype = tf.as_dtype(dtype)
        if not dtype.is_floating:
            raise TypeError(
                "Attacks need floating-point inputs in `value_range`. "
                f"Received: x with dtype {dtype.name}. Convert explicitly, "
                "e.g. `x.astype('float32') / 255.0` for uint8 images."
            )

    def _check_x(self, x):
        if getattr(x, "dtype", None) is None:
            x = np.asarray(x)
        self._check_x_dtype(x.dtype)
        return tf.convert_to_tensor(x)

    @staticmethod
    def _check_label_dtype(y):
        dtype = tf.as_dtype(y.dtype)
        if not (dtype.is_integer or dtype.is_floating) or dtype == tf.bool:
            raise TypeError(
                _validation.invalid(
                    "y", "integer class ids or one-hot rows", f"dtype {dtype}"
                )
            )

    def _check_y(self, y, x):
        if isinstance(y, np.ndarray | list | tuple):
            y = np.asarray(y)
            if y.dtype.kind not in "iuf":
                raise TypeError(
                    _validation.invalid(
                        "y",
                        "integer class ids or one-hot rows",
                        f"values of dtype {y.dtype}",
                    )
                )
        y = tf.convert_to_tensor(y)
        self._check_label_dtype(y)
        if len(y.shape) == 0 or len(y.shape) > 2:
            raise ValueError(
                _validation.invalid(
                    "y",
                    "labels of shape (batch,), (batch, 1) or one-hot "
                    "(batch, classes)",
                    tuple(y.shape),
                )
            )
        if (
            y.shape[0] is not None
            and x.shape[0] is not None
            and y.shape[0] != x.shape[0]
        ):
            raise ValueError(
                f"x and y have different batch sizes: x.shape={tuple(x.shape)}"
                f", y.shape={tuple(y.shape)}"
            )
        return y

    def _check_model_once(self, model, x, y):
        """Eager, once per model: output shape and from_logits; labels."""
        info = self._model_info.get(model)
        if info is None:
            outputs = check_classifier_outputs(model(x[:32], training=False))
            outputs = ops.cast(outputs, "float32")
            looks_prob = bool(looks_like_probabilities(outputs))
            mode = ModelLogits(model, self.from_logits).from_logits
            if self.from_logits is True and looks_prob:
                raise ValueError(
                    "The model's outputs are probabilities (non-negative rows "
                    "summing to 1) but the attack has from_logits=True. Pass "
                    "from_logits=False or from_logits=None (infer)."
                )
            if self.from_logits is False and not looks_prob:
                raise ValueError(
                    "The attack has from_logits=False but the model's "
                    "outputs are not probabilities (rows must be "
                    "non-negative and sum to 1). Pass from_logits=True or "
                    "None (infer)."
                )
            info = {"num_classes": int(outputs.shape[-1])}
            if mode is not None:
                info["from_logits"] = mode
            self._model_info[model] = info
        num_classes = info["num_classes"]
        if y is None:
            return
        one_hot = len(y.shape) == 2 and y.shape[-1] != 1
        if one_hot and y.shape[-1] != num_classes:
            raise ValueError(
                f"One-hot labels have {y.shape[-1]} classes but the model "
                f"outputs {num_classes}."
            )
        if one_hot:
            return
        # Labels are small: check them on the host before the attack runs.
        values = np.asarray(y).reshape(-1)
        if values.dtype.kind == "f" and (
            not np.all(np.isfinite(values))
            or np.any(values != np.round(values))
        ):
            raise ValueError(
                _validation.invalid(
                    "y", "integer class ids", values[:8].tolist()
                )
            )
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"Labels must be in [0, {num_classes}). Received: "
                f"labels in [{values.min():g}, {values.max():g}]"
            )

    def check_input_types(self, x, y=None):
        """Trace-time checks: float `x`, numeric labels (raise TypeError)."""
        self._check_x_dtype(x.dtype)
        if y is not None:
            self._check_label_dtype(ops.convert_to_tensor(y))

    def _check_summary(self, summary):
        """Raises for NaNs or inputs outside the value range."""
        has_nan, x_min, x_max = summary.numpy().tolist()
        if has_nan:
            raise ValueError("Received: x containing NaN values.")
        low, high = self.value_range
        if x_min < low - 1e-6 or x_max > high + 1e-6:
            raise ValueError(
                f"Received: x with values in [{x_min:g}, {x_max:g}], "
                f"outside value_range=({low:g}, {high:g}). Scale the "
                "inputs or set the attack's value_range."
            )

    # ------------------------------------------------------- serialisation
    def get_config(self):
        """Returns the constructor arguments as a JSON-serialisable dict."""
        tm_config = self.threat_model.get_config()
        return {
            "eps": tm_config["eps"],
            "norm": self.norm,
            "value_range": tm_config["value_range"],
            "targeted": self.targeted,
            "loss": losses_module.serialize(self.loss),
            "from_logits": self.from_logits,
            "training": self.training,
            "seed": self.seed,
            "jit_compile": self.jit_compile,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
