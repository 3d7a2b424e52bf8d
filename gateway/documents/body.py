"""The CDA document an `$import-cda` request carries: the raw body (a CDA media type, read by the
operation itself: Operation.consumes) or a Parameters `document` (an Attachment, or a Binary
resource, base64). It never parses XML: the bytes go to the CDA adapter's safe parser.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any

from gateway.coordination.common import Params, where
from gateway.errors import invalid
from gateway.fhir_api.context import FhirRequest

# Media types of a raw CDA body (not parsed as FHIR: routes.py hands the bytes over as they are).
# A Parameters body comes as application/fhir+json or application/fhir+xml.
CDA_MEDIA_TYPES: tuple[str, ...] = (
    "application/xml",
    "text/xml",
    "application/cda+xml",
    "application/hl7-cda+xml",
)


def document_bytes(req: FhirRequest) -> bytes:
    """The document's bytes; 400 when the request carries none or more than one."""
    if req.resource is None:
        if not req.raw_body:
            raise invalid(
                "send the CDA document as the body (application/xml) or as the Parameters "
                "'document' (Attachment or Binary, base64)",
                where("document"),
            )
        if req.params and any(k not in ("_format", "_pretty") for k, _ in req.params):
            raise invalid("$import-cda takes no query parameters", "query")
        return req.raw_body
    params = Params.of(req, allowed=("document",))
    found = params.all("document")
    if len(found) != 1:
        raise invalid("give exactly one parameter 'document'", where("document"))
    return _decoded(_payload(found[0]))


def _payload(param: dict[str, Any]) -> Any:
    attachment = param.get("valueAttachment")
    if isinstance(attachment, dict):
        return attachment.get("data")
    resource = param.get("resource")
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        return resource.get("data")
    raise invalid(
        "parameter 'document' takes a valueAttachment or a Binary resource", where("document")
    )


def _decoded(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise invalid("the document's data (base64) is missing", where("document"))
    try:
        # FHIR base64Binary may wrap lines (its regex allows white space between groups).
        raw = b64decode("".join(data.split()).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise invalid("the document's data is not base64", where("document")) from None
    if not raw:
        raise invalid("the document's data is empty", where("document"))
    return raw
