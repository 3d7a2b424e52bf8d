"""Tests of adapters/partner_fhir."""
