"""Cost of AdvGAN training (`AdvGAN.fit`) against a hand-written step.

For the untargeted AdvGAN (the paper's generator and discriminator, MNIST
model C as the frozen target) and the targeted one (one generator
conditioned on the target class), the epoch time of `AdvGAN.fit` is
divided by the epoch time of a hand-written, fused `tf.function` step
(one compiled call per batch) doing the same passes, in the same process:

- `G(x)` in training mode under the generator's tape, `x_adv =
  clip(x + G(x))`;
- discriminator update (tape paused): the discriminator on `x` and on
  `x_adv` as a constant, least-squares loss, Adam;
- generator update: the frozen target in inference mode on `x_adv` (C&W
  margin with confidence kappa), the updated discriminator on `x_adv`
  (least-squares generator term), the L2 hinge, Adam; the batch success
  rate and mean perturbation norm as metrics.

`--baseline two-pass` computes `G(x)` a second time for the discriminator
update instead (the textbook GAN step, and AdvGAN's before it shared the
pass). `--paths` times `AdvGAN.fit` against `fit` of a subclass whose
`discriminator_step` ignores the step's `G(x)` and computes its own (one
generator pass more per discriminator update, as the hooks run one by one
before the step passed `G(x)` to them; the same updates:
`tests/models/test_advgan.py`): what sharing saves.
`--filters N` sets both generators' width.

    python dev.py bench bench/gan_training.py [--repeats 5] [--clock cpu]

Fit epochs and fused epochs alternate (the fused epoch runs from the fit's
`on_epoch_end`, outside the timed fit epoch); reported are the medians of
`--repeats` epochs after one warm-up epoch and the median of the per-epoch
ratios. Weights do not change the cost, so the target model is untrained.
The numbers are only meaningful on a quiet machine.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.models import AdvGAN  # noqa: E402
from keras_adv.models import advgan_discriminator  # noqa: E402
from keras_adv.models import advgan_generator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import InterleavedTimer  # noqa: E402
from _timing import add_clock_argument  # noqa: E402

EPS = 0.3
BATCH = 64
NUM_CLASSES = 10
# name -> generator builder keywords (targeted when num_classes is set).
CONFIGS = {
    "untargeted": {"filters": 8},
    "targeted": {
        "filters": 16,
        "num_classes": NUM_CLASSES,
        "skip_connections": True,
        "target_maps": 4,
    },
}


def networks(config):
    """Fresh generator, discriminator and target model (same seeds)."""
    generator = advgan_generator(eps=EPS, seed=0, **CONFIGS[config])
    discriminator = advgan_discriminator(seed=0)
    target = keras_adv.models.mnist_model_c(seed=0)
    return generator, discriminator, target


def compiled_advgan(config, cls=AdvGAN):
    """`cls` (AdvGAN or a subclass) on fresh networks, Adam for both."""
    generator, discriminator, target = networks(config)
    advgan = cls(
        generator,
        discriminator,
        target,
        eps=EPS,
        targeted="num_classes" in CONFIGS[config],
        seed=0,
    )
    advgan.compile(d_optimizer=adam(), g_optimizer=adam())
    return advgan


def adam():
    # AdvGAN's default optimizers: Adam 1e-3, beta_1 0.5.
    return keras.optimizers.Adam(1e-3, beta_1=0.5)


# ------------------------------------------------- hand-written baseline
def make_fused_epoch(config, x, y, advgan, two_pass=False):
    """One epoch of the fused AdvGAN step: one `tf.function` per batch.

    Fresh networks of `config`; the loss settings (`kappa`, `alpha`,
    `beta`, `c`) are read from `advgan`, the model it is compared with.

    The batch loop is Python, as in Keras' own `fit` (one compiled call
    per batch): with the loop inside the graph the same step ran 3-6x
    slower on TF 2.21's CPU build, so that form would flatter `fit`.
    `two_pass`: compute `G(x)` separately for the discriminator update
    (the textbook GAN step, one generator forward pass more).
    """
    generator, discriminator, target = networks(config)
    target.trainable = False
    targeted = "num_classes" in CONFIGS[config]
    kappa, alpha, beta, c = advgan.kappa, advgan.alpha, advgan.beta, advgan.c
    d_opt, g_opt = adam(), adam()
    d_opt.build(discriminator.trainable_variables)
    g_opt.build(generator.trainable_variables)
    success = keras.metrics.Mean()
    norm = keras.metrics.Mean()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    counter = tf.Variable(0, dtype=tf.int32)

    def perturb(x, onehot):
        inputs = [x, onehot] if targeted else x
        return generator(inputs, training=True)

    def project(x, delta):
        x_adv = tf.clip_by_value(x + delta, x - EPS, x + EPS)
        return tf.clip_by_value(x_adv, 0.0, 1.0)

    def step(x, labels, seed):
        if targeted:
            shift = tf.random.stateless_uniform(
                tf.shape(labels), seed, 1, NUM_CLASSES, dtype=tf.int32
            )
            labels = (labels + shift) % NUM_CLASSES
        onehot = tf.one_hot(labels, NUM_CLASSES)

        def discriminator_update(x_fake):
            # x real, x + G(x) fake.
            with tf.GradientTape() as tape:
                real = discriminator(x, training=True)
                fake = discriminator(x_fake, training=True)
                d_loss = 0.5 * tf.reduce_mean(tf.square(real - 1.0))
                d_loss += 0.5 * tf.reduce_mean(tf.square(fake))
            variables = discriminator.trainable_variables
            grads = tape.gradient(d_loss, variables)
            d_opt.apply_gradients(zip(grads, variables))

        if two_pass:
            discriminator_update(project(x, perturb(x, onehot)))
        # Generator: fool the frozen target and the discriminator.
        with tf.GradientTape() as tape:
            delta = perturb(x, onehot)
            x_adv = project(x, delta)
            if not two_pass:  # the same G(x), a constant for D
                with tape.stop_recording():
                    discriminator_update(tf.stop_gradient(x_adv))
            logits = target(x_adv, training=False)
            z_label = tf.reduce_sum(onehot * logits, axis=-1)
            z_other = tf.reduce_max(logits - 1e9 * onehot, axis=-1)
            margin = z_other - z_label if targeted else z_label - z_other
            g_adv = tf.reduce_mean(tf.maximum(margin, -kappa))
            fake = discriminator(x_adv, training=True)
            g_gan = 0.5 * tf.reduce_mean(tf.square(fake - 1.0))
            l2 = tf.sqrt(tf.reduce_sum(tf.square(delta), axis=[1, 2, 3]))
            g_hinge = tf.reduce_mean(tf.nn.relu(l2 - c))
            g_loss = g_adv + alpha * g_gan + beta * g_hinge
        variables = generator.trainable_variables
        g_opt.apply_gradients(zip(tape.gradient(g_loss, variables), variables))
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
        hit = tf.equal(predicted, labels)
        success.update_state(tf.cast(hit if targeted else ~hit, "float32"))
        diff = tf.reshape(x_adv - x, (tf.shape(x)[0], -1))
        norm.update_state(tf.norm(diff, axis=-1))

    step = tf.function(step)

    def epoch():
        for xb, yb in dataset:
            counter.assign_add(1)
            step(xb, yb, tf.stack([0, counter.read_value()]))
        return success.result()

    def run():
        success.reset_state()
        norm.reset_state()
        return float(epoch())

    run.networks = (generator, discriminator)  # for tests/test_bench.py
    return run


def time_pair(config, x, y, repeats, two_pass=False, clock="wall"):
    """Median fit and fused epoch times and the median of their ratios."""
    advgan = compiled_advgan(config)
    fused_epoch = make_fused_epoch(config, x, y, advgan, two_pass=two_pass)
    fused_epoch()  # trace
    timer = InterleavedTimer(fused_epoch, clock)
    advgan.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=repeats + 1,
        verbose=0,
        shuffle=False,
        callbacks=[timer],
    )
    return timer.medians()


class HookByHook(AdvGAN):
    """Its discriminator updates compute their own `G(x)`: `d_steps + 1`
    generator passes per step, as AdvGAN's step before it shared one."""

    def discriminator_step(self, x, y=None, x_adv=None):
        return super().discriminator_step(x, y)


