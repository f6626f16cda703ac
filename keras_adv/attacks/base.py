"""The `Attack` base class: validation, model plumbing and graph caching.

An attack maps `(model, x, y)` to `x_adv` inside a threat model. The base
class does everything that is not the attack's own optimisation:

* validates arguments (`__init__`) and inputs (`__call__`, eagerly);
* turns the model's output into float32 logits (probability outputs become
  log-probabilities, which are logits up to a constant), with the decision
  "logits or probabilities" taken from the model's last layer, checked
  against the actual outputs, and otherwise made at run time inside the
  graph, so it is never silently wrong;
* computes input gradients with one `tf.GradientTape` helper, with loss
  scaling under `mixed_float16` so that gradients do not underflow;
* wraps the whole attack in one `tf.function` per model and structure, into
  which `eps` and `step_size` enter as tensors: new data or a new eps does
  not retrace.

Subclasses implement `_attack(logits_fn, x, y, eps, step_size, seed)`, a
graph-safe function of float32 tensors.
"""

import weakref

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_adv import _validation
from keras_adv import threat_models
from keras_adv.losses import margin

LOSSES = {"ce": margin.cross_entropy, "margin": margin.margin_loss}

_PROB_TOL = 1e-3
_TINY = 1e-30


def _activation_name(fn):
    return getattr(fn, "__name__", None) if fn is not None else None


def _is_functional(model):
    try:
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - Keras internals moved
        return type(model).__name__ == "Functional"
    return isinstance(model, Functional)


def output_activation(model):
    """Returns "softmax", "logits" or None (unknown) for a model's output.

    Looks at the layer that produces the output of a Sequential or
    Functional model; subclassed models give None.
    """
    layer = None
    if isinstance(model, keras.Sequential):
        if model.layers:
            layer = model.layers[-1]
    elif _is_functional(model):
        outputs = getattr(model, "outputs", None) or []
        if len(outputs) == 1:
            history = getattr(outputs[0], "_keras_history", None)
            layer = getattr(history, "operation", None)
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    name = _activation_name(getattr(layer, "activation", None))
    if name == "softmax":
        return "softmax"
    if name == "log_softmax":  # log-probabilities are logits
        return "logits"
    if isinstance(layer, keras.layers.Dense) and name in ("linear", None):
        return "logits"
    return None


def _looks_like_probabilities(outputs):
    """Graph-safe scalar bool: every row is non-negative and sums to 1."""
    row_sums = ops.sum(outputs, axis=-1)
    return ops.logical_and(
        ops.all(outputs >= 0.0),
        ops.all(ops.abs(row_sums - 1.0) < _PROB_TOL),
    )


def _check_outputs(outputs):
    if isinstance(outputs, list | tuple | dict):
        raise ValueError(
            "keras_adv attacks support models with a single output of shape "
            f"(batch, classes). Received a model with {len(outputs)} outputs."
        )
    if len(outputs.shape) != 2 or (
        outputs.shape[-1] is not None and outputs.shape[-1] < 2
    ):
        raise ValueError(
            "keras_adv attacks need model outputs of shape (batch, classes) "
            "with classes >= 2 (logits or probabilities; for binary tasks "
            f"output 2 logits). Received output shape {tuple(outputs.shape)}"
        )
    return outputs


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


