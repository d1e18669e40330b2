"""The tree a newcomer enters: the shell's rooms, and modules small or saying why not."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = {"worker", "kafka", "http", "storage", "cli", "devtools", "charts", "reports"}
LONG = 400  # lines; STYLE.md: a file past ~400 lines asks to be split along a seam


def test_the_shell_holds_only_its_rooms():
    top = {p.name for p in (ROOT / "streams").iterdir() if p.name != "__pycache__"}
    assert top == ROOMS | {"__init__.py", "__main__.py"}


def test_a_module_over_400_lines_says_why_in_its_docstring():
    unexplained = []
    for top in ("streams", "models", "alerts", "tests"):
        for path in (ROOT / top).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") > LONG:
                docstring = ast.get_docstring(ast.parse(text)) or ""
                if "over 400 lines" not in docstring:
                    unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []


def test_the_domain_imports_no_shell():
    """models/ and alerts/ (but its sinks) import nothing of Kafka, Faust, the database,
    Prometheus or the shell (STYLE.md 1)."""
    shell = ("faust", "aiokafka", "kafka", "sqlalchemy", "prometheus_client", "cartwatch.streams")
    offenders = []
    for path in [*(ROOT / "models").rglob("*.py"), *(ROOT / "alerts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in shell[:5]]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(shell[5])]
    assert offenders == []
