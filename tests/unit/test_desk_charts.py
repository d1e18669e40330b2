"""The desk's charts draw for sparse and for full data, as SVG that scales and holds no id."""

from __future__ import annotations

from cartwatch.models.course import patient_course
from cartwatch.models.dlt import boundary_report
from cartwatch.models.stopping import StoppingConfig
from cartwatch.streams.charts.course import course_chart
from cartwatch.streams.charts.panels import AlertMark
from cartwatch.streams.charts.safety import boundary_chart, grade_bars
from cartwatch.streams.charts.survival import km_chart
from tests.unit.builders import at, crs, epoch, infusion, lab, observation, record_of


def test_a_course_with_nothing_but_the_infusion_draws_empty_panels():
    record = record_of(infusion(at(0), patient="<P1>"))
    svg = course_chart(patient_course(record, epoch(at(2))), [])
    assert svg.startswith("<svg") and 'class="chart"' in svg and "viewBox" in svg
    assert "no temperature recorded" in svg and "<P1>" not in svg


def test_a_full_course_draws_every_series_and_the_alerts():
    record = record_of(
        lab("IL6", 3, at(-2)),
        infusion(at(0)),
        observation("temperature_c", 39.4, at(1)),
        observation("systolic_bp_mmhg", 82, at(1.2)),
        observation("vasopressors", 1, at(1.3)),
        observation("oxygen", {"device": "bipap", "flow_lpm": None}, at(1.4)),
        observation("ice_score", 4, at(3)),
        lab("IL6", 900, at(1)),
        crs(3, at(1)),
    )
    alerts = [AlertMark(1.0, "critical", "crs_grade", 3), AlertMark(3.0, "warning", "icans", 2)]
    svg = course_chart(patient_course(record, epoch(at(10))), alerts)
    for words in (
        "BiPAP",
        "shaded: on vasopressors",
        "IL-6 pg/mL",
        "CRS reported",
        "critical alert",
    ):
        assert words in svg, words


def test_trial_charts_draw_with_and_without_events():
    assert "nobody to count yet" in km_chart(
        [], [], colour="#000", ylabel="y", median=None, label="e"
    )
    survival = km_chart([1, 4, 9, 12], [True, False, True, False], colour="#000", ylabel="y",
                        median=9.0, label="four")  # fmt: skip
    assert "median 9.0 mo" in survival
    assert "grade 5" in grade_bars({"1": 3}, {})
    boundary = boundary_report([], StoppingConfig(), None)
    assert "0 DLT in 0 evaluable" in boundary_chart(boundary)


def test_the_swimmer_plot_draws_a_lane_per_patient_onto_the_figure_it_is_given():
    from cartwatch.models.swimmer import swimmer_lanes
    from cartwatch.streams.charts.style import new_figure
    from cartwatch.streams.charts.swimmer import draw_swimmer
    from tests.unit.builders import crs, disposition, marrow_blasts, records_of

    records = records_of([
        infusion(at(0), patient="P1"), crs(3, at(2), patient="P1", resolved=at(8)),
        marrow_blasts(1.0, at(28), patient="P1"), infusion(at(5), patient="P2"),
        disposition("death", at(40), patient="P2"),
    ])  # fmt: skip
    figure = new_figure(7, 3)
    draw_swimmer(figure, swimmer_lanes(records, epoch(at(100))))
    early, course = figure.axes
    lanes = [t.get_text() for t in early.get_yticklabels()]
    assert lanes == ["P2", "P1"]  # longest follow-up first: 35 days against 28
    assert len(course.patches) == 2  # one bar a patient
