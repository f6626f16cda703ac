"""The Getting started page runs as written (slow: about a minute).

Every `python` block of `docs/getting_started.md` runs, in order, in one
namespace, in a temporary directory; the page's `keras-adv` command runs
through the CLI's `main` on the model the page saved.
"""

import re
import shlex
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "getting_started.md"


def blocks(language):
    text = PAGE.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_the_page_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks("python"):
        exec(compile(block, str(PAGE), "exec"), namespace)
    assert (tmp_path / "robust.keras").exists()
    assert 0.0 <= namespace["report"].worst_case(0.3) <= 1.0

    from keras_adv.cli import main

    commands = [
        line
        for block in blocks("bash")
        for line in block.splitlines()
        if line.startswith("keras-adv ")
    ]
    assert commands
    for command in commands:
        assert main(shlex.split(command)[1:]) in (0, None)
