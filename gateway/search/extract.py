"""Turn the values a SearchParameter selects into index rows, one converter per parameter type.

Values arrive as plain JSON (str, bool, number, dict); the data type is recognised by shape
(Coding, CodeableConcept, Identifier, ContactPoint, HumanName, Address, Period, Timing, Quantity,
Reference). Converters must never raise on odd data: what cannot be indexed is skipped.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from gateway.errors import FhirError
from gateway.search.dates import MAX_US, MIN_US, date_range
from gateway.storage.base import IndexRows

_NAME_PARTS = ("text", "family", "given", "prefix", "suffix")
_ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")


def normalise(text: str) -> str:
    """Lower case without accents: the default string match (http://hl7.org/fhir/R4/search.html#string)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    parts = _NAME_PARTS if ("family" in value or "given" in value) else _ADDRESS_PARTS
    out: list[str] = []
    for part in parts:
        v = value.get(part)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, str))
    return out


def string_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for value in values:
        rows.string.extend((code, normalise(s), s) for s in _strings(value))


def token_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for v in values:
        if isinstance(v, bool):
            rows.token.append((code, "", "true" if v else "false"))
        elif isinstance(v, str):
            rows.token.append((code, "", v))
        elif isinstance(v, dict):
            _token_dict(code, v, rows)


def _token_dict(code: str, v: dict[str, Any], rows: IndexRows) -> None:
    if "coding" in v or ("text" in v and "code" not in v and "value" not in v):
        for c in v.get("coding") or ():
            if isinstance(c, dict) and c.get("code"):
                rows.token.append((code, str(c.get("system", "")), str(c["code"])))
        texts = [v.get("text")] + [c.get("display") for c in v.get("coding") or () if c]
        rows.string.extend((code + ":text", normalise(t), t) for t in texts if t)
    elif "code" in v:  # Coding (or Quantity-like code)
        rows.token.append((code, str(v.get("system", "")), str(v["code"])))
        if v.get("display"):
            rows.string.append((code + ":text", normalise(v["display"]), v["display"]))
    elif "value" in v:  # Identifier, ContactPoint
        rows.token.append((code, str(v.get("system", "")), str(v["value"])))


def reference_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for v in values:
        if isinstance(v, str):  # canonical or uri
            rows.reference.append((code, *split_reference(v.split("|")[0])))
        elif isinstance(v, dict):
            ref = v.get("reference")
            if isinstance(ref, str) and not ref.startswith("#"):
                rows.reference.append((code, *split_reference(ref)))
            ident = v.get("identifier")
            if isinstance(ident, dict) and ident.get("value"):
                rows.token.append((code + ":identifier", ident.get("system", ""), ident["value"]))


def split_reference(ref: str) -> tuple[str, str, str]:
    """(type, id, url): relative `Type/id` keeps url empty; absolute ones keep the full url."""
    ref = ref.split("/_history/")[0]
    parts = ref.split("/")
    absolute = "://" in ref or ref.startswith("urn:")
    if len(parts) >= 2 and parts[-2][:1].isupper() and parts[-1]:
        return parts[-2], parts[-1], ref if absolute else ""
    return "", "", ref


def _range(value: Any) -> tuple[int, int] | None:
    try:
        if isinstance(value, str):
            return date_range(value)
        if isinstance(value, dict) and ("start" in value or "end" in value):
            lo = date_range(value["start"])[0] if value.get("start") else MIN_US
            hi = date_range(value["end"])[1] if value.get("end") else MAX_US
            return lo, hi
    except (FhirError, TypeError):
        return None
    return None


def date_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for v in values:
        if isinstance(v, dict) and ("event" in v or "repeat" in v):  # Timing
            events = list(v.get("event") or ())
            bounds = (v.get("repeat") or {}).get("boundsPeriod")
            candidates = [*events, bounds] if bounds else events
        else:
            candidates = [v]
        for c in candidates:
            r = _range(c)
            if r is not None:
                rows.date.append((code, r[0], r[1]))


def number_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool):
            rows.number.append((code, float(v)))


def quantity_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    for v in values:
        if isinstance(v, dict) and isinstance(v.get("value"), int | float):
            system, unit = str(v.get("system", "")), str(v.get("code") or v.get("unit") or "")
            rows.quantity.append((code, float(v["value"]), system, unit))


def uri_rows(code: str, values: list[Any], rows: IndexRows) -> None:
    rows.uri.extend((code, v) for v in values if isinstance(v, str))


CONVERTERS = {
    "string": string_rows,
    "token": token_rows,
    "reference": reference_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "uri": uri_rows,
}
