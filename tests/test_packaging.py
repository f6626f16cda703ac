"""What a user installs: the wheel and sdist, their metadata, the pinned
layers of `dev.py`, and `keras-adv --version`.

The distributions are built as `python -m build` does (an sdist from the
tree, then the wheel from the unpacked sdist) with the setuptools of this
environment, offline, in a copy of the files a build reads, so the work
tree is never written to. About 5 s.
"""

import email
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import keras_adv
from keras_adv import cli

ROOT = Path(__file__).resolve().parents[1]
# Everything a build of the package reads from the source tree.
BUILD_INPUTS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "LICENSES",
    "keras_adv",
)
LICENCES = (
    "LICENSE",
    "LICENSES/BSD-3-Clause.txt",
    "LICENSES/CC-BY-SA-3.0.txt",
    "LICENSES/README.md",
)
PACKAGE_DATA = (
    "keras_adv/py.typed",
    "keras_adv/datasets/mnist_subset.npz",
    "keras_adv/datasets/MNIST_SUBSET.md",
)
LOCKS = ROOT / "requirements"
LAYERS = ("lock-runtime.txt", "lock-tests.txt", "lock-docs.txt")
DIST_INFO = f"keras_adv-{keras_adv.__version__}.dist-info"


def _pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _build(backend_hook, source, out):
    """Runs setuptools' PEP 517 hook `backend_hook` in `source`."""
    code = (
        "import sys, setuptools.build_meta as backend; "
        "getattr(backend, sys.argv[1])(sys.argv[2])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, backend_hook, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """(sdist path, wheel path), built from a copy of the build inputs."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip(
            f"setuptools {setuptools.__version__} < 77 cannot build PEP 639 "
            "licence metadata (requirements/lock-runtime.txt pins it)"
        )
    tmp = tmp_path_factory.mktemp("dists")
    source, out = tmp / "source", tmp / "out"
    source.mkdir()
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    _build("build_sdist", source, out)
    (sdist,) = out.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp / "unpacked", filter="data")
    (unpacked,) = (tmp / "unpacked").iterdir()
    _build("build_wheel", unpacked, out)
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def _wheel_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_wheel_carries_licences_py_typed_and_data(dists):
    _, wheel = dists
    files = _wheel_files(wheel)
    licences = f"{DIST_INFO}/licenses"
    for name in LICENCES:
        assert files.get(f"{licences}/{name}") == (ROOT / name).read_bytes()
    for name in PACKAGE_DATA:
        assert files.get(name) == (ROOT / name).read_bytes(), name


def test_wheel_holds_the_package_and_nothing_else(dists):
    _, wheel = dists
    files = set(_wheel_files(wheel))
    tops = {name.split("/")[0] for name in files}
    assert tops == {"keras_adv", DIST_INFO}
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "keras_adv").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - files == set()  # every subpackage is found


def test_wheel_metadata(dists):
    _, wheel = dists
    files = _wheel_files(wheel)
    info = DIST_INFO
    meta = email.message_from_bytes(files[f"{info}/METADATA"])
    assert meta["Name"] == "keras-adv"
    assert meta["Version"] == keras_adv.__version__
    assert meta["License-Expression"] == (
        "Apache-2.0 AND CC-BY-SA-3.0 AND BSD-3-Clause"
    )
    assert sorted(meta.get_all("License-File")) == sorted(LICENCES)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {
        "Homepage",
        "Documentation",
        "Source",
        "Issues",
        "Changelog",
    }
    assert urls["Changelog"].endswith("/CHANGELOG.md")
    assert meta["Requires-Python"] == ">=3.10"
    pythons = {
        c.rsplit(" :: ", 1)[1]
        for c in meta.get_all("Classifier")
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert pythons == {"3.10", "3.11", "3.12"}
    scripts = files[f"{info}/entry_points.txt"].decode()
    assert "keras-adv = keras_adv.cli:main" in scripts


def test_sdist_carries_licences_and_data(dists):
    sdist, _ = dists
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
    assert set(LICENCES) | set(PACKAGE_DATA) <= names
    assert {"pyproject.toml", "README.md", "PKG-INFO"} <= names


def test_version_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"keras-adv {keras_adv.__version__}\n"
    assert keras_adv.__version__ == _pyproject()["project"]["version"]


def _pins(lock):
    """{canonical name: version} of a lock file and the files it includes."""
    pins = {}
    for line in (LOCKS / lock).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins.update(_pins(line[3:].strip()))
        elif line:
            name, version = line.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_layers_are_one_resolution():
    """A package pinned in two layers has one version; tests extends
    runtime; the old single lock is gone."""
    assert not (LOCKS / "lock.txt").exists()
    assert "-r lock-runtime.txt" in (LOCKS / "lock-tests.txt").read_text()
    seen = {}
    for layer in LAYERS:
        for name, version in _pins(layer).items():
            assert seen.setdefault(name, (version, layer))[0] == version, (
                f"{name} is pinned at {version} in {layer} and at "
                f"{seen[name][0]} in {seen[name][1]}"
            )


@pytest.mark.parametrize(
    "layer, extras",
    [
        ("lock-runtime.txt", ("plots",)),
        ("lock-tests.txt", ("plots", "tests")),
        ("lock-docs.txt", ("docs",)),
    ],
)
def test_layer_satisfies_pyproject(layer, extras):
    """Each layer's pins meet the ranges pyproject.toml declares."""
    requirements = pytest.importorskip("packaging.requirements")
    project = _pyproject()["project"]
    wanted = [] if layer == "lock-docs.txt" else list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(layer)
    for text in wanted:
        req = requirements.Requirement(text)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{layer} does not pin {name}"
        assert req.specifier.contains(pins[name]), (layer, text, pins[name])


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_is_closed(layer):
    """Every dependency of a pinned package is pinned in the same layer,
    so `pip install -r` never picks an unpinned version. Checked against
    the installed metadata (a layer not installed here is skipped)."""
    requirements = pytest.importorskip("packaging.requirements")
    pins = _pins(layer)
    for name, version in pins.items():
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{layer} is not installed here ({name})")
        if dist.version != version:
            pytest.skip(f"{name} {dist.version} here, {version} in {layer}")
        for text in dist.requires or []:
            req = requirements.Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": ""}):
                continue
            dep = re.sub(r"[-_.]+", "-", req.name).lower()
            assert dep in pins, f"{name} needs {dep}, not pinned in {layer}"
