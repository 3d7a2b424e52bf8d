"""fhir-plan-gateway: a FHIR R4 gateway for the client's coordinator, plan and network."""

__version__ = "0.1.0"
