"""Cost of adversarial training with the AdversarialTraining callback.

For each objective, the epoch time of `model.fit` with the callback is
divided by the epoch time of a hand-written, fused `tf.function` training
step doing the same passes (same model, data, batch size, optimizer), in the
same process. Also reported: each objective's epoch time relative to clean
`model.fit` (the physical floor of PGD-k training is about k + 1 forward and
backward passes per batch).

    python bench/training.py [--repeats 5] [--samples 2000] [--steps 7]

Fit epochs and fused epochs alternate (the fused epoch runs from the fit's
`on_epoch_end`, outside the timed fit epoch); reported are the medians of
`--repeats` epochs after one warm-up epoch and the median of the per-epoch
ratios. The numbers are only meaningful on a quiet machine.
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.testing import small_cnn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import InterleavedTimer  # noqa: E402
from _timing import add_clock_argument  # noqa: E402

EPS = 0.3
BATCH = 100
FREE_REPLAYS = 4
GRAD_ALIGN_LAMBDA = 0.2


def build_model():
    return small_cnn(width=16, seed=0)


def compiled_model():
    model = build_model()
    model.compile(
        keras.optimizers.SGD(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def time_pair(objective, steps, x, y, repeats, clock="wall"):
    """Median fit and fused epoch times and the median of their ratios.

    Fit epochs and fused epochs alternate, so load changes on a shared
    machine hit both alike.
    """
    fused_epoch = make_fused_epoch(objective, steps, x, y)
    fused_epoch()  # trace
    model = compiled_model()
    timer = InterleavedTimer(fused_epoch, clock)
    callback = callback_for(objective, steps)
    model.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=repeats + 1,
        verbose=0,
        shuffle=False,
        callbacks=[timer] if callback is None else [callback, timer],
    )
    return timer.medians()


# ------------------------------------------------ hand-written baselines
def _ce(y, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)


def _kl(p_logits, q_logits):
    p_log = tf.nn.log_softmax(p_logits)
    return tf.reduce_sum(
        tf.exp(p_log) * (p_log - tf.nn.log_softmax(q_logits)), -1
    )


def _input_grad(fn, x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(fn(x))
    return tape.gradient(value, x)


def _project(x_adv, x):
    return tf.clip_by_value(tf.clip_by_value(x_adv, x - EPS, x + EPS), 0, 1)


def make_fused_step(objective, steps, model, optimizer, accuracy):
    """The same passes as the callback's step, written by hand."""

    def train_on(loss_fn, x, y):
        with tf.GradientTape() as tape:
            loss, logits = loss_fn()
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
        accuracy.update_state(y, logits)
        return loss

    def clean_loss(x, y):
        logits = model(x, training=True)
        return tf.reduce_mean(_ce(y, logits)), logits

    delta = tf.Variable(tf.zeros((BATCH, 28, 28, 1)), trainable=False)

    def free_step(x, y):
        # Free-m: one backward pass per replay gives both gradients.
        d = delta.read_value()
        for _ in range(FREE_REPLAYS):
            x_adv = tf.clip_by_value(x + d, 0.0, 1.0)
            with tf.GradientTape() as tape:
                tape.watch(x_adv)
                logits = model(x_adv, training=True)
                loss = tf.reduce_mean(_ce(y, logits))
            grads = tape.gradient(loss, [*model.trainable_weights, x_adv])
            optimizer.apply_gradients(zip(grads[:-1], model.trainable_weights))
            d = _project(x + d + EPS * tf.sign(grads[-1]), x) - x
        accuracy.update_state(y, logits)
        delta.assign(d)
        return loss

    def grad_align_loss(x, y, x_adv, seed):
        noise = tf.random.stateless_uniform(tf.shape(x), seed, -EPS, EPS)
        x_noise = tf.clip_by_value(x + noise, 0.0, 1.0)

        def grad_at(z):
            with tf.GradientTape() as inner:
                inner.watch(z)
                value = tf.reduce_sum(_ce(y, model(z, training=True)))
            return tf.reshape(inner.gradient(value, z), [tf.shape(z)[0], -1])

        g1, g2 = grad_at(x), grad_at(x_noise)
        cos = tf.reduce_sum(g1 * g2, -1) / tf.maximum(
            tf.norm(g1, axis=-1) * tf.norm(g2, axis=-1), 1e-12
        )
        loss, logits = clean_loss(x_adv, y)
        return loss + GRAD_ALIGN_LAMBDA * tf.reduce_mean(1.0 - cos), logits

    @tf.function
    def step(x, y, seed):
        if objective == "clean":
            return train_on(lambda: clean_loss(x, y), x, y)
        if objective == "free":
            return free_step(x, y)
        if objective in ("n_fgsm", "grad_align"):
            if objective == "n_fgsm":
                noise = tf.random.stateless_uniform(
                    tf.shape(x), seed, -2.0 * EPS, 2.0 * EPS
                )
                start = tf.clip_by_value(x + noise, 0.0, 1.0)
            else:
                start = x
            g = _input_grad(lambda z: _ce(y, model(z, training=False)), start)
            x_adv = start + EPS * tf.sign(g)
            if objective == "n_fgsm":
                x_adv = tf.clip_by_value(x_adv, 0.0, 1.0)
            else:
                x_adv = _project(x_adv, x)
            x_adv = tf.stop_gradient(x_adv)
            if objective == "n_fgsm":
                return train_on(lambda: clean_loss(x_adv, y), x_adv, y)
            return train_on(lambda: grad_align_loss(x, y, x_adv, seed), x, y)
        if objective in ("pgd", "fgsm-rs"):
            n, size = (steps, 2.5 * EPS / steps)
            if objective == "fgsm-rs":
                n, size = 1, 1.25 * EPS
            noise = tf.random.stateless_uniform(tf.shape(x), seed, -EPS, EPS)
            x_adv = _project(x + noise, x)
            for _ in range(n):
                g = _input_grad(
                    lambda z: _ce(y, model(z, training=False)), x_adv
                )
                x_adv = _project(x_adv + size * tf.sign(g), x)
            x_adv = tf.stop_gradient(x_adv)
            return train_on(lambda: clean_loss(x_adv, y), x_adv, y)
        p = tf.stop_gradient(model(x, training=False))
        noise = tf.random.stateless_normal(tf.shape(x), seed)
        if objective == "trades":
            x_adv = _project(x + 0.001 * noise, x)
            for _ in range(steps):
                g = _input_grad(
                    lambda z: _kl(p, model(z, training=False)), x_adv
                )
                x_adv = _project(x_adv + 2.5 * EPS / steps * tf.sign(g), x)
        else:  # vat, one power iteration
            d = 1e-6 * tf.math.l2_normalize(noise, axis=[1, 2, 3])
            g = _input_grad(lambda z: _kl(p, model(z, training=False)), x + d)
            x_adv = _project(x + EPS * tf.sign(g), x)
        x_adv = tf.stop_gradient(x_adv)
        weight = 6.0 if objective == "trades" else 1.0

        def regularised():
            logits = model(x, training=True)
            logits_adv = model(x_adv, training=True)
            p_ref = (
                logits if objective == "trades" else tf.stop_gradient(logits)
            )
            loss = tf.reduce_mean(_ce(y, logits)) + weight * tf.reduce_mean(
                _kl(p_ref, logits_adv)
            )
            return loss, logits

        return train_on(regularised, x, y)

    return step


