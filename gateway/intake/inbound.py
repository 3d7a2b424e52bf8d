"""What an HL7 v2 event handler is given and what it gives back (the contract between the intake
pipeline, gateway/intake/hl7v2.py, and each event's handler). Types only: a handler module imports
this, never the pipeline, so the dispatch table (events.py) can import every handler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.hl7v2.message import Message
    from adapters.ids import Ids
    from gateway.fhir_api.context import FhirRequest, Services
    from gateway.security.registry import Organisation
    from gateway.storage.base import Session


@dataclass(frozen=True)
class Inbound:
    """One accepted message: its sender is a registered organisation (MSH-3/MSH-4), `req` acts
    as that organisation (caller from its registration, its own disclosure gate and audit)."""

    svc: Services
    req: FhirRequest
    message: Message
    sender: Organisation
    ids: Ids


@dataclass
class Writes:
    """What a handler wants written, applied by the pipeline as ONE transaction of the sender
    together with the message-log row: `entries` are Bundle.entry items (as
    gateway.coordination.common.apply takes them); `authority` names the domain rule the handler
    checked (the generic write rules are then skipped: it adds its own Provenance); `also` runs
    extra SQL in the same session after the entries. No entries: a no-op, still logged."""

    entries: list[dict[str, Any]]
    authority: str | None = None
    also: Callable[[Session], None] | None = None


# Raises adapters.hl7v2.errors.Hl7Error (-> AE naming segment/field; AR for "unsupported-event")
# or gateway.errors.FhirError (-> AE; AR when busy); never anything else on purpose.
Handler = Callable[[Inbound], Writes]
