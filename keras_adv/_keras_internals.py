"""Every reliance of keras_adv on Keras beyond its documented API.

keras_adv trains with Keras' own `fit`. In a few places it needs more than
Keras' documented override points (`train_step`, `compute_loss`,
`compute_metrics`, callback hooks): a Keras behaviour that no document
promises, or a private name. All of them are here, each section naming
what it relies on and the upstream issue; `tests/test_keras_internals.py`
pins each one, so that a Keras upgrade that changes it fails there, loudly,
instead of adversarial training silently becoming clean training. No other
module of keras_adv touches a private Keras name (that test checks it).

Written against Keras 3.15 (`keras/src/trainers/trainer.py`,
`keras/src/backend/tensorflow/trainer.py`,
`keras/src/callbacks/backup_and_restore.py`). Callers:
`callbacks/_install.py` (the train-step installer: sections 1 and 2),
`distribute/_multi_worker.py` (sections 1 to 3, 5 and 6),
`training/_fast.py` and `training/_step.py` (section 4).

1. Instance overrides (`override`, `overrider`, `remove_overrides`): Keras
   looks its methods up on the instance. `fit` calls `make_train_function()`
   and then the callbacks' `on_train_begin`; the train function that
   `make_train_function(force=True)` builds calls `train_step`, and Keras'
   `train_step` calls `compute_loss` and `compute_metrics`; `fit` and
   `evaluate` call `_maybe_symbolic_build`, `make_*_function` calls
   `_make_function`; `CallbackList` calls each callback's hooks. A function
   put in an instance's `__dict__` replaces the method for that object only
   (its class and any user override stay untouched). No upstream issue
   found (the call order is undocumented, not a bug).
2. Train functions (`rebuild_train_function`, `forget_functions`,
   `wrap_train_function`, `skip_next_train_step`): `fit` reads
   `model.train_function` on every step and calls it with the epoch's
   data iterator, from which one call reads `steps_per_execution`
   batches; `make_*_function` reuses a function already set unless
   `force=True`. No upstream issue found.
3. Multi-worker seams (`install_multi_worker_seams`,
   `remove_multi_worker_seams`, `multi_worker_seams_owner`): Keras' own
   `fit` fails under `MultiWorkerMirroredStrategy` with several workers,
   keras-team/keras#20585 (see `install_multi_worker_seams`).
4. The loss tracker (`loss_tracker`, `track_loss`): Keras' TensorFlow
   `train_step` updates the private `model._loss_tracker` (the `loss` log,
   first of `model.metrics`) with the step's loss unscaled for the
   replicas (`compute_loss` divides it by their number), weighted by the
   batch size: keras-team/keras#20610. A step that replaces Keras'
   `train_step` (Free-m) does the same.
5. The resumed epoch (`initial_epoch`, `set_initial_epoch`):
   `BackupAndRestore` restores the epoch by setting the private
   `model._initial_epoch`, which `fit` reads after `on_train_begin`
   (keras-team/keras#19179 is the bug of a restored run not resuming at its
   epoch).
6. `BackupAndRestore`'s state (`backup_paths`, `set_backup_paths`,
   `relocate_backup`, `backup_position`, `set_backup_epoch`,
   `count_skipped_batch`): the private paths `_save_model` writes, the
   `{"epoch", "batch"}` metadata it writes, and its counters
   `_current_epoch`, `_last_batch_seen`, `_batches_seen_since_last_saving`.
   Used to write from the chief only and to resume at the step of a
   mid-epoch backup; no upstream issue found for either gap.
"""

import functools
import inspect
import json
import os
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

# ----------------------------------------------------- 1. instance overrides
_OWNER = "_keras_adv_owner"


def override(
    obj: Any, owner: object, functions: Mapping[str, Callable[..., Any]]
) -> None:
    """Puts `functions` in `obj`'s instance `__dict__`, marked as `owner`'s.

    Args:
        obj: A Keras object (model, callback).
        owner: The object that installs them (found back by `overrider`).
        functions: Dict `name -> callable`, each called as the method.
    """
    for name, fn in functions.items():
        if not inspect.isfunction(fn):  # a bound method cannot carry a mark
            fn = _forwarding(fn)
        setattr(fn, _OWNER, owner)
        obj.__dict__[name] = fn


