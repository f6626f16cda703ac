"""Prints the import cycles among the modules of keras_adv.

Usage: `python scripts/import_cycles.py [--package DIR]`.

Every module of the package is parsed with `ast` (nothing is imported) and
every `import` statement counts, function-local ones included:
`import keras_adv.a.b` is an edge to `keras_adv.a.b`; `from keras_adv.a
import name` is an edge to the module `keras_adv.a.name` when there is one,
else to `keras_adv.a` (a submodule's parent packages are not counted:
Python imports them first whichever form the import takes, and counting
them would make every import inside a package a cycle through its
`__init__`); relative imports are resolved the same way. Imports
made from strings (`importlib.import_module(...)`) are not seen, and
imports under `if TYPE_CHECKING:` do not count (they never run).

A cycle is a strongly connected component of more than one module: each is
printed with its size, its members and one example cycle through it. The
exit status is 1 when there is a cycle, 0 otherwise.
"""

import argparse
import ast
import collections
import sys
import textwrap
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "keras_adv"


def module_files(package_dir):
    """`{dotted module name: path}` of every `.py` file under the package."""
    package_dir = Path(package_dir)
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node, name, is_package, modules):
    """The modules of `modules` that one import statement `node` loads."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:  # relative: from the module's own package upwards
        package = name if is_package else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{node.module}" if node.module else package
    else:
        base = node.module
    targets = set()
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            targets.add(f"{base}.{alias.name}")
        elif base in modules:
            targets.add(base)
    return targets


def _is_type_checking(test):
    """True for `TYPE_CHECKING` and `typing.TYPE_CHECKING`."""
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _runtime_nodes(tree):
    """Every node of `tree` except the bodies of `if TYPE_CHECKING:`.

    Imports for type annotations only never run, so they make no cycle.
    """
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
                continue
            stack.append(child)


def import_graph(package_dir=PACKAGE):
    """`{module: set of modules of the package it imports}`."""
    modules = module_files(package_dir)
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in _runtime_nodes(tree):  # every depth: local ones too
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name] |= _imported(node, name, is_package, modules)
        graph[name].discard(name)
    return graph


def strongly_connected_components(graph):
    """Tarjan's algorithm, iterative; components in discovery order."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def example_cycle(graph, component):
    """A shortest cycle through the component's first module (a path)."""
    start, members = component[0], set(component)
    previous = {start: None}
    queue = collections.deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return [start] + path[::-1][1:] + [start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise ValueError(f"no cycle through {start}")


def find_cycles(package_dir=PACKAGE):
    """`[(members, example cycle)]` for every component of > 1 module."""
    graph = import_graph(package_dir)
    return [
        (component, example_cycle(graph, component))
        for component in strongly_connected_components(graph)
        if len(component) > 1
    ]


def _wrap(text, first, rest):
    return textwrap.fill(
        text,
        79,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--package",
        default=str(PACKAGE),
        help="the package directory (default: keras_adv next to scripts/)",
    )
    args = parser.parse_args(argv)
    cycles = find_cycles(args.package)
    if not cycles:
        count = len(module_files(args.package))
        print(f"No import cycle among the {count} modules.")
        return 0
    print(f"{len(cycles)} import cycle(s):")
    for members, path in sorted(cycles, key=lambda c: -len(c[0])):
        print(f"\n{len(members)} modules:")
        print(_wrap(", ".join(members), "  ", "  "))
        print(_wrap(" -> ".join(path), "  e.g. ", "    "))
    return 1


if __name__ == "__main__":
    sys.exit(main())
