"""`keras.callbacks.BackupAndRestore` under `fit_multi_worker`.

A run interrupted after step `k` and started again with the same script
(as a cluster manager restarts a job) must end with the weights of an
uninterrupted run. Keras 3.15's callback resumes a mid-epoch backup at
the start of its epoch (the batches already in the backup are trained
twice) and lets every worker write the same files; `fit_multi_worker`
adapts it (`keras_adv/distribute/_multi_worker.py`). These tests run on
one machine, interrupting with an exception; `test_multi_worker.py` kills
a worker process (SIGKILL) of a two-worker run.

The Keras attributes and behaviour the adaptation relies on are pinned in
`tests/test_keras_internals.py`.
"""

import json
import os

import keras
import multi_worker_program as program
import numpy as np
import pytest
import tensorflow as tf

from keras_adv import _keras_internals as internals
from keras_adv.attacks import PGD
from keras_adv.callbacks import AdversarialTraining
from keras_adv.distribute import _multi_worker
from keras_adv.distribute import fit_multi_worker
from keras_adv.models import SoftmaxGAN
from keras_adv.training import Madry

EPOCHS = 3
STEPS = program.SAMPLES // program.BATCH  # 4 batches per epoch


class Interrupted(Exception):
    pass


class Interrupt(keras.callbacks.Callback):
    """Raises at the end of global step `at` (1-based), once."""

    def __init__(self, at):
        super().__init__()
        self.at = at
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        step = self.epoch * STEPS + batch + 1
        if self.at is not None and step >= self.at:
            raise Interrupted(f"interrupted after step {step}")


def _build(kind, spe=1):
    if kind == "gan":
        return program.gan(SoftmaxGAN), program.dataset(labels=False), []
    model = program.classifier()
    if spe > 1:
        model.compile(
            keras.optimizers.SGD(program.LR),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
            steps_per_execution=spe,
        )
    extra = []
    if kind == "madry":
        extra = [
            AdversarialTraining(objective=Madry(PGD(0.1, steps=2, seed=3)))
        ]
    return model, program.dataset(), extra


def run(
    kind,
    backup_dir,
    interrupt_at=None,
    before=False,
    spe=1,
    fit=None,
    save_freq=2,
):
    """Trains `kind` with a backup every 2 steps; interrupted or not."""
    model, data, extra = _build(kind, spe)
    backup = keras.callbacks.BackupAndRestore(backup_dir, save_freq=save_freq)
    interrupt = Interrupt(interrupt_at)
    # `before`: interrupted before the step's backup is written.
    ordered = [interrupt, backup] if before else [backup, interrupt]
    callbacks = extra + ordered
    fit = fit or fit_multi_worker
    try:
        history = fit(
            model, data, epochs=EPOCHS, verbose=0, callbacks=callbacks
        )
    except Interrupted:
        return None
    return model, history, backup


def weights(model):
    return np.concatenate([np.ravel(w) for w in model.get_weights()])


def iterations(model):
    optimizer = getattr(model, "d_optimizer", None) or model.optimizer
    return int(optimizer.iterations.numpy())


def keras_fit(model, data, **kwargs):
    return model.fit(data, **kwargs)


