"""`cartwatch export` on the simulated demo trial: every dataset reads back as written (CSV
with pandas, XPT with pyreadstat); lifelines on the exported datasets gives the report's
median DOR and follow-up; USUBJID is unique across trials; every LB row's standard result
is the contract's conversion of the result as sent."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from lifelines import KaplanMeierFitter

from cartwatch.models.cohort import DAYS_PER_MONTH, cohort_reports
from cartwatch.models.sdtm import VARIABLES, trial_datasets
from cartwatch.streams.cli.main import main
from cartwatch.streams.devtools.simulator import simulate_trial
from tests.unit.demo_trial import demo_replay, demo_trial

AS_OF = "2026-01-31T00:00:00Z"
TRIAL = "CART19-ALL-01"
# CONTRACT 1's table, written out again here: (canonical unit, {accepted unit: factor}).
CONTRACT_UNITS = {
    "IL6": ("pg/mL", {"ng/L": 1.0}),
    "IFNG": ("pg/mL", {"ng/L": 1.0}),
    "CRP": ("mg/L", {"mg/dL": 10.0}),
    "FERRITIN": ("ng/mL", {"ug/L": 1.0, "µg/L": 1.0, "μg/L": 1.0}),  # μ: DECISIONS.md
    "LDH": ("U/L", {}),
    "CREAT": ("mg/dL", {"umol/L": 1 / 88.42, "µmol/L": 1 / 88.42, "μmol/L": 1 / 88.42}),
    "NEUT": ("10^9/L", {"10^3/uL": 1.0, "K/uL": 1.0}),
    "PLAT": ("10^9/L", {"10^3/uL": 1.0, "K/uL": 1.0}),
    "BLASTS": ("%", {}),
    "MRD": ("%", {}),
}


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "events.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in demo_trial().lines()))
    return path


@cache
def _written_rows() -> dict[str, list[dict]]:
    replayed = demo_replay()
    cut = demo_trial().data_cut.timestamp()
    datasets = trial_datasets(TRIAL, replayed.records.values(), cut, replayed.events)
    assert datasets is not None
    return datasets.tables


def _export(events: Path, out: Path, file_format: str, trial: str = TRIAL) -> Path:
    argv = ["export", trial, "--as-of", AS_OF, "--format", file_format, "--out", str(out)]
    assert main([*argv, "--events", str(events)]) == 0
    return out


def _read(out: Path, domain: str, file_format: str) -> pd.DataFrame:
    path = out / f"{domain.lower()}.{file_format}"
    if file_format == "xpt":
        frame, meta = pyreadstat.read_xport(str(path))
        assert meta.table_name == domain
        assert meta.column_labels == [v.label for v in VARIABLES[domain]]
        return frame
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _same(read: object, written: object, numeric: bool) -> bool:
    if numeric:
        missing = read in ("", None) or (isinstance(read, float) and math.isnan(read))
        return written is None if missing else float(read) == float(written)  # type: ignore[arg-type]
    return read == written


@pytest.mark.parametrize("file_format", ["csv", "xpt"])
def test_every_dataset_reads_back_as_written(events: Path, tmp_path: Path, file_format: str):
    out = _export(events, tmp_path / file_format, file_format)
    for domain, rows in _written_rows().items():
        frame = _read(out, domain, file_format)
        variables = VARIABLES[domain]
        assert list(frame.columns) == [v.name for v in variables]
        assert len(frame) == len(rows)
        for read, written in zip(frame.to_dict("records"), rows, strict=True):
            for v in variables:
                assert _same(read[v.name], written[v.name], v.type == "Num"), (domain, v.name)
    define = pd.read_csv(out / "define.csv", dtype=str, keep_default_na=False)
    assert list(define.columns) == ["dataset", "variable", "label", "type", "codelist"]
    assert len(define) == sum(len(v) for v in VARIABLES.values())
    assert (define["variable"].str.len() <= 8).all() and (define["label"].str.len() <= 40).all()


def _instant(dtc: str) -> float:
    return datetime.fromisoformat(dtc).replace(tzinfo=UTC).timestamp()


def _months(start: str, end: str) -> float:
    return (_instant(end) - _instant(start)) / 86400 / DAYS_PER_MONTH


def test_lifelines_on_the_exported_datasets_gives_the_reports_medians(events: Path, tmp_path: Path):
    out = _export(events, tmp_path / "xpt", "xpt")
    dm, rs, ds, lb = (_read(out, d, "xpt") for d in ("DM", "RS", "DS", "LB"))
    (report,) = cohort_reports(demo_replay().records.values(), demo_trial().data_cut.timestamp())
    infused = dm[dm["RFXSTDTC"] != ""]
    dor, dor_events = [], []
    for usubjid, responses in rs.groupby("USUBJID"):
        onset = responses[responses["RSORRES"].isin(["CR", "CRi"])]["RSDTC"].min()
        ends = list(responses[responses["RSORRES"] == "RELAPSE"]["RSDTC"])
        ends += list(ds[(ds["USUBJID"] == usubjid) & (ds["DSDECOD"] == "DEATH")]["DSSTDTC"])
        if ends:
            dor.append(_months(onset, min(ends)))
            dor_events.append(True)
        else:  # censored at the last blasts assessment (marrow or blood) from onset on
            mine = lb[(lb["USUBJID"] == usubjid) & (lb["LBTESTCD"] == "BLASTS")]
            dor.append(_months(onset, mine[mine["LBDTC"] >= onset]["LBDTC"].max()))
            dor_events.append(False)
    follow_up, ended_otherwise = [], []
    for _, patient in infused.iterrows():
        follow_up.append(_months(patient["RFXSTDTC"], patient["RFPENDTC"]))
        mine = ds[ds["USUBJID"] == patient["USUBJID"]].sort_values(["DSSTDTC", "DSDECOD"])
        ended_otherwise.append(mine.empty or mine.iloc[0]["DSDECOD"] != "DEATH")
    efficacy = report["efficacy"]
    assert len(dor) == efficacy["remission"]["n"] and len(follow_up) == report["n_infused"]
    km = KaplanMeierFitter().fit(dor, dor_events)
    assert km.median_survival_time_ == pytest.approx(efficacy["median_dor_months"], abs=1e-9)
    reverse = KaplanMeierFitter().fit(follow_up, ended_otherwise)
    assert reverse.median_survival_time_ == pytest.approx(
        efficacy["median_follow_up_months"], abs=1e-9
    )
    assert round(efficacy["median_dor_months"], 1) == 17.8
    assert round(efficacy["median_follow_up_months"], 1) == 12.9


def test_every_lab_rows_standard_result_is_the_contracts_conversion_of_the_result_as_sent(
    events: Path, tmp_path: Path
):
    lb = _read(_export(events, tmp_path / "csv", "csv"), "LB", "csv")
    assert set(lb["LBORRESU"]) - {c for c, _ in CONTRACT_UNITS.values()}  # converted units
    for row in lb.to_dict("records"):
        canonical, equivalents = CONTRACT_UNITS[row["LBTESTCD"]]
        factor = 1.0 if row["LBORRESU"] == canonical else equivalents[row["LBORRESU"]]
        assert row["LBSTRESU"] == canonical
        assert float(row["LBSTRESN"]) == pytest.approx(float(row["LBORRES"]) * factor, rel=1e-12)
        assert float(row["LBSTRESC"]) == float(row["LBSTRESN"])


def test_usubjid_is_unique_per_patient_across_two_trials(tmp_path: Path):
    both = tmp_path / "two-trials.jsonl"
    with both.open("wb") as fh:
        for trial in ("TRIAL-A", "TRIAL-B"):  # the same seed: the same patient ids
            fh.writelines(line + b"\n" for line in simulate_trial(seed=5, trial_id=trial).lines())
    seen: dict[str, tuple[str, str]] = {}
    for trial in ("TRIAL-A", "TRIAL-B"):
        dm = _read(_export(both, tmp_path / trial, "csv", trial), "DM", "csv")
        assert set(dm["STUDYID"]) == {trial}
        for row in dm.to_dict("records"):
            assert row["USUBJID"] not in seen
            seen[row["USUBJID"]] = (trial, row["SUBJID"])
    subjects = [subject for _, subject in seen.values()]
    assert len(seen) == len(subjects) and len(set(subjects)) == len(subjects) // 2
