"""Learned perturbation sets on the embedded MNIST subset, end to end.

Wong and Kolter (ICLR 2021) learn a perturbation set from pairs `(x, x~)`
with a conditional VAE; `S(x) = {g(mu_p + sigma_p u, x) : ||u|| <= r}`.
This script, for one kind of pairs (`--kind linf`: uniform noise of
L-inf radius 0.3; `--kind rts`: rotation up to 45 degrees, scale
0.7-1.3, translation up to 4 pixels):

1. trains a CVAE (`--arch stn`: the spatial-transformer CVAE the paper
   uses for RTS, latent 128; `--arch conv`: the paper's convolutional
   MNIST CVAE, latent 128x7x7; `--arch fc`: the fully connected one,
   latent 784) on
   3,500 training images with fresh perturbations every epoch and a beta
   warm-up (`BetaSchedule`), and times it;
2. reports reconstruction and KL on the 1,000 held-out test pairs and
   calibrates the radius on the 500 held-out calibration pairs
   (`calibrate_radius`);
3. measures the NSP approximation error and the SLP expected error
   (`perturbation_set_errors`) next to the identity and random-member
   baselines;
4. with `--robustness` (meant for `--kind rts`): trains a small CNN
   clean, with CVAE augmentation (`CVAEAugmentation`) and with LatentPGD
   adversarial training (7 steps, `MaxLoss`), then reports for each the
   clean accuracy, the accuracy on the held-out perturbed test images and
   under LatentPGD (50 steps) at the calibrated radius, the share of
   1,000 members of the set (one per test image) that clean models label
   like the source digit (the small clean CNN, and a clean judge CNN with
   global max pooling; next to their accuracy on the real perturbed test
   images), the cost of a LatentPGD step relative to a PGD step, and
   writes a grid of samples.

Results go to `<out>/<kind>_<arch>.json` (and `.png` grids).

    python examples/perturbation_set_mnist.py --kind rts --robustness
    python examples/perturbation_set_mnist.py --kind linf --arch fc

`--quick` trains for seconds (a smoke run, not the quality figures).

Measured on 2 CPU cores shared with other jobs (figures in
docs/perturbation_sets.md): `--kind rts --arch stn --cvae-epochs 60
--robustness --epochs 8 --adv-epochs 10` trains the CVAE in 160 s and the
whole run used 600 s of CPU (members keep the label 88.2%); with
`--cvae-epochs 300` (the quality setting) the CVAE trains in 713 s and
90.2% of the members keep the label; `--kind linf --arch fc --cvae-epochs 20`
trains the CVAE in 16 s, `--cvae-epochs 200` in 146 s.
"""

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_adv  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.attacks import LatentPGD  # noqa: E402
from keras_adv.callbacks import AdversarialTraining  # noqa: E402
from keras_adv.datasets import mnist_subset_pairs  # noqa: E402
from keras_adv.datasets import pair_dataset  # noqa: E402
from keras_adv.evaluation import calibrate_radius  # noqa: E402
from keras_adv.evaluation import evaluate_robustness  # noqa: E402
from keras_adv.evaluation import perturbation_set_errors  # noqa: E402
from keras_adv.threat_models import LearnedPerturbationSet  # noqa: E402


