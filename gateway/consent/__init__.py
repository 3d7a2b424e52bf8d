"""Consent: who may see which of a client's records (the disclosure gate's decision service).

`decisions` holds the pure rules (no I/O, time is an argument); `hooks` the named hook points the
REST paths, delivery and rendering call (start_operation, can_see, will_see) and the per-request
`ConsentContext` that loads Patients and Consents once per page. See DESIGN.md, "The domain in
FHIR", and STYLE.md habit 8.
"""
