"""The training runs compared by `test_multi_worker.py`.

    python multi_worker_program.py worker [NAMES]     # per worker, TF_CONFIG
    python multi_worker_program.py reference [NAMES]  # one process
    python multi_worker_program.py backup NAME DIR KILL_AT  # per worker

Every run trains a tiny model from the same numpy weights on the same 64
samples in global batches of 16 with plain SGD (whose updates are linear
in the loss, so a loss scaled wrongly across replicas changes the
weights), through `keras_adv.distribute.fit_multi_worker` (plain `fit` on
one machine), and reports the final weights and the History; as a script,
as one JSON line `RESULT {...}` on stdout.

* `worker`: `MultiWorkerMirroredStrategy` from `TF_CONFIG`; first checks
  that Keras' own `fit` still fails, then trains the scenarios.
* `backup`: one scenario with `keras.callbacks.BackupAndRestore(DIR,
  save_freq=2)`; worker 1 kills its own process (SIGKILL) after global
  step `KILL_AT` (0: never), as a preempted machine would.
* `reference`: one process; the `fixed` scenarios (deterministic attacks)
  on one device (batch 16, no strategy), the `seeded` ones on a
  `MirroredStrategy` over two logical CPUs (replicas 0 and 1 with 8
  samples each, like the two workers), whose replica ids, and so random
  draws, are the workers'. The `fixed` ones also run in the test process
  (`run_scenarios(names, None)`).
"""

import json
import os
import signal
import sys
import threading
from contextlib import nullcontext

import tensorflow as tf

if __name__ == "__main__" and sys.argv[1:2] == ["reference"]:
    # Two logical CPUs, before TensorFlow initialises its devices.
    _cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        _cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from keras_adv.attacks import FGSM  # noqa: E402
from keras_adv.attacks import PGD  # noqa: E402
from keras_adv.callbacks import AdversarialTraining  # noqa: E402
from keras_adv.callbacks import RobustnessMonitor  # noqa: E402
from keras_adv.distribute import fit_multi_worker  # noqa: E402
from keras_adv.distribute import multi_worker_support  # noqa: E402
from keras_adv.distribute import shard_by_data  # noqa: E402
from keras_adv.evaluation import evaluate_robustness  # noqa: E402
from keras_adv.losses import SoftmaxGANLoss  # noqa: E402
from keras_adv.models import GAN  # noqa: E402
from keras_adv.models import AdversarialModel  # noqa: E402
from keras_adv.models import SoftmaxGAN  # noqa: E402
from keras_adv.training import TRADES  # noqa: E402
from keras_adv.training import Madry  # noqa: E402

SAMPLES, BATCH, EPOCHS, LR = 64, 16, 2, 0.5
# The RobustnessMonitor scenario's TensorBoard directory (set by the test).
LOG_DIR_ENV = "KERAS_ADV_TEST_LOG_DIR"


class FixedStartTRADES(TRADES):
    """TRADES with a deterministic `x_adv` (no 0.001 N(0, 1) start).

    Keeps TRADES' KL term, its scaling for replicas and its installation,
    so one device and two workers must agree to float tolerance.
    """

    def adversarial_examples(self, model, x, y, eps, seed):
        return ops.clip(x + 0.5 * eps, 0.0, 1.0)


_LATENT = threading.local()  # per replica thread (MirroredStrategy)


class DataLatentSoftmaxGAN(SoftmaxGAN):
    """Reads its latents from the data `(x, z)`: one device and the workers
    (each with its rows of `z`) generate the same samples."""

    def train_step(self, data):
        _LATENT.z = data[1]
        return super().train_step(data)

    def sample_latent(self, batch_size):
        return _LATENT.z


def arrays():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(SAMPLES, 6)).astype("float32")
    y = np.argmax(x[:, :3] - x[:, 3:], axis=1).astype("int64")
    return x, y


def dataset(labels=True):
    x, y = arrays()
    ds = tf.data.Dataset.from_tensor_slices((x, y) if labels else x)
    return ds.batch(BATCH)


def dataset_with_latents():
    x, _ = arrays()
    z = np.random.default_rng(7).normal(size=(SAMPLES, 4)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, z)).batch(BATCH)


