"""Checks of paths and data specs, before TensorFlow is imported.

Everything here uses the standard library only, so a missing file, a
corrupt model or an unprepared dataset is reported in a fraction of a
second instead of after TensorFlow's start-up.
"""

import argparse
import glob
import importlib.util
import os
import zipfile

from keras_adv.cli._errors import UsageError

TFDS_NAMES = ("mnist", "fashion_mnist", "cifar10")  # datasets.load_tfds
_SPECS = "mnist-subset, tfds:NAME or npz:PATH"


def check(args: argparse.Namespace) -> None:
    """Validates the paths and specs of the parsed `args` in place."""
    if args.command == "evaluate":
        check_model_file(args.model)
        check_data_spec(args.data)
        check_certify(args)
        args.out = prepare_out(args.out)
    elif args.command == "train":
        check_train_output(args.out)
        check_data_spec(args.data)
        check_generated(args)
    elif args.command == "demo":
        args.out = prepare_out(args.out)


_SMOOTHING_OPTIONS = ("sigma", "n0", "n", "alpha")


def check_certify(args: argparse.Namespace) -> None:
    """`--certify smoothing` needs `--sigma` and `--norm l2`; the smoothing
    options need `--certify smoothing`."""
    smoothing = "smoothing" in (args.certify or [])
    given = [
        f"--{o}"
        for o in _SMOOTHING_OPTIONS
        if getattr(args, o, None) is not None
    ]
    if not smoothing:
        if given:
            raise UsageError(
                f"{', '.join(given)}: options of --certify smoothing, "
                "which was not requested"
            )
        return
    if args.sigma is None:
        raise UsageError(
            "--certify smoothing needs --sigma, the standard deviation of "
            "the Gaussian noise the model was trained with (e.g. 0.25)"
        )
    if args.norm != "l2":
        raise UsageError(
            "--certify smoothing certifies L2 balls: pass --norm l2 (an L2 "
            "radius covers only a vacuously small L-inf ball)"
        )


def check_model_file(path: str) -> None:
    """A `.keras` file must be a zip archive holding `config.json`."""
    if not os.path.isfile(path):
        raise UsageError(f"MODEL: no such file: {path}")
    if path.lower().endswith((".h5", ".hdf5")):
        return  # legacy HDF5 format: Keras checks it
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        raise UsageError(
            f"MODEL: {path} is not a valid .keras file (not a zip archive: "
            "truncated, corrupt or another format)"
        ) from None
    if "config.json" not in names:
        raise UsageError(
            f"MODEL: {path} is not a valid .keras file (no config.json in "
            "the archive)"
        )


def check_generated(args: argparse.Namespace) -> None:
    """`--real-fraction` and `--gan-epochs` only mean something with
    `--generated`."""
    if args.generated:
        return
    given = [
        option
        for option, value, default in (
            ("--real-fraction", args.real_fraction, 0.3),
            ("--gan-epochs", args.gan_epochs, 100),
        )
        if value != default
    ]
    if given:
        raise UsageError(
            f"{', '.join(given)}: options of --generated N, which was not given"
        )


def check_train_output(path: str) -> None:
    """`keras-adv train` writes a `.keras` file into an existing directory."""
    if not path.endswith(".keras"):
        raise UsageError(f"MODEL: expected a path ending in .keras: {path}")
    if os.path.isdir(path):
        raise UsageError(f"MODEL: {path} is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"MODEL: no such directory: {parent}")


def check_data_spec(spec: str) -> None:
    """Malformed specs, missing files and unprepared tfds datasets."""
    kind, _, arg = spec.partition(":")
    kind = kind.lower()
    if kind == "mnist-subset" and not arg:
        return
    if kind == "tfds" and arg:
        _check_tfds(arg)
        return
    if kind == "npz" and arg:
        if not os.path.isfile(arg):
            raise UsageError(f"--data: no such npz file: {arg}")
        if not zipfile.is_zipfile(arg):
            raise UsageError(f"--data: {arg} is not an .npz file")
        return
    raise UsageError(f"--data: expected {_SPECS}; received {spec!r}")


def tfds_data_dir() -> str:
    """tensorflow-datasets' default data directory (`TFDS_DATA_DIR`)."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _check_tfds(name: str) -> None:
    if name.lower() not in TFDS_NAMES:
        raise UsageError(
            f"--data: unknown tfds dataset {name!r}; choose from "
            f"{', '.join(TFDS_NAMES)}"
        )
    name = name.lower()
    if importlib.util.find_spec("tensorflow_datasets") is None:
        raise UsageError(
            f"--data tfds:{name} needs tensorflow-datasets: "
            "pip install 'keras-adv[tfds]'"
        )
    data_dir = tfds_data_dir()
    if "://" in data_dir:
        return  # a remote directory (gs://...): tfds reads it
    # tfds keeps a prepared dataset in DATA_DIR/NAME/VERSION/.
    info = os.path.join(data_dir, name, "*", "dataset_info.json")
    if not glob.glob(info):
        raise UsageError(
            f"--data: tfds dataset {name!r} is not prepared in {data_dir} "
            f"(keras-adv does not download; run `tfds build {name}` once "
            "with internet access, or set TFDS_DATA_DIR)"
        )


def prepare_out(path: str) -> str:
    """Creates the output directory; returns its path."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out: {path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"--out: cannot create {path}: {error.strerror}"
        ) from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"--out: {path} is not writable")
    return path
