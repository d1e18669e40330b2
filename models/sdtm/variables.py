"""The datasets' variables: SDTM names (<= 8 characters), labels (<= 40), types and
codelists, in column order; `define_rows` is the column dictionary (define.csv).

The contract's events carry no site, sex, age, race, country or arm: DM holds the
reference dates and death only. Where a variable is not in the SDTM IG its label says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["Char", "Num"]


@dataclass(frozen=True, slots=True)
class Variable:
    """One column of a dataset."""

    name: str
    label: str
    type: Kind
    codelist: str = ""


def _v(name: str, label: str, kind: Kind = "Char", codelist: str = "") -> Variable:
    return Variable(name, label, kind, codelist)


def _identifiers(domain: str) -> list[Variable]:
    return [
        _v("STUDYID", "Study Identifier"),
        _v("DOMAIN", "Domain Abbreviation", codelist=domain),
        _v("USUBJID", "Unique Subject Identifier", codelist="STUDYID-SUBJID"),
    ]


def _seq(domain: str) -> Variable:
    return _v(f"{domain}SEQ", "Sequence Number", "Num")


VARIABLES: dict[str, list[Variable]] = {
    "DM": [
        *_identifiers("DM"),
        _v("SUBJID", "Subject Identifier for the Study"),
        _v("RFSTDTC", "Subject Reference Start Date/Time"),
        _v("RFENDTC", "Subject Reference End Date/Time"),
        _v("RFXSTDTC", "Date/Time of First Study Treatment"),
        _v("RFXENDTC", "Date/Time of Last Study Treatment"),
        _v("RFPENDTC", "Date/Time of End of Participation"),
        _v("DTHDTC", "Date/Time of Death"),
        _v("DTHFL", "Subject Death Flag", codelist="Y"),
    ],
    "EX": [
        *_identifiers("EX"),
        _seq("EX"),
        _v("EXTRT", "Name of Treatment"),
        _v("EXDOSE", "Dose", "Num"),
        _v("EXDOSU", "Dose Units", codelist="cells/kg"),
        _v("EXROUTE", "Route of Administration", codelist="INTRAVENOUS"),
        _v("EXLOT", "Lot Number"),
        _v("EXSTDTC", "Start Date/Time of Treatment"),
        _v("EXENDTC", "End Date/Time of Treatment"),
        _v("EXSTDY", "Study Day of Start of Treatment", "Num"),
        _v("EXENDY", "Study Day of End of Treatment", "Num"),
    ],
    "LB": [
        *_identifiers("LB"),
        _seq("LB"),
        _v("LBTESTCD", "Lab Test or Examination Short Name",
           codelist="IL6; IFNG; CRP; FERRITIN; LDH; CREAT; NEUT; PLAT; BLASTS; MRD"),
        _v("LBTEST", "Lab Test or Examination Name"),
        _v("LBSPEC", "Specimen Type", codelist="BONE MARROW; BLOOD"),
        _v("LBMETHOD", "Method of Test or Examination", codelist="FLOW CYTOMETRY"),
        _v("LBLOINC", "LOINC Code"),
        _v("LBORRES", "Result or Finding in Original Units"),
        _v("LBORRESU", "Original Units"),
        _v("LBSTRESC", "Character Result/Finding in Std Format"),
        _v("LBSTRESN", "Numeric Result/Finding in Standard Units", "Num"),
        _v("LBSTRESU", "Standard Units",
           codelist="pg/mL; mg/L; ng/mL; U/L; mg/dL; 10^9/L; %"),
        _v("LBDTC", "Date/Time of Specimen Collection"),
        _v("LBDY", "Study Day of Specimen Collection", "Num"),
    ],
    "AE": [
        *_identifiers("AE"),
        _seq("AE"),
        _v("AESPID", "Sponsor-Defined Identifier", codelist="the event's ae_id"),
        _v("AETERM", "Reported Term for the Adverse Event"),
        _v("AEDECOD", "Dictionary-Derived Term"),
        _v("AETOXGR", "Standard Toxicity Grade", codelist="1; 2; 3; 4; 5"),
        _v("AESTDTC", "Start Date/Time of Adverse Event"),
        _v("AEENDTC", "End Date/Time of Adverse Event"),
        _v("AESTDY", "Study Day of Start of Adverse Event", "Num"),
        _v("AEENDY", "Study Day of End of Adverse Event", "Num"),
        _v("AETRTEM", "Onset On/After First Infusion (not IG)", codelist="Y; N"),
    ],
    "RS": [
        *_identifiers("RS"),
        _seq("RS"),
        _v("RSTESTCD", "Assessment Short Name", codelist="OVRLRESP"),
        _v("RSTEST", "Assessment Name", codelist="Overall Response"),
        _v("RSORRES", "Result or Finding in Original Units", codelist="CR; CRi; RELAPSE"),
        _v("RSSTRESC", "Character Result/Finding in Std Format", codelist="CR; CRi; RELAPSE"),
        _v("RSDTC", "Date/Time of Assessment"),
        _v("RSDY", "Study Day of Assessment", "Num"),
    ],
    "DS": [
        *_identifiers("DS"),
        _seq("DS"),
        _v("DSTERM", "Reported Term for the Disposition Event",
           codelist="death; withdrawn; lost_to_follow_up"),
        _v("DSDECOD", "Standardized Disposition Term",
           codelist="DEATH; WITHDRAWAL BY SUBJECT; LOST TO FOLLOW-UP"),
        _v("DSCAT", "Category for Disposition Event", codelist="DISPOSITION EVENT"),
        _v("DSSTDTC", "Start Date/Time of Disposition Event"),
        _v("DSSTDY", "Study Day of Start of Disposition Event", "Num"),
    ],
}  # fmt: skip


def define_rows() -> list[dict[str, str]]:
    """The column dictionary: dataset, variable, label, type, codelist."""
    return [
        {"dataset": domain, "variable": v.name, "label": v.label, "type": v.type,
         "codelist": v.codelist}
        for domain, variables in VARIABLES.items()
        for v in variables
    ]  # fmt: skip
