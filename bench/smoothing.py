"""Benchmark: randomized smoothing's `certify` against a hand-written loop.

`keras_adv.certification.SmoothedClassifier.certify` (Cohen et al.'s
CERTIFY: `n0` noisy copies per input select the top class, `n` new ones
count it, a one-sided Clopper-Pearson bound gives the L2 radius) against
the same work written by hand: one `tf.function` that draws Gaussian
noise in batches of `--noise-batch` noisy inputs (stateless seeds, one per
noise batch), runs the model's forward pass, takes the argmax and counts
the classes per input (`tf.math.bincount`), called once for the `n0`
selection draws and once for the `n` estimation draws, then the bound and
the radius in numpy/scipy. Both draw the same noise (the same stateless
seeds), so their predictions and radii must agree: the script says
whether they do. The library also checks its inputs (finite values, the
arguments) on every call.

In one process: a warm-up call of each (traces), then `--repeats` calls
of each, interleaved; medians. Figures: certified samples per second,
noise evaluations (forward passes of one noisy input) per second, and the
ratio of the library's time to the hand-written one (1.00 = no overhead).

Model: `keras_adv.models.small_cnn()` (two conv + max-pool blocks, 57k
parameters; untrained: the cost does not depend on the weights), or a
saved classifier with `--model PATH`; inputs: the first `--samples` test
images of the embedded MNIST subset.

    python bench/smoothing.py --samples 10 --n0 100 --n 10000 \\
        --noise-batch 1000 --sigma 0.25 --repeats 5 [--clock cpu]

(the defaults; tiny smoke run: `--samples 2 --n0 10 --n 100
--noise-batch 64 --repeats 1`).
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
from scipy import special  # noqa: E402

from keras_adv.certification import SmoothedClassifier  # noqa: E402
from keras_adv.datasets import load_mnist_subset  # noqa: E402
from keras_adv.models import small_cnn  # noqa: E402


def hand_written_counts(model, num_classes, noise_batch):
    """`counts(x, n, sigma, seed)`: `(batch, classes)` int32 counts of the
    model's argmax over `n` noisy copies of each input, in one graph.

    Draw `i` of all `batch * n` belongs to input `i // n` and is drawn in
    noise batch `i // noise_batch`, whose noise comes from the stateless
    seed `stateless_fold_in(seed, batch index)`.
    """

    @tf.function
    def counts(x, n, sigma, seed):
        rows = tf.shape(x)[0]
        total = rows * n
        size = tf.constant(noise_batch, tf.int32)
        found = tf.zeros([rows * num_classes], tf.int32)
        for index in tf.range((total + size - 1) // size):
            draws = tf.range(
                index * size, tf.minimum((index + 1) * size, total)
            )
            owners = draws // n
            inputs = tf.gather(x, owners)
            noise = tf.random.stateless_normal(
                tf.shape(inputs),
                seed=tf.random.experimental.stateless_fold_in(seed, index),
            )
            logits = model(inputs + sigma * noise, training=False)
            classes = tf.argmax(logits, axis=-1, output_type=tf.int32)
            found += tf.math.bincount(
                owners * num_classes + classes,
                minlength=rows * num_classes,
                maxlength=rows * num_classes,
            )
        return tf.reshape(found, [rows, num_classes])

    return counts


def hand_written_certify(counts, x, n0, n, sigma, alpha, seed):
    """Cohen et al.'s CERTIFY from `counts` (see `hand_written_counts`)."""
    seed = tf.constant([seed, 0], tf.int32)
    fold = tf.random.experimental.stateless_fold_in
    sigma_t = tf.constant(sigma, tf.float32)
    selection = counts(x, tf.constant(n0), sigma_t, fold(seed, 0)).numpy()
    estimation = counts(x, tf.constant(n), sigma_t, fold(seed, 1)).numpy()
    top = selection.argmax(axis=1)
    k = estimation[np.arange(len(top)), top].astype("float64")
    # Clopper-Pearson lower bound at level 1 - alpha (0 when k = 0).
    lower = np.where(
        k > 0, special.betaincinv(np.maximum(k, 1), n - k + 1, alpha), 0.0
    )
    certified = lower >= 0.5
    radii = np.where(certified, sigma * special.ndtri(lower), 0.0)
    predictions = np.where(certified, top, SmoothedClassifier.ABSTAIN)
    return predictions, radii


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--noise-batch", type=int, default=1000)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None, help="a saved .keras model")
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]

    if args.model:
        model = keras.saving.load_model(args.model, safe_mode=True)
    else:
        model = small_cnn()
    _, (x, _) = load_mnist_subset()
    x = x[: args.samples]
    num_classes = int(model.output_shape[-1])
    smoothed = SmoothedClassifier(
        model, sigma=args.sigma, batch_size=args.noise_batch, seed=0
    )
    counts = hand_written_counts(model, num_classes, args.noise_batch)
    settings = (args.n0, args.n, args.alpha)
    runs = {
        "SmoothedClassifier.certify": lambda seed: smoothed.certify(
            x, *settings, seed=seed
        ),
        "hand-written tf.function": lambda seed: hand_written_certify(
            counts, x, args.n0, args.n, args.sigma, args.alpha, seed
        ),
    }
    times = {name: [] for name in runs}
    answers = {}
    for run in runs.values():  # warm-up: traces
        run(0)
    for r in range(args.repeats):
        order = list(runs) if r % 2 == 0 else list(runs)[::-1]
        for name in order:
            start = clock()
            answers[name] = runs[name](r)
            times[name].append(clock() - start)
    (lib_pred, lib_radii), (hand_pred, hand_radii) = answers.values()
    same = bool(
        np.array_equal(lib_pred, hand_pred)
        and np.allclose(lib_radii, hand_radii, rtol=1e-6, atol=1e-9)
    )
    base = statistics.median(times["hand-written tf.function"])
    evaluations = args.samples * (args.n0 + args.n)
    rows = []
    for name, t in times.items():
        seconds = statistics.median(t)
        rows.append(
            {
                "implementation": name,
                "seconds": seconds,
                "samples_per_second": args.samples / seconds,
                "evaluations_per_second": evaluations / seconds,
                "ratio": seconds / base,
            }
        )
    traces = {
        "SmoothedClassifier.certify": (
            smoothed._sampler.experimental_get_tracing_count()
        ),
        "hand-written tf.function": counts.experimental_get_tracing_count(),
    }
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, TF {tf.__version__}, "
        f"Keras {keras.__version__}; {args.samples} MNIST-subset test "
        f"images, n0 {args.n0}, n {args.n}, noise batch {args.noise_batch}, "
        f"sigma {args.sigma}, alpha {args.alpha}; median of {args.repeats} "
        f"interleaved runs ({args.clock} clock)"
    )
    print()
    print("| implementation | s | samples/s | noise evaluations/s | ratio |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['implementation']} | {row['seconds']:.3f} | "
            f"{row['samples_per_second']:.2f} | "
            f"{row['evaluations_per_second']:,.0f} | {row['ratio']:.3f} |"
        )
    print()
    print(
        f"same predictions and radii: {'yes' if same else 'no'}; "
        f"abstained: {int(np.sum(lib_pred == SmoothedClassifier.ABSTAIN))}"
        f"/{args.samples}; traces: {traces}"
    )
    return {"rows": rows, "same": same, "traces": traces}


if __name__ == "__main__":
    main()
