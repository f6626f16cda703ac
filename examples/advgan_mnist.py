"""AdvGAN on the embedded MNIST subset: semi-whitebox, targeted, black box.

Trains the paper's MNIST target model (A, B or C; 4,000 training images),
then an AdvGAN generator against it, and measures the attack on the 1,000
test images at L-inf eps 0.3 with `keras_adv.attacks.GeneratorAttack`
(one forward pass per image, no gradient of the target):

    python examples/advgan_mnist.py                      # model C, untargeted
    python examples/advgan_mnist.py --filters 16 --kappa 10 --epochs 30
    python examples/advgan_mnist.py --model a,b,c        # the paper's table
    python examples/advgan_mnist.py --targeted           # one conditioned G
    python examples/advgan_mnist.py --targeted --filters 32 \\
        --skip-connections --cosine-lr 2e-3 --kappa 10 --epochs 120
    python examples/advgan_mnist.py --black-box          # B behind queries
    python examples/advgan_mnist.py --robust             # vs PGD-7 training
    python examples/advgan_mnist.py --pgd-reference      # PGD-100, APGD-100
    python examples/advgan_mnist.py --quick              # a smoke run

`--black-box` hides model B behind `keras_adv.attacks.BlackBox` (its
probabilities only) and attacks it through a surrogate of another
architecture (model C), distilled statically (fitted once on the black
box's answers on the training images) and dynamically (refitted on its
answers on x and x + G(x) while the generator trains); it prints the
success on the black box and the queries spent. `--robust` trains the
PGD-7 recipe model (`keras_adv.recipes.mnist_adversarial_training`) and
reports its accuracy under the generator next to PGD-20 and APGD.
`--log-dir` writes `AdvGANMonitor` grids and label histograms for
TensorBoard; `--out` saves the generators (`generator_<model>.keras`, for
`keras-adv evaluate MODEL --attack generator:PATH`).
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.attacks import APGD  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.attacks import BlackBox  # noqa: E402
from keras_adv.attacks import GeneratorAttack  # noqa: E402
from keras_adv.callbacks import AdvGANMonitor  # noqa: E402
from keras_adv.models import AdvGAN  # noqa: E402
from keras_adv.models import Distillation  # noqa: E402
from keras_adv.models import advgan_discriminator  # noqa: E402
from keras_adv.models import advgan_generator  # noqa: E402

EPS = 0.3
MODELS = {
    "a": keras_adv.models.mnist_model_a,
    "b": keras_adv.models.mnist_model_b,
    "c": keras_adv.models.mnist_model_c,
}
# The settings of the quality runs (see docs/advgan.md).
ADVGAN_EPOCHS = 15
TARGETED_EPOCHS = 30
# The best targeted run (`--targeted --filters 32 --skip-connections
# --cosine-lr 2e-3 --kappa 10 --epochs 120`, docs/advgan.md).
TARGETED_SETTINGS = {
    "filters": 32,
    "skip_connections": True,
    "cosine_lr": 2e-3,
    "kappa": 10.0,
    "epochs": 120,
}
CLASSIFIER_EPOCHS = 10
BATCH = 64


def train_classifier(name, x, y, epochs=CLASSIFIER_EPOCHS, seed=0):
    """Model A, B or C trained on `(x, y)` (Adam 1e-3, batch 64)."""
    keras.utils.set_random_seed(seed)
    model = MODELS[name](seed=seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=BATCH, epochs=epochs, verbose=0)
    return model


def make_advgan(
    target,
    targeted=False,
    seed=0,
    filters=8,
    skip_connections=False,
    target_maps=0,
    cosine_lr=None,
    decay_steps=None,
    cls=AdvGAN,
    **kwargs,
):
    """The paper's generator and discriminator against `target`.

    `cosine_lr`: peak learning rate of both Adam optimizers (beta_1 0.5),
    decayed to 0 over `decay_steps` by a cosine; None keeps AdvGAN's
    default (constant 1e-3). `cls`: `AdvGAN` or a subclass (the other
    keywords go to its constructor).
    """
    generator = advgan_generator(
        eps=EPS,
        num_classes=10 if targeted else None,
        filters=filters,
        skip_connections=skip_connections,
        target_maps=target_maps,
        seed=seed,
    )
    advgan = cls(
        generator,
        advgan_discriminator(seed=seed),
        target,
        eps=EPS,
        targeted=targeted,
        seed=seed,
        **kwargs,
    )

    def optimizer():
        if cosine_lr is None:
            return None
        schedule = keras.optimizers.schedules.CosineDecay(
            cosine_lr, decay_steps
        )
        return keras.optimizers.Adam(schedule, beta_1=0.5)

    advgan.compile(d_optimizer=optimizer(), g_optimizer=optimizer())
    return advgan


def train_advgan(
    target,
    x,
    y,
    targeted=False,
    epochs=None,
    validation=None,
    log_dir=None,
    seed=0,
    verbose=0,
    **kwargs,
):
    """Trains an AdvGAN against `target`; returns it and the History."""
    if epochs is None:
        epochs = TARGETED_EPOCHS if targeted else ADVGAN_EPOCHS
    keras.utils.set_random_seed(seed)
    if kwargs.get("cosine_lr") is not None:
        kwargs["decay_steps"] = epochs * -(-len(x) // BATCH)
    advgan = make_advgan(target, targeted=targeted, seed=seed, **kwargs)
    callbacks = []
    if validation is not None:
        callbacks.append(
            AdvGANMonitor(validation, max_samples=500, log_dir=log_dir)
        )
    history = advgan.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    return advgan, history


def predict(model, x, batch_size=500):
    return np.concatenate(
        [
            np.asarray(model(x[i : i + batch_size], training=False)).argmax(-1)
            for i in range(0, len(x), batch_size)
        ]
    )


def untargeted_success(attack, model, x, y):
    """Share of the images the model misclassifies after the attack."""
    x_adv = np.asarray(attack(model, x, y))
    return float(np.mean(predict(model, x_adv) != y))


def targeted_success(attack, model, x, y):
    """Per target t: share of the images (label != t) classified as t."""
    rates = []
    for t in range(10):
        keep = y != t
        targets = np.full(int(keep.sum()), t)
        x_adv = np.asarray(attack(model, x[keep], targets))
        rates.append(float(np.mean(predict(model, x_adv) == t)))
    return rates


def pgd_reference(model, x, y, seed=0):
    """White-box targeted success per target, as `targeted_success`.

    PGD-100 (step 0.01) with cross-entropy and with the margin loss, and
    APGD-100 with cross-entropy and 5 restarts (the strongest white-box
    figure we have).
    """
    attacks = {
        f"pgd100_{loss}": PGD(
            eps=EPS,
            steps=100,
            step_size=0.01,
            loss=loss,
            targeted=True,
            seed=seed,
        )
        for loss in ("ce", "margin")
    }
    attacks["apgd100_ce_r5"] = APGD(
        eps=EPS, steps=100, restarts=5, loss="ce", targeted=True, seed=seed
    )
    entry = {}
    for name, attack in attacks.items():
        rates = targeted_success(attack, model, x, y)
        entry[name] = rates
        entry[f"{name}_mean"] = float(np.mean(rates))
    return entry


def black_box_run(
    x,
    y,
    x_test,
    y_test,
    distillation,
    box_model=None,
    epochs=None,
    seed=0,
    **kwargs,
):
    """Model B as a black box, a model-C surrogate; success and queries.

    `distillation` is the mode, `"static"` or `"dynamic"`.
    """
    if box_model is None:
        box_model = train_classifier("b", x, y, seed=seed)
    box = BlackBox(keras.Sequential([box_model, keras.layers.Softmax()]), 10)
    surrogate = MODELS["c"](seed=seed + 1)
    advgan = make_advgan(
        surrogate,
        seed=seed,
        distillation=Distillation(box, mode=distillation),
        **kwargs,
    )
    distilled = advgan.distill(x, epochs=CLASSIFIER_EPOCHS, batch_size=BATCH)
    advgan.fit(
        x, y, batch_size=BATCH, epochs=epochs or ADVGAN_EPOCHS, verbose=0
    )
    attack = GeneratorAttack(advgan)
    x_adv = np.asarray(attack(box_model, x_test, y_test))
    return {
        "distillation": distillation,
        "surrogate_agreement": distilled["agreement"],
        "success_on_black_box": float(
            np.mean(predict(box_model, x_adv) != y_test)
        ),
        "queries": box.query_count,
    }


def robust_comparison(
    x, y, x_test, y_test, epochs=None, seed=0, recipe_epochs=20, **kwargs
):
    """The PGD-7 recipe model under AdvGAN, PGD-20 and APGD (eps 0.3)."""
    run = keras_adv.recipes.mnist_adversarial_training(
        epochs=recipe_epochs,
        train_samples=len(x),
        eval_samples=0,
        monitor=False,
        seed=seed,
    )
    advgan, _ = train_advgan(
        run.model, x, y, epochs=epochs, seed=seed, **kwargs
    )
    report = keras_adv.evaluation.evaluate_robustness(
        run.model,
        (x_test, y_test),
        attacks={
            "advgan": GeneratorAttack(advgan),
            "pgd20": keras_adv.attacks.PGD(steps=20, seed=seed),
            "apgd": keras_adv.attacks.APGD(seed=seed),
        },
        epsilons=[0.0, EPS],
        seed=seed,
        verbose=0,
    )
    return {
        "clean": report.clean_accuracy,
        **{
            name: report.accuracy(name, EPS)
            for name in ("advgan", "pgd20", "apgd")
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c", help="a, b, c or a list")
    parser.add_argument("--targeted", action="store_true")
    parser.add_argument("--black-box", action="store_true")
    parser.add_argument("--robust", action="store_true")
    parser.add_argument(
        "--pgd-reference",
        action="store_true",
        help="only white-box targeted PGD-100 and APGD-100 success (no AdvGAN)",
    )
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--filters", type=int, default=8, help="generator width (paper: 8)"
    )
    parser.add_argument(
        "--skip-connections",
        action="store_true",
        help="U-Net skips in the generator (ours)",
    )
    parser.add_argument(
        "--target-maps",
        type=int,
        default=0,
        help="learned per-target input maps of a targeted generator (ours)",
    )
    parser.add_argument(
        "--cosine-lr",
        type=float,
        default=None,
        help="peak learning rate, cosine-decayed to 0 (default: 1e-3 flat)",
    )
    parser.add_argument("--kappa", type=float, default=None)
    parser.add_argument("--alpha", type=float, default=None)
    parser.add_argument("--beta", type=float, default=None)
    parser.add_argument("--c", type=float, default=None, help="hinge L2 budget")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--log-dir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    (x, y), (x_test, y_test) = keras_adv.datasets.load_mnist_subset()
    clf_epochs, epochs = CLASSIFIER_EPOCHS, args.epochs
    if args.quick:
        x, y, x_test, y_test = x[:256], y[:256], x_test[:128], y_test[:128]
        clf_epochs, epochs = 1, 1
    results = {}
    for name in args.model.split(","):
        start = time.time()
        model = train_classifier(name, x, y, clf_epochs, args.seed)
        accuracy = float(np.mean(predict(model, x_test) == y_test))
        if args.pgd_reference:
            entry = pgd_reference(model, x_test, y_test, args.seed)
            results[f"pgd_reference_{name}"] = entry
            print(f"model {name}: {json.dumps(entry)}", flush=True)
            continue
        log_dir = args.log_dir and os.path.join(args.log_dir, name)
        advgan, _ = train_advgan(
            model,
            x,
            y,
            targeted=args.targeted,
            epochs=epochs,
            validation=(x_test, y_test),
            log_dir=log_dir,
            seed=args.seed,
            verbose=2,
            filters=args.filters,
            skip_connections=args.skip_connections,
            target_maps=args.target_maps,
            cosine_lr=args.cosine_lr,
            **{
                k: getattr(args, k)
                for k in ("kappa", "alpha", "beta", "c")
                if getattr(args, k) is not None
            },
        )
        attack = GeneratorAttack(advgan)
        entry = {"clean_accuracy": accuracy}
        if args.targeted:
            rates = targeted_success(attack, model, x_test, y_test)
            entry["targeted_success"] = rates
            entry["mean_targeted_success"] = float(np.mean(rates))
        else:
            entry["success"] = untargeted_success(attack, model, x_test, y_test)
        entry["seconds"] = round(time.time() - start, 1)
        results[f"model_{name}"] = entry
        print(f"model {name}: {json.dumps(entry)}", flush=True)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            advgan.generator.save(
                os.path.join(args.out, f"generator_{name}.keras")
            )
            model.save(os.path.join(args.out, f"model_{name}.keras"))
    if args.black_box:
        box_model = train_classifier("b", x, y, clf_epochs, args.seed)
        for distillation in ("static", "dynamic"):
            entry = black_box_run(
                x,
                y,
                x_test,
                y_test,
                distillation,
                box_model,
                epochs,
                args.seed,
            )
            results[f"black_box_{distillation}"] = entry
            print(json.dumps(entry), flush=True)
    if args.robust:
        results["robust"] = robust_comparison(
            x, y, x_test, y_test, epochs, args.seed, 1 if args.quick else 20
        )
        print(json.dumps(results["robust"]), flush=True)
    return results


if __name__ == "__main__":
    main()
