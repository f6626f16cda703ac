"""Benchmark: keras_adv's APGD vs a hand-written `tf.function` APGD.

APGD-100 (cross-entropy, L-inf, eps 0.3) on 256 MNIST-shaped inputs
through `keras_adv.testing.small_cnn()`. The baseline is the same algorithm
written directly with TensorFlow ops in one `tf.function`: clean forward
pass, the still-robust samples gathered, a start on the ball's boundary,
1 + 100 forward+backward passes with the same bookkeeping (momentum step,
two projections, best point, last misclassified point, checkpoint
decisions) and the results scattered back. The labels are the model's
clean predictions, so every sample is attacked. Runs are interleaved
(ours, baseline, ours, ...) after a warm-up; the figure is the ratio of
the medians (1.00 = no overhead), by wall clock and by process CPU time
(less sensitive to other processes on a shared machine).

    python dev.py bench bench/apgd.py [--repeats 9] [--batch 256]
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

from keras_adv.attacks._apgd import APGD  # noqa: E402
from keras_adv.attacks._apgd import checkpoint_schedule  # noqa: E402
from keras_adv.testing import small_cnn  # noqa: E402


def handwritten_apgd(model, steps, rho=0.75):
    """APGD-CE (L-inf), one run on the correctly classified samples."""
    is_check = np.zeros(steps, bool)
    limits = np.zeros(steps, "float32")
    for done, window in checkpoint_schedule(steps):
        is_check[done - 1], limits[done - 1] = True, rho * window
    is_check, limits = tf.constant(is_check), tf.constant(limits)

    def loss_grad(x, y):
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model(x, training=False)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        return loss, tape.gradient(loss, x), logits

    def wrong(logits, y):
        return tf.not_equal(tf.argmax(logits, -1, output_type=tf.int32), y)

    def attack(x, y, eps, seed):
        def project(p):
            return tf.clip_by_value(
                tf.clip_by_value(p, x - eps, x + eps), 0.0, 1.0
            )

        def pick(mask, a, b):
            return tf.where(mask[:, None, None, None], a, b)

        noise = tf.random.stateless_uniform(tf.shape(x), seed, -1.0, 1.0)
        size = tf.reduce_max(tf.abs(noise), axis=[1, 2, 3], keepdims=True)
        start = tf.clip_by_value(x + eps * noise / (size + 1e-12), 0.0, 1.0)
        loss, grad, logits = loss_grad(start, y)
        found = wrong(logits, y)
        step = 2.0 * eps * tf.ones([tf.shape(x)[0], 1, 1, 1])
        ones = tf.ones_like(found)

        def body(i, s):
            x_adv, x_old, g, step, xb, gb, lb, lp, rises, lbl, red, xf, ok = s
            a = tf.where(i > 0, 0.75, 1.0)
            z = project(x_adv + step * tf.sign(g))
            x_new = project(x_adv + a * (z - x_adv) + (1 - a) * (x_adv - x_old))
            loss, g_new, logits = loss_grad(x_new, y)
            fooled = wrong(logits, y)
            xf, ok = pick(fooled, x_new, xf), ok | fooled
            up = loss > lb
            xb, gb = pick(up, x_new, xb), pick(up, g_new, gb)
            lb = tf.where(up, loss, lb)
            rises += tf.cast(loss > lp, tf.float32)
            check = is_check[i]
            halve = (rises <= limits[i]) | (~red & (lbl >= lb))
            cut = check & halve
            step = pick(cut, step / 2, step)
            x_next, g_next = pick(cut, xb, x_new), pick(cut, gb, g_new)
            red = tf.where(check, halve, red)
            lbl = tf.where(check, lb, lbl)
            rises = tf.where(check, 0.0, rises)
            return (x_next, x_adv, g_next, step, xb, gb, lb, loss, rises,
                    lbl, red, xf, ok)  # fmt: skip

        state = (start, start, grad, step, start, grad, loss, loss,
                 tf.zeros_like(loss), loss, ones, start, found)  # fmt: skip
        _, state = tf.while_loop(
            lambda i, _: i < steps, lambda i, s: (i + 1, body(i, s)), (0, state)
        )
        return state[12], state[11]

    @tf.function
    def run(x, y, eps, seed):
        robust = tf.logical_not(wrong(model(x, training=False), y))
        index = tf.where(robust)
        ok, x_found = attack(
            tf.gather_nd(x, index), tf.gather_nd(y, index), eps, seed
        )
        merged = tf.where(
            ok[:, None, None, None], x_found, tf.gather_nd(x, index)
        )
        return tf.tensor_scatter_nd_update(x, index, merged)

    return run


def _time(fn):
    """(wall-clock, process CPU) seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    np.asarray(fn())  # wait for the result
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    model = small_cnn(input_shape=(28, 28, 1), num_classes=10)
    rng = np.random.default_rng(0)
    x = tf.constant(
        rng.uniform(0, 1, size=(args.batch, 28, 28, 1)).astype("float32")
    )
    y = tf.argmax(model(x), axis=-1, output_type=tf.int32)
    eps = 0.3
    attack = APGD(eps=eps, steps=args.steps, seed=0)
    baseline = handwritten_apgd(model, args.steps)
    eps_t, seed = tf.constant(eps), tf.constant([0, 0], tf.int32)

    def ours():
        return attack(model, x, y)

    def base():
        return baseline(x, y, eps_t, seed)

    for _ in range(2):  # trace and warm up both
        ours()
        base()
    t_ours, t_base = [], []
    for _ in range(args.repeats):
        t_ours.append(_time(ours))
        t_base.append(_time(base))
    fooled = np.mean(np.argmax(model(ours()), -1) != np.asarray(y))
    fooled_base = np.mean(np.argmax(model(base()), -1) != np.asarray(y))
    print(
        f"# {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, TF {tf.__version__}, Keras "
        f"{keras.__version__}, batch {args.batch}, repeats {args.repeats}"
    )
    print(
        "| case | clock | keras_adv (ms) | hand-written (ms) | ratio | traces |"
    )
    print("|---|---|---|---|---|---|")
    for clock, column in (("wall", 0), ("cpu", 1)):
        m_ours = statistics.median(t[column] for t in t_ours)
        m_base = statistics.median(t[column] for t in t_base)
        print(
            f"| APGD-{args.steps} CE (Linf) | {clock} | {1000 * m_ours:.1f} | "
            f"{1000 * m_base:.1f} | {m_ours / m_base:.3f} | "
            f"{attack.tracing_count(model)} |"
        )
    print(
        f"# success: keras_adv {fooled:.3f}, hand-written {fooled_base:.3f}; "
        f"wall ms per run: ours {[round(1000 * t[0]) for t in t_ours]}, "
        f"baseline {[round(1000 * t[0]) for t in t_base]}"
    )


if __name__ == "__main__":
    main()
