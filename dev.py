#!/usr/bin/env python3
"""One entry point for keras_adv development: set up, run the demo, test.

Only Python 3.11+ and pip are needed (the pinned versions need 3.11; the
package itself supports 3.10, see the README's Install section). The first
run creates `.venv/` next to this file, installs the pinned versions the
command needs and the package itself (editable), then runs the job. The
pins come in layers (requirements/lock-*.txt):

    runtime  the package and its `plots` extra: demo, bench, setup
    tests    runtime + pytest, ruff, tensorflow-datasets: test, lint
    docs     MkDocs and mkdocstrings, on their own: docs

A later command that needs another layer adds it to `.venv/` in place (e.g.
`demo`, then `test`); a layer is reinstalled when its lock file, or the
package when `pyproject.toml`, changed (recorded in `.venv/.keras_adv_setup`).

    python3 dev.py demo        # set up (runtime), then `keras-adv demo`
    python3 dev.py keras-adv ...    # `keras-adv ...` in .venv (e.g. evaluate)
    python3 dev.py tensorboard ...  # `tensorboard ...` in .venv
    python3 dev.py test        # set up (tests), then the test suite (CI)
    python3 dev.py test --slow # also the long quality tests
    python3 dev.py test-floor  # fast tests at the oldest supported versions
    python3 dev.py reference   # keras_adv's AutoAttack vs the reference's
    python3 dev.py bench       # set up, then the benchmarks in bench/
    python3 dev.py lint        # ruff check + ruff format --check
    python3 dev.py docs        # build the docs site into site/ (--strict)
    python3 dev.py docs serve  # serve the docs site with live reload
    python3 dev.py setup       # only set up (every layer)

Extra arguments after the command are passed on (to `keras-adv demo`,
`keras-adv`, `tensorboard`, `pytest` or the bench script). Every command
runs in this directory: relative paths are relative to it.
"""

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
# The pinned layers of `.venv` (a lock file may include another with `-r`).
RUNTIME_LOCK = REQUIREMENTS / "lock-runtime.txt"
TESTS_LOCK = REQUIREMENTS / "lock-tests.txt"  # includes lock-runtime.txt
DOCS_LOCK = REQUIREMENTS / "lock-docs.txt"
# What each command needs in `.venv`, and whether it runs keras_adv itself.
COMMANDS = {
    "demo": ((RUNTIME_LOCK,), True),
    "keras-adv": ((RUNTIME_LOCK,), True),
    "tensorboard": ((RUNTIME_LOCK,), True),
    "bench": ((RUNTIME_LOCK,), True),
    "test": ((TESTS_LOCK,), True),
    "lint": ((TESTS_LOCK,), True),
    "docs": ((DOCS_LOCK,), False),
    "setup": ((TESTS_LOCK, DOCS_LOCK), True),
}
# Which layers (and package build) a venv holds; the same name in every venv.
STAMP_NAME = ".keras_adv_setup"
# `test-floor`: the lowest supported versions, in a venv of their own.
FLOOR_VENV = ROOT / ".venv-floor"
FLOOR_LOCK = REQUIREMENTS / "floor.txt"
# `reference`: the reference AutoAttack (PyTorch, CPU) for a benchmark only.
REFERENCE_VENV = ROOT / ".venv-reference"
REFERENCE_LOCK = REQUIREMENTS / "reference.txt"


def _venv_python(venv_dir=VENV):
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _lock_files(lock):
    """`lock` and the lock files it includes (`-r FILE`), recursively."""
    files = [lock]
    for line in lock.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("-r", "--requirement"):
            files += _lock_files(lock.parent / parts[1])
    return files


def _fingerprint(paths):
    digest = hashlib.sha256(sys.version.encode())
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _read_stamp(stamp):
    """{"locks": {name: fingerprint}, "package": fingerprint}, or {}."""
    try:
        state = json.loads(stamp.read_text())
    except (OSError, ValueError):  # none yet, or an older dev.py's digest
        return {}
    return state if isinstance(state, dict) else {}


