"""The contract's input events (CONTRACT section 1) as strict pydantic v2 models."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cartwatch.models.units import canonical_unit, check_unit, to_canonical

# RFC 3339 section 5.6 date-time: full date, T (or a space, as its note allows), full
# time with seconds, optional fraction, and a mandatory offset (Z or +hh:mm / -hh:mm, with
# hours 00-23 and minutes 00-59).
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
)


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 timestamp with offset (events, `--as-of`, `?as_of=`); ValueError if not."""
    if not _RFC3339.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an RFC 3339 timestamp with offset (e.g. 2025-02-07T14:00:00+01:00)"
        )
    try:
        moment = datetime.fromisoformat(text.upper())  # t and z too
    except ValueError as exc:  # 30 February, hour 24...
        raise ValueError(f"{text!r} is not a valid date and time: {exc}") from None
    if moment.year in (1, 9999):  # an offset can carry it past what a datetime holds in UTC
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ValueError(
                f"{text!r} is out of range: before 0001-01-01 or after 9999-12-31 in UTC"
            ) from None
    return moment


# The timestamps parsed last, by their text (`parse_timestamp` is a function of it alone):
# the labs of one draw share their time, about half of the simulated trials' timestamps
# repeat one just parsed. Emptied when full, so it stays small.
_PARSED: dict[str, datetime] = {}
_PARSED_MAX = 1024


def _rfc3339(value: object) -> object:
    if type(value) is str:  # a JSON string (and no str subclass with its own equality)
        moment = _PARSED.get(value)
        if moment is None:
            moment = parse_timestamp(value)  # aware: the pattern wants an offset
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[value] = moment
        return moment
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 timestamp string")
    return parse_timestamp(value)


# A plain validator: `parse_timestamp` returns an aware datetime already, so pydantic's own
# check of that datetime after it (a before validator's) only cost time: about 2 us of a
# timestamp's 4.5 here. The JSON schema stays that of an aware datetime.
Timestamp = Annotated[AwareDatetime, PlainValidator(_rfc3339, json_schema_input_type=AwareDatetime)]

EventId = Annotated[StrictStr, Field(min_length=1, max_length=128)]
ShortId = Annotated[StrictStr, Field(min_length=1, max_length=64)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Finite = Annotated[float, Field(allow_inf_nan=False)]

# The topic each type travels on, under the configurable prefix (CONTRACT section 1).
TOPIC_SUFFIX_BY_TYPE: dict[str, str] = {
    "infusion": "infusions",
    "lab": "labs",
    "adverse_event": "adverse-events",
    "observation": "observations",
    "disposition": "dispositions",
}


class Analyte(StrEnum):
    IL6 = "IL6"
    IFNG = "IFNG"
    CRP = "CRP"
    FERRITIN = "FERRITIN"
    LDH = "LDH"
    CREATININE = "CREATININE"
    ANC = "ANC"
    PLT = "PLT"
    BM_BLASTS = "BM_BLASTS"
    PB_BLASTS = "PB_BLASTS"
    MRD = "MRD"


# Each analyte's canonical unit (a StrEnum member hashes as its value).
_CANONICAL_UNIT: dict[str, str] = {analyte: canonical_unit(analyte) for analyte in Analyte}


class CommonFields(BaseModel):
    """Fields common to every event; unknown extra fields are ignored."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: EventId
    trial_id: ShortId
    patient_id: ShortId
    occurred_at: Timestamp


class Infusion(CommonFields):
    type: Literal["infusion"]
    product: StrictStr
    dose_cells_per_kg: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    lot: StrictStr | None = None


class Lab(CommonFields):
    """One lab result; `value` and `unit` are canonical after validation."""

    type: Literal["lab"]
    analyte: Analyte
    value: NonNegative
    unit: StrictStr
    loinc: StrictStr | None = None

    @field_validator("unit")
    @classmethod
    def _unit_is_accepted(cls, unit: str, info: ValidationInfo) -> str:
        analyte = info.data.get("analyte")  # absent when the analyte itself is invalid
        if analyte is not None and unit != _CANONICAL_UNIT[analyte]:  # most labs: canonical
            check_unit(analyte.value, unit)
        return unit

    @model_validator(mode="after")
    def _convert_to_canonical_unit(self) -> Lab:
        if self.unit == _CANONICAL_UNIT[self.analyte]:
            return self  # factor 1: nothing to convert, and the value is finite already
        value, unit = to_canonical(self.analyte.value, self.value, self.unit)
        if not math.isfinite(value):  # e.g. 1e308 mg/dL of CRP is infinite in mg/L
            raise ValueError(f"value: {self.value} {self.unit} is out of range in {unit}")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "unit", unit)
        return self


class AdverseEvent(CommonFields):
    type: Literal["adverse_event"]
    ae_id: Annotated[StrictStr, Field(min_length=1)]
    term: Annotated[StrictStr, Field(min_length=1)]
    grade: Annotated[StrictInt, Field(ge=1, le=5)]
    onset_at: Timestamp
    resolved_at: Timestamp | None = None
    status: Literal["reported", "entered_in_error"] = "reported"
    treatments: list[StrictStr] = Field(default_factory=list)


OxygenDevice = Literal[
    "room_air",
    "blow_by",
    "low_flow_cannula",
    "high_flow_cannula",
    "facemask",
    "nonrebreather",
    "venturi",
    "cpap",
    "bipap",
    "mechanical_ventilation",
]


class OxygenSupport(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    device: OxygenDevice
    flow_lpm: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class _Observation(CommonFields):
    type: Literal["observation"]


class Temperature(_Observation):
    code: Literal["temperature_c"]
    value: Finite


class SystolicBloodPressure(_Observation):
    code: Literal["systolic_bp_mmhg"]
    value: Finite


class Vasopressors(_Observation):
    code: Literal["vasopressors"]
    value: Annotated[StrictInt, Field(ge=0)]


class Oxygen(_Observation):
    code: Literal["oxygen"]
    value: OxygenSupport


class IceScore(_Observation):
    code: Literal["ice_score"]
    value: Annotated[StrictInt, Field(ge=0, le=10)]


class Consciousness(_Observation):
    code: Literal["consciousness"]
    value: Literal["awake", "awakens_to_voice", "awakens_to_touch", "unarousable"]


class Seizure(_Observation):
    code: Literal["seizure"]
    value: Literal["none", "self_limiting", "prolonged"]


class MotorWeakness(_Observation):
    code: Literal["motor_weakness"]
    value: StrictBool


class CerebralEdema(_Observation):
    code: Literal["cerebral_edema"]
    value: Literal["none", "focal", "diffuse"]


class AntiCytokineGiven(_Observation):
    code: Literal["anti_cytokine_given"]
    value: StrictBool


Observation = Annotated[
    Temperature
    | SystolicBloodPressure
    | Vasopressors
    | Oxygen
    | IceScore
    | Consciousness
    | Seizure
    | MotorWeakness
    | CerebralEdema
    | AntiCytokineGiven,
    Field(discriminator="code"),
]


class Disposition(CommonFields):
    type: Literal["disposition"]
    status: Literal["death", "withdrawn", "lost_to_follow_up"]
    cause: StrictStr | None = None


Event = Annotated[
    Infusion | Lab | AdverseEvent | Observation | Disposition,
    Field(discriminator="type"),
]
