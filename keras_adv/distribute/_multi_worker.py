"""Keras' own `fit` on `MultiWorkerMirroredStrategy`.

Keras 3.15's TensorFlow trainer breaks in multi-worker mode at two places
(keras-team/keras#20585): the symbolic build from the first distributed
batch, and the reduction of the step's scalar logs. For the duration of a
`with multi_worker_support(model):` block the model gets two instance-level
seams that make both work (`install_multi_worker_seams` in
`keras_adv/_keras_internals.py`, which explains them); its class,
`train_step`, `compute_loss` and callbacks are left alone. The seams are
used only in multi-worker mode (a `MultiWorkerMirroredStrategy` whose
cluster has more than one task, which is when Keras takes its multi-worker
branches); elsewhere the block changes nothing.
`tests/test_keras_internals.py` pins the Keras behaviour this relies on,
and `tests/distribute/test_multi_worker.py` that plain `fit` still fails
without it.

`fit_multi_worker` also adapts every `keras.callbacks.BackupAndRestore`
among the callbacks, for the duration of its `fit` (instance-level hooks
again; the callback's private state is read and set through
`keras_adv/_keras_internals.py`). Keras 3.15's callback
(`callbacks/backup_and_restore.py`) has two gaps:

1. every worker writes `latest.weights.h5` and the metadata into the same
   `backup_dir` (`_save_model`), so two workers on a shared file system
   fail with h5py's "unable to lock file" (errno 11) at the first save;
   the adapted callback writes from the chief only, the other workers
   into a private temporary directory (as tf.keras did), and every worker
   restores from `backup_dir`;
2. `_load_model` restores the weights and the epoch but not the batch
   (the metadata's `"batch"` is written and never read; `fit` has no
   initial step), so with `save_freq=N` steps a run resumed from a
   mid-epoch backup trains that epoch's first batches a second time on
   top of weights that already include them. The adapted callback skips,
   in the resumed epoch, the batches the backup already includes: it
   consumes them from the iterator without training (the other
   callbacks see those steps with empty logs, and the backup is not
   re-written for them), and resumes at the next epoch if the backup
   closed an epoch. It also keeps the saved epoch in the metadata of a
   resumed run (Keras writes epoch 0 until the resumed run's first epoch
   ends).
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_adv import _keras_internals as internals
from keras_adv import _validation

_AUTO = tf.data.experimental.AutoShardPolicy.AUTO
_DATA = tf.data.experimental.AutoShardPolicy.DATA


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether Keras reduces logs across workers under `strategy`.

    True for a `tf.distribute.MultiWorkerMirroredStrategy` whose cluster
    (from `TF_CONFIG` or its cluster resolver) has more than one worker:
    exactly when Keras' trainer takes its multi-worker branches.

    Args:
        strategy: A `tf.distribute.Strategy`.

    Returns:
        Bool.

    Example:

    >>> import tensorflow as tf
    >>> from keras_adv.distribute._multi_worker import is_multi_worker
    >>> is_multi_worker(tf.distribute.get_strategy())
    False
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    spec = strategy.cluster_resolver.cluster_spec()
    tasks = sum(
        spec.num_tasks(job) for job in ("chief", "worker") if job in spec.jobs
    )
    return tasks > 1


def _check_model(model: object) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(_validation.invalid("model", "a keras.Model", model))


_TF_CONFIG_FORM = (
    'a JSON object such as {"cluster": {"worker": ["host:port", ...]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def tf_config() -> dict[str, Any]:
    """The `TF_CONFIG` environment variable, parsed and checked (or {}).

    Raises:
        ValueError: naming `TF_CONFIG`, for a value that is not a JSON
            object or whose `"cluster"` is not a cluster specification.
    """
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            "Invalid value of the environment variable TF_CONFIG: expected "
            f"{_TF_CONFIG_FORM}; it is not valid JSON ({e}). Received: "
            f"TF_CONFIG={text!r}"
        ) from None
    cluster = config.get("cluster", {}) if isinstance(config, dict) else None
    try:
        if not isinstance(cluster, dict):
            raise TypeError("not an object of jobs")
        tf.train.ClusterSpec(cluster)
    except (TypeError, ValueError) as e:
        raise ValueError(
            "Invalid value of the environment variable TF_CONFIG: expected "
            f"{_TF_CONFIG_FORM} ({e}). Received: TF_CONFIG={text!r}"
        ) from None
    return config


def _cluster_size() -> int:
    """The number of workers (and chief) `TF_CONFIG` declares (0: none)."""
    spec = tf.train.ClusterSpec(tf_config().get("cluster", {})).as_dict()
    return sum(
        len(tasks) if isinstance(tasks, list | tuple | dict) else 1
        for job, tasks in spec.items()
        if job in ("chief", "worker")
    )


def _batch_axes(spec: Any) -> list[int | str | None]:
    """Leading dimensions of the tensors of an element spec (None: unknown)."""
    axes = []
    for component in tf.nest.flatten(spec):
        shape = getattr(component, "shape", None)
        if shape is None or shape.rank is None:
            continue
        axes.append(shape[0] if shape.rank else "scalar")
    return axes


def check_batched(
    dataset: tf.data.Dataset, model: keras.Model, name: str = "x"
) -> None:
    """Raises unless `dataset` looks batched (a leading batch axis).

    A dataset is unbatched when one of its tensors is a scalar, when its
    tensors' leading dimensions differ, or when its inputs have one axis
    fewer than the model's (Functional and Sequential models). A batched
    dataset whose every tensor shares a leading axis passes.

    Raises:
        ValueError: naming `name`, with the element spec.
    """
    spec = dataset.element_spec
    axes = _batch_axes(spec)
    known = {a for a in axes if a is not None}
    unbatched = "scalar" in known or len(known) > 1
    inputs = spec[0] if isinstance(spec, tuple) else spec
    try:
        model_inputs = model.inputs
    except (AttributeError, ValueError):
        model_inputs = None
    shape = getattr(inputs, "shape", None)
    if model_inputs and len(model_inputs) == 1 and shape is not None:
        rank = len(model_inputs[0].shape)
        unbatched |= shape.rank is not None and shape.rank == rank - 1
    if unbatched:
        raise ValueError(
            _validation.invalid(
                name,
                "a batched tf.data.Dataset (`dataset.batch(global_batch_"
                "size)`): every tensor with a leading batch axis",
                f"a dataset with element_spec {spec}",
            )
        )


def _check_strategy(
    model: keras.Model, strategy: tf.distribute.Strategy
) -> None:
    if not is_multi_worker(strategy) and _cluster_size() > 1:
        raise ValueError(
            "TF_CONFIG declares a cluster of several workers, but the model "
            f"{model.name!r} was not created in the scope of a "
            "tf.distribute.MultiWorkerMirroredStrategy: each worker would "
            "train alone. Create the strategy first, then create and compile "
            "the model inside `with strategy.scope():`. Received: a model "
            f"under {type(strategy).__name__}."
        )


def _check_variables_in_scope(
    model: keras.Model, strategy: tf.distribute.Strategy
) -> None:
    extended = strategy.extended
    for variable in model.variables:
        value = getattr(variable, "value", variable)
        if not extended.variable_created_in_scope(value):
            raise ValueError(
                f"The model {model.name!r} has variables created outside "
                f"the scope of its {type(strategy).__name__}: each worker "
                "would train its own copy. Create and compile the model "
                "inside `with strategy.scope():`. Received: variable "
                f"{variable.path!r}."
            )


# ------------------------------------------------- BackupAndRestore
_BACKUP_HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_train_end",
)


def _adapter(callback: keras.callbacks.Callback) -> "_Resume | None":
    """The `_Resume` adapting `callback`, or None."""
    for name in _BACKUP_HOOKS:
        owner = internals.overrider(callback, name)
        if isinstance(owner, _Resume):
            return owner
    return None


def _agreed(
    strategy: tf.distribute.Strategy, values: list[int], what: str
) -> None:
    """Raises unless every worker holds the same ints `values`."""
    local = tf.constant([values], tf.int64)

    @tf.function
    def gather() -> tf.Tensor:
        per_replica = strategy.run(lambda: tf.identity(local))
        return strategy.gather(per_replica, axis=0)

    rows = np.asarray(gather())
    if not np.all(rows == rows[:1]):
        raise ValueError(
            f"The workers disagree on {what} (one row per replica: "
            f"{rows.tolist()}): every worker must read the chief's "
            "BackupAndRestore `backup_dir`, so it must be on a file system "
            "that all workers share."
        )


class _Resume:
    """One adaptation of a `keras.callbacks.BackupAndRestore` (module doc).

    Hooks in the callback's instance `__dict__` call the class's own; the
    chief check and the resume position are taken in `on_train_begin`,
    after Keras' restore.
    """

    def __init__(self, callback: keras.callbacks.BackupAndRestore) -> None:
        self.callback = callback
        self.paths = internals.backup_paths(callback)
        self.private_dir: str | None = None
        self.skip_epoch: int | None = None
        self.skip = 0

    # --------------------------------------------------------- install
    def install(self) -> None:
        internals.override(
            self.callback,
            self,
            {name: getattr(self, name) for name in _BACKUP_HOOKS},
        )

    def remove(self) -> None:
        callback = self.callback
        internals.remove_overrides(callback, self, _BACKUP_HOOKS)
        internals.set_backup_paths(callback, self.paths)
        if self.private_dir is not None:
            shutil.rmtree(self.private_dir, ignore_errors=True)
            self.private_dir = None

    # -------------------------------------------------------- position
    def _saved_position(self) -> tuple[int, int] | None:
        """`(epoch, batches done in it)` of the backup, or None."""
        if not isinstance(self.callback.save_freq, int):
            return None  # "epoch": Keras' own restore is exact
        position = internals.backup_position(self.paths)
        if position is None:
            return None
        epoch, batch = position
        return epoch, batch + 1

    # ----------------------------------------------------------- hooks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        callback = self.callback
        model = callback.model
        type(callback).on_train_begin(callback, logs)
        position = self._saved_position()
        epoch = internals.initial_epoch(model) or 0
        if position is not None:
            epoch, done = position
            steps = (callback.params or {}).get("steps")
            if steps is not None and done >= steps:
                epoch, done = epoch + 1, 0
                internals.set_initial_epoch(model, epoch)
            self.skip_epoch, self.skip = epoch, done
        internals.set_backup_epoch(callback, epoch)
        strategy = model.distribute_strategy
        if is_multi_worker(strategy):
            _agreed(strategy, [epoch, self.skip], "where to resume")
            if not strategy.extended.should_checkpoint:
                self._write_privately()

    def _write_privately(self) -> None:
        # Keras writes `backup_dir`'s files and removes `backup_dir` at the
        # end: a worker other than the chief does both in its own place.
        self.private_dir = tempfile.mkdtemp(prefix="keras_adv_backup_")
        internals.relocate_backup(self.callback, self.paths, self.private_dir)

    def on_epoch_begin(
        self, epoch: int, logs: dict[str, Any] | None = None
    ) -> None:
        type(self.callback).on_epoch_begin(self.callback, epoch, logs)
        if epoch != self.skip_epoch:
            self.skip = 0

    def _skipping(self, batch: int) -> bool:
        return self.skip > 0 and batch < self.skip

    def on_train_batch_begin(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        type(self.callback).on_train_batch_begin(self.callback, batch, logs)
        if self._skipping(batch):
            # A batch the backup already includes: read, not trained.
            internals.skip_next_train_step(self.callback.model)

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        callback = self.callback
        if self._skipping(batch):
            # The backup is this position's: count from it, do not save.
            internals.count_skipped_batch(callback, batch)
            return
        type(callback).on_train_batch_end(callback, batch, logs)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        type(self.callback).on_train_end(self.callback, logs)


def _callback_list(
    callbacks: keras.callbacks.Callback
    | Iterable[keras.callbacks.Callback]
    | None,
) -> list[keras.callbacks.Callback]:
    if callbacks is None:
        return []
    if isinstance(callbacks, keras.callbacks.CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, keras.callbacks.Callback):
        return [callbacks]
    return list(callbacks)


@contextlib.contextmanager
def _resumable_backups(
    callbacks: keras.callbacks.Callback
    | Iterable[keras.callbacks.Callback]
    | None,
) -> Iterator[None]:
    """Adapts each `BackupAndRestore` in `callbacks` for the block."""
    adapted = []
    try:
        for callback in _callback_list(callbacks):
            if (
                isinstance(callback, keras.callbacks.BackupAndRestore)
                and _adapter(callback) is None
            ):
                resume = _Resume(callback)
                resume.install()
                adapted.append(resume)
        yield
    finally:
        for resume in adapted:
            resume.remove()


@contextlib.contextmanager
def multi_worker_support(model: keras.Model) -> Iterator[keras.Model]:
    """Lets Keras' own `fit`/`evaluate` run on several workers.

    Inside the block, `model.fit(...)` and `model.evaluate(...)` run on the
    `tf.distribute.MultiWorkerMirroredStrategy` the model was created
    under, with Keras' `train_step` (or the model's own), loss scaling,
    metrics and callbacks, `keras_adv.callbacks.AdversarialTraining`
    included. On one machine (or any other strategy) the block changes
    nothing. The model is left as it was when the block exits, also after
    an exception. Nested blocks on the same model are no-ops.

    Every worker must run the same program: the same model, callbacks,
    epochs and a dataset with the same batches (see `fit_multi_worker`,
    which also shards the dataset by data and adapts
    `keras.callbacks.BackupAndRestore`; this block does not).

    Args:
        model: A `keras.Model` created and compiled inside the strategy's
            scope.

    Yields:
        The model.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: in multi-worker mode, if the model has variables created
            outside the strategy's scope.

    Example:

    >>> import keras
    >>> from keras_adv.distribute import multi_worker_support
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> with multi_worker_support(model):  # one machine: plain fit
    ...     history = model.fit(
    ...         keras.ops.ones((4, 3)), keras.ops.ones((4, 1)), verbose=0
    ...     )
    >>> len(history.history["loss"])
    1
    """
    _check_model(model)
    strategy = model.distribute_strategy
    if (
        not is_multi_worker(strategy)
        or internals.multi_worker_seams_owner(model) is not None
    ):
        yield model
        return
    _check_variables_in_scope(model, strategy)
    owner = object()  # this block's installation
    internals.install_multi_worker_seams(model, owner)
    try:
        yield model
    finally:
        internals.remove_multi_worker_seams(model, owner)


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with the `DATA` auto-shard policy unless one was chosen.

    Under `DATA` sharding every worker reads the whole pipeline and keeps
    its replicas' slices of each global batch: worker `i` of `n` trains on
    rows `[i B/n, (i+1) B/n)` of the batch one process would train on, so
    `n` workers see the same batches, in the same order, as one process
    (the default `AUTO` policy tries `FILE` sharding first, which changes
    the order for file-based pipelines). An explicit policy other than
    `AUTO` is kept.

    Args:
        dataset: A batched `tf.data.Dataset` (global batch size).

    Returns:
        The dataset, with the policy set.

    Raises:
        TypeError: if `dataset` is not a `tf.data.Dataset`.

    Example:

    >>> import tensorflow as tf
    >>> from keras_adv.distribute import shard_by_data
    >>> ds = shard_by_data(tf.data.Dataset.range(8).batch(4))
    >>> ds.options().experimental_distribute.auto_shard_policy.name
    'DATA'
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            _validation.invalid("dataset", "a tf.data.Dataset", dataset)
        )
    policy = dataset.options().experimental_distribute.auto_shard_policy
    if policy != _AUTO:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = _DATA
    return dataset.with_options(options)


def fit_multi_worker(
    model: keras.Model, x: Any, validation_data: Any = None, **fit_kwargs: Any
) -> keras.callbacks.History:
    """`model.fit(x, ...)` on every worker of a multi-worker cluster.

    Run the same script once per worker, each with its own `TF_CONFIG`
    (the cluster and the worker's index); create
    `tf.distribute.MultiWorkerMirroredStrategy()` first, then build and
    compile the model in its scope. `x` is a `tf.data.Dataset` batched with
    the global batch size; it is sharded by data (`shard_by_data`), so
    with `n` workers each trains on its `1/n` of every global batch, the
    gradients are summed across workers, and the weights follow the same
    path as one process training on the whole batch (keep the number of
    samples a multiple of the global batch size, or each global batch
    divisible by the number of replicas, for an exact match). Callbacks
    (`AdversarialTraining`, `RobustnessMonitor`, History, ...) run on every
    worker; write files (checkpoints, TensorBoard) from the chief only
    (`TF_CONFIG` task index 0; `RobustnessMonitor` does so itself).

    A `keras.callbacks.BackupAndRestore` among the callbacks is adapted
    for the duration of `fit`: only the chief writes `backup_dir` (the
    other workers write a private temporary copy), every worker restores
    from it (put it on a file system all workers share), and a backup
    taken mid-epoch (`save_freq=N` steps) resumes at its step instead of
    at the start of its epoch, so a run restarted after a worker was
    lost ends with the weights of an uninterrupted run (for data in the
    same order on every pass, e.g. no reshuffling per epoch).

    On one machine (no multi-worker cluster) this is `model.fit(x, ...)`
    (with `x` sharded by data if it is a `tf.data.Dataset`, and
    `BackupAndRestore` resuming at its step).

    Args:
        model: A compiled `keras.Model` created in the strategy's scope
            (`keras_adv.models.AdversarialModel`, `GAN` and `SoftmaxGAN`
            included).
        x: A batched `tf.data.Dataset` of `(x, y)` or `(x, y, w)` (or `x`
            for a GAN); on one machine anything `fit` accepts.
        validation_data: Optional validation `tf.data.Dataset` (sharded
            the same way).
        **fit_kwargs: Passed to `model.fit` (`epochs`, `callbacks`,
            `verbose`, `steps_per_epoch`, ...).

    Returns:
        The `keras.callbacks.History` of `fit`.

    Raises:
        TypeError: if `model` is not a `keras.Model`, or in multi-worker
            mode if `x` is not a `tf.data.Dataset`.
        ValueError: if `TF_CONFIG` is not valid (not a JSON object, or
            a malformed cluster), declares several workers but the model
            was not created under a `MultiWorkerMirroredStrategy`, or its
            variables were created outside the strategy's scope; or if a
            dataset `x` or `validation_data` is not batched (a scalar
            tensor, tensors of different leading dimensions, or inputs
            with one axis fewer than the model's).

    Example:

    >>> import keras, numpy as np, tensorflow as tf
    >>> from keras_adv.distribute import fit_multi_worker
    >>> strategy = tf.distribute.get_strategy()  # MWMS on a cluster
    >>> with strategy.scope():
    ...     model = keras.Sequential(
    ...         [keras.Input((3,)), keras.layers.Dense(1)]
    ...     )
    ...     model.compile("sgd", "mse")
    >>> x = np.ones((8, 3), "float32")
    >>> ds = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).batch(4)
    >>> fit_multi_worker(model, ds, epochs=2, verbose=0).params["steps"]
    2
    """
    _check_model(model)
    tf_config()
    _check_strategy(model, model.distribute_strategy)
    multi_worker = is_multi_worker(model.distribute_strategy)
    if multi_worker and not isinstance(x, tf.data.Dataset):
        raise TypeError(
            _validation.invalid(
                "x",
                "a batched tf.data.Dataset (global batch size) on a "
                "multi-worker cluster: every worker must read the same "
                "batches",
                type(x).__name__,
            )
        )
    if isinstance(x, tf.data.Dataset):
        check_batched(x, model, "x")
        x = shard_by_data(x)
    if isinstance(validation_data, tf.data.Dataset):
        check_batched(validation_data, model, "validation_data")
        validation_data = shard_by_data(validation_data)
    callbacks = fit_kwargs.get("callbacks")
    with multi_worker_support(model), _resumable_backups(callbacks):
        return model.fit(x, validation_data=validation_data, **fit_kwargs)
