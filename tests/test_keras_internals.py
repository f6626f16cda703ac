"""Pins every reliance of keras_adv on Keras internals.

`keras_adv/_keras_internals.py` holds all of them; its sections are
mirrored here, one test (or a few) per reliance, each naming its upstream
issue where one exists. If a test here fails after a Keras upgrade, the
behaviour the section's docstring describes changed: fix that section
(and its callers) before anything else, since the symptom elsewhere may be
adversarial training silently becoming clean training.

The last test checks that no other module touches a private Keras name.
"""

import ast
import importlib
import inspect
import json
import os
import pathlib

import _two_cpus
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_adv
from keras_adv import _keras_internals as internals


def _model(**kwargs):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(2)], **kwargs
    )
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _data(n=8):
    x = np.random.default_rng(0).uniform(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0.5).astype("int64")


def _dataset():
    return tf.data.Dataset.from_tensor_slices(_data()).batch(4)


class _Calls(keras.callbacks.Callback):
    def __init__(self, events, hook="on_train_begin"):
        super().__init__()
        self.events = events
        setattr(self, hook, lambda *a, **k: events.append(hook))


# ------------------------------------------------ 1. instance overrides
# No upstream issue found: Keras' call order is undocumented, not a bug.
def test_fit_makes_the_train_function_before_on_train_begin():
    model = _model()
    events = []
    original = model.make_train_function

    def make_train_function(force=False):
        events.append(("make_train_function", force))
        return original(force=force)

    model.__dict__["make_train_function"] = make_train_function
    model.fit(*_data(), epochs=1, verbose=0, callbacks=[_Calls(events)])
    assert events[:2] == [("make_train_function", False), "on_train_begin"]


