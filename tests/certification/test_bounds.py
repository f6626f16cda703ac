"""Bounds: sound first, then exact where the math says so, then tight.

* Soundness: for random points, corners and PGD points (a margin loss
  targeting each class) inside the ball, every logit stays inside its
  interval and every margin `z_y - z_j` above its lower bound, on one tiny
  model per supported layer, a small CNN and a residual block, in float32
  and under mixed_float16, for IBP and (where it applies) CROWN-IBP.
* The IBP intervals equal an independent float64 numpy propagation
  written here, layer by layer from the layers' weights.
* Closed forms: one Dense layer's range over a box and an L2 ball; the
  "line model" whose verified accuracy is known exactly; eps=0 gives the
  logits.
* CROWN-IBP is never looser than IBP and strictly tighter on the MLP and
  the CNN; layers without a rule are refused by name.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv.certification import _bounder
from keras_adv.certification import interval_bounds
from keras_adv.certification import margin_bounds
from keras_adv.certification import verified_accuracy
from keras_adv.certification import verified_mask

CLASSES = 3


# ------------------------------------------------- float64 numpy reference
def _np_activation(name, x):
    return {
        "linear": lambda v: v,
        "relu": lambda v: np.maximum(v, 0.0),
        "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
        "tanh": np.tanh,
        "elu": lambda v: np.where(v > 0, v, np.expm1(np.minimum(v, 0))),
        "softplus": lambda v: np.logaddexp(0.0, v),
        "leaky_relu": lambda v: np.where(v > 0, v, 0.2 * v),
    }[name](x)


def _np_affine(lo, up, fn, fn_abs, offset=0.0):
    centre, radius = (lo + up) / 2.0, (up - lo) / 2.0
    c, r = fn(centre) + offset, fn_abs(radius)
    return c - r, c + r


def _dilate(kernel, rate):
    """A kernel with `rate - 1` zeros between its taps (spatial axes)."""
    spatial = kernel.ndim - 2
    shape = [(k - 1) * r + 1 for k, r in zip(kernel.shape, rate)]
    out = np.zeros(shape + list(kernel.shape[spatial:]))
    out[tuple(slice(None, None, r) for r in rate)] = kernel
    return out


def _np_conv1d(x, kernel, strides, padding, rate):
    """NWC convolution (valid or causal) through the 2-D one."""
    kernel = _dilate(kernel, rate)
    if padding == "causal":
        x = np.pad(x, ((0, 0), (kernel.shape[0] - 1, 0), (0, 0)))
    out = _np_conv(x[:, None], kernel[None], (1,) + tuple(strides), "valid")
    return out[:, 0]


def _np_conv(x, kernel, strides, padding, rate=(1, 1)):
    """NHWC convolution, TensorFlow's padding rule, by explicit windows."""
    kernel = _dilate(kernel, rate)
    kh, kw = kernel.shape[:2]
    sh, sw = strides
    if padding == "same":
        pads = []
        for size, k, s in ((x.shape[1], kh, sh), (x.shape[2], kw, sw)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh = (x.shape[1] - kh) // sh + 1
    ow = (x.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, kernel.shape[-1]))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * sh : i * sh + kh, j * sw : j * sw + kw, :]
            out[:, i, j] = np.einsum("bhwc,hwcf->bf", patch, kernel)
    return out


def _np_pool(x, size, strides, reduce):
    """NHWC valid pooling by explicit windows."""
    oh = (x.shape[1] - size[0]) // strides[0] + 1
    ow = (x.shape[2] - size[1]) // strides[1] + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            i0, j0 = i * strides[0], j * strides[1]
            window = x[:, i0 : i0 + size[0], j0 : j0 + size[1], :]
            out[:, i, j] = reduce(window, axis=(1, 2))
    return out


