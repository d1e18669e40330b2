"""Unit-test set-up: the pure core only (no broker, no database, no network)."""

from __future__ import annotations

import sys
from pathlib import Path

# The tests import `tests.unit.builders`, and `models`/`alerts` even when the project is
# not installed in the venv (`make` installs it; the editable install does not expose
# `tests`), so the repository root goes first on the path.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
