"""Audit: IHE BALP-shaped AuditEvents (builders.py) stored in the same transaction as what they
record, or durably before a read's response (recorder.py), and a client's own access log
(access_log.py). Audit never stores or logs personal data beyond references and codes.
"""