def _np_layer(layer, inputs):
    """The float64 interval of one layer's output."""
    kind = type(layer).__name__
    weights = [np.asarray(w, "float64") for w in layer.get_weights()]
    (lo, up) = inputs[0]
    if kind in ("Dense", "Conv1D", "Conv2D"):
        kernel = weights[0]
        bias = weights[1] if layer.use_bias else 0.0
        if kind == "Dense":
            lo, up = _np_affine(
                lo, up, lambda v: v @ kernel, lambda v: v @ np.abs(kernel), bias
            )
        else:
            conv = _np_conv if kind == "Conv2D" else _np_conv1d
            args = (layer.strides, layer.padding, layer.dilation_rate)
            lo, up = _np_affine(
                lo,
                up,
                lambda v: conv(v, kernel, *args),
                lambda v: conv(v, np.abs(kernel), *args),
                bias,
            )
        name = layer.activation.__name__
        return _np_activation(name, lo), _np_activation(name, up)
    if kind == "Activation":
        name = layer.activation.__name__
        return _np_activation(name, lo), _np_activation(name, up)
    if kind == "ReLU":
        return np.maximum(lo, 0), np.maximum(up, 0)
    if kind == "LeakyReLU":
        slope = layer.negative_slope
        return np.where(lo > 0, lo, slope * lo), np.where(
            up > 0, up, slope * up
        )
    if kind == "BatchNormalization":
        gamma, beta, mean, var = weights
        scale = gamma / np.sqrt(var + layer.epsilon)
        return _np_affine(
            lo,
            up,
            lambda v: v * scale,
            lambda v: v * np.abs(scale),
            beta - mean * scale,
        )
    if kind == "Rescaling":
        scale = float(layer.scale)
        return _np_affine(
            lo, up, lambda v: v * scale, lambda v: v * abs(scale), layer.offset
        )
    if kind == "Normalization":
        mean = np.asarray(layer.mean, "float64")
        std = np.sqrt(np.asarray(layer.variance, "float64"))
        return (lo - mean) / std, (up - mean) / std
    if kind in ("Flatten", "Reshape"):
        shape = (-1,) if kind == "Flatten" else layer.target_shape
        return (
            lo.reshape((len(lo),) + tuple(shape)),
            up.reshape((len(up),) + tuple(shape)),
        )
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        reduce = np.max if kind == "MaxPooling2D" else np.mean
        args = (layer.pool_size, layer.strides, reduce)
        return _np_pool(lo, *args), _np_pool(up, *args)
    if kind == "GlobalAveragePooling2D":
        return lo.mean(axis=(1, 2)), up.mean(axis=(1, 2))
    if kind == "GlobalMaxPooling2D":
        return lo.max(axis=(1, 2)), up.max(axis=(1, 2))
    if kind == "ELU":
        return tuple(
            np.where(v > 0, v, layer.alpha * np.expm1(np.minimum(v, 0)))
            for v in (lo, up)
        )
    if kind == "Add":
        return sum(b[0] for b in inputs), sum(b[1] for b in inputs)
    if kind == "Subtract":
        (lo2, up2) = inputs[1]
        return lo - up2, up - lo2
    if kind == "Average":
        return tuple(np.mean([b[i] for b in inputs], axis=0) for i in (0, 1))
    if kind in ("Maximum", "Minimum"):
        reduce = np.max if kind == "Maximum" else np.min
        return tuple(reduce([b[i] for b in inputs], axis=0) for i in (0, 1))
    if kind == "Concatenate":
        return tuple(
            np.concatenate([b[i] for b in inputs], axis=layer.axis)
            for i in (0, 1)
        )
    if kind in ("Dropout", "InputLayer"):
        return lo, up
    raise AssertionError(f"no numpy reference for {kind}")


def numpy_interval(model, lo, up):
    """Float64 IBP through a Sequential or Functional model."""
    if isinstance(model, keras.Sequential):
        bounds = (lo, up)
        for layer in model.layers:
            bounds = _np_layer(layer, [bounds])
        return bounds
    tensors = {id(model.inputs[0]): (lo, up)}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        inputs = tf.nest.flatten(layer.input)
        tensors[id(layer.output)] = _np_layer(
            layer, [tensors[id(t)] for t in inputs]
        )
    return tensors[id(model.outputs[0])]


# ---------------------------------------------------------------- models
def _head(x):
    return keras.layers.Dense(CLASSES, name="logits")(x)


def _sequential(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers, _head_layer()])


def _head_layer():
    return keras.layers.Dense(CLASSES, name="logits")


def _conv(**kwargs):
    return keras.layers.Conv2D(3, 3, padding="same", **kwargs)


def _batchnorm_model():
    bn = keras.layers.BatchNormalization()
    model = _sequential((5,), keras.layers.Dense(6), bn, keras.layers.ReLU())
    rng = np.random.default_rng(1)
    bn.gamma.assign(rng.uniform(-2, 2, 6))  # negative scales flip intervals
    bn.beta.assign(rng.normal(size=6))
    bn.moving_mean.assign(rng.normal(size=6))
    bn.moving_variance.assign(rng.uniform(0.2, 3, 6))
    return model


