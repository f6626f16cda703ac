"""Benchmark: bound propagation against a plain forward pass of the model.

For each model, a batch of MNIST-shaped inputs goes through the model's
compiled forward pass (`model(x, training=False)` in one `tf.function`)
and through keras_adv's compiled bound graphs: interval bounds of the
logits (IBP: a centre and a radius pass per affine layer, so about two
forward passes), IBP margins (the last layer folded into the margin) and,
where the model allows it, CROWN-IBP margins (IBP, then one backward
linear pass per class). The public functions are timed as a user calls
them (input checks included), and the compiled graph alone. Runs are
interleaved (forward, each bound, forward, ...) after a warm-up; the
figure is the ratio of the medians to the forward pass.

Models: `keras_adv.models.small_cnn()` (two conv + max-pool blocks, 57k
parameters; max pooling has no CROWN relaxation, so IBP only) and Gowal
et al.'s "small" IBP model (conv 16 4x4 stride 2, conv 32 4x4 stride 1,
dense 100, dense 10; all ReLU).

    python dev.py bench bench/bounds.py [--repeats 15] [--batch 256]

(tiny smoke run: `--repeats 1 --batch 4`). Randomized smoothing's
`certify` throughput is measured by `bench/smoothing.py`.
"""

import argparse
import os
import platform
import statistics
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import CLOCKS  # noqa: E402
from _timing import add_clock_argument  # noqa: E402

from keras_adv.certification import _bounder  # noqa: E402
from keras_adv.certification import interval_bounds  # noqa: E402
from keras_adv.certification import margin_bounds  # noqa: E402
from keras_adv.models import small_cnn  # noqa: E402


def gowal_small(seed=0):
    """Gowal et al. 2018's small model for MNIST (their Table 1)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 4, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 4, strides=1, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def cases(model, x, y, eps):
    """`name -> callable` for one model (each returns a tensor)."""
    forward = tf.function(lambda v: model(v, training=False))
    bounder = _bounder.bounder(model)
    xt, yt = tf.constant(x), tf.constant(y, tf.int32)
    et = tf.fill([len(x)], tf.constant(eps, tf.float32))
    ibp_graph = bounder.function("interval", None, "linf", (0.0, 1.0))
    found = {
        "forward pass": lambda: forward(xt),
        "IBP logits (graph)": lambda: ibp_graph(xt, et),
        "IBP logits (interval_bounds)": lambda: interval_bounds(model, x, eps),
        "IBP margins (margin_bounds)": lambda: margin_bounds(model, x, y, eps),
    }
    try:
        bounder.check_crown("crown_ibp")
    except NotImplementedError:
        return found
    crown = bounder.function("margins", "crown_ibp", "linf", (0.0, 1.0))
    found["CROWN-IBP margins (graph)"] = lambda: crown(xt, yt, et)
    found["CROWN-IBP margins (margin_bounds)"] = lambda: margin_bounds(
        model, x, y, eps, method="crown_ibp"
    )
    return found


def _run(fn):
    """Runs `fn` and waits for its result (copies it to the host)."""
    for tensor in tf.nest.flatten(fn()):
        np.asarray(tensor)


def measure(found, repeats, clock):
    times = {name: [] for name in found}
    for fn in found.values():  # warm-up: trace and first runs
        _run(fn)
        _run(fn)
    for _ in range(repeats):
        for name, fn in found.items():
            start = clock()
            _run(fn)
            times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def main(argv=None):
    """Prints the table; returns its rows (dicts) and the trace counts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--eps", type=float, default=0.1)
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.batch, 28, 28, 1)).astype("float32")
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
        f"Keras {keras.__version__}; batch {args.batch}, eps {args.eps}, "
        f"median of {args.repeats} interleaved runs ({args.clock} clock)"
    )
    print()
    print("| model | computation | ms | ratio to forward |")
    print("|---|---|---|---|")
    rows, traces_of = [], {}
    for label, model in (
        ("small_cnn", small_cnn()),
        ("Gowal small", gowal_small()),
    ):
        y = np.asarray(model(x)).argmax(axis=1)
        found = cases(model, x, y, args.eps)
        medians = measure(found, args.repeats, CLOCKS[args.clock])
        base = medians["forward pass"]
        for name, value in medians.items():
            rows.append(
                {
                    "model": label,
                    "computation": name,
                    "ms": 1e3 * value,
                    "ratio": value / base,
                }
            )
            print(
                f"| {label} | {name} | {1e3 * value:.2f} | {value / base:.2f} |"
            )
        traces = [
            fn.experimental_get_tracing_count()
            for fn in _bounder.BOUNDERS[model].functions.values()
        ]
        print(f"| {label} | traces of the bound graphs | {traces} | |")
        traces_of[label] = traces
    return rows, traces_of


if __name__ == "__main__":
    main()
