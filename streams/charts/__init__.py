"""Charts of a trial and of a patient: matplotlib (Agg, no pyplot state).

Each chart is a `draw_*` function that draws onto a given Axes, so the safety desk (inline
SVG, streams/http/desk) and the DMC report (PDF, streams/reports) share one drawing.
`style.py` holds the look (fonts, colours, the SVG and PNG export), `course.py` the patient
course and `panels.py` its panels, `survival.py` the Kaplan-Meier curves with numbers at
risk, `safety.py` the toxicity bars and the stopping boundary, `swimmer.py` every patient's
course on one chart. Charts hold numbers and fixed words only: ids and free text stay in
the HTML, where the templates escape them (the PDF's swimmer plot names patients: it is
no web page).
"""