def make_fused_epoch(objective, steps, x, y):
    """One epoch of the fused step, the epoch loop itself in the graph."""
    model = build_model()
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(model.trainable_weights)
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    step = make_fused_step(objective, steps, model, optimizer, accuracy)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    counter = tf.Variable(0, dtype=tf.int32)

    @tf.function
    def epoch():
        for xb, yb in dataset:
            counter.assign_add(1)
            step(xb, yb, tf.stack([0, counter.read_value()]))
        return accuracy.result()

    def run():
        accuracy.reset_state()
        return float(epoch())

    return run


def callback_for(objective, steps):
    """The callback doing the passes of `make_fused_step(objective)`."""
    if objective == "clean":
        return None
    attack = keras_adv.attacks.PGD(eps=EPS, steps=steps, seed=0)
    if objective == "pgd":
        made = keras_adv.training.Madry(attack)
    elif objective == "fgsm-rs":
        made = keras_adv.training.FGSMRS(attack, step_factor=1.25)
    elif objective == "trades":
        made = keras_adv.training.TRADES(attack, beta=6.0)
    elif objective == "n_fgsm":
        made = keras_adv.training.NFGSM(attack)
    elif objective == "grad_align":
        made = keras_adv.training.GradAlign(
            attack, grad_align_lambda=GRAD_ALIGN_LAMBDA
        )
    elif objective == "free":
        made = keras_adv.training.Free(attack, replays=FREE_REPLAYS)
    else:
        made = keras_adv.training.VAT(attack)
    return keras_adv.callbacks.AdversarialTraining(objective=made)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument(
        "--objectives",
        nargs="*",
        default=[
            "clean",
            "fgsm-rs",
            "n_fgsm",
            "grad_align",
            "free",
            "pgd",
            "trades",
            "vat",
        ],
    )
    add_clock_argument(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(args.samples, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, size=args.samples).astype("int64")

    rows = []
    clean_fit = None
    for objective in args.objectives:
        fit_t, fused_t, ratio = time_pair(
            objective, args.steps, x, y, args.repeats, args.clock
        )
        if objective == "clean":
            clean_fit = fit_t
        rows.append((objective, fit_t, fused_t, ratio))

    label = {
        "pgd": f"pgd-{args.steps}",
        "trades": f"trades-{args.steps}",
        "free": f"free-{FREE_REPLAYS}",
    }
    print(
        f"{args.samples} samples, batch {BATCH}, small_cnn(width=16), "
        f"median of {args.repeats} epochs, {args.clock} clock"
    )
    print(
        f"{'objective':<12}{'fit s/epoch':>12}{'fused s/epoch':>15}"
        f"{'ratio':>8}{'vs clean':>10}"
    )
    for objective, fit_t, fused_t, ratio in rows:
        vs_clean = fit_t / clean_fit if clean_fit else float("nan")
        print(
            f"{label.get(objective, objective):<12}{fit_t:>12.3f}"
            f"{fused_t:>15.3f}{ratio:>8.2f}{vs_clean:>10.2f}"
        )


if __name__ == "__main__":
    main()
