"""Adversarial training on several machines with Keras' own `fit`.

Run the same command once on every machine (worker) of the cluster, each
with its own `TF_CONFIG` (the cluster, and this worker's index):

    # on host0                                  # on host1: "index": 1
    export TF_CONFIG='{"cluster": {"worker": ["host0:12345", "host1:12345"]},
                       "task": {"type": "worker", "index": 0}}'
    python examples/multi_worker_training.py --objective trades

Every worker builds the model in `MultiWorkerMirroredStrategy().scope()`
and calls `keras_adv.distribute.fit_multi_worker` with the same
`AdversarialTraining` callback as on one machine. The global batch
(`--batch-size`) is split between the workers (`DATA` auto-sharding: each
trains on its slice of every batch; gradients are summed across workers),
so the weights follow the same path as one process training on the whole
batch. Worker 0 (the chief) prints the History and the clean test
accuracy, and writes `--output` if given.

To try it on one machine, `--local 2` starts two workers on 127.0.0.1
(free ports, CPU only); without `TF_CONFIG` or `--local` one process
trains. The embedded MNIST subset (`--samples` of its 4,000 training
images) and a small CNN keep it short: `--local 2` with the defaults
takes about 15-25 s on 2 CPU cores (PGD-3, eps ramped up to 0.1 over two
epochs: about 50% adversarial training accuracy, 84% clean test accuracy
after 4 epochs; `--objective trades` 78% and 90%).
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objective", choices=("pgd", "trades"), default="pgd")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--output", help="a .keras file written by worker 0")
    parser.add_argument(
        "--local",
        type=int,
        metavar="N",
        help="start N workers on 127.0.0.1 (a try-out on one machine)",
    )
    args = parser.parse_args()
    if args.samples < args.batch_size:
        parser.error("--samples must be >= --batch-size")
    return args


def launch_local(workers):
    """Runs this script as `workers` local workers; their exit status."""
    sockets = [socket.socket() for _ in range(workers)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    argv, skip = [], False
    for arg in sys.argv[1:]:  # the same arguments without --local
        if skip or arg.startswith("--local="):
            skip = False
        elif arg == "--local":
            skip = True
        else:
            argv.append(arg)
    procs = []
    for index in range(workers):
        task = {"type": "worker", "index": index}
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": task}),
            CUDA_VISIBLE_DEVICES="",
            TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        )
        procs.append(
            subprocess.Popen([sys.executable, __file__, *argv], env=env)
        )
    # A worker that fails leaves the others waiting for it: stop them.
    while any(proc.poll() is None for proc in procs):
        if any(proc.poll() for proc in procs):
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        time.sleep(0.5)
    return max(proc.returncode for proc in procs)


def task_index():
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    return config.get("task", {}).get("index", 0)


def main():
    args = parse_args()
    if args.local:
        return launch_local(args.local)

    import tensorflow as tf

    # Create the strategy first: it reads TF_CONFIG and connects the workers.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()

    import keras

    from keras_adv.attacks import PGD
    from keras_adv.callbacks import AdversarialTraining
    from keras_adv.datasets import mnist_subset_dataset
    from keras_adv.distribute import fit_multi_worker
    from keras_adv.distribute import multi_worker_support
    from keras_adv.models import mnist_cnn

    chief = task_index() == 0
    with strategy.scope():
        model = mnist_cnn(width=8, dense=32)
        model.compile(
            keras.optimizers.Adam(1e-3),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    # The same shuffled batches on every worker (fixed seed); whole batches
    # only, so that each splits evenly between the replicas.
    train = mnist_subset_dataset(
        "train", batch_size=args.batch_size, drop_remainder=True
    ).take(args.samples // args.batch_size)
    test = mnist_subset_dataset("test", batch_size=100, shuffle=False)
    objective = "adversarial" if args.objective == "pgd" else "trades"
    callback = AdversarialTraining(
        PGD(eps=args.eps, steps=args.steps, seed=0),
        objective,
        eps_warmup_epochs=args.epochs // 2,
    )
    history = fit_multi_worker(
        model,
        train,
        epochs=args.epochs,
        callbacks=[callback],
        verbose=2 if chief else 0,
    )
    # Every worker evaluates (the metrics are summed across workers).
    with multi_worker_support(model):
        clean = model.evaluate(test, verbose=0, return_dict=True)
    if chief:
        print(f"{strategy.num_replicas_in_sync} replicas, {args.objective}")
        for key, values in history.history.items():
            print(f"  {key}: " + ", ".join(f"{v:.4f}" for v in values))
        print(f"  clean test accuracy: {clean['accuracy']:.4f}")
        if args.output:
            model.save(args.output)
            print(f"  saved {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