def _residual_dense():
    inputs = keras.Input((5,))
    h = keras.layers.Dense(6, activation="relu")(inputs)
    h = keras.layers.Add()([h, keras.layers.Dense(6)(h)])
    h = keras.layers.ReLU()(h)
    return keras.Model(inputs, _head(h))


def _merging(with_max_min):
    inputs = keras.Input((5,))
    a = keras.layers.Dense(6)(inputs)
    b = keras.layers.Dense(6, activation="relu")(inputs)
    merged = [
        keras.layers.Subtract()([a, b]),
        keras.layers.Average()([a, b]),
    ]
    if with_max_min:
        merged += [
            keras.layers.Maximum()([a, b]),
            keras.layers.Minimum()(merged[:2]),
        ]
    h = keras.layers.ReLU()(keras.layers.Concatenate()(merged))
    return keras.Model(inputs, _head(h))


def small_cnn():
    return _sequential(
        (8, 8, 1),
        keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
    )


def residual_block():
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    skip = h
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(4, 3, padding="same")(h)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(keras.layers.Add()([h, skip]))
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, _head(h))
    rng = np.random.default_rng(2)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.gamma.assign(rng.uniform(-1.5, 1.5, 4))
            layer.moving_mean.assign(rng.normal(size=4) * 0.1)
            layer.moving_variance.assign(rng.uniform(0.5, 2, 4))
    return model


def _normalization_model():
    norm = keras.layers.Normalization(
        mean=[0.5, 0.4, 0.6, 0.5, 0.3], variance=[0.1, 0.2, 0.05, 1.0, 0.3]
    )
    return _sequential((5,), norm, keras.layers.Dense(6, activation="relu"))