def build_cvae(arch, kind, steps_per_epoch, epochs, seed=0):
    """The CVAE and its beta warm-up (0 to beta_max over half the run)."""
    beta_max = 1e-2 if kind == "linf" else 1.0
    warm = max(1, steps_per_epoch * epochs // 2)
    schedule = keras_adv.losses.BetaSchedule(
        [0, warm // 4, warm], [0.0, beta_max / 10, beta_max]
    )
    builder = {
        "conv": keras_adv.models.cvae_mnist_conv,
        "fc": keras_adv.models.cvae_mnist_fc,
        "stn": keras_adv.models.cvae_mnist_stn,
    }[arch]
    return builder(beta=schedule, seed=seed)


def train_cvae(arch, kind, data, epochs, batch_size=128, seed=0):
    x_train = data["train"][0]
    steps = -(-len(x_train) // batch_size)
    cvae = build_cvae(arch, kind, steps, epochs, seed)
    cvae.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = pair_dataset(x_train, kind, batch_size=batch_size, seed=seed)
    start = time.perf_counter()
    history = cvae.fit(ds, epochs=epochs, verbose=2)
    seconds = time.perf_counter() - start
    return cvae, seconds, history.history


def held_out_terms(cvae, pairs):
    x, x_tilde = pairs[0], pairs[1]
    rec, kl = [], []
    for i in range(0, len(x), 250):
        r, k = cvae.compute_terms(x[i : i + 250], x_tilde[i : i + 250])
        rec.append(np.asarray(r))
        kl.append(np.asarray(k))
    return float(np.concatenate(rec).mean()), float(np.concatenate(kl).mean())


def classifier(seed=0):
    model = keras_adv.testing.mnist_cnn(width=16, dense=64, seed=seed)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def judge(x, y, seed=0):
    """A clean CNN with global max pooling (shift tolerant) as label judge."""
    layers = keras.layers
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.GlobalMaxPooling2D(),
            layers.Dense(10),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=128, epochs=8, verbose=0)
    return model


def accuracy(model, x, y):
    pred = np.asarray(model.predict(x, batch_size=500, verbose=0)).argmax(1)
    return float(np.mean(pred == y))


def label_preservation(model, tm, x, y, seed=0):
    """Share of set members labelled like the source digit (1 per image)."""
    out = {}
    prior = tm.cvae.sample(x, n=1, seed=seed)[:, 0]
    out["prior_samples"] = accuracy(model, np.asarray(prior), y)
    members = np.concatenate(
        [
            np.asarray(tm.random_start(x[i : i + 250], seed=seed + i))
            for i in range(0, len(x), 250)
        ]
    )
    out["uniform_members"] = accuracy(model, members, y)
    return out


def step_cost(model, tm, x, y, steps=10):
    """Seconds per step of LatentPGD and of L-inf PGD on the same model."""
    latent = LatentPGD(tm, steps=steps, early_stop=False, seed=0)
    pgd = PGD(eps=0.3, steps=steps, seed=0)
    out = {}
    for name, attack in (("latent_pgd", latent), ("pgd", pgd)):
        attack(model, x[:250], y[:250])  # trace
        start = time.perf_counter()
        for i in range(0, len(x), 250):
            np.asarray(attack(model, x[i : i + 250], y[i : i + 250]))
        out[name] = (time.perf_counter() - start) / steps
    out["ratio"] = out["latent_pgd"] / out["pgd"]
    return out


def save_grid(path, x, samples):
    """Row i: x_i then its samples."""
    rows = np.concatenate([x[:, None], samples], axis=1)
    n, m = rows.shape[:2]
    grid = rows.transpose(0, 2, 1, 3, 4).reshape(n * 28, m * 28)
    keras.utils.save_img(path, (grid[..., None] * 255).astype("uint8"))


def robustness(tm, data, epochs, adv_epochs, out_dir, tag, seed=0):
    (x, y) = keras_adv.datasets.load_mnist_subset()[0]
    x_test, x_test_tilde, y_test = data["test"]
    radius = float(tm.radius)
    models, seconds = {}, {}
    for name in ("clean", "augmentation", "latent_pgd_training"):
        keras.utils.set_random_seed(seed)
        model = classifier(seed)
        callbacks, fit_x, n_epochs = [], x, epochs
        if name == "augmentation":
            augmented = keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    keras_adv.layers.CVAEAugmentation(
                        tm.cvae, radius=radius, rate=0.5, seed=seed
                    ),
                    model,
                ]
            )
            augmented.compile(
                keras.optimizers.Adam(1e-3),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
            start = time.perf_counter()
            augmented.fit(x, y, batch_size=128, epochs=epochs, verbose=2)
            seconds[name] = time.perf_counter() - start
            models[name] = model
            continue
        if name == "latent_pgd_training":
            n_epochs = adv_epochs
            attack = LatentPGD(tm, steps=7, seed=seed)
            callbacks = [AdversarialTraining(attack, objective="max_loss")]
        start = time.perf_counter()
        model.fit(
            fit_x,
            y,
            batch_size=128,
            epochs=n_epochs,
            verbose=2,
            callbacks=callbacks,
        )
        seconds[name] = time.perf_counter() - start
        models[name] = model
    results = {}
    attack = LatentPGD(tm, steps=50, seed=seed)
    for name, model in models.items():
        report = evaluate_robustness(
            model,
            (x_test, y_test),
            attacks={"latent_pgd": attack},
            epsilons=[radius],
            checks=False,
            verbose=0,
        )
        results[name] = {
            "clean_accuracy": accuracy(model, x_test, y_test),
            "perturbed_test_accuracy": accuracy(model, x_test_tilde, y_test),
            "latent_pgd_accuracy": report.accuracy("latent_pgd", radius),
            "train_seconds": seconds[name],
        }
    clean = models["clean"]
    results["label_preservation_clean_model"] = label_preservation(
        clean, tm, x_test, y_test, seed
    )
    results["label_preservation_clean_model"]["real_perturbations"] = results[
        "clean"
    ]["perturbed_test_accuracy"]
    referee = judge(x, y, seed)
    results["label_preservation_judge"] = label_preservation(
        referee, tm, x_test, y_test, seed
    )
    results["label_preservation_judge"].update(
        clean_test=accuracy(referee, x_test, y_test),
        real_perturbations=accuracy(referee, x_test_tilde, y_test),
    )
    results["step_cost_seconds"] = step_cost(clean, tm, x_test, y_test)
    samples = np.asarray(tm.cvae.sample(x_test[:8], n=8, seed=seed))
    save_grid(
        os.path.join(out_dir, f"{tag}_samples.png"),
        x_test[:8],
        samples[..., 0][..., None],
    )
    worst = attack(clean, x_test[:8], y_test[:8])
    save_grid(
        os.path.join(out_dir, f"{tag}_latent_pgd.png"),
        x_test[:8],
        np.asarray(worst)[:, None],
    )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", choices=["linf", "rts"], default="rts")
    parser.add_argument("--arch", choices=["conv", "fc", "stn"], default="stn")
    parser.add_argument("--cvae-epochs", type=int, default=20)
    parser.add_argument("--percentile", type=float, default=99.0)
    parser.add_argument("--robustness", action="store_true")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--adv-epochs", type=int, default=5)
    parser.add_argument("--out", default="perturbation_set_results")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.cvae_epochs, args.epochs, args.adv_epochs = 1, 1, 1
    os.makedirs(args.out, exist_ok=True)
    tag = f"{args.kind}_{args.arch}"
    keras.utils.set_random_seed(0)

    data = mnist_subset_pairs(args.kind)
    cvae, seconds, history = train_cvae(
        args.arch, args.kind, data, args.cvae_epochs
    )
    rec, kl = held_out_terms(cvae, data["test"])
    cal = calibrate_radius(cvae, data["calibration"], args.percentile)
    print(cal)
    errors = perturbation_set_errors(cvae, data["test"], cal.radius, samples=5)
    results = {
        "kind": args.kind,
        "arch": args.arch,
        "cvae_epochs": args.cvae_epochs,
        "cvae_train_seconds": seconds,
        "final_train_logs": {k: float(v[-1]) for k, v in history.items()},
        "held_out_reconstruction": rec,
        "held_out_kl": kl,
        "calibration": cal.to_dict(),
        "errors": errors,
    }
    print(json.dumps(results, indent=1))
    if args.robustness:
        tm = LearnedPerturbationSet(cvae, radius=cal.radius)
        results["robustness"] = robustness(
            tm, data, args.epochs, args.adv_epochs, args.out, tag
        )
        print(json.dumps(results["robustness"], indent=1))
    cvae.save(os.path.join(args.out, f"{tag}.keras"))
    with open(os.path.join(args.out, f"{tag}.json"), "w") as f:
        json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
