"""The datasets written as CSV (UTF-8, one file a domain) or SAS transport version 5
(pyreadstat), with define.csv, the column dictionary, beside them.

CSV keeps every value whole: numbers as the shortest text that reads back as the same
float, an empty cell for a missing value. XPT v5 limits names to 8 characters (every
variable's is), labels to 40 and character values to 200 bytes: a longer value (a free-text
term, say) is cut at 200 bytes there, and the command says how many were cut.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Literal

from cartwatch.models.sdtm import VARIABLES, Datasets, define_rows
from cartwatch.models.sdtm.findings import number_text

XPT_WIDTH = 200  # bytes: SAS transport v5's longest character value
DEFINE = "define.csv"


def write_datasets(datasets: Datasets, out: Path, file_format: Literal["csv", "xpt"]) -> dict:
    """Write every domain and define.csv into `out` (made if missing); rows per domain, and
    under "clipped" the XPT values cut to 200 bytes."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    clipped = 0
    for domain, rows in datasets.tables.items():
        path = out / f"{domain.lower()}.{file_format}"
        if file_format == "csv":
            _write_csv(path, [v.name for v in VARIABLES[domain]], [_texts(domain, r) for r in rows])
        else:
            clipped += _write_xpt(path, domain, rows)
        written[domain] = len(rows)
    _write_csv(out / DEFINE, ["dataset", "variable", "label", "type", "codelist"], define_rows())
    if clipped:
        written["clipped"] = clipped
    return written


def _texts(domain: str, row: dict) -> dict[str, str]:
    out = {}
    for variable in VARIABLES[domain]:
        value = row[variable.name]
        if value is None:
            out[variable.name] = ""
        elif variable.type == "Num":
            out[variable.name] = str(value) if isinstance(value, int) else number_text(value)
        else:
            out[variable.name] = value
    return out


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _write_xpt(path: Path, domain: str, rows: list[dict]) -> int:
    """One SAS transport v5 file; the number of values cut to 200 bytes."""
    import pandas as pd
    import pyreadstat

    variables = VARIABLES[domain]
    columns: dict[str, list] = {}
    clipped = 0
    for v in variables:
        values = [row[v.name] for row in rows]
        if v.type == "Num":
            columns[v.name] = [math.nan if x is None else float(x) for x in values]
        else:
            cut = [_clip(x) for x in values]
            clipped += sum(c != x for c, x in zip(cut, values, strict=True))
            columns[v.name] = cut
    frame = pd.DataFrame(columns, columns=[v.name for v in variables])
    for v in variables:  # an empty domain still has typed columns
        frame[v.name] = frame[v.name].astype("float64" if v.type == "Num" else "object")
    pyreadstat.write_xport(
        frame,
        str(path),
        file_label=f"{domain} {datasets_label(domain)}"[:40],
        column_labels=[v.label for v in variables],
        table_name=domain,
        file_format_version=5,
    )
    return clipped


def _clip(value: str) -> str:
    data = value.encode("utf-8")
    if len(data) <= XPT_WIDTH:
        return value
    return data[:XPT_WIDTH].decode("utf-8", errors="ignore")


def datasets_label(domain: str) -> str:
    """The dataset's label (SDTM IG)."""
    return {
        "DM": "Demographics",
        "EX": "Exposure",
        "LB": "Laboratory Test Results",
        "AE": "Adverse Events",
        "RS": "Disease Response",
        "DS": "Disposition",
    }[domain]
