"""Benchmark: keras_adv attacks vs a hand-written `tf.function` loop.

Each attack runs on 256 MNIST-shaped inputs through a small CNN. The
baseline is the same computation written by hand in one `tf.function`
(random start, k x (forward + backward + sign step + projection)). Runs are
interleaved (ours, baseline, ours, ...) after a warm-up, and the ratio of
the medians is reported: 1.00 means no overhead.

    python dev.py bench bench/attacks.py [--repeats 15] [--batch 256]
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.testing import small_cnn  # noqa: E402


def handwritten_pgd(model, steps, random_start, jit_compile=False):
    """The reference: PGD written directly with tf ops in one graph."""

    @tf.function(jit_compile=jit_compile)
    def run(x, y, eps, step_size, seed):
        if random_start:
            noise = tf.random.stateless_uniform(
                tf.shape(x), seed=seed, minval=-1.0, maxval=1.0
            )
            x_adv = tf.clip_by_value(x + eps * noise, 0.0, 1.0)
        else:
            x_adv = x

        def body(i, x_adv):
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                logits = model(x_adv, training=False)
                loss = tf.reduce_sum(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
                )
            grad = tape.gradient(loss, x_adv)
            x_adv = x_adv + step_size * tf.sign(grad)
            x_adv = tf.clip_by_value(x_adv, x - eps, x + eps)
            return i + 1, tf.clip_by_value(x_adv, 0.0, 1.0)

        if steps == 1:  # FGSM: straight-line code, no loop
            _, x_adv = body(0, x_adv)
        else:
            _, x_adv = tf.while_loop(
                lambda i, _: i < steps, body, (tf.constant(0), x_adv)
            )
        return tf.stop_gradient(x_adv)

    return run


def _time(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    np.asarray(out)  # wait for the result
    return time.perf_counter() - start


def bench_case(name, model, attack, baseline_fn, x, y, repeats):
    eps = tf.constant(attack.eps, tf.float32)
    step = tf.constant(float(attack.step_size_for(attack.eps)), tf.float32)
    seed = tf.constant([0, 0], tf.int32)
    ours = lambda: attack(model, x, y)  # noqa: E731
    base = lambda: baseline_fn(x, y, eps, step, seed)  # noqa: E731
    for _ in range(3):  # trace and warm up both
        ours()
        base()
    t_ours, t_base = [], []
    for _ in range(repeats):
        t_ours.append(_time(ours))
        t_base.append(_time(base))
    m_ours, m_base = statistics.median(t_ours), statistics.median(t_base)
    return {
        "case": name,
        "keras_adv_ms": 1000 * m_ours,
        "handwritten_ms": 1000 * m_base,
        "ratio": m_ours / m_base,
        "traces": attack.tracing_count(model),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--jit", action="store_true", help="XLA both sides")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = small_cnn(input_shape=(28, 28, 1), num_classes=10)
    rng = np.random.default_rng(0)
    x = tf.constant(
        rng.uniform(0, 1, size=(args.batch, 28, 28, 1)).astype("float32")
    )
    y = tf.constant(rng.integers(0, 10, size=args.batch).astype("int32"))

    cases = [
        (
            "FGSM (Linf)",
            keras_adv.attacks.FGSM(eps=0.3, jit_compile=args.jit),
            handwritten_pgd(model, 1, False, args.jit),
        ),
        (
            "PGD-20 (Linf)",
            keras_adv.attacks.PGD(
                eps=0.3, steps=20, seed=0, jit_compile=args.jit
            ),
            handwritten_pgd(model, 20, True, args.jit),
        ),
    ]
    print(
        f"# {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, batch {args.batch}, repeats {args.repeats}"
        f"{', XLA' if args.jit else ''}"
    )
    print("| case | keras_adv (ms) | hand-written (ms) | ratio | traces |")
    print("|---|---|---|---|---|")
    for name, attack, baseline in cases:
        r = bench_case(name, model, attack, baseline, x, y, args.repeats)
        print(
            f"| {r['case']} | {r['keras_adv_ms']:.1f} | "
            f"{r['handwritten_ms']:.1f} | {r['ratio']:.3f} | {r['traces']} |"
        )


if __name__ == "__main__":
    main()
