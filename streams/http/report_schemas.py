"""The trial report of CONTRACT 5 as pydantic models, field for field (models/cohort.py
builds it). Rates and medians are plain floats; a rate over zero patients is null."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Part(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Count(Part):
    n: int = Field(ge=0)


class CountAndRate(Part):
    n: int = Field(ge=0)
    rate: float | None = Field(description="n / n_infused; null when nobody was infused")


class Remission(CountAndRate):
    ci95: tuple[float, float] | None = Field(description="exact (Clopper-Pearson) 95% interval")


class InRemission(Part):
    n: int = Field(ge=0)
    fraction_of_remission: float | None = Field(description="of the patients with a remission")


class Efficacy(Part):
    remission: Remission
    cr: CountAndRate
    cri: CountAndRate
    mrd_negative: Count
    in_remission: InRemission
    relapsed: Count
    median_dor_months: float | None = Field(description="Kaplan-Meier; null: not reached")
    median_follow_up_months: float | None = Field(description="reverse Kaplan-Meier")


class ByGrade(Part):
    """Patients by worst grade, 1 to 5."""

    grade1: int = Field(alias="1")
    grade2: int = Field(alias="2")
    grade3: int = Field(alias="3")
    grade4: int = Field(alias="4")
    grade5: int = Field(alias="5")


class ToxicitySummary(Part):
    any_grade: CountAndRate = Field(alias="any")
    grade3plus: CountAndRate
    by_grade: ByGrade
    median_onset_day: float | None
    median_duration_days: float | None


class Safety(Part):
    crs: ToxicitySummary
    icans: ToxicitySummary
    deaths: Count


class TrialReport(Part):
    """One trial's report (CONTRACT 5), as of the request's `as_of`."""

    trial_id: str
    n_infused: int = Field(ge=0)
    efficacy: Efficacy
    safety: Safety
