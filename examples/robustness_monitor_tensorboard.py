"""Watching robustness in TensorBoard while a model trains adversarially.

Trains a small CNN on the embedded MNIST subset with PGD adversarial
training (`AdversarialTraining`, eps warm-up) and a `RobustnessMonitor`
that, every epoch, attacks 256 fixed test images with FGSM and PGD-10 at
eps=0.3 and writes:

* `val_fgsm_accuracy`, `val_pgd_accuracy` and `val_robust_accuracy` into
  the epoch logs (the progress bar, History, the EarlyStopping and
  ModelCheckpoint below and Keras' TensorBoard callback all see them);
* its own TensorBoard run `<log_dir>/robustness`: one image per epoch
  (clean / adversarial / perturbation rows), histograms of perturbation
  norms and logit margins, accuracy scalars and a "Custom Scalars" chart
  with every attack on one plot.

With `--certify ibp` the monitor also logs `val_verified_accuracy`, the
share of the same images PROVEN robust at eps by interval bounds (a lower
bound under the attacks' upper bound), and draws it on the same Custom
Scalars chart. Expect the verified curve of a PGD-trained model far
below the empirical ones (interval bounds are loose on models not
trained for them): the gap is what verified training closes. (This CNN
has max pooling: use `ibp`; `crown_ibp` refuses it at train begin,
naming the layer.)

    python examples/robustness_monitor_tensorboard.py [--epochs 6]
        [--log-dir logs/robustness_monitor] [--train-samples 4000]
        [--certify ibp]

Runs offline. On 2 busy CPU cores the default run took 68 s: PGD-10
accuracy on the 256 monitored images rose from 0% (epoch 1) to 55%
(epoch 6) at 95% clean accuracy, and each evaluation took 0.5-0.9 s
(5.5 s for the first, which traces the graph). Then open the printed
`tensorboard --logdir ...` command in a browser.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.models import mnist_cnn  # noqa: E402

EPS = 0.3


def build_cnn(seed=0):
    """A small MNIST CNN with logits."""
    return mnist_cnn(width=16, dense=64, seed=seed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--monitor-samples", type=int, default=256)
    parser.add_argument(
        "--log-dir",
        default=os.path.join(tempfile.gettempdir(), "keras_adv_monitor"),
    )
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument(
        "--certify",
        default=None,
        help="bound method of the verified accuracy: ibp, crown_ibp, crown",
    )
    args = parser.parse_args()

    (x_train, y_train), (x_test, y_test) = (
        keras_adv.datasets.load_mnist_subset()
    )
    x_train = x_train[: args.train_samples]
    y_train = y_train[: args.train_samples]

    keras.utils.set_random_seed(0)
    model = build_cnn()
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    training = keras_adv.callbacks.AdversarialTraining(
        keras_adv.attacks.PGD(eps=EPS, steps=7, step_size=0.1, seed=0),
        eps_warmup_epochs=max(2, args.epochs // 2),
    )
    monitor = keras_adv.callbacks.RobustnessMonitor(
        (x_test, y_test),
        attacks={
            "fgsm": keras_adv.attacks.FGSM(eps=EPS),
            "pgd": keras_adv.attacks.PGD(eps=EPS, steps=10, seed=1),
        },
        max_samples=args.monitor_samples,
        log_dir=args.log_dir,
        images=8,
        certify=args.certify,
    )
    best_path = os.path.join(args.log_dir, "best_robust.keras")
    callbacks = [
        training,
        # The monitor comes BEFORE the callbacks that read its keys.
        monitor,
        keras.callbacks.ModelCheckpoint(
            best_path,
            monitor="val_robust_accuracy",
            mode="max",  # Keras cannot infer the direction of this key.
            save_best_only=True,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_robust_accuracy", mode="max", patience=3
        ),
        keras.callbacks.TensorBoard(args.log_dir),
    ]
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start

    logged = history.history
    verified = logged.get("val_verified_accuracy", [None] * len(logged["loss"]))
    print(f"\nepoch  clean-val  fgsm@{EPS}  pgd@{EPS}  worst case  verified")
    for epoch, (clean, fgsm, pgd, worst, proven) in enumerate(
        zip(
            logged["val_accuracy"],
            logged["val_fgsm_accuracy"],
            logged["val_pgd_accuracy"],
            logged["val_robust_accuracy"],
            verified,
            strict=True,
        )
    ):
        proven = "-" if proven is None else f"{proven:.3f}"
        print(
            f"{epoch + 1:>5}  {clean:>9.3f}  {fgsm:>8.3f}  {pgd:>7.3f}  "
            f"{worst:>10.3f}  {proven:>8}"
        )
    print(
        f"\nTrained {len(history.history['loss'])} epochs in {seconds:.0f} s."
        f" Best robust model: {best_path}"
    )
    print("View the run in TensorBoard (Scalars, Images, Histograms, Text,")
    print("Custom Scalars):")
    print(f"    tensorboard --logdir {args.log_dir}")


if __name__ == "__main__":
    main()
