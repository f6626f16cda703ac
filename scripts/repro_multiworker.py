"""Reproduces `model.fit` failing under MultiWorkerMirroredStrategy.

Launches two worker processes on 127.0.0.1 (free ports, CPU only), each
with its own TF_CONFIG, a plain two-layer Keras model built in
`MultiWorkerMirroredStrategy.scope()` and `model.fit(dataset)` on a
batched `tf.data.Dataset` (keras-team/keras#20585). Prints each worker's
exit code, History or traceback (frames and error line, without the
tensors' values).

On TF 2.21 / Keras 3.15 both workers fail in `fit` ->
`TensorFlowTrainer._maybe_symbolic_build` (keras/src/backend/tensorflow/
trainer.py:731), whose `strategy.reduce("MEAN", (x, y), axis=None)` the
multi-worker strategy cannot apply to a tuple of `PerReplica` values;
past it, `reduce_per_replica` (trainer.py:841) fails on the scalar logs
(`axis=0`). `keras_adv.distribute` (`--adapter`) works around both.

    python scripts/repro_multiworker.py            # plain Keras fit
    python scripts/repro_multiworker.py --adapter  # keras_adv's adapter
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time

WORKER = r"""
import json, os, sys
import numpy as np
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()
import keras

keras.config.disable_traceback_filtering()

rng = np.random.default_rng(0)
x = rng.uniform(size=(64, 6)).astype("float32")
y = rng.integers(0, 3, 64)
dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
with strategy.scope():
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        "sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
if sys.argv[1] == "adapter":
    from keras_adv.distribute import fit_multi_worker

    history = fit_multi_worker(model, dataset, epochs=2, verbose=0)
else:
    history = model.fit(dataset, epochs=2, verbose=0)
print("HISTORY " + json.dumps(history.history), flush=True)
"""


def free_ports(count):
    """`count` free TCP ports on 127.0.0.1 (bound, read, released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def traceback_of(stderr):
    """The traceback's frames and error line, without tensor values."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceb")]
    if not starts:
        return "\n".join(lines[-20:])
    kept = []
    for line in lines[starts[-1] :]:
        if line.startswith(("Traceback", "  File ")) or (
            line[:1].isalpha() and "Error" in line.split(":")[0]
        ):
            kept.append(line)
    return "\n".join(kept)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", action="store_true")
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    procs = []
    start = time.perf_counter()
    for index in range(2):
        env = dict(os.environ)
        env.update(
            TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}
            ),
            CUDA_VISIBLE_DEVICES="",
            KERAS_BACKEND="tensorflow",
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONPATH=root + os.pathsep + env.get("PYTHONPATH", ""),
        )
        mode = "adapter" if args.adapter else "plain"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, mode],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    status = 0
    for index, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            for other in procs:
                other.kill()
            out, err = proc.communicate()
        print(f"--- worker {index}: exit code {proc.returncode}")
        print(out.strip())
        if proc.returncode != 0:
            status = 1
            print(traceback_of(err))
    print(f"wall time {time.perf_counter() - start:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