def _run(cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def setup(locks=(TESTS_LOCK,), venv_dir=VENV, editable=True):
    """Installs the pinned layers `locks` (and keras_adv) into `venv_dir`.

    Idempotent and incremental: a layer is installed when it is missing or
    its lock file (or one it includes) changed, the editable package when
    `pyproject.toml` changed; other layers already there stay.
    """
    if sys.version_info < (3, 11):
        sys.exit(
            "dev.py installs pinned versions that need Python >= 3.11 "
            f"(numpy 2.4, keras 3.15); found {sys.version.split()[0]}. "
            'keras_adv itself supports 3.10: pip install ".[plots,tfds]"'
        )
    py = _venv_python(venv_dir)
    stamp = venv_dir / STAMP_NAME
    state = _read_stamp(stamp) if py.exists() else {}
    done = dict(state.get("locks") or {})
    todo = [
        lock
        for lock in locks
        if done.get(lock.name) != _fingerprint(_lock_files(lock))
    ]
    package = _fingerprint([ROOT / "pyproject.toml"])
    build = editable and state.get("package") != package
    if not todo and not build:
        return
    if not py.exists():
        print(f"Creating virtual environment in {venv_dir.name}/", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    cmds = []
    if todo:
        cmds.append(pip + [arg for lock in todo for arg in ("-r", lock)])
    if build:
        # setuptools is pinned in the lock: the build needs no download.
        cmds.append(pip + ["--no-deps", "--no-build-isolation", "-e", "."])
    for cmd in cmds:
        if _run(cmd) != 0:
            sys.exit("setup failed: " + " ".join(str(c) for c in cmd))
    for lock in todo:
        for part in _lock_files(lock):
            done[part.name] = _fingerprint(_lock_files(part))
    state["locks"] = done
    if editable:
        state["package"] = package
    stamp.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")


def _workers(args):
    """pytest-xdist options: one worker per core (at most 4), each test
    file on one worker (its module fixtures built once), unless the
    command line chooses (`-n`, `-p no:xdist`) or runs the two-process
    multi-worker tests, which start their own workers."""
    joined = " ".join(str(a) for a in args)
    chosen = any(str(a).startswith(("-n", "--numprocesses")) for a in args)
    if chosen or "no:xdist" in joined or "multiworker" in joined:
        return []
    cores = min(os.cpu_count() or 1, 4)
    return ["-n", str(cores), "--dist", "loadfile"] if cores > 1 else []


def _test_floor(rest):
    """The fast suite in `.venv-floor` (requirements/floor.txt): proves the
    floors in pyproject.toml. Lint and docs-site tests need the main venv."""
    setup((FLOOR_LOCK,), FLOOR_VENV)
    py = _venv_python(FLOOR_VENV)
    skip = ["--ignore=tests/test_lint.py", "--ignore=tests/test_docs_site.py"]
    cmd = [py, "-m", "pytest", "-p", "no:cacheprovider", *skip]
    return _run([*cmd, *_workers(rest), *rest], env=_env())


def _reference(rest):
    """bench/reference_autoattack.py: keras_adv's side in `.venv`, then the
    reference AutoAttack in `.venv-reference` (requirements/reference.txt).
    `rest` goes to both steps (e.g. `--model pgd7.keras --out cmp.npz`)."""
    setup((RUNTIME_LOCK,))
    setup((REFERENCE_LOCK,), REFERENCE_VENV, editable=False)
    script = "bench/reference_autoattack.py"
    code = _run([_venv_python(), script, "keras", *rest], env=_env())
    if code:
        return code
    py = _venv_python(REFERENCE_VENV)
    return _run([py, script, "reference", *rest], env=_env())


def _env(log_level="2"):
    """The environment of a command; TensorFlow's C++ log level unless set
    (None: keras-adv sets it itself, see docs/cli.md)."""
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    if log_level is not None:
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    return env


def _docs(py, rest):
    """Builds (default) or serves (`serve`) the MkDocs site, strictly."""
    action = rest[0] if rest and not rest[0].startswith("-") else "build"
    args = rest[1:] if rest and rest[0] == action else list(rest)
    cmd = [py, "-m", "mkdocs", action, "--strict", *args]
    if action == "build":
        cmd += ["--site-dir", ROOT / "site"]
    # Quiet Material's banner about MkDocs 2 on every build.
    return _run(cmd, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def main(argv):
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "test-floor":
        return _test_floor(rest)
    if command == "reference":
        return _reference(rest)
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
        return 2
    locks, editable = COMMANDS[command]
    setup(locks, editable=editable)
    py = _venv_python()
    if command == "setup":
        return 0
    if command in ("demo", "keras-adv"):
        args = ["demo", *rest] if command == "demo" else rest
        return _run([py, "-m", "keras_adv.cli", *args], env=_env(None))
    if command == "tensorboard":  # serves until Ctrl-C
        try:
            cmd = [py, "-m", "tensorboard.main", *rest]
            return _run(cmd, env=_env("3"))
        except KeyboardInterrupt:
            return 130
    if command == "test":
        args = list(rest)
        if "--slow" in args:
            args.remove("--slow")
            args += ["-m", "slow or not slow"]
        return _run([py, "-m", "pytest", *_workers(args), *args], env=_env())
    if command == "bench":
        script = rest[0] if rest else "bench/attacks.py"
        return _run([py, script, *rest[1:]], env=_env())
    if command == "docs":
        return _docs(py, rest)
    code = _run([py, "-m", "ruff", "check", "."])  # lint
    return code or _run([py, "-m", "ruff", "format", "--check", "."])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
