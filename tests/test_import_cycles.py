"""`scripts/import_cycles.py` on tiny synthetic packages (no TensorFlow)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_cycles.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_package(root, files):
    """Writes `{relative path: source}` under `root`; returns `root/pkg`."""
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return root / "pkg"


# pkg -> pkg.a (package init); pkg.a -> pkg.b and pkg (a name defined in
# pkg's __init__) through a function-local `from pkg import b, X`;
# pkg.b -> pkg.a: one cycle of three. pkg.sub.c imports pkg.a relatively
# and the submodule pkg.sub.d (an edge to it, not to pkg.sub): outside.
CYCLIC = {
    "pkg/__init__.py": "from pkg.a import f\n\nX = 1\n",
    "pkg/a.py": "def f():\n    from pkg import X, b\n\n    return b, X\n",
    "pkg/b.py": "import os\n\nimport pkg.a\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/c.py": "from ..a import f\nfrom . import d\n",
    "pkg/sub/d.py": "X = 1\n",
}


def test_the_graph_resolves_every_import_form(script, tmp_path):
    graph = script.import_graph(write_package(tmp_path, CYCLIC))
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg", "pkg.b"},
        "pkg.b": {"pkg.a"},
        "pkg.sub": set(),
        "pkg.sub.c": {"pkg.a", "pkg.sub.d"},
        "pkg.sub.d": set(),
    }


def test_a_cycle_is_found_with_an_example_path(script, tmp_path, capsys):
    package = write_package(tmp_path, CYCLIC)
    cycles = script.find_cycles(package)
    assert len(cycles) == 1
    members, path = cycles[0]
    assert members == ["pkg", "pkg.a", "pkg.b"]
    graph = script.import_graph(package)
    assert path[0] == path[-1] and set(path) <= set(members)
    assert all(b in graph[a] for a, b in zip(path, path[1:]))
    assert script.main(["--package", str(package)]) == 1
    assert "e.g. pkg -> pkg.a -> pkg" in capsys.readouterr().out


def test_no_cycle_gives_an_empty_result(script, tmp_path, capsys):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import f\n",
            "pkg/a.py": "def f():\n    from pkg.b import g\n\n    return g\n",
            "pkg/b.py": "def g():\n    return 1\n",
        },
    )
    assert script.find_cycles(package) == []
    assert script.main(["--package", str(package)]) == 0
    assert "No import cycle among the 3 modules" in capsys.readouterr().out


def test_type_checking_imports_do_not_count(script, tmp_path):
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": (
                "from typing import TYPE_CHECKING\n\n"
                "if TYPE_CHECKING:\n    from pkg import a\n"
                "else:\n    import os\n"
            ),
        },
    )
    assert script.import_graph(package)["pkg.b"] == set()
    assert script.find_cycles(package) == []


def test_keras_adv_has_no_import_cycle(script):
    # Imports run one way, down the package map (ARCHITECTURE.md): a
    # function-local import is for a heavy optional dependency only.
    assert script.find_cycles() == []