class ModelLogits:
    """A model seen as `x -> float32 logits`, with a safe input gradient.

    Args:
        model: The Keras model (single output `(batch, classes)`).
        from_logits: True (outputs are logits), False (probabilities: their
            logarithm is used, which equals the logits up to a per-sample
            constant) or None (decided per batch inside the graph).
        training: The `training` flag of the forward passes.
    """

    def __init__(self, model, from_logits, training=False):
        self.model = model
        self.from_logits = from_logits
        self.training = training
        self.low_precision = model.dtype_policy.compute_dtype in (
            "float16",
            "bfloat16",
        )

    def forward(self, x):
        """Raw model outputs in the model's compute dtype."""
        return _check_outputs(self.model(x, training=self.training))

    def head(self, outputs):
        """Float32 logits from raw outputs."""
        outputs = ops.cast(outputs, "float32")
        if self.from_logits is True:
            return outputs
        log_probs = ops.log(ops.maximum(outputs, _TINY))
        if self.from_logits is False:
            return log_probs
        return ops.where(_looks_like_probabilities(outputs), log_probs, outputs)

    def __call__(self, x):
        return self.head(self.forward(x))

    def value_and_input_gradient(self, objective_fn, x):
        """Per-sample `objective_fn(logits)` and its gradient w.r.t. `x`.

        For float32 models this is one tape. Under `mixed_float16` the
        gradient of the objective w.r.t. the outputs is computed in float32,
        rescaled per sample to a maximum magnitude of 1 before it enters
        the float16 backward pass (so it cannot underflow or overflow), and
        the input gradient is scaled back in float32. Per-sample rescaling
        is exact for models that treat samples independently (inference
        mode); the gradient's direction, which is all attacks use, is
        unaffected.

        Args:
            objective_fn: Maps float32 logits to a per-sample objective.
            x: Float32 input tensor.

        Returns:
            `(objective, grad)`: shapes `(batch,)` and that of `x`.
        """
        if not self.low_precision:
            with tf.GradientTape() as tape:
                tape.watch(x)
                objective = objective_fn(self(x))
                total = ops.sum(objective)
            grad = tape.gradient(
                total, x, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return objective, ops.where(ops.isfinite(grad), grad, 0.0)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = self.forward(x)
        outputs32 = ops.cast(outputs, "float32")
        with tf.GradientTape() as head_tape:
            head_tape.watch(outputs32)
            objective = objective_fn(self.head(outputs32))
            total = ops.sum(objective)
        out_grad = head_tape.gradient(total, outputs32)
        scale = ops.max(ops.abs(out_grad), axis=-1, keepdims=True)
        scale = ops.maximum(scale, 1e-30)
        grad = tape.gradient(
            outputs,
            x,
            output_gradients=ops.cast(out_grad / scale, outputs.dtype),
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        grad = ops.cast(grad, "float32")
        grad = ops.where(ops.isfinite(grad), grad, 0.0)
        expand = [-1] + [1] * (len(x.shape) - 1)
        return objective, grad * ops.reshape(scale, expand)


class Attack:
    """Base class of keras_adv attacks.

    Call an attack on a model and a batch: `x_adv = attack(model, x, y)`.
    The result has the shape and dtype of `x`, carries no gradient and lies
    in the threat model (the `norm` ball of radius `eps` around `x`,
    intersected with `value_range`).

    Args:
        eps: Float >= 0 (or a variable): radius of the threat model in input
            units. Defaults to `0.3`.
        norm: String, `"linf"` or `"l2"`. Defaults to `"linf"`.
        value_range: Pair `(low, high)`, the valid input range. Defaults to
            `(0.0, 1.0)`.
        targeted: Bool. If True, `y` holds target classes and the attack
            moves the prediction towards them. Defaults to `False`.
        loss: String, `"ce"` (cross-entropy) or `"margin"` (Carlini-Wagner
            margin on logits). Defaults to `"ce"`.
        from_logits: Bool or None. Whether the model outputs logits. None
            infers it from a final softmax layer, else from the outputs
            themselves (rows of non-negative values summing to 1 are
            probabilities). An explicit value that contradicts the model
            raises `ValueError`. Defaults to `None`.
        training: Bool, the `training` flag of the attack's forward passes.
            Defaults to `False`.
        seed: Int or None, seed of the attack's randomness. Two attacks with
            the same seed produce the same results call for call.
        jit_compile: Bool, compile the attack graph with XLA. Defaults to
            `False` (XLA is slower than the default on CPU).
    """

    # Subclasses add the names of constructor arguments that change the
    # traced graph (steps, restarts, ...).
    _structural = ("norm", "targeted", "loss", "training", "jit_compile")

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
        self.norm = self.threat_model.norm
        self.targeted = self._check_bool("targeted", targeted)
        self.loss = _validation.check_choice("loss", loss, set(LOSSES))
        if from_logits is not None:
            from_logits = self._check_bool("from_logits", from_logits)
        self.from_logits = from_logits
        self.training = self._check_bool("training", training)
        self.jit_compile = self._check_bool("jit_compile", jit_compile)
        if seed is not None:
            seed = _validation.check_int("seed", seed, minimum=0)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._functions = weakref.WeakKeyDictionary()
        self._model_info = weakref.WeakKeyDictionary()

    @staticmethod
    def _check_bool(name, value):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(_validation.invalid(name, "a bool", value))
        return bool(value)

    # ------------------------------------------------------------------ eps
    @property
    def eps(self):
        """The radius of the threat model (float, tensor or variable)."""
        return self.threat_model.eps

    @eps.setter
    def eps(self, value):
        self.threat_model.eps = value

    @property
    def value_range(self):
        return self.threat_model.value_range

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
            TypeError: if `x` is not floating point or `model` is not a
                Keras model.
            ValueError: for NaNs, inputs outside `value_range`, labels out
                of range or of the wrong batch size, a negative eps,
                unsupported model outputs, or `from_logits` contradicting the
                model.
        """
        x, y, eps = self._validate_call(model, x, y, eps)
        eager = tf.executing_eagerly()
        if eager:
            self._check_model_once(model, x, y)
        fn = self._get_function(model, y is None)
        args = (x, eps, self._step_size_tensor())
        if y is not None:
            args = (x, tf.convert_to_tensor(y), *args[1:])
        if eager:
            x_adv, summary = self._concrete(model, fn, args)(*args)
        else:
            x_adv, summary = fn(*args)
        if eager:
            # The value checks ran inside the attack graph (no extra device
            # round trip); a bad input raises here and its result is lost.
            self._check_summary(summary)
        return x_adv

    def perturb(self, model, x, y=None, eps=None, seed=None):
        """Graph-safe attack body for use inside a traced `train_step`.

        No eager input checks, no `tf.function` of its own: call it from
        code that is already being traced (custom train steps, callbacks).

        Args:
            model: The Keras model.
            x: Float tensor of inputs.
            y: Int labels `(batch,)` (targets if targeted) or None.
            eps: Optional float or `(batch,)` tensor overriding `self.eps`.
            seed: Optional int tensor of shape `(2,)`: a stateless seed (for
                distribution strategies). Defaults to the attack's
                `SeedGenerator`.

        Returns:
            `x_adv` with the dtype of `x`, gradient stopped.
        """
        eps = self.eps if eps is None else eps
        seed = self.seed_generator if seed is None else seed
        return self._perturb(model, x, y, eps, self._step_size_tensor(), seed)

    # --------------------------------------------------------- graph body
    def _perturb(self, model, x, y, eps, step_size, seed):
        dtype = x.dtype
        x = ops.cast(x, "float32")
        eps = ops.cast(eps, "float32")
        logits_fn = self._logits_fn(model)
        if y is None:
            if self.targeted:
                raise ValueError(
                    "A targeted attack needs `y`: the target classes. "
                    "Received: y=None"
                )
            y = ops.stop_gradient(ops.argmax(logits_fn(x), axis=-1))
        y = self._sparse_labels(y)
        x_adv = self._attack(logits_fn, x, y, eps, step_size, seed)
        x_adv = ops.stop_gradient(x_adv)
        return ops.cast(x_adv, dtype)

    def _attack(self, logits_fn, x, y, eps, step_size, seed):
        raise NotImplementedError

    def _step_size_tensor(self):
        """The step size as a float32 tensor; -1 means 'relative default'."""
        step_size = getattr(self, "step_size", None)
        return tf.constant(-1.0 if step_size is None else step_size, tf.float32)

    def _resolve_step_size(self, step_size, eps, default_factor):
        """`step_size` if given (>= 0), else `default_factor * eps`."""
        return ops.where(step_size >= 0.0, step_size, default_factor * eps)

    def _sparse_labels(self, y):
        y = ops.convert_to_tensor(y)
        if len(y.shape) == 2 and y.shape[-1] not in (None, 1):
            y = ops.argmax(y, axis=-1)
        elif len(y.shape) == 2:
            y = ops.reshape(y, [-1])
        return ops.cast(y, "int32")

    def _logits_fn(self, model):
        """Returns a `ModelLogits`: x -> float32 logits (graph-safe)."""
        return ModelLogits(
            model, self._resolve_from_logits(model), self.training
        )

    def _resolve_from_logits(self, model):
        """True/False when known, None to decide at run time in the graph."""
        info = self._model_info.get(model, {})
        if "from_logits" in info:
            return info["from_logits"]
        structure = output_activation(model)
        if self.from_logits is not None:
            if self.from_logits and structure == "softmax":
                raise ValueError(
                    "The model ends in a softmax (it outputs probabilities) "
                    "but the attack has from_logits=True. Pass "
                    "from_logits=False or from_logits=None (infer)."
                )
            if not self.from_logits and structure == "logits":
                raise ValueError(
                    "The model's last layer is a linear Dense layer (it "
                    "outputs logits) but the attack has from_logits=False. "
                    "Pass from_logits=True or from_logits=None (infer)."
                )
            return self.from_logits
        if structure == "softmax":
            return False
        if structure == "logits":
            return True
        return None

    def _loss_and_gradient(self, logits_fn, x, y):
        """Per-sample attack objective (ascended) and its input gradient.

        The objective is the loss for untargeted attacks and minus the loss
        towards the target for targeted ones, so every attack ascends it.
        See `ModelLogits.value_and_input_gradient` for the numerics.
        """
        loss_fn = LOSSES[self.loss]
        sign = -1.0 if self.targeted else 1.0

        def objective_fn(logits):
            return sign * loss_fn(y, logits)

        return logits_fn.value_and_input_gradient(objective_fn, x)

    def _objective_and_success(self, logits_fn, x, y):
        """Per-sample objective and attack success (no gradient)."""
        logits = logits_fn(x)
        objective = LOSSES[self.loss](y, logits)
        predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
        if self.targeted:
            return -objective, ops.equal(predicted, y)
        return objective, ops.not_equal(predicted, y)

    # ------------------------------------------------------ graph caching
    def _structure_key(self):
        return tuple(
            (name, repr(getattr(self, name))) for name in self._structural
        ) + (("step_size_is_none", getattr(self, "step_size", 0) is None),)

    def _get_function(self, model, labels_from_model):
        """One `tf.function` per (model, structure, y given or not)."""
        per_model = self._functions.setdefault(model, {})
        key = self._structure_key() + (("no_labels", labels_from_model),)
        fn = per_model.get(key)
        if fn is None:
            model_ref = weakref.ref(model)

            if labels_from_model:

                def run(x, eps, step_size):
                    x_adv = self._perturb(
                        model_ref(),
                        x,
                        None,
                        eps,
                        step_size,
                        self.seed_generator,
                    )
                    return x_adv, _value_summary(x)
            else:

                def run(x, y, eps, step_size):
                    x_adv = self._perturb(
                        model_ref(),
                        x,
                        y,
                        eps,
                        step_size,
                        self.seed_generator,
                    )
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
    def _validate_call(self, model, x, y, eps):
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
        eps = self.eps if eps is None else _validation.check_eps(eps)
        # A plain float32 tensor (a variable is read): one trace for all.
        eps = tf.cast(tf.convert_to_tensor(eps), tf.float32)
        eps_shape = tuple(eps.shape)
        if len(eps_shape) == 1 and tf.executing_eagerly():
            if eps_shape[0] != x.shape[0]:
                raise ValueError(
                    _validation.invalid(
                        "eps",
                        f"a scalar or shape ({x.shape[0]},) matching x",
                        eps_shape,
                    )
                )
        return x, y, eps

    def _check_x(self, x):
        x_dtype = getattr(x, "dtype", None)
        if x_dtype is None:
            x = np.asarray(x)
            x_dtype = x.dtype
        dtype = tf.as_dtype(x_dtype)
        if not dtype.is_floating:
            raise TypeError(
                "Attacks need floating-point inputs in `value_range`. "
                f"Received: x with dtype {dtype.name}. Convert explicitly, "
                "e.g. `x.astype('float32') / 255.0` for uint8 images."
            )
        return tf.convert_to_tensor(x)

    def _check_y(self, y, x):
        y = ops.convert_to_tensor(y)
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
        """Eager, once per model: output shape and from_logits; one-hot y."""
        info = self._model_info.get(model)
        if info is None:
            outputs = _check_outputs(model(x[:32], training=False))
            outputs = ops.cast(outputs, "float32")
            looks_prob = bool(_looks_like_probabilities(outputs))
            mode = self._resolve_from_logits(model)
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
        if len(y.shape) == 2 and y.shape[-1] not in (1, num_classes):
            raise ValueError(
                f"One-hot labels have {y.shape[-1]} classes but the model "
                f"outputs {num_classes}."
            )
        # Labels are small: check them on the host before the attack runs
        # (out-of-range labels would fail inside the loss op).
        labels = np.asarray(self._sparse_labels(y))
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(
                f"Labels must be in [0, {num_classes}). Received: "
                f"labels in [{int(labels.min())}, {int(labels.max())}]"
            )

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
            "loss": self.loss,
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
