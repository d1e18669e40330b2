"""The desk's charts: matplotlib (Agg, no pyplot state) rendered to inline SVG strings.

`style.py` holds the look (fonts, colours, the SVG export), `course.py` the patient course
and `panels.py` its panels, `survival.py` the Kaplan-Meier curves with numbers at risk,
`safety.py` the toxicity bars and the stopping boundary. Charts hold numbers and fixed
words only: ids and free text stay in the HTML, where the templates escape them.
"""
