"""The dispatch table of the HL7 v2 intake: event (MSH-9.1^MSH-9.2) -> its handler. An event not
listed here is answered AR (unsupported event); a registration may narrow it further
(`hl7v2.events`). The handler contract is gateway/intake/inbound.py.
"""

from __future__ import annotations

from gateway.intake import adt, merge, referral
from gateway.intake.inbound import Handler

EVENT_HANDLERS: dict[str, Handler] = {
    "ADT^A04": adt.register_or_update,
    "ADT^A08": adt.register_or_update,
    "ADT^A40": merge.merge_patients,
    "REF^I12": referral.handle,
}
