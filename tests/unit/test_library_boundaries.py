"""cartwatch uses Faust, mode and aiokafka through their public API only: no method of
theirs replaced at class level, no private attribute of theirs read or written.

Read from the source (ast): an attribute set on a name imported from those libraries, a
`setattr` on one, `obj._name` on anything but `self`/`cls` (or a name imported from
another library), and, in a class derived from one of their classes, `self._name` that the
class does not set itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("faust", "mode", "aiokafka")
SOURCES = sorted(p for room in ("streams", "models", "alerts") for p in (ROOT / room).rglob("*.py"))


def _is_library(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in LIBRARIES


def _imported_names(tree: ast.Module, library: bool) -> set[str]:
    """Names bound by imports from the libraries (`library`) or from any other module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_library(node.module) == library:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0]
                for alias in node.names
                if _is_library(alias.name) == library
            }
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    library = _imported_names(tree, library=True)
    others = _imported_names(tree, library=False)  # argparse._SubParsersAction is not ours to judge
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute) and _root_name(target) in library:
                found.append(f"line {node.lineno}: sets {ast.unparse(target)}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and node.args
            and _root_name(node.args[0]) in library
        ):
            found.append(f"line {node.lineno}: setattr on {ast.unparse(node.args[0])}")
        if isinstance(node, ast.Attribute) and _private(node.attr):
            base = node.value
            if not (isinstance(base, ast.Name) and base.id in ("self", "cls")) and (
                _root_name(base) not in others
            ):
                found.append(f"line {node.lineno}: reads {ast.unparse(node)}")
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        if not any(_root_name(base) in library for base in cls.bases):
            continue
        own = {
            t.attr
            for n in ast.walk(cls)
            if isinstance(n, ast.Assign | ast.AnnAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
        }
        own |= {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for n in ast.walk(cls):
            if (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "self"
                and _private(n.attr)
                and n.attr not in own
            ):
                found.append(f"line {n.lineno}: {cls.name} uses its base's self.{n.attr}")
    return found


def test_no_library_method_is_replaced_and_no_private_attribute_is_used():
    found = {
        str(path.relative_to(ROOT)): v
        for path in SOURCES
        if (v := violations(path.read_text(encoding="utf-8")))
    }
    assert found == {}


def test_the_check_finds_each_kind_of_breach():
    source = """
from faust.transport.consumer import Consumer
import aiokafka
from faust.stores import memory

Consumer.getmany = lambda self: None
aiokafka.AIOKafkaConsumer.seek = None
setattr(Consumer, "perform_seek", None)

def peek(consumer):
    return consumer._committed_offset

class Store(memory.Store):
    def __init__(self):
        self._mine = {}

    def use(self):
        return self._mine, self._key_partition
"""
    found = violations(source)
    assert [line.split(":")[0] for line in found] == [
        "line 6",
        "line 7",
        "line 8",
        "line 11",
        "line 18",
    ]
    assert "Consumer.getmany" in found[0] and "_key_partition" in found[4]
    assert violations("class Mine:\n    def f(self):\n        return self._x\n") == []
