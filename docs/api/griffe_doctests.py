"""Griffe extension: renders the docstrings' doctests as code blocks.

keras_adv docstrings write their examples unindented after `Example:`:

    Example:

    >>> import keras_adv
    >>> ...

That is what `doctest` wants, but to Markdown `>>>` is a nested block
quote and `['x']` a link. This extension wraps every such run of doctest
lines (from a `>>>` line to the next blank line) in a ```` ```pycon ````
fence before the Google parser sees the docstring. Static: it only edits
the docstring text griffe read from the source. Used by `mkdocs.yml`.
"""

import griffe

FENCE = "```"


def fence_doctests(text):
    """Returns `text` with each unindented doctest run in a pycon fence."""
    out = []
    in_fence = in_doctest = False
    for line in text.splitlines():
        if in_doctest and not line.strip():
            out.append(FENCE)
            in_doctest = False
        elif not in_doctest and line.lstrip().startswith(FENCE):
            in_fence = not in_fence
        elif not in_fence and not in_doctest and line.startswith(">>>"):
            out.append(FENCE + "pycon")
            in_doctest = True
        out.append(line)
    if in_doctest:
        out.append(FENCE)
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