def set_numpy_weights(model, seed):
    rng = np.random.default_rng(seed)
    model.set_weights(
        [
            rng.normal(scale=0.5, size=w.shape).astype("float32")
            for w in model.get_weights()
        ]
    )


def classifier(lr=LR, wrap=None):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(3),
        ]
    )
    set_numpy_weights(model, 1)
    if wrap is not None:
        model = AdversarialModel(model, objective=wrap)
    model.compile(
        keras.optimizers.SGD(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def pgd(random_start):
    return PGD(eps=0.1, steps=2, random_start=random_start, seed=3)


def gan(cls, loss=None):
    generator = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(6, activation="sigmoid")]
    )
    discriminator = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1),
        ]
    )
    set_numpy_weights(generator, 2)
    set_numpy_weights(discriminator, 3)
    model = cls(generator, discriminator, latent_dim=4, seed=5)
    model.compile(
        d_optimizer=keras.optimizers.SGD(LR),
        g_optimizer=keras.optimizers.SGD(LR),
        **({} if loss is None else {"loss": loss}),
    )
    return model


def monitor_attacks():
    return {
        "fgsm": FGSM(eps=0.1),
        "pgd": PGD(eps=0.1, steps=3, seed=0),  # random start, seeded
    }


def monitor():
    x, y = arrays()
    return RobustnessMonitor(
        (x, y),
        attacks=monitor_attacks(),
        max_samples=48,
        batch_size=16,
        log_dir=os.environ[LOG_DIR_ENV],
    )


def robustness_report(model):
    """`evaluate_robustness` of the trained model, as a dict."""
    x, y = arrays()
    report = evaluate_robustness(
        model,
        (x, y),
        attacks=monitor_attacks(),
        epsilons=(0.05, 0.1),
        batch_size=16,
        checks=False,
        verbose=0,
    )
    keys = ("accuracy", "success_rate", "mean_norm", "max_norm")
    return {
        "clean_accuracy": report.clean_accuracy,
        "robust_accuracy": report.robust_accuracy,
        "attacks": {
            name: {k: entry[k] for k in keys}
            for name, entry in report.attacks.items()
        },
    }


def _callback(objective):
    return {"callbacks": [AdversarialTraining(objective=objective)]}


def _validation():
    return {"validation_data": dataset()}


# name -> (seeded, build the model, the dataset, extra `fit` arguments).
# `fixed` scenarios use deterministic attacks (compared with one device),
# `seeded` ones random starts and latents (compared with two replicas).
SCENARIOS = {
    "plain": (False, classifier, dataset, _validation),
    "madry_fixed": (
        False,
        classifier,
        dataset,
        lambda: _callback(Madry(pgd(False))),
    ),
    "trades_fixed": (
        False,
        classifier,
        dataset,
        lambda: _callback(FixedStartTRADES(pgd(False), beta=6.0)),
    ),
    "model_madry_fixed": (
        False,
        lambda: classifier(wrap=Madry(pgd(False))),
        dataset,
        dict,
    ),
    "madry_seeded": (
        True,
        classifier,
        dataset,
        lambda: _callback(Madry(pgd(True))),
    ),
    "trades_seeded": (
        True,
        classifier,
        dataset,
        lambda: _callback(TRADES(pgd(True), beta=6.0)),
    ),
    "model_trades_seeded": (
        True,
        lambda: classifier(wrap=TRADES(pgd(True), beta=6.0)),
        dataset,
        dict,
    ),
    "gan_seeded": (True, lambda: gan(GAN), lambda: dataset(False), dict),
    "softmax_gan_seeded": (
        True,
        lambda: gan(SoftmaxGAN),
        lambda: dataset(False),
        dict,
    ),
    # Softmax GAN over the global batch: the samples of one device.
    "softmax_gan_global": (
        False,
        lambda: gan(DataLatentSoftmaxGAN, SoftmaxGANLoss(global_batch=True)),
        dataset_with_latents,
        dict,
    ),
    # RobustnessMonitor (TensorBoard in $KERAS_ADV_TEST_LOG_DIR) and
    # evaluate_robustness after training.
    "monitor": (
        False,
        classifier,
        dataset,
        lambda: {"callbacks": [monitor()]},
    ),
    # Sensitivity (reference only): what a replica-scaling bug would give,
    # the loss (plain) or TRADES' term counted twice.
    "plain_2x": (False, lambda: classifier(lr=2 * LR), dataset, dict),
    "trades_fixed_2x": (
        False,
        classifier,
        dataset,
        lambda: _callback(FixedStartTRADES(pgd(False), beta=12.0)),
    ),
}