def time_paths(config, x, y, repeats):
    """Median fit epoch times (wall, CPU) of the shared and hook paths.

    Both models are trained one epoch as a warm-up, then their epochs
    alternate.
    """
    models = {}
    for name, cls in (("shared", AdvGAN), ("hook by hook", HookByHook)):
        advgan = compiled_advgan(config, cls)
        advgan.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        models[name] = advgan
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, advgan in models.items():
            wall, cpu = time.perf_counter(), time.process_time()
            advgan.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
            times[name].append(
                (time.perf_counter() - wall, time.process_time() - cpu)
            )
    return {name: np.median(t, axis=0) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument(
        "--configs", nargs="*", default=list(CONFIGS), choices=list(CONFIGS)
    )
    add_clock_argument(parser)
    parser.add_argument(
        "--baseline",
        choices=["one-pass", "two-pass"],
        default="one-pass",
        help="the hand-written step: one G(x) for both updates, as "
        "AdvGAN.fit does, or a second G(x) for the discriminator update",
    )
    parser.add_argument(
        "--paths",
        action="store_true",
        help="instead: AdvGAN.fit's shared G(x) against a G(x) per "
        "discriminator update (a subclass overriding discriminator_step), "
        "both fit",
    )
    parser.add_argument(
        "--filters", type=int, default=None, help="generator width"
    )
    args = parser.parse_args()
    (x, y), _ = keras_adv.datasets.load_mnist_subset()
    x, y = x[: args.samples], y[: args.samples].astype("int32")
    if args.filters is not None:
        for config in CONFIGS.values():
            config["filters"] = args.filters
    if args.paths:
        print(
            f"{len(x)} MNIST-subset samples, batch {BATCH}, model C target, "
            f"median of {args.repeats} epochs of AdvGAN.fit"
        )
        print(f"{'AdvGAN':<12}{'path':<14}{'wall s/epoch':>13}{'cpu s':>8}")
        for config in args.configs:
            for path, (wall, cpu) in time_paths(
                config, x, y, args.repeats
            ).items():
                print(f"{config:<12}{path:<14}{wall:>13.2f}{cpu:>8.2f}")
        return
    print(
        f"{len(x)} MNIST-subset samples, batch {BATCH}, model C target, "
        f"median of {args.repeats} epochs, {args.clock} clock, "
        f"{args.baseline} baseline"
    )
    print(f"{'AdvGAN':<12}{'fit s/epoch':>12}{'fused s/epoch':>15}{'ratio':>8}")
    for config in args.configs:
        fit_t, fused_t, ratio = time_pair(
            config,
            x,
            y,
            args.repeats,
            args.baseline == "two-pass",
            args.clock,
        )
        print(f"{config:<12}{fit_t:>12.3f}{fused_t:>15.3f}{ratio:>8.2f}")


if __name__ == "__main__":
    main()