def metadata(backup_dir):
    with open(os.path.join(backup_dir, "training_metadata.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = {}
    for kind in ("plain", "madry", "gan"):
        model, history, _ = run(kind, str(tmp_path_factory.mktemp(kind)))
        out[kind] = (weights(model), iterations(model), history.history)
    return out


# ------------------------------------------------------- Keras alone
def test_keras_alone_repeats_the_batches_of_a_mid_epoch_backup(
    tmp_path, uninterrupted
):
    # Why the adaptation exists (keras/src/callbacks/backup_and_restore.py:
    # `_load_model` reads the metadata's "epoch", never its "batch"). If
    # Keras resumes at the step one day, the adaptation would skip those
    # batches a second time.
    backup_dir = str(tmp_path / "backup")
    assert run("plain", backup_dir, interrupt_at=7, fit=keras_fit) is None
    assert metadata(backup_dir) == {"epoch": 1, "batch": 1}
    model, _, _ = run("plain", backup_dir, fit=keras_fit)
    expected, expected_iterations, _ = uninterrupted["plain"]
    assert expected_iterations == EPOCHS * STEPS
    assert iterations(model) == expected_iterations + 2  # 2 batches again
    assert np.max(np.abs(weights(model) - expected)) > 1e-3


# --------------------------------------------------- the adaptation
@pytest.mark.parametrize("kind", ["plain", "madry", "gan"])
def test_a_mid_epoch_backup_resumes_at_its_step(tmp_path, uninterrupted, kind):
    # Backup after step 6 = epoch 1, batch 1; interrupted after step 7.
    backup_dir = str(tmp_path / "backup")
    assert run(kind, backup_dir, interrupt_at=7) is None
    assert metadata(backup_dir) == {"epoch": 1, "batch": 1}
    model, history, callback = run(kind, backup_dir)
    expected, expected_iterations, expected_history = uninterrupted[kind]
    assert iterations(model) == expected_iterations
    np.testing.assert_allclose(weights(model), expected, rtol=0, atol=1e-6)
    # Epoch 2 as in the uninterrupted run; epoch 1's logs cover only the
    # batches trained after the restart.
    assert history.epoch == [1, 2]
    for key, values in expected_history.items():
        np.testing.assert_allclose(history.history[key][-1], values[-1])
    assert not os.path.exists(backup_dir)  # removed at the end, as Keras
    assert not set(_multi_worker._BACKUP_HOOKS) & set(vars(callback))


def test_a_backup_that_closed_an_epoch_resumes_at_the_next(
    tmp_path, uninterrupted
):
    # Interrupted after step 5, before its backup: the backup is step 4's,
    # the last batch of epoch 0. Keras would train epoch 0 again.
    backup_dir = str(tmp_path / "backup")
    assert run("plain", backup_dir, interrupt_at=5, before=True) is None
    assert metadata(backup_dir) == {"epoch": 0, "batch": 3}
    model, history, _ = run("plain", backup_dir)
    expected, expected_iterations, _ = uninterrupted["plain"]
    assert iterations(model) == expected_iterations
    assert history.epoch == [1, 2]
    np.testing.assert_allclose(weights(model), expected, rtol=0, atol=1e-6)


def test_steps_per_execution(tmp_path, uninterrupted):
    # Two batches per call, a backup after each call: the last one after
    # step 6 (epoch 1, batch 1), where the run is interrupted; the skipped
    # call reads both batches.
    backup_dir = str(tmp_path / "backup")
    kwargs = {"spe": 2, "save_freq": 1}
    assert run("plain", backup_dir, interrupt_at=6, **kwargs) is None
    assert metadata(backup_dir) == {"epoch": 1, "batch": 1}
    model, _, _ = run("plain", backup_dir, **kwargs)
    expected, expected_iterations, _ = uninterrupted["plain"]
    assert iterations(model) == expected_iterations
    np.testing.assert_allclose(weights(model), expected, rtol=0, atol=1e-6)


def test_a_resumed_run_writes_its_own_epoch(tmp_path, uninterrupted):
    # Interrupted twice: the resumed run's backups must name epoch 1, not
    # Keras' 0 (which would send the third run back to epoch 0).
    backup_dir = str(tmp_path / "backup")
    assert run("plain", backup_dir, interrupt_at=7) is None
    # The second run skips steps 5-6, trains 7-8 (backup: epoch 1, batch
    # 3) and is interrupted after step 9.
    assert run("plain", backup_dir, interrupt_at=9) is None
    assert metadata(backup_dir) == {"epoch": 1, "batch": 3}
    model, _, _ = run("plain", backup_dir)
    expected, expected_iterations, _ = uninterrupted["plain"]
    assert iterations(model) == expected_iterations
    np.testing.assert_allclose(weights(model), expected, rtol=0, atol=1e-6)


def test_epoch_backups_are_left_to_keras(tmp_path, uninterrupted):
    backup_dir = str(tmp_path / "backup")
    model, data, _ = _build("plain")
    callbacks = [
        keras.callbacks.BackupAndRestore(backup_dir),
        Interrupt(7),
    ]
    with pytest.raises(Interrupted):
        fit_multi_worker(
            model, data, epochs=EPOCHS, verbose=0, callbacks=callbacks
        )
    assert metadata(backup_dir) == {"epoch": 1, "batch": 0}
    model, data, _ = _build("plain")
    callbacks = [keras.callbacks.BackupAndRestore(backup_dir)]
    fit_multi_worker(model, data, epochs=EPOCHS, verbose=0, callbacks=callbacks)
    expected, expected_iterations, _ = uninterrupted["plain"]
    assert iterations(model) == expected_iterations
    np.testing.assert_allclose(weights(model), expected, rtol=0, atol=1e-6)


def test_the_callback_is_left_as_it_was_after_an_exception(tmp_path):
    callback = keras.callbacks.BackupAndRestore(str(tmp_path), save_freq=2)
    paths = internals.backup_paths(callback)
    with pytest.raises(RuntimeError, match="boom"):
        with _multi_worker._resumable_backups([callback]):
            assert set(_multi_worker._BACKUP_HOOKS) <= set(vars(callback))
            raise RuntimeError("boom")
    assert not set(_multi_worker._BACKUP_HOOKS) & set(vars(callback))
    assert internals.backup_paths(callback) == paths


def test_workers_agree_on_one_machine():
    _multi_worker._agreed(tf.distribute.get_strategy(), [1, 2], "a position")


class _DisagreeingWorkers:
    """Stands for a strategy whose two workers hold different values."""

    def run(self, fn):
        return fn()

    def gather(self, value, axis):
        return tf.concat([value, value + 1], axis)


def test_workers_that_disagree_raise():
    with pytest.raises(ValueError, match="file system that all workers"):
        _multi_worker._agreed(_DisagreeingWorkers(), [1, 2], "a position")
