"""keras_adv.distribute: Keras' own `fit` on two real workers.

Two processes on 127.0.0.1 (free ports, CPU only), each with its
`TF_CONFIG`, run `multi_worker_program.py worker` under
`MultiWorkerMirroredStrategy`; their final weights must equal, to float
tolerance, those of one process training on the same global batches:

* on one device (no strategy, batch 16) for the deterministic scenarios,
  which pins loss scaling (plain SGD: a loss or an extra term counted
  twice moves the weights by ~1e-2, the tolerance is 1e-6);
* on a two-replica `MirroredStrategy` in one process for the seeded
  scenarios (random starts, TRADES' noise, GAN latents): replica `r` there
  draws what worker `r` draws, so equality also shows that each worker
  folds its own replica id into the seeds.

The default suite runs the plain model and TRADES through the callback
(about 30 s); `pytest -m multiworker` runs every scenario (Madry/PGD and
TRADES through `AdversarialTraining`, `AdversarialModel`, `GAN`,
`SoftmaxGAN`) against a reference process (about two minutes).

The Keras behaviour `keras_adv.distribute` relies on is pinned in
`tests/test_keras_internals.py`; here,
`test_keras_fit_still_fails_without_the_adapter` says whether the adapter
is still needed.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import keras
import multi_worker_program as program
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import _keras_internals as internals
from keras_adv.distribute import _multi_worker
from keras_adv.distribute import fit_multi_worker
from keras_adv.distribute import multi_worker_support
from keras_adv.distribute import shard_by_data
from keras_adv.distribute._multi_worker import is_multi_worker

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROGRAM = os.path.join(HERE, "multi_worker_program.py")
TIMEOUT = 400
ATOL = 1e-6
FAST = ("plain", "trades_fixed")
FIXED = (
    "plain",
    "madry_fixed",
    "trades_fixed",
    "model_madry_fixed",
    "softmax_gan_global",
    "monitor",
)
SEEDED = (
    "madry_seeded",
    "trades_seeded",
    "model_trades_seeded",
    "gan_seeded",
    "softmax_gan_seeded",
)


# ------------------------------------------------------------- helpers
def _model(**kwargs):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2)], **kwargs
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _dataset():
    x = np.random.default_rng(0).uniform(size=(8, 3)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(4)


def _free_ports(count):
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


def _env(**extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "grpc_proxy")
    }
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONPATH=ROOT + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def _result(stdout, stderr, what):
    lines = [s for s in stdout.splitlines() if s.startswith("RESULT ")]
    if not lines:
        raise AssertionError(f"{what} gave no result:\n{stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def launch(args, workers=2, env=None, timeout=TIMEOUT):
    """Runs `PROGRAM args` as `workers` local workers, like a cluster manager.

    When a worker exits with an error (or is killed), the others, which
    wait for it in a collective, are killed too. Returns each worker's
    `(returncode, stdout, stderr)` and the seconds taken.
    """
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(workers)]}
    start = time.perf_counter()
    procs, files = [], []
    try:
        for index in range(workers):
            task = {"type": "worker", "index": index}
            config = {"cluster": cluster, "task": task}
            out, err = (
                tempfile.TemporaryFile("w+"),
                tempfile.TemporaryFile("w+"),
            )
            files.append((out, err))
            procs.append(
                subprocess.Popen(
                    [sys.executable, PROGRAM, *args],
                    env=_env(TF_CONFIG=json.dumps(config), **(env or {})),
                    cwd=ROOT,
                    stdout=out,
                    stderr=err,
                    text=True,
                )
            )
        while any(proc.poll() is None for proc in procs):
            failed = any(proc.poll() not in (None, 0) for proc in procs)
            if failed or time.perf_counter() - start > timeout:
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
            time.sleep(0.1)
        results = []
        for proc, (out, err) in zip(procs, files):
            proc.wait()
            out.seek(0)
            err.seek(0)
            results.append((proc.returncode, out.read(), err.read()))
        return results, time.perf_counter() - start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for out, err in files:
            out.close()
            err.close()


def run_workers(names, workers=2, env=None):
    """Runs the program on `workers` local workers; their results, seconds."""
    outputs, seconds = launch(["worker", ",".join(names)], workers, env)
    results = [
        _result(out, err, f"worker {i}")
        for i, (_, out, err) in enumerate(outputs)
    ]
    return results, seconds


def run_reference(names):
    """Runs the program's reference mode in one process."""
    proc = subprocess.run(
        [sys.executable, PROGRAM, "reference", ",".join(names)],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return _result(proc.stdout, proc.stderr, "reference")


def flat_weights(result):
    return np.concatenate([np.ravel(w) for w in result["weights"]])


def assert_same_training(actual, expected, atol=ATOL):
    np.testing.assert_allclose(
        flat_weights(actual), flat_weights(expected), rtol=0, atol=atol
    )
    assert sorted(actual["history"]) == sorted(expected["history"])
    for key, values in expected["history"].items():
        np.testing.assert_allclose(
            actual["history"][key], values, rtol=1e-5, err_msg=key
        )


# ------------------------------------------------ adapter in-process
def test_is_multi_worker_is_false_on_one_machine():
    assert not is_multi_worker(tf.distribute.get_strategy())
    assert not is_multi_worker(tf.distribute.OneDeviceStrategy("/cpu:0"))


def test_support_changes_nothing_on_one_machine():
    model = _model()
    with multi_worker_support(model) as same:
        assert same is model
        assert not set(internals.MULTI_WORKER_SEAMS) & set(vars(model))
        model.fit(_dataset(), epochs=1, verbose=0)


def test_support_is_removed_after_an_exception(monkeypatch):
    monkeypatch.setattr(_multi_worker, "is_multi_worker", lambda s: True)
    model = _model()
    with pytest.raises(RuntimeError, match="boom"):
        with multi_worker_support(model):
            assert internals.multi_worker_seams_owner(model) is not None
            raise RuntimeError("boom")
    assert not set(internals.MULTI_WORKER_SEAMS) & set(vars(model))


def test_multi_worker_needs_a_dataset(monkeypatch):
    monkeypatch.setattr(_multi_worker, "is_multi_worker", lambda s: True)
    x = np.zeros((8, 3), "float32")
    with pytest.raises(TypeError, match="tf.data.Dataset"):
        fit_multi_worker(_model(), x, epochs=1)


def test_multi_worker_refuses_variables_created_outside_the_scope():
    model = _model()  # created outside any strategy scope
    model.build((None, 3))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with pytest.raises(ValueError, match=r"strategy.scope\(\)"):
        _multi_worker._check_variables_in_scope(model, strategy)


def test_a_cluster_needs_the_model_in_a_multi_worker_scope(monkeypatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    config = {"cluster": cluster, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    with pytest.raises(ValueError, match="MultiWorkerMirroredStrategy"):
        fit_multi_worker(_model(), _dataset(), epochs=1, verbose=0)


@pytest.mark.parametrize(
    "value, match",
    [
        ("{'cluster': {}}", "not valid JSON"),
        ('{"cluster": {"worker": ["a:1"]', "not valid JSON"),
        ('["worker"]', "JSON object"),
        ('{"cluster": ["a:1"]}', "JSON object"),
    ],
)
def test_a_malformed_tf_config_is_named(monkeypatch, value, match):
    monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(ValueError, match=f"TF_CONFIG.*{match}|{match}.*"):
        fit_multi_worker(_model(), _dataset(), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="environment variable TF_CONFIG"):
        fit_multi_worker(_model(), _dataset(), epochs=1, verbose=0)


def test_an_empty_tf_config_is_one_machine(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "")
    fit_multi_worker(_model(), _dataset(), epochs=1, verbose=0)


def _slices(y_shape=(8,), x_shape=(8, 3)):
    x = np.zeros(x_shape, "float32")
    return tf.data.Dataset.from_tensor_slices((x, np.zeros(y_shape, "int64")))


@pytest.mark.parametrize(
    "dataset",
    [
        _slices(),  # scalar labels
        _slices((8, 1)),  # leading axes 3 and 1
        _slices((8, 3)),  # inputs (3,) for a model of inputs (None, 3)
    ],
)
def test_an_unbatched_dataset_is_named(dataset):
    with pytest.raises(ValueError, match="`x`.*batched tf.data.Dataset"):
        fit_multi_worker(_model(), dataset, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`validation_data`"):
        fit_multi_worker(
            _model(), _dataset(), validation_data=dataset, verbose=0
        )


def test_batched_datasets_pass_whatever_their_batch_size():
    for dataset in (_dataset(), _slices((8, 1)).batch(8, drop_remainder=True)):
        fit_multi_worker(_model(), dataset, epochs=1, verbose=0)


def test_invalid_model():
    with pytest.raises(TypeError, match="`model`"):
        with multi_worker_support("model"):
            pass


def test_shard_by_data_sets_data_and_keeps_a_choice():
    policy = tf.data.experimental.AutoShardPolicy
    ds = shard_by_data(_dataset())
    assert ds.options().experimental_distribute.auto_shard_policy == (
        policy.DATA
    )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.FILE
    kept = shard_by_data(_dataset().with_options(options))
    assert kept.options().experimental_distribute.auto_shard_policy == (
        policy.FILE
    )
    with pytest.raises(TypeError, match="`dataset`"):
        shard_by_data(np.zeros(3))


def test_fit_multi_worker_on_one_machine_is_fit():
    keras.utils.set_random_seed(0)
    model = _model()
    history = fit_multi_worker(model, _dataset(), epochs=2, verbose=0)
    keras.utils.set_random_seed(0)
    expected = _model()
    expected.fit(_dataset(), epochs=2, verbose=0)
    np.testing.assert_allclose(
        history.history["loss"], expected.history.history["loss"]
    )


@pytest.mark.parametrize(
    "name,twice", [("plain", "plain_2x"), ("trades_fixed", "trades_fixed_2x")]
)
def test_a_replica_scaling_bug_would_be_seen(name, twice):
    # The loss (plain) or TRADES' term counted twice moves the weights by
    # far more than the tolerance the two-worker comparison uses.
    right = flat_weights(program.run_scenario(name, None))
    wrong = flat_weights(program.run_scenario(twice, None))
    assert np.max(np.abs(right - wrong)) > 1000 * ATOL


# ------------------------------------------------------- two workers
@pytest.fixture(scope="module")
def fast_workers():
    results, seconds = run_workers(FAST)
    print(f"two workers, {FAST}: {seconds:.1f} s")
    return results


def test_keras_fit_still_fails_without_the_adapter(fast_workers):
    # keras-team/keras#20585 in Keras 3.15. If this fails, Keras' own fit
    # may work on several workers: re-check whether the adapter is needed.
    for result in fast_workers:
        assert "PerReplica" in (result["keras_fit_error"] or "")


def test_each_worker_is_one_replica(fast_workers):
    assert [r["replicas"] for r in fast_workers] == [2, 2]
    assert [r["replica_ids"] for r in fast_workers] == [[0], [1]]


@pytest.mark.parametrize("name", FAST)
def test_two_workers_train_like_one_device(fast_workers, name):
    expected = program.run_scenario(name, None)
    for result in fast_workers:
        assert_same_training(result[name], expected)


def test_gan_latents_differ_between_workers(fast_workers):
    first, second = (r["gan_latents"][0] for r in fast_workers)
    assert not np.allclose(first, second)


def test_data_sharding_gives_each_worker_its_rows(fast_workers):
    # The DATA auto-shard policy: worker i of 2 gets rows 8i..8i+7 of the
    # global batch of 16, in order.
    assert [r["shard_rows"] for r in fast_workers] == [
        [list(range(8))],
        [list(range(8, 16))],
    ]


def one_device(name, log_dir=None):
    """`program.run_scenario(name, None)` (TensorBoard into `log_dir`)."""
    previous = os.environ.get(program.LOG_DIR_ENV)
    if log_dir is not None:
        os.environ[program.LOG_DIR_ENV] = str(log_dir)
    try:
        return program.run_scenario(name, None)
    finally:
        if previous is None:
            os.environ.pop(program.LOG_DIR_ENV, None)
        else:
            os.environ[program.LOG_DIR_ENV] = previous


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("workers_tensorboard")
    start = time.perf_counter()
    workers, worker_seconds = run_workers(
        FIXED + SEEDED, env={program.LOG_DIR_ENV: str(log_dir)}
    )
    reference = run_reference(SEEDED)
    print(
        f"two workers: {worker_seconds:.1f} s; reference: "
        f"{time.perf_counter() - start - worker_seconds:.1f} s"
    )
    return workers, reference, log_dir


@pytest.mark.multiworker
@pytest.mark.parametrize("name", FIXED)
def test_deterministic_objectives_train_like_one_device(
    full_runs, name, tmp_path
):
    workers, _, _ = full_runs
    expected = one_device(name, tmp_path)
    for result in workers:
        assert_same_training(result[name], expected)


@pytest.mark.multiworker
def test_robustness_figures_equal_one_device(full_runs, tmp_path):
    # RobustnessMonitor's val_* logs (compared above with the History) and
    # evaluate_robustness after training: every worker evaluates the whole
    # subset, with the same figures as one process.
    workers, _, _ = full_runs
    expected = one_device("monitor", tmp_path)
    assert {"val_robust_accuracy", "val_pgd_accuracy"} <= set(
        expected["history"]
    )
    for result in workers:
        got = result["monitor"]
        for key in ("val_robust_accuracy", "val_fgsm_accuracy"):
            assert got["history"][key] == expected["history"][key], key
        report, expected_report = got["report"], expected["report"]
        for key in ("clean_accuracy", "robust_accuracy"):
            assert report[key] == expected_report[key], key
        for name, entry in expected_report["attacks"].items():
            for key in ("accuracy", "success_rate"):
                assert report["attacks"][name][key] == entry[key], key
            for key in ("mean_norm", "max_norm"):
                np.testing.assert_allclose(
                    report["attacks"][name][key], entry[key], rtol=1e-5
                )


def _event_files(log_dir):
    return sorted(
        os.path.relpath(os.path.join(d, f), log_dir)
        for d, _, files in os.walk(log_dir)
        for f in files
        if ".tfevents." in f
    )


@pytest.mark.multiworker
def test_only_the_chief_writes_the_monitor_events(full_runs, tmp_path):
    workers, _, log_dir = full_runs
    written = _event_files(log_dir)
    one_device("monitor", tmp_path)
    # One file per run directory, as one process writes, all the chief's.
    assert [os.path.dirname(f) for f in written] == [
        os.path.dirname(f) for f in _event_files(tmp_path)
    ]
    chief = workers[0]["pid"]
    assert all(f".{chief}." in os.path.basename(f) for f in written)


@pytest.mark.multiworker
@pytest.mark.parametrize("name", SEEDED)
def test_seeded_objectives_and_gans_train_like_two_replicas(full_runs, name):
    workers, reference, _ = full_runs
    assert reference["replica_ids"] == [0, 1]
    for result in workers:
        assert_same_training(result[name], reference[name])


# -------------------------------------- a worker killed, both restarted
BACKUP_SCENARIO = "madry_fixed"  # AdversarialTraining, compared with one device
KILL_AT = 7  # after step 7 = epoch 1, batch 2; last backup after step 6


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    backup_dir = str(tmp_path_factory.mktemp("backup") / "run")
    env = {"TMPDIR": str(tmp_path_factory.mktemp("worker_tmp"))}
    args = ["backup", BACKUP_SCENARIO, backup_dir]
    killed, killed_seconds = launch([*args, str(KILL_AT)], env=env)
    saved = sorted(os.listdir(backup_dir))
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        metadata = json.load(f)
    resumed, resumed_seconds = launch([*args, "0"], env=env)
    print(
        f"killed run: {killed_seconds:.1f} s, resumed run: "
        f"{resumed_seconds:.1f} s"
    )
    return {
        "killed": killed,
        "saved": saved,
        "metadata": metadata,
        "resumed": resumed,
        "backup_dir": backup_dir,
    }


@pytest.mark.multiworker
def test_a_killed_worker_leaves_the_chiefs_mid_epoch_backup(
    killed_and_resumed,
):
    run = killed_and_resumed
    (chief_code, _, _), (code, out, _) = run["killed"]
    assert code == -signal.SIGKILL and f"KILLED after step {KILL_AT}" in out
    assert chief_code != 0  # stopped by the "cluster manager"
    assert run["saved"] == ["latest.weights.h5", "training_metadata.json"]
    assert run["metadata"] == {"epoch": 1, "batch": 1}


@pytest.mark.multiworker
def test_restarted_workers_end_like_an_uninterrupted_run(killed_and_resumed):
    run = killed_and_resumed
    expected = program.run_scenario(BACKUP_SCENARIO, None)
    for index, (code, out, err) in enumerate(run["resumed"]):
        assert code == 0, err[-4000:]
        result = _result(out, err, f"worker {index}")
        assert result["iterations"] == expected["iterations"] == 8
        np.testing.assert_allclose(
            flat_weights(result),
            flat_weights(expected),
            rtol=0,
            atol=ATOL,
        )
        # The resumed run trains epoch 1 only (from its third batch on).
        assert len(result["history"]["loss"]) == 1
    assert not os.path.exists(run["backup_dir"])
