"""The `multiworker` marker: long two-worker runs, selected explicitly.

Tests marked `multiworker` run only when the marker expression names the
marker (`pytest -m multiworker`, or `-m "not slow or multiworker"`); the
default suite (`-m "not slow"`) and `--slow` skip them.
"""

import pytest

MARKER = "multiworker"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"{MARKER}: two MultiWorkerMirroredStrategy worker processes on "
        "127.0.0.1 compared with a one-process run (about two minutes); "
        f"run with `pytest -m {MARKER}`.",
    )


def _selected(config):
    expression = config.getoption("markexpr", "") or ""
    return MARKER in expression and f"not {MARKER}" not in expression


def pytest_collection_modifyitems(config, items):
    if _selected(config):
        return
    skip = pytest.mark.skip(reason=f"long; run with `pytest -m {MARKER}`")
    for item in items:
        if MARKER in item.keywords:
            item.add_marker(skip)
