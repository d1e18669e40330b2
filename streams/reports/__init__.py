"""The data monitoring committee's report (PDF) and the statisticians' datasets (SDTM-shaped
CSV and SAS transport) of one trial as of a data cut.

- `sources.py`: the trial's records and alerts, from the database or a replayed events file;
- `pdf.py`: the PDF document (reportlab), its cover and footer; `pdf_sections.py` its
  sections, `pdf_figures.py` the charts drawn into it (streams/charts), `pdf_style.py` its look;
- `datasets.py`: the datasets written as CSV or XPT, with their column dictionary.

The figures come from `cartwatch.models.dmc` and the datasets from `cartwatch.models.sdtm`:
this room only reads, draws and writes.
"""