# name -> (builder, whether CROWN-IBP applies)
MODELS = {
    "dense_relu": (
        lambda: _sequential((5,), keras.layers.Dense(6, activation="relu")),
        True,
    ),
    **{
        f"dense_{act}": (
            lambda act=act: _sequential(
                (5,), keras.layers.Dense(6, activation=act)
            ),
            act in ("linear", "leaky_relu"),
        )
        for act in ("sigmoid", "tanh", "elu", "softplus", "leaky_relu")
    },
    "dense_linear": (
        lambda: _sequential((5,), keras.layers.Dense(6), keras.layers.Dense(4)),
        True,
    ),
    "relu_layer": (
        lambda: _sequential((5,), keras.layers.Dense(6), keras.layers.ReLU()),
        True,
    ),
    "leaky_relu_layer": (
        lambda: _sequential(
            (5,), keras.layers.Dense(6), keras.layers.LeakyReLU(0.1)
        ),
        True,
    ),
    "activation_layer": (
        lambda: _sequential(
            (5,), keras.layers.Dense(6), keras.layers.Activation("tanh")
        ),
        False,
    ),
    "conv2d_same_strided": (
        lambda: _sequential(
            (6, 6, 2),
            keras.layers.Conv2D(3, 3, strides=2, padding="same"),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
        ),
        True,
    ),
    "conv2d_valid_relu": (
        lambda: _sequential(
            (6, 6, 2),
            keras.layers.Conv2D(3, (2, 3), strides=(1, 2), activation="relu"),
            keras.layers.Flatten(),
        ),
        True,
    ),
    "conv2d_dilated": (
        lambda: _sequential(
            (6, 6, 2),
            keras.layers.Conv2D(3, 2, dilation_rate=2, activation="relu"),
            keras.layers.Flatten(),
        ),
        True,
    ),
    "conv1d_causal_dilated": (
        lambda: _sequential(
            (8, 2),
            keras.layers.Conv1D(
                3, 3, padding="causal", dilation_rate=2, activation="relu"
            ),
            keras.layers.Conv1D(2, 2, strides=2),
            keras.layers.Flatten(),
        ),
        True,
    ),
    "reshape": (
        lambda: _sequential(
            (6, 6, 2),
            keras.layers.Reshape((12, 6)),
            keras.layers.Dense(4, activation="relu"),  # on (batch, 12, 6)
            keras.layers.Flatten(),
        ),
        True,
    ),
    "max_pooling": (
        lambda: _sequential(
            (6, 6, 2),
            _conv(activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
        ),
        False,
    ),
    "average_pooling": (
        lambda: _sequential(
            (6, 6, 2),
            _conv(activation="relu"),
            keras.layers.AveragePooling2D(2, strides=1),
            keras.layers.Flatten(),
        ),
        True,
    ),
    "global_average_pooling": (
        lambda: _sequential(
            (6, 6, 2),
            _conv(activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ),
        True,
    ),
    "global_max_pooling": (
        lambda: _sequential(
            (6, 6, 2),
            _conv(activation="relu"),
            keras.layers.GlobalMaxPooling2D(),
        ),
        False,
    ),
    "batch_normalization": (_batchnorm_model, True),
    "rescaling": (
        lambda: _sequential(
            (5,),
            keras.layers.Rescaling(-2.0, offset=0.5),
            keras.layers.Dense(6, activation="relu"),
        ),
        True,
    ),
    "normalization": (_normalization_model, True),
    "add_residual": (_residual_dense, True),
    "subtract_average_concatenate": (lambda: _merging(False), True),
    "maximum_minimum": (lambda: _merging(True), False),
    "elu_layer": (
        lambda: _sequential(
            (5,), keras.layers.Dense(6), keras.layers.ELU(alpha=0.5)
        ),
        False,
    ),
    "dropout": (
        lambda: _sequential(
            (5,),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dropout(0.5),
        ),
        True,
    ),
    "input_layer": (
        lambda: keras.Sequential(
            [
                keras.layers.InputLayer(shape=(5,)),
                keras.layers.Dense(6, activation="relu"),
                _head_layer(),
            ]
        ),
        True,
    ),
    "small_cnn": (small_cnn, True),
    "residual_block": (residual_block, True),
}


def build(name, seed=0):
    keras.utils.set_random_seed(seed)
    return MODELS[name][0]()


def inputs_for(model, n=4, seed=0):
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, size=(n,) + shape).astype("float32")


def logits(model, x):
    return np.asarray(model(x), "float64")


# ------------------------------------------------------- the ball's points
def points_in_ball(model, x, eps, seed=0):
    """`(points, index of their centre)`: random, corners and PGD points."""
    rng = np.random.default_rng(seed)
    n = len(x)
    reps = 16
    centre = np.repeat(x, reps, axis=0)
    noise = rng.uniform(-eps, eps, size=centre.shape)
    corners = eps * rng.choice([-1.0, 1.0], size=centre.shape)
    attack = keras_adv.attacks.PGD(
        eps=eps, steps=20, targeted=True, loss="margin", seed=seed
    )
    targets = np.tile(np.arange(CLASSES), n)
    x_targets = np.repeat(x, CLASSES, axis=0)
    adversarial = np.asarray(attack(model, x_targets, targets))
    points = np.concatenate(
        [
            np.clip(centre + noise, 0.0, 1.0),
            np.clip(centre + corners, 0.0, 1.0),
            adversarial,
        ]
    ).astype("float32")
    owner = np.concatenate(
        [np.repeat(np.arange(n), reps)] * 2 + [np.repeat(np.arange(n), CLASSES)]
    )
    return points, owner


def assert_sound(model, x, eps, methods, tolerance=1e-5):
    lower, upper = (
        np.asarray(b, "float64") for b in interval_bounds(model, x, eps)
    )
    points, owner = points_in_ball(model, x, eps)
    assert np.abs(points - x[owner]).max() <= eps + 1e-6
    z = logits(model, points)
    slack = tolerance * (1.0 + np.abs(z))
    assert np.all(z >= lower[owner] - slack), "a logit below its lower bound"
    assert np.all(z <= upper[owner] + slack), "a logit above its upper bound"
    y = logits(model, x).argmax(axis=1)
    margins = z[np.arange(len(z)), y[owner]][:, None] - z
    for method in methods:
        bound = np.asarray(margin_bounds(model, x, y, eps, method=method))
        margin_slack = tolerance * (1.0 + np.abs(z).max(axis=1, keepdims=True))
        assert np.all(margins >= bound[owner] - margin_slack), method
    return lower, upper


# --------------------------------------------------------------- soundness
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_output_stays_inside_its_bounds(name):
    model = build(name)
    x = inputs_for(model)
    methods = ["ibp", "crown_ibp"] if MODELS[name][1] else ["ibp"]
    lower, upper = assert_sound(model, x, eps=0.05, methods=methods)
    # ... and the intervals are the float64 numpy propagation's.
    ref_lower, ref_upper = numpy_interval(
        model, np.clip(x - 0.05, 0, 1), np.clip(x + 0.05, 0, 1)
    )
    scale = 1e-5 * (1.0 + np.abs(ref_upper) + np.abs(ref_lower))
    np.testing.assert_array_less(np.abs(lower - ref_lower), scale)
    np.testing.assert_array_less(np.abs(upper - ref_upper), scale)


@pytest.mark.parametrize(
    "name", ["dense_relu", "batch_normalization", "small_cnn", "residual_block"]
)
def test_sound_under_mixed_float16(name):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = build(name)
    x = inputs_for(model)
    lower, upper = interval_bounds(model, x, 0.05)
    assert lower.dtype == tf.float32 and upper.dtype == tf.float32
    # The bounds are the float32 network's (float32 copies of the weights,
    # float32 math): the float64 propagation gives the same numbers ...
    ref_lower, _ = numpy_interval(
        model, np.clip(x - 0.05, 0, 1), np.clip(x + 0.05, 0, 1)
    )
    np.testing.assert_allclose(lower, ref_lower, rtol=1e-5, atol=1e-5)
    # ... and the float16 model stays inside them up to float16 rounding.
    assert_sound(model, x, 0.05, ["ibp", "crown_ibp"], tolerance=1e-2)


def test_conv3d_is_sound_and_exact_at_eps_zero():
    keras.utils.set_random_seed(0)
    model = _sequential(
        (4, 4, 4, 1),
        keras.layers.Conv3D(2, 2, strides=(1, 2, 1), activation="relu"),
        keras.layers.Flatten(),
    )
    x = inputs_for(model)
    assert_sound(model, x, 0.05, ["ibp", "crown_ibp"])
    lower, upper = interval_bounds(model, x, 0.0)
    np.testing.assert_allclose(lower, logits(model, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upper, logits(model, x), rtol=1e-5, atol=1e-5)


def test_apgd_points_stay_inside_the_bounds():
    model = build("small_cnn")
    x = inputs_for(model, n=8)
    y = logits(model, x).argmax(axis=1)
    lower, upper = (np.asarray(b) for b in interval_bounds(model, x, 0.1))
    bound = np.asarray(margin_bounds(model, x, y, 0.1, method="crown_ibp"))
    attack = keras_adv.attacks.APGD(eps=0.1, steps=30, loss="dlr", seed=0)
    z = logits(model, np.asarray(attack(model, x, y)))
    assert np.all(z >= lower - 1e-5) and np.all(z <= upper + 1e-5)
    margins = z[np.arange(len(z)), y][:, None] - z
    assert np.all(margins >= bound - 1e-5)


def test_l2_balls_are_sound():
    model = build("small_cnn")
    x = inputs_for(model)
    y = logits(model, x).argmax(axis=1)
    eps = 0.5
    attack = keras_adv.attacks.PGD(
        eps=eps, steps=20, norm="l2", targeted=True, loss="margin", seed=0
    )
    targets = np.tile(np.arange(CLASSES), len(x))
    owner = np.repeat(np.arange(len(x)), CLASSES)
    z = logits(model, np.asarray(attack(model, x[owner], targets)))
    lower, upper = interval_bounds(model, x, eps, norm="l2")
    assert np.all(z >= np.asarray(lower)[owner] - 1e-5)
    assert np.all(z <= np.asarray(upper)[owner] + 1e-5)
    margins = z[np.arange(len(z)), y[owner]][:, None] - z
    for method in ("ibp", "crown_ibp"):
        bound = np.asarray(margin_bounds(model, x, y, eps, method, norm="l2"))
        assert np.all(margins >= bound[owner] - 1e-5), method


def test_full_crown_is_sound_and_not_looser_than_ibp():
    model = build("dense_relu")
    x = inputs_for(model, n=8)
    assert_sound(model, x, 0.1, ["crown"])
    y = logits(model, x).argmax(axis=1)
    ibp = np.asarray(margin_bounds(model, x, y, 0.1, method="ibp"))
    crown = np.asarray(margin_bounds(model, x, y, 0.1, method="crown"))
    assert np.all(crown >= ibp - 1e-6)


# ------------------------------------------------------------ closed forms
@pytest.mark.parametrize("name", sorted(MODELS))
def test_eps_zero_gives_the_logits(name):
    model = build(name)
    x = inputs_for(model)
    z = logits(model, x)
    lower, upper = interval_bounds(model, x, 0.0)
    np.testing.assert_allclose(lower, z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upper, z, rtol=1e-5, atol=1e-5)
    y = z.argmax(axis=1)
    exact = z[np.arange(len(z)), y][:, None] - z
    methods = ["ibp", "crown_ibp"] if MODELS[name][1] else ["ibp"]
    for method in methods:
        bound = margin_bounds(model, x, y, 0.0, method=method)
        np.testing.assert_allclose(bound, exact, rtol=1e-5, atol=1e-5)


def _dense_model(kernel, bias):
    return keras.Sequential(
        [
            keras.Input((kernel.shape[0],)),
            keras.layers.Dense(
                kernel.shape[1],
                kernel_initializer=keras.initializers.Constant(kernel),
                bias_initializer=keras.initializers.Constant(bias),
            ),
        ]
    )


def test_one_dense_layer_is_bounded_exactly():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    b = rng.normal(size=3)
    model = _dense_model(w, b)
    x = rng.uniform(size=(5, 4)).astype("float32")
    centre = x @ w + b
    # L-inf: W x + b -+ eps ||W_col||_1, reached at x -+ eps sign(W_col).
    lower, upper = interval_bounds(model, x, 0.1, value_range=None)
    radius = 0.1 * np.abs(w).sum(axis=0)
    np.testing.assert_allclose(lower, centre - radius, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upper, centre + radius, rtol=1e-5, atol=1e-5)
    # L2: the dual norm ||W_col||_2.
    lower, upper = interval_bounds(model, x, 0.1, "l2", value_range=None)
    radius = 0.1 * np.sqrt((w**2).sum(axis=0))
    np.testing.assert_allclose(lower, centre - radius, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(upper, centre + radius, rtol=1e-5, atol=1e-5)
    # Margins of a linear model: exact for CROWN in both norms, and for
    # IBP with the layer folded into the margin in L-inf.
    y = centre.argmax(axis=1)
    diff = w[:, y].T[:, None, :] - w.T[None]  # (batch, classes, features)
    exact = centre[np.arange(5), y][:, None] - centre
    for norm, dual in (("linf", np.abs(diff).sum(-1)), ("l2", None)):
        if dual is None:
            dual = np.sqrt((diff**2).sum(-1))
        expected = exact - 0.1 * dual
        methods = ("ibp", "crown_ibp") if norm == "linf" else ("crown_ibp",)
        for method in methods:
            bound = margin_bounds(model, x, y, 0.1, method, norm, None)
            np.testing.assert_allclose(bound, expected, rtol=1e-5, atol=1e-5)


def line_model():
    """`z_0 - z_1 = 2 x - 1`: class 0 iff x > 0.5 (one feature)."""
    return _dense_model(np.array([[1.0, -1.0]]), np.array([-0.5, 0.5]))


def test_verified_accuracy_of_the_line_model_is_known():
    # Verified at eps iff |x - 0.5| > eps (and correctly classified).
    model = line_model()
    x = np.array([[0.05], [0.3], [0.45], [0.55], [0.75], [1.0]], "float32")
    y = np.array([1, 1, 1, 0, 0, 1])  # the last one is misclassified
    mask = verified_mask(model, x, y, 0.2)
    np.testing.assert_array_equal(
        mask, [True, False, False, False, True, False]
    )
    assert verified_accuracy(model, x, y, 0.2, batch_size=4) == pytest.approx(
        2 / 6
    )
    assert verified_accuracy(model, x, y, 0.0) == pytest.approx(5 / 6)
    # One-hot labels and per-sample eps.
    one_hot = np.eye(2)[y]
    mask = verified_mask(model, x, one_hot, np.array([0.4, 0.1, 0, 0, 0.3, 0]))
    np.testing.assert_array_equal(mask, [True, True, True, True, False, False])


def test_a_final_softmax_is_bounded_before_it():
    keras.utils.set_random_seed(0)
    body = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(6, activation="relu")]
    )
    head = keras.layers.Dense(CLASSES)
    with_softmax = keras.Sequential([body, head, keras.layers.Softmax()])
    plain = keras.Sequential([body, head])
    x = inputs_for(plain)
    for a, b in zip(
        interval_bounds(with_softmax, x, 0.05), interval_bounds(plain, x, 0.05)
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # Margins of log-probabilities are the logits' margins.
    y = logits(plain, x).argmax(axis=1)
    assert_sound(plain, x, 0.05, ["ibp", "crown_ibp"])
    np.testing.assert_allclose(
        margin_bounds(with_softmax, x, y, 0.05, "crown_ibp"),
        margin_bounds(plain, x, y, 0.05, "crown_ibp"),
        rtol=1e-6,
    )


# ---------------------------------------------------------------- tightness
@pytest.mark.parametrize("name", ["dense_relu", "small_cnn", "residual_block"])
def test_crown_ibp_is_at_least_as_tight_as_ibp(name):
    model = build(name)
    x = inputs_for(model, n=8)
    y = logits(model, x).argmax(axis=1)
    ibp = np.asarray(margin_bounds(model, x, y, 0.02, method="ibp"))
    crown = np.asarray(margin_bounds(model, x, y, 0.02, method="crown_ibp"))
    others = np.arange(CLASSES)[None] != y[:, None]
    assert np.all(crown >= ibp)
    assert np.mean(crown[others] - ibp[others]) > 0.0  # strictly, on average
    pure = _pure_crown_ibp(model, x, y, 0.02)
    assert np.mean(pure[others] > ibp[others]) > 0.5
    # The old spelling "crown-ibp" is an alias of the same method.
    old = margin_bounds(model, x, y, 0.02, method="CROWN-IBP")
    np.testing.assert_array_equal(np.asarray(old), crown)


def _pure_crown_ibp(model, x, y, eps):
    """CROWN-IBP alone (without the max with IBP), for the comparison."""
    bounder = _bounder.bounder(model, "crown_ibp")
    x = tf.constant(x)
    eps = tf.constant(eps, tf.float32)
    bounds = bounder.propagate(x, eps, "linf", (0.0, 1.0))
    spec = np.eye(CLASSES)[y][:, None, :] - np.eye(CLASSES)[None]
    a, constant = bounder._backward(
        tf.constant(spec, tf.float32), bounder.plan.output, bounds
    )
    return np.asarray(
        bounder._concretize(a, constant, x, eps, "linf", (0.0, 1.0))
    )


def test_untrained_models_at_large_eps_are_not_verified():
    model = build("small_cnn")
    x = inputs_for(model, n=8)
    y = logits(model, x).argmax(axis=1)
    for method in ("ibp", "crown_ibp"):
        assert verified_accuracy(model, x, y, 0.3, method=method) == 0.0


# ------------------------------------------------------------- refusals
def _raises_naming(error, layer_name, class_name, fn):
    with pytest.raises(error) as info:
        fn()
    assert repr(layer_name) in str(info.value)
    assert class_name in str(info.value)


@pytest.mark.parametrize(
    "layer,class_name",
    [
        (keras.layers.LayerNormalization(name="odd"), "LayerNormalization"),
        (keras.layers.Dense(6, activation="gelu", name="odd"), "Dense"),
        (keras.layers.Dense(6, activation="softmax", name="odd"), "Dense"),
        (keras.layers.PReLU(name="odd"), "PReLU"),
        (keras.layers.Activation("silu", name="odd"), "silu"),
        (keras.layers.UnitNormalization(name="odd"), "UnitNormalization"),
    ],
)
def test_unsupported_layers_are_refused_by_name(layer, class_name):
    model = _sequential((5,), layer)
    _raises_naming(
        NotImplementedError,
        "odd",
        class_name,
        lambda: interval_bounds(model, np.full((2, 5), 0.5, "float32"), 0.1),
    )


def test_a_subclassed_dense_is_refused_by_name():
    class MyDense(keras.layers.Dense):
        def call(self, inputs):
            return -super().call(inputs)

    model = _sequential((5,), MyDense(4, name="mine"))
    _raises_naming(
        NotImplementedError,
        "mine",
        "MyDense",
        lambda: interval_bounds(model, np.zeros((1, 5), "float32"), 0.1),
    )


def test_crown_ibp_refuses_layers_without_a_relaxation_by_name():
    model = build("max_pooling")
    x = inputs_for(model)
    pool = model.layers[1]
    _raises_naming(
        NotImplementedError,
        pool.name,
        "MaxPooling2D",
        lambda: margin_bounds(model, x, [0] * 4, 0.1, method="crown_ibp"),
    )
    margin_bounds(model, x, [0] * 4, 0.1, method="ibp")  # IBP bounds it
    model = build("dense_sigmoid")
    _raises_naming(
        NotImplementedError,
        model.layers[0].name,
        "sigmoid",
        lambda: margin_bounds(model, inputs_for(model), [0] * 4, 0.1, "crown"),
    )


def test_unreadable_models_are_refused():
    inputs = keras.Input((5,))
    h = keras.layers.Dense(4, name="d")(inputs)
    ops_model = keras.Model(inputs, _head(h * 2.0))
    with pytest.raises(NotImplementedError, match="keras.ops"):
        interval_bounds(ops_model, np.zeros((1, 5), "float32"), 0.1)

    shared = keras.layers.Dense(5, name="shared")
    h = shared(shared(inputs))
    with pytest.raises(ValueError, match="shared"):
        interval_bounds(keras.Model(inputs, _head(h)), np.zeros((1, 5)), 0.1)

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(CLASSES)

        def call(self, x):
            return self.dense(x)

    model = Subclassed()
    model(np.zeros((1, 5), "float32"))
    with pytest.raises(ValueError, match="subclassed"):
        interval_bounds(model, np.zeros((1, 5), "float32"), 0.1)
    with pytest.raises(TypeError, match="model"):
        interval_bounds(lambda x: x, np.zeros((1, 5), "float32"), 0.1)

    body = keras.Sequential(
        [keras.Input((5,)), keras.layers.Dense(4, activation="softmax")]
    )
    inner_softmax = keras.Sequential([body, keras.layers.Dense(CLASSES)])
    with pytest.raises(NotImplementedError, match="softmax before"):
        interval_bounds(inner_softmax, np.zeros((1, 5), "float32"), 0.1)


def test_arguments_are_checked_naming_them():
    model = line_model()
    x = np.array([[0.2], [0.8]], "float32")
    cases = [
        (lambda: interval_bounds(model, x, 0.1, norm="l1"), "norm"),
        (lambda: interval_bounds(model, x, -0.1), "eps"),
        (lambda: interval_bounds(model, x, [0.1, 0.1, 0.1]), "eps"),
        (
            lambda: interval_bounds(model, x, 0.1, value_range=(1, 0)),
            "value_range",
        ),
        (lambda: interval_bounds(model, x * 10, 0.1), "x"),
        (lambda: interval_bounds(model, np.zeros((2, 3)), 0.1), "x"),
        (lambda: margin_bounds(model, x, [0, 1], 0.1, method="lp"), "method"),
        (lambda: margin_bounds(model, x, [0, 2], 0.1), "Labels"),
        (lambda: margin_bounds(model, x, [0.5, 1], 0.1), "y"),
        (
            lambda: verified_accuracy(model, x, [0, 1], 0.1, batch_size=0),
            "batch_size",
        ),
        (lambda: verified_accuracy(model, x, [0], 0.1), "y"),
    ]
    for fn, name in cases:
        with pytest.raises(ValueError, match=name):
            fn()
    with pytest.raises(TypeError, match="x"):
        interval_bounds(model, np.array([[0], [1]]), 0.1)


# ------------------------------------------------------------ graph-safety
def test_graph_safe_and_traced_once_per_model():
    model = build("dense_relu")
    x = inputs_for(model)
    y = logits(model, x).argmax(axis=1)
    eager = np.asarray(verified_mask(model, x, y, 0.01, method="crown_ibp"))

    @tf.function
    def in_a_graph(x, y, eps):
        return verified_mask(model, x, y, eps, method="crown_ibp")

    np.testing.assert_array_equal(in_a_graph(x, y, tf.constant(0.01)), eager)
    for eps in (0.0, 0.02, 0.3):
        margin_bounds(model, x, y, eps, method="crown_ibp")
        interval_bounds(model, x, eps)
    bounder = _bounder.BOUNDERS[model]
    counts = [
        f.experimental_get_tracing_count() for f in bounder.functions.values()
    ]
    assert counts == [1, 1]


# ------------------------------------------------------------------ docs
def test_the_docs_example_runs_as_written(capsys):
    """The python block of docs/certification.md's "Bounds" section."""
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "certification.md"
    section = page.read_text().split("\n## Bounds\n", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace = {}
    exec(compile(block, str(page), "exec"), namespace)
    for eps, (ibp, crown_ibp, pgd) in namespace["results"].items():
        assert ibp <= crown_ibp <= pgd, eps
    assert namespace["results"][0.1][1] > namespace["results"][0.1][0]
    # The figures the page shows (up to another CPU's float rounding).
    printed = capsys.readouterr().out.splitlines()[-3:]
    shown = section.split("```text\n", 1)[1].split("```", 1)[0].split("\n")
    for ours, theirs in zip(printed, shown):
        assert ours.split(":")[0] == theirs.split(":")[0]
        np.testing.assert_allclose(
            [float(v) for v in re.findall(r"\d\.\d{3}", ours)],
            [float(v) for v in re.findall(r"\d\.\d{3}", theirs)],
            atol=0.02,
        )
