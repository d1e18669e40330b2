"""`cartwatch report` and `cartwatch export` refuse what the user can fix in one line, exit 1:
an unknown trial, a bad --as-of, a cut before the trial's data; an empty domain still
writes a typed XPT file."""

from __future__ import annotations

from pathlib import Path

import pyreadstat
import pytest

from cartwatch.models.sdtm import VARIABLES, trial_datasets
from cartwatch.streams.cli.main import main
from cartwatch.streams.reports.datasets import write_datasets
from tests.unit.builders import at, epoch, infusion, records_of

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "events.jsonl"
AS_OF = "2026-12-31T00:00:00Z"


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def _commands(tmp_path: Path) -> list[list[str]]:
    return [
        ["report", "--out", str(tmp_path / "r.pdf")],
        ["export", "--format", "csv", "--out", str(tmp_path / "d")],
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_an_unknown_trial_is_one_line_and_exit_1(capsys, tmp_path: Path, which: int):
    command, *options = _commands(tmp_path)[which]
    code, err = _run(capsys, command, "NOPE", "--as-of", AS_OF, *options, "--events", str(EXAMPLE))
    assert (code, err) == (
        1,
        f"cartwatch {command}: error: no patient of trial 'NOPE' in {EXAMPLE} by the cut\n",
    )


@pytest.mark.parametrize("which", [0, 1])
def test_a_bad_as_of_is_one_line_and_exit_1(capsys, tmp_path: Path, which: int):
    command, *options = _commands(tmp_path)[which]
    code, err = _run(capsys, command, "CART19-ALL-01", "--as-of", "2026-12-31", *options,
                     "--events", str(EXAMPLE))  # fmt: skip
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"cartwatch {command}: error: --as-of: '2026-12-31' is not an RFC 3339")


def test_a_cut_before_the_trials_data_is_one_line_and_exit_1(capsys, tmp_path: Path):
    code, err = _run(capsys, "report", "CART19-ALL-01", "--as-of", "2000-01-01T00:00:00Z",
                     "--out", str(tmp_path / "r.pdf"), "--events", str(EXAMPLE))  # fmt: skip
    assert (code, err.count("\n")) == (1, 1) and "no patient of trial" in err
    assert not (tmp_path / "r.pdf").exists()


def test_an_unknown_trial_in_the_database_is_one_line_and_exit_1(capsys, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cartwatch.db'}"
    assert main(["db", "upgrade", "--database-url", url]) == 0
    capsys.readouterr()
    code, err = _run(capsys, "export", "NOPE", "--as-of", AS_OF, "--format", "xpt",
                     "--out", str(tmp_path / "d"), "--database-url", url)  # fmt: skip
    assert (code, err) == (
        1,
        "cartwatch export: error: no patient of trial 'NOPE' in the database\n",
    )


def test_an_empty_domain_still_writes_a_typed_xpt_file(tmp_path: Path):
    datasets = trial_datasets("T1", records_of([infusion(at(0))]), epoch(at(1)))
    assert datasets is not None and datasets.tables["DS"] == []
    assert write_datasets(datasets, tmp_path, "xpt")["DS"] == 0
    frame, _ = pyreadstat.read_xport(str(tmp_path / "ds.xpt"))
    assert list(frame.columns) == [v.name for v in VARIABLES["DS"]] and len(frame) == 0