def _forwarding(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def forward(*args: Any, **kwargs: Any) -> Any:
        return method(*args, **kwargs)

    return forward


def overrider(obj: Any, name: str) -> object | None:
    """The owner of the instance override `name` of `obj`, or None."""
    return getattr(obj.__dict__.get(name), _OWNER, None)


def remove_overrides(obj: Any, owner: object, names: Iterable[str]) -> None:
    """Deletes the overrides among `names` that `owner` put on `obj`."""
    for name in names:
        if overrider(obj, name) is owner:
            del obj.__dict__[name]


# -------------------------------------------------------- 2. train functions
def rebuild_train_function(model: keras.Model) -> None:
    """Rebuilds `model.train_function` with its class' `make_train_function`.

    The class' method, called directly, bypasses an instance override of
    `make_train_function`; the new function calls the `train_step` found on
    the instance.
    """
    type(model).make_train_function(model, force=True)


def forget_functions(model: keras.Model) -> None:
    """Makes the next `fit`/`evaluate` rebuild the train and test functions."""
    model.train_function = None
    model.test_function = None


def wrap_train_function(
    model: keras.Model, wrap: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> None:
    """Replaces `model.train_function` by `wrap(model.train_function)`."""
    model.train_function = wrap(model.train_function)


def skip_next_train_step(model: keras.Model) -> None:
    """Makes `fit`'s next step read its batches without training.

    Call it from `on_train_batch_begin`: the step's call of the train
    function reads its `steps_per_execution` batches from the iterator,
    returns empty logs and puts the train function back.
    """
    train_function = model.train_function

    def skip(iterator: Iterator[Any]) -> dict[str, Any]:
        model.train_function = train_function
        for _ in range(model.steps_per_execution):
            next(iterator)
        return {}

    model.train_function = skip


# ----------------------------------------------------- 3. multi-worker seams
MULTI_WORKER_SEAMS = ("_maybe_symbolic_build", "_make_function")


def _local_value(value: Any) -> Any:
    """The first local replica's value of a distributed value."""
    if isinstance(value, tf.distribute.DistributedValues):
        return value.values[0]
    return value


def _rank1_logs(step_function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wraps a step so that its scalar logs have shape `(1,)`."""

    def to_rank1(value: Any) -> Any:
        if tf.is_tensor(value) and value.shape.rank == 0:
            return tf.reshape(value, [1])
        return value

    def step(data: Any) -> Any:
        return keras.tree.map_structure(to_rank1, step_function(data))

    return step


def install_multi_worker_seams(model: keras.Model, owner: object) -> None:
    """Lets Keras' own `fit`/`evaluate` of `model` run on several workers.

    Keras 3.15's TensorFlow trainer breaks in multi-worker mode at two
    places (keras-team/keras#20585):

    1. `_maybe_symbolic_build(iterator=...)` (called by `fit` and
       `evaluate` when the model was created in a strategy scope) reduces
       the first distributed batch, a nest of `PerReplica` values, with
       `strategy.reduce("MEAN", batch, axis=None)`, only to read its shapes
       and dtypes; `CollectiveAllReduceExtended._reduce_to` does not map
       the reduction over the nest and raises "Attempt to convert a value
       (PerReplica:{...}) with an unsupported type".
    2. `reduce_per_replica`, called by the train and test functions on the
       step's logs, reduces every log with `strategy.reduce("MEAN", value,
       axis=0)` in multi-worker mode; logs are scalars, so it fails
       ("Invalid reduction dimension 0 for input with 0 dimensions").

    The override of `_maybe_symbolic_build` takes the first batch's local
    values (the epoch iterator yields `(begin, end, iterator)` triples) and
    calls Keras' own with `data_batch=`, which builds the model, metrics
    and optimizer as on one machine; the override of `_make_function`
    hands Keras' own a step whose scalar logs have shape `(1,)`, which
    Keras' `axis=0` mean over the replicas turns back into the scalar the
    callbacks expect. The train and test functions are rebuilt.

    Args:
        model: A `keras.Model` created in a multi-worker strategy's scope.
        owner: The object that installs them (`multi_worker_seams_owner`).
    """
    cls = type(model)

    def _maybe_symbolic_build(
        iterator: Any = None, data_batch: Any = None
    ) -> None:
        if iterator is not None and data_batch is None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(
                    _local_value, next(batches)
                )
                break
        return cls._maybe_symbolic_build(model, data_batch=data_batch)

    def _make_function(
        step_function: Callable[[Any], Any],
    ) -> Callable[..., Any]:
        return cls._make_function(model, _rank1_logs(step_function))

    override(
        model,
        owner,
        {
            "_maybe_symbolic_build": _maybe_symbolic_build,
            "_make_function": _make_function,
        },
    )
    forget_functions(model)


def remove_multi_worker_seams(model: keras.Model, owner: object) -> None:
    """Removes `owner`'s seams from `model`; rebuilds its functions."""
    remove_overrides(model, owner, MULTI_WORKER_SEAMS)
    forget_functions(model)


def multi_worker_seams_owner(model: keras.Model) -> object | None:
    """The owner of the multi-worker seams installed on `model`, or None."""
    return overrider(model, "_make_function")


# --------------------------------------------------------- 4. loss tracker
def loss_tracker(model: keras.Model) -> keras.metrics.Mean | None:
    """The `keras.metrics.Mean` behind `model`'s `loss` log (None before
    `compile`)."""
    return model._loss_tracker


def track_loss(
    model: keras.Model, loss: tf.Tensor, batch_size: int | tf.Tensor
) -> None:
    """Records a training step's loss as Keras' `train_step` does.

    Args:
        model: A compiled `keras.Model`.
        loss: The loss `model.compute_loss` returned, unscaled for the
            replicas (`distribute._replicas.unscale_for_replicas`).
        batch_size: The number of samples of the step (the weight).
    """
    tracker = loss_tracker(model)
    if tracker is not None:
        tracker.update_state(loss, sample_weight=batch_size)


# -------------------------------------------------------- 5. resumed epoch
def initial_epoch(model: keras.Model) -> int | None:
    """The epoch a restored `fit` starts at (None: `fit`'s argument)."""
    return model._initial_epoch


def set_initial_epoch(model: keras.Model, epoch: int) -> None:
    """Makes the current `fit` start at `epoch` (from `on_train_begin`)."""
    model._initial_epoch = epoch


# ------------------------------------------------------ 6. BackupAndRestore
_BACKUP_PATHS = (
    "backup_dir",
    "_weights_path",
    "_training_metadata_path",
    "_prev_weights_path",
    "_prev_training_metadata_path",
)


def backup_paths(callback: keras.callbacks.BackupAndRestore) -> dict[str, str]:
    """The files (and directory) a `BackupAndRestore` writes, as a dict."""
    return {name: getattr(callback, name) for name in _BACKUP_PATHS}


def set_backup_paths(
    callback: keras.callbacks.BackupAndRestore, paths: Mapping[str, str]
) -> None:
    """Sets the paths `backup_paths` returned."""
    for name, value in paths.items():
        setattr(callback, name, value)


def relocate_backup(
    callback: keras.callbacks.BackupAndRestore,
    paths: Mapping[str, str],
    directory: str,
) -> None:
    """Makes `callback` write the files of `paths` under `directory`."""
    root = paths["backup_dir"]
    set_backup_paths(
        callback,
        {
            name: os.path.normpath(
                os.path.join(directory, os.path.relpath(value, root))
            )
            for name, value in paths.items()
        },
    )


def backup_position(paths: Mapping[str, str]) -> tuple[int, int] | None:
    """`(epoch, batch)` of the last backup written to `paths`, or None.

    `batch` is the index, in `epoch`, of the last batch the backup
    includes.
    """
    path = paths["_training_metadata_path"]
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        metadata = json.loads(f.read())
    return int(metadata["epoch"]), int(metadata["batch"])


def set_backup_epoch(
    callback: keras.callbacks.BackupAndRestore, epoch: int
) -> None:
    """The epoch `callback` writes in its next backup's metadata."""
    callback._current_epoch = epoch


def count_skipped_batch(
    callback: keras.callbacks.BackupAndRestore, batch: int
) -> None:
    """Counts `batch` as seen and backed up (its next backup is due in
    `save_freq` batches)."""
    callback._last_batch_seen = batch
    callback._batches_seen_since_last_saving = 0