def run_scenario(name, strategy, callbacks=()):
    """Trains scenario `name` in `strategy`'s scope (None: no strategy)."""
    _, build, data, fit_kwargs = SCENARIOS[name]
    scope = strategy.scope() if strategy is not None else nullcontext()
    with scope:
        model = build()
    kwargs = fit_kwargs()
    kwargs["callbacks"] = kwargs.get("callbacks", []) + list(callbacks)
    history = fit_multi_worker(
        model, data(), epochs=EPOCHS, verbose=0, **kwargs
    )
    out = {
        "weights": [w.tolist() for w in model.get_weights()],
        "history": {
            k: [float(v) for v in vs] for k, vs in history.history.items()
        },
        "iterations": int(
            (
                getattr(model, "d_optimizer", None) or model.optimizer
            ).iterations.numpy()
        ),
    }
    if name == "monitor":
        with multi_worker_support(model):
            out["report"] = robustness_report(model)
    return out


class KillAt(keras.callbacks.Callback):
    """Kills its own process (SIGKILL) after global step `step`."""

    def __init__(self, step):
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.step:
            print(f"KILLED after step {self.step}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


def run_backup(name, backup_dir, kill_at, strategy):
    """`run_scenario` with BackupAndRestore; worker 1 killed at `kill_at`."""
    task = json.loads(os.environ["TF_CONFIG"])["task"]
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir, save_freq=2)]
    if kill_at and task["index"] == 1:
        callbacks.append(KillAt(kill_at))
    return run_scenario(name, strategy, callbacks)


def shard_rows(strategy):
    """The rows of the first global batch of 16 this worker's replicas get."""
    rows = shard_by_data(tf.data.Dataset.range(32).batch(16))
    batch = next(iter(strategy.experimental_distribute_dataset(rows)))
    return [
        np.asarray(v).tolist()
        for v in strategy.experimental_local_results(batch)
    ]


def keras_fit_error(strategy):
    """The error of Keras' own `fit` without the adapter (None if it runs)."""
    with strategy.scope():
        model = classifier()
    try:
        model.fit(dataset(), epochs=1, verbose=0)
    except ValueError as error:
        return str(error).splitlines()[0][:200]
    return None


def replica_ids(strategy):
    ids = strategy.run(
        lambda: tf.distribute.get_replica_context().replica_id_in_sync_group
    )
    return [int(v) for v in strategy.experimental_local_results(ids)]


def gan_latents(strategy):
    """Each local replica's first latent row of a `GAN` (seed 5)."""
    with strategy.scope():
        model = gan(GAN)

    @tf.function
    def sample():
        return strategy.run(lambda: model.sample_latent(2)[0])

    values = strategy.experimental_local_results(sample())
    return [np.asarray(v).tolist() for v in values]


def main(mode, names, *args):
    keras.config.disable_traceback_filtering()
    if mode == "backup":
        multi = tf.distribute.MultiWorkerMirroredStrategy()
        out = run_backup(names[0], args[0], int(args[1]), multi)
        out["pid"] = os.getpid()
        print("RESULT " + json.dumps(out), flush=True)
        return
    if mode == "worker":
        multi = tf.distribute.MultiWorkerMirroredStrategy()
        single = multi
    else:
        multi = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        single = None
    out = {
        "mode": mode,
        "replicas": multi.num_replicas_in_sync,
        "replica_ids": replica_ids(multi),
        "gan_latents": gan_latents(multi),
        "pid": os.getpid(),
    }
    if mode == "worker":
        out["keras_fit_error"] = keras_fit_error(multi)
        out["shard_rows"] = shard_rows(multi)
    for name in names:
        seeded = SCENARIOS[name][0]
        out[name] = run_scenario(name, multi if seeded else single)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2].split(",") if len(sys.argv) > 2 else list(SCENARIOS),
        *sys.argv[3:],
    )
