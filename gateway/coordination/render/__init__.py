"""Rendering of the client-readable plan (issue 4, workflow 8): FHIR resources → a view model
(build.py) → HTML (html.py, Jinja2), the network picture (svg.py) and PDF (pdf.py).

Nothing here reads storage or decides visibility: gateway/coordination/client_plan.py gathers
what the caller may see and hands it over.
"""
