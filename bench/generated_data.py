"""The generated-data pipeline against a hand-written `tf.data` mixing loop.

`keras_adv.datasets.mix_datasets` (exactly `round(real_fraction * batch)`
real samples per batch, shuffled within the batch, an epoch = one pass
over the real data) fed to `model.fit`, against the same work written by
hand: two `tf.data` pipelines (`from_tensor_slices`, shuffle, repeat,
batch of 5 and of 11), zipped, concatenated and shuffled within the batch,
fed to a hand-written `tf.function` training step (forward, cross-entropy,
gradients, Adam). Clean training of the recipe's CNN, the setting where
the input pipeline weighs most (an adversarial step costs 8 to 9 times
more and hides it). In one process, the three kinds of epoch
alternate, the first of each is dropped, and the medians are compared.

Two ratios:

* `pipeline`: iterating one epoch of batches, no training (each side's
  batches consumed by a no-op);
* `epoch_ratio_data`: one training epoch of `fit` on `mix_datasets`
  over the same `fit` on the hand-written pipeline (the pipeline's cost
  inside training);
* `epoch_ratio_loop`: `fit` on `mix_datasets` over the hand-written
  `tf.function` loop on the hand-written pipeline (everything: the
  pipeline and Keras' `fit`).

    python bench/generated_data.py [--epochs 6] [--batch-size 16]
        [--real-fraction 0.3] [--num-generated 50000] [--clock wall]
        [--train-samples 4000]

(tiny smoke run: `--epochs 2 --num-generated 200 --repeats 1
--train-samples 200`).
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import CLOCKS  # noqa: E402
from _timing import add_clock_argument  # noqa: E402

from keras_adv.datasets import load_mnist_subset  # noqa: E402
from keras_adv.datasets import mix_datasets  # noqa: E402
from keras_adv.models import mnist_cnn  # noqa: E402


def hand_written_batches(real, generated, num_real, num_generated, steps):
    """The mixing pipeline as one would write it with `tf.data` alone."""

    def batches(data, size, seed):
        return (
            tf.data.Dataset.from_tensor_slices(data)
            .shuffle(len(data[0]), seed=seed, reshuffle_each_iteration=True)
            .repeat()
            .batch(size, drop_remainder=True)
        )

    def mix(a, b):
        x = tf.concat([a[0], b[0]], axis=0)
        y = tf.concat([a[1], b[1]], axis=0)
        order = tf.random.shuffle(tf.range(tf.shape(y)[0]))
        return tf.gather(x, order), tf.gather(y, order)

    pairs = tf.data.Dataset.zip(
        (batches(real, num_real, 0), batches(generated, num_generated, 1))
    )
    return pairs.map(mix).take(steps).prefetch(tf.data.AUTOTUNE)


def hand_written_step(model, optimizer):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


def pipeline_ratio(library, hand, repeats, clock):
    """Median time of one pass over each dataset, interleaved."""
    times = {"library": [], "hand": []}
    for _ in range(repeats + 1):
        for name, ds in (("library", library), ("hand", hand)):
            start = clock()
            for _ in ds:
                pass
            times[name].append(clock() - start)
    lib = float(np.median(times["library"][1:]))
    hand_t = float(np.median(times["hand"][1:]))
    return lib, hand_t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--real-fraction", type=float, default=0.3)
    parser.add_argument("--num-generated", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--train-samples",
        type=int,
        default=None,
        help="real images used (default: the subset's 4,000; smoke runs)",
    )
    add_clock_argument(parser)
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]

    keras.utils.set_random_seed(0)
    (x, y), _ = load_mnist_subset()
    x, y = x[: args.train_samples], y[: args.train_samples]
    rng = np.random.default_rng(0)
    x_gen = rng.uniform(size=(args.num_generated,) + x.shape[1:])
    x_gen = x_gen.astype("float32")
    y_gen = rng.integers(0, 10, args.num_generated).astype("int64")
    y = y.astype("int64")

    num_real = math.floor(args.real_fraction * args.batch_size + 0.5 + 1e-9)
    num_generated = args.batch_size - num_real
    steps = math.ceil(len(x) / num_real)
    library = mix_datasets(
        (x, y),
        (x_gen, y_gen),
        real_fraction=args.real_fraction,
        batch_size=args.batch_size,
        seed=0,
    )
    hand = hand_written_batches(
        (x, y), (x_gen, y_gen), num_real, num_generated, steps
    )
    lib_t, hand_t = pipeline_ratio(library, hand, args.repeats, clock)

    def compiled():
        model = mnist_cnn(seed=0)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        return model

    on_library, on_hand = compiled(), compiled()
    twin = mnist_cnn(seed=0)
    step = hand_written_step(twin, keras.optimizers.Adam(1e-3))
    hand_epoch = hand_written_batches(
        (x, y), (x_gen, y_gen), num_real, num_generated, steps
    )

    def fit_epoch(model, data):
        return lambda: model.fit(data, epochs=1, shuffle=False, verbose=0)

    def loop_epoch():
        for xb, yb in hand_epoch:
            step(xb, yb)

    runs = {
        "fit_mix_datasets": fit_epoch(on_library, library),
        "fit_hand_written_data": fit_epoch(on_hand, hand_epoch),
        "hand_written_loop": loop_epoch,
    }
    times = {name: [] for name in runs}
    start = time.perf_counter()
    for _ in range(args.epochs):  # interleaved; the first is a warm-up
        for name, run in runs.items():
            begin = clock()
            run()
            times[name].append(clock() - begin)
    epoch = {k: float(np.median(v[1:])) for k, v in times.items()}
    row = {
        "settings": vars(args),
        "steps_per_epoch": steps,
        "real_per_batch": num_real,
        "pipeline_seconds": {"library": lib_t, "hand": hand_t},
        "pipeline_ratio": round(lib_t / hand_t, 3),
        "epoch_seconds": epoch,
        # The pipeline's cost in training: same fit, the two datasets.
        "epoch_ratio_data": round(
            epoch["fit_mix_datasets"] / epoch["fit_hand_written_data"], 3
        ),
        # Everything: fit on mix_datasets against the hand-written loop.
        "epoch_ratio_loop": round(
            epoch["fit_mix_datasets"] / epoch["hand_written_loop"], 3
        ),
        "total_seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
