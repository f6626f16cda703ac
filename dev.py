#!/usr/bin/env python3
"""One entry point for keras_adv development: set up, run the demo, test.

Only Python 3.10+ and pip are needed. The first run creates `.venv/` next to
this file, installs the pinned versions from `requirements/lock.txt` and the
package itself (editable), then runs the job. Later runs reuse the virtual
environment unless the lock file or `pyproject.toml` changed.

    python3 dev.py demo        # set up, then `keras-adv demo`
    python3 dev.py test        # set up, then the test suite (what CI runs)
    python3 dev.py test --slow # also the long quality tests
    python3 dev.py test-floor  # fast tests at the oldest supported versions
    python3 dev.py reference   # keras_adv's AutoAttack vs the reference's
    python3 dev.py bench       # set up, then the benchmarks in bench/
    python3 dev.py lint        # ruff check + ruff format --check
    python3 dev.py docs        # build the docs site into site/ (--strict)
    python3 dev.py docs serve  # serve the docs site with live reload
    python3 dev.py setup       # only set up

Extra arguments after the command are passed on (to `keras-adv demo`,
`pytest` or the bench script).
"""

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "lock.txt"
STAMP = VENV / ".keras_adv_setup"
# `test-floor`: the lowest supported versions, in a venv of their own.
FLOOR_VENV = ROOT / ".venv-floor"
FLOOR_LOCK = ROOT / "requirements" / "floor.txt"
# `reference`: the reference AutoAttack (PyTorch, CPU) for a benchmark only.
REFERENCE_VENV = ROOT / ".venv-reference"
REFERENCE_LOCK = ROOT / "requirements" / "reference.txt"


def _venv_python(venv_dir=VENV):
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def _fingerprint(lock=LOCK):
    digest = hashlib.sha256()
    for path in (lock, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def _run(cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=ROOT, **kwargs)


def setup(venv_dir=VENV, lock=LOCK, editable=True):
    """Creates `.venv` and installs the pinned dependencies (idempotent)."""
    if sys.version_info < (3, 10):  # noqa: UP036 - runs before the venv
        sys.exit("keras_adv needs Python >= 3.10; found " + sys.version)
    fingerprint = _fingerprint(lock)
    stamp = venv_dir / STAMP.name
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    if not _venv_python(venv_dir).exists():
        print(f"Creating virtual environment in {venv_dir.name}/", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    py = _venv_python(venv_dir)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    cmds = [pip + ["-r", lock]]
    if editable:
        cmds.append(pip + ["--no-deps", "-e", "."])
    for cmd in cmds:
        if _run(cmd) != 0:
            sys.exit("setup failed: " + " ".join(str(c) for c in cmd))
    stamp.write_text(fingerprint)


def _test_floor(rest):
    """The fast suite in `.venv-floor` (requirements/floor.txt): proves the
    floors in pyproject.toml. Lint and docs-site tests need the main venv."""
    setup(FLOOR_VENV, FLOOR_LOCK)
    py = _venv_python(FLOOR_VENV)
    skip = ["--ignore=tests/test_lint.py", "--ignore=tests/test_docs_site.py"]
    cmd = [py, "-m", "pytest", "-p", "no:cacheprovider", *skip, *rest]
    return _run(cmd, env=_env())


def _reference(rest):
    """bench/reference_autoattack.py: keras_adv's side in `.venv`, then the
    reference AutoAttack in `.venv-reference` (requirements/reference.txt).
    `rest` goes to both steps (e.g. `--model pgd7.keras --out cmp.npz`)."""
    setup()
    setup(REFERENCE_VENV, REFERENCE_LOCK, editable=False)
    script = "bench/reference_autoattack.py"
    code = _run([_venv_python(), script, "keras", *rest], env=_env())
    if code:
        return code
    py = _venv_python(REFERENCE_VENV)
    return _run([py, script, "reference", *rest], env=_env())


def _env():
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
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
    setup()
    py = _venv_python()
    if command == "setup":
        return 0
    if command == "demo":
        return _run([py, "-m", "keras_adv.cli", "demo", *rest], env=_env())
    if command == "test":
        args = list(rest)
        if "--slow" in args:
            args.remove("--slow")
            args += ["-m", "slow or not slow"]
        return _run([py, "-m", "pytest", *args], env=_env())
    if command == "bench":
        script = rest[0] if rest else "bench/attacks.py"
        return _run([py, script, *rest[1:]], env=_env())
    if command == "docs":
        return _docs(py, rest)
    if command == "lint":
        code = _run([py, "-m", "ruff", "check", "."])
        return code or _run([py, "-m", "ruff", "format", "--check", "."])
    print(f"unknown command {command!r}\n{__doc__}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