def test_instance_train_step_compute_loss_and_metrics_are_used():
    model = _model()
    calls = []
    base_step = model.train_step
    base_loss = model.compute_loss
    base_metrics = model.compute_metrics

    def train_step(data):
        calls.append("train_step")
        return base_step(data)

    def compute_loss(
        x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        calls.append("compute_loss")
        return base_loss(x, y, y_pred, sample_weight, training=training)

    def compute_metrics(x, y, y_pred, sample_weight=None):
        calls.append("compute_metrics")
        return base_metrics(x, y, y_pred, sample_weight)

    internals.override(
        model,
        "owner",
        {
            "train_step": train_step,
            "compute_loss": compute_loss,
            "compute_metrics": compute_metrics,
        },
    )
    internals.rebuild_train_function(model)
    model.fit(*_data(), epochs=1, verbose=0)
    assert calls[:3] == ["train_step", "compute_loss", "compute_metrics"]


def test_callback_hooks_are_looked_up_on_the_instance():
    # The BackupAndRestore adaptation overrides a callback's hooks with
    # bound methods of another object.
    events = []
    callback = keras.callbacks.Callback()
    owner = _Calls(events, "on_train_batch_end")
    internals.override(
        callback, owner, {"on_train_batch_end": owner.on_train_batch_end}
    )
    assert internals.overrider(callback, "on_train_batch_end") is owner
    _model().fit(*_data(), batch_size=4, verbose=0, callbacks=[callback])
    assert events == ["on_train_batch_end"] * 2
    internals.remove_overrides(callback, "another", ["on_train_batch_end"])
    assert internals.overrider(callback, "on_train_batch_end") is owner
    internals.remove_overrides(callback, owner, ["on_train_batch_end"])
    assert "on_train_batch_end" not in vars(callback)


# -------------------------------------------------- 2. train functions
# No upstream issue found.
def test_train_function_is_read_on_every_step():
    model = _model()
    seen = []
    inners = []

    class Swap(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if not inners:
                inners.append(model.train_function)
            inner = inners[0]

            def train_function(iterator):
                seen.append(epoch)
                return inner(iterator)

            model.train_function = train_function

    model.fit(*_data(), epochs=2, batch_size=4, verbose=0, callbacks=[Swap()])
    assert seen == [0, 0, 1, 1]


def test_a_train_function_that_is_set_is_kept_unless_forced():
    model = _model()
    model.make_train_function()
    kept = model.train_function
    model.make_train_function()
    assert model.train_function is kept
    internals.rebuild_train_function(model)
    assert model.train_function is not kept
    internals.forget_functions(model)
    assert model.train_function is None and model.test_function is None
    model.fit(*_data(), epochs=1, verbose=0)
    assert model.train_function is not None


def _seeded_model(steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(
        keras.optimizers.SGD(0.1),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


@pytest.mark.parametrize("steps_per_execution", [1, 2])
def test_a_skipped_step_reads_its_batches_without_training(
    steps_per_execution,
):
    x, y = _data(16)  # 4 batches of 4
    model = _seeded_model(steps_per_execution)

    class Skip(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                internals.skip_next_train_step(model)

    fit = dict(batch_size=4, shuffle=False, verbose=0)
    model.fit(x, y, callbacks=[Skip()], **fit)
    # The first step's batches were read, not trained on.
    read = 4 * steps_per_execution
    expected = _seeded_model(steps_per_execution)
    expected.fit(x[read:], y[read:], **fit)
    assert int(model.optimizer.iterations.numpy()) == 4 - steps_per_execution
    for a, b in zip(model.get_weights(), expected.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6)


# ----------------------------------------------- 3. multi-worker seams
# keras-team/keras#20585. That Keras' own fit still fails on two workers
# is checked by tests/distribute/test_multi_worker.py
# (test_keras_fit_still_fails_without_the_adapter).
def test_keras_trainer_has_the_seams_the_adapter_uses():
    params = inspect.signature(keras.Model._maybe_symbolic_build).parameters
    assert list(params) == ["self", "iterator", "data_batch"]
    params = inspect.signature(keras.Model._make_function).parameters
    assert list(params) == ["self", "step_function"]
    # The function deciding Keras' multi-worker branches (which
    # `keras_adv.distribute.is_multi_worker` mirrors) is still there.
    trainer = inspect.getmodule(keras.Model._make_function)
    assert callable(trainer._collective_all_reduce_multi_worker)


def test_fit_and_evaluate_build_through_the_instance():
    model = _model()
    calls = []
    original = model._maybe_symbolic_build

    def spy(iterator=None, data_batch=None):
        calls.append(iterator is not None and data_batch is None)
        return original(iterator=iterator, data_batch=data_batch)

    model.__dict__["_maybe_symbolic_build"] = spy
    model.fit(_dataset(), epochs=1, verbose=0)
    model.evaluate(_dataset(), verbose=0)
    assert calls == [True, True]


def test_train_and_test_functions_are_made_through_the_instance():
    model = _model()
    steps = []
    original = model._make_function

    def spy(step_function):
        steps.append(step_function)
        return original(step_function)

    model.__dict__["_make_function"] = spy
    model.make_train_function(force=True)
    model.make_test_function(force=True)
    assert steps == [model.train_step, model.test_step]


def test_symbolic_build_from_a_data_batch_builds_in_the_scope():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = keras.Sequential([keras.layers.Dense(2)])
        model.compile("sgd", "mse")
    assert not model.built
    x = tf.zeros((4, 3))
    model._maybe_symbolic_build(data_batch=(x, tf.zeros((4, 2))))
    assert model.built and model.optimizer.built
    assert strategy.extended.variable_created_in_scope(model.weights[0].value)


def test_installed_seams_train_like_keras_and_leave_no_trace():
    # The seams themselves, on one device in a strategy scope: the model is
    # built from the first batch's local values, logs come out as scalars.
    def train(install):
        keras.utils.set_random_seed(0)
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        with strategy.scope():
            model = keras.Sequential([keras.layers.Dense(2)])
            model.compile(
                keras.optimizers.SGD(0.1),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            )
        owner = object()
        if install:
            internals.install_multi_worker_seams(model, owner)
            assert internals.multi_worker_seams_owner(model) is owner
            assert set(internals.MULTI_WORKER_SEAMS) <= set(vars(model))
        history = model.fit(_dataset(), epochs=2, verbose=0)
        weights = model.get_weights()
        if install:
            internals.remove_multi_worker_seams(model, owner)
            assert not set(internals.MULTI_WORKER_SEAMS) & set(vars(model))
            assert model.train_function is None
        return history.history["loss"], weights

    loss, weights = train(install=True)
    expected_loss, expected_weights = train(install=False)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-6)
    for w, e in zip(weights, expected_weights):
        np.testing.assert_allclose(w, e, rtol=1e-6)


# ------------------------------------------------------ 4. loss tracker
# keras-team/keras#20610 (the tracker records the unscaled loss).
def test_the_loss_log_is_the_loss_tracker():
    assert internals.loss_tracker(keras.Model()) is None  # not compiled
    model = _model()
    tracker = internals.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean)
    assert tracker.name == "loss"
    assert model.metrics[0] is tracker


def test_keras_tracks_the_loss_weighted_by_the_batch_size():
    model = _model()
    x, y = _data(6)
    logs = model.train_on_batch(x, y, return_dict=True)
    tracker = internals.loss_tracker(model)
    assert float(tracker.count.numpy()) == 6.0
    assert float(tracker.total.numpy()) == pytest.approx(6 * logs["loss"])


TRACKING = r"""
import json

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _keras_internals as internals
from keras_adv.distribute import _replicas


class Tracked(keras.Sequential):
    # A step written outside Keras' train_step (as Free-m's), recording
    # its loss as keras_adv does.
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            internals.track_loss(
                self, _replicas.unscale_for_replicas(loss), tf.shape(x)[0]
            )
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        return self.compute_metrics(x, y, y_pred)


def fit(cls, strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = cls([keras.Input((3,)), keras.layers.Dense(2)])
        model.compile(
            keras.optimizers.SGD(0.5),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(32, 3)).astype("float32")
    y = (x[:, 0] > 0.5).astype("int64")
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    weights = [w.tolist() for w in model.get_weights()]
    return history.history["loss"], weights


two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
one = tf.distribute.get_strategy()
out = {"replicas": two.num_replicas_in_sync}
for name, cls in (("keras", keras.Sequential), ("tracked", Tracked)):
    for strategy_name, strategy in (("one", one), ("two", two)):
        out[f"{name}_{strategy_name}"] = fit(cls, strategy)
print("RESULT" + json.dumps(out))
"""


def test_tracked_loss_equals_keras_on_two_replicas():
    # Keras divides `compute_loss` by the replicas and records the loss
    # times the replicas; a step that records it through `track_loss` and
    # `unscale_for_replicas` logs what Keras logs, and (scaling the loss
    # as Keras does) trains the same weights, on one device and two.
    out = _two_cpus.run(TRACKING)
    assert out["replicas"] == 2
    expected_loss, expected_weights = out["keras_one"]
    for key in ("keras_two", "tracked_one", "tracked_two"):
        loss, weights = out[key]
        np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
        for w, e in zip(weights, expected_weights):
            np.testing.assert_allclose(w, e, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------ 5. resumed epoch
# keras-team/keras#19179 (BackupAndRestore resuming at its epoch).
def test_fit_starts_at_the_initial_epoch_set_in_on_train_begin():
    model = _model()
    assert internals.initial_epoch(model) is None

    class Resume(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            internals.set_initial_epoch(model, 2)

    history = model.fit(*_data(), epochs=3, verbose=0, callbacks=[Resume()])
    assert history.epoch == [2]


# --------------------------------------------------- 6. BackupAndRestore
# No upstream issue found for the two gaps keras_adv.distribute fills.
def test_backup_and_restore_has_the_state_used(tmp_path):
    backup_dir = str(tmp_path / "backup")
    callback = keras.callbacks.BackupAndRestore(backup_dir, save_freq=2)
    paths = internals.backup_paths(callback)
    assert paths["backup_dir"] == backup_dir
    for path in paths.values():
        assert isinstance(path, str) and path.startswith(backup_dir)
    assert len(set(paths.values())) == len(paths)
    assert callback._last_batch_seen == 0
    assert callback._batches_seen_since_last_saving == 0
    assert callback._current_epoch == 0
    assert internals.backup_position(paths) is None


def test_backup_counters_decide_the_epoch_and_the_next_save(tmp_path):
    backup_dir = str(tmp_path / "backup")
    callback = keras.callbacks.BackupAndRestore(backup_dir, save_freq=2)
    callback.set_model(_model())
    internals.set_backup_epoch(callback, 4)
    internals.count_skipped_batch(callback, 1)
    callback.on_train_batch_end(2)  # one batch since batch 1: no save
    assert not os.path.exists(backup_dir)
    callback.on_train_batch_end(3)
    paths = internals.backup_paths(callback)
    assert internals.backup_position(paths) == (4, 3)
    with open(paths["_training_metadata_path"]) as f:
        assert json.load(f) == {"epoch": 4, "batch": 3}


def test_a_relocated_backup_writes_elsewhere(tmp_path):
    backup_dir = str(tmp_path / "backup")
    callback = keras.callbacks.BackupAndRestore(backup_dir, save_freq=1)
    callback.set_model(_model())
    paths = internals.backup_paths(callback)
    internals.relocate_backup(callback, paths, str(tmp_path / "private"))
    callback.on_train_batch_end(0)
    assert not os.path.exists(backup_dir)
    moved = internals.backup_paths(callback)
    assert internals.backup_position(moved) == (0, 0)
    assert os.path.exists(moved["_weights_path"])
    internals.set_backup_paths(callback, paths)
    assert internals.backup_paths(callback) == paths


def test_keras_restores_the_epoch_of_a_backup_but_not_its_batch(tmp_path):
    # `_load_model` reads the metadata's "epoch", never its "batch": a run
    # resumed from a mid-epoch backup starts that epoch again.
    backup_dir = str(tmp_path / "backup")
    x, y = _data(16)  # 4 batches of 4

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                raise RuntimeError("interrupted")

    model = _model()
    backup = keras.callbacks.BackupAndRestore(backup_dir, save_freq=1)
    with pytest.raises(RuntimeError, match="interrupted"):
        model.fit(
            x,
            y,
            batch_size=4,
            epochs=2,
            verbose=0,
            callbacks=[backup, Interrupt()],
        )
    paths = internals.backup_paths(backup)
    assert internals.backup_position(paths) == (1, 1)
    batches = []
    model = _model()
    resumed = keras.callbacks.BackupAndRestore(backup_dir, save_freq=1)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        callbacks=[resumed, _Calls(batches, "on_train_batch_end")],
    )
    assert internals.initial_epoch(model) == 1
    assert len(batches) == 4  # epoch 1 from its first batch


# ------------------------------------------- nothing private elsewhere
def _keras_private_names():
    """Private attribute names of the Keras objects keras_adv handles."""
    model = _model()
    objects = [
        model,
        keras.Model(),
        keras.layers.Dense(1),
        keras.optimizers.SGD(),
        keras.optimizers.Adam(),
        keras.metrics.Mean(),
        keras.losses.MeanSquaredError(),
        keras.random.SeedGenerator(1),
        keras.Variable(1.0),
        keras.callbacks.Callback(),
        keras.callbacks.BackupAndRestore("backup"),
        keras.callbacks.History(),
        keras.callbacks.EarlyStopping(),
        keras.callbacks.CallbackList(),
    ]
    return {
        name
        for obj in objects
        for name in dir(obj)
        if name.startswith("_") and not name.startswith("__")
    }


def _is_keras_subclass(cls):
    return isinstance(cls, type) and any(
        base.__module__.startswith("keras.") for base in cls.__mro__[1:]
    )


def _private_uses(path, module, names):
    """`(line, name)` of each private Keras name `path`'s code touches.

    An attribute `._name` or a string `"_name"` counts, unless it is
    `self._name` in a class that does not derive from a Keras class (the
    class' own attribute that happens to share the name).
    """
    found = []

    def visit(node, cls):
        if isinstance(node, ast.ClassDef) and cls is None:
            cls = getattr(module, node.name, None)
        if isinstance(node, ast.Attribute) and node.attr in names:
            own = (
                isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and isinstance(cls, type)
                and not _is_keras_subclass(cls)
            )
            if not own:
                found.append((node.lineno, node.attr))
        if isinstance(node, ast.Constant) and node.value in names:
            found.append((node.lineno, node.value))
        for child in ast.iter_child_nodes(node):
            visit(child, cls)

    visit(ast.parse(path.read_text()), None)
    return found


def test_only_the_internals_module_touches_private_keras_names():
    names = _keras_private_names()
    assert {"_loss_tracker", "_initial_epoch", "_make_function"} <= names
    root = pathlib.Path(keras_adv.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts == ("_keras_internals",):
            continue
        name = ".".join(("keras_adv",) + parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        found += [
            f"{path.relative_to(root)}:{line}: {attr}"
            for line, attr in _private_uses(path, module, names)
        ]
    assert found == [], "private Keras names outside _keras_internals.py"
