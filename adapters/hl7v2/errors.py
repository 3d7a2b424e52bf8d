"""The one error type of the HL7 v2 adapter: a stable code plus where (segment, field) for the ERR
segment of an ACK. A message never quotes message content: it may hold personal data.
"""

from __future__ import annotations

# code -> what it means; the codes are stable (an ACK builder and tests key on them).
CODES: dict[str, str] = {
    "not-hl7": "the input is not an HL7 v2 ER7 message",
    "no-msh": "the message does not start with an MSH segment",
    "bad-delimiters": "MSH-1/MSH-2 do not define a usable set of delimiters",
    "bad-segment": "a segment has no valid segment id",
    "missing-field": "a required field is empty",
    "missing-segment": "a segment the mapping of this event reads is absent",
    "invalid-value": "a field holds a value of the wrong form (e.g. a date that is no date)",
    "unsupported-event": "no mapping exists for this message event (answered AR)",
    "too-large": "the message or MLLP frame is larger than allowed",
    "bad-frame": "the payload cannot be framed with MLLP",
    "invalid-outbound": "a message we built does not parse or validate (hl7apy)",
    # the gateway's intake (gateway/intake/hl7v2.py)
    "unknown-sender": "MSH-3/MSH-4 match no registered organisation (answered AR)",
    "not-found": "a record the message names is not known (or not visible to the sender)",
    "refused": "the gateway's rules refuse the change the message asks for",
    "conflict": "the record changed meanwhile or is in a state the message cannot change",
    "duplicate-control-id": "MSH-10 was used before by a different message of the same sender",
    "busy": "the gateway could not process the message now; send it again (answered AR)",
    "internal": "the gateway failed to process the message (answered AR)",
}


class Hl7Error(Exception):
    """An HL7 v2 input or output problem. `segment` is a segment id (e.g. "MSH"), `field` its
    field number and `sequence` the 1-based position of the segment in the message, where known.
    """

    def __init__(
        self,
        code: str,
        message: str,
        segment: str | None = None,
        field: int | None = None,
        *,
        sequence: int | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown Hl7Error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.segment = segment
        self.field = field
        self.sequence = sequence
