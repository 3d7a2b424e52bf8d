"""Safe parsing and CDA R2 schema validation of inbound documents: the only module of the CDA
adapter that imports lxml. It never resolves entities, loads a DTD or touches the network, and no
lxml exception (nor any document content) leaves it: every failure is a `CdaError`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

from adapters.cda import prescan
from adapters.cda.errors import CdaError, SchemaIssue

CDA_NS = "urn:hl7-org:v3"
CDA_ROOT = f"{{{CDA_NS}}}ClinicalDocument"
# 10 MB, decimal on purpose: no text node of a document this size can pass libxml2's
# 10,000,000-character text limit, so within it a resource-limit error can only mean depth.
MAX_BYTES = 10_000_000
# libxml2's own nesting ceiling without XML_PARSE_HUGE (huge_tree stays off): a deeper bound
# could never be honoured, so it is also ours.
LIBXML2_MAX_DEPTH = 256
# Bounds on what schema validation has to walk, checked after the parse and before validation
# (libxml2's XSD validation costs about 3 us per attribute, so a 10 MB document of attributes
# would hold a worker for seconds). Our samples carry about 12 attributes per KB, at most 9 on
# one element, and declare two namespaces: these leave a legitimate 10 MB document room.
MAX_ATTRIBUTES = 250_000
MAX_ELEMENT_ATTRIBUTES = 64
MAX_NAMESPACE_DECLARATIONS = 1_000
SCHEMA = Path(__file__).parent / "schema" / "infrastructure" / "cda" / "CDA.xsd"
# An XMLSchema keeps its error log on itself, so it is never shared: one per thread (compiled on
# a thread's first use, ~60 ms), so one slow validation never waits another import.
_LOCAL = threading.local()
# libxml2 error number -> its name (e.g. ERR_TAG_NAME_MISMATCH): says what broke, quotes nothing.
_ERROR_NAMES = {v: k for k, v in vars(etree.ErrorTypes).items() if isinstance(v, int)}


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers must not be shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
    )


def parse_document(
    data: bytes, *, max_bytes: int = MAX_BYTES, max_depth: int = LIBXML2_MAX_DEPTH
) -> etree._Element:
    """The root element of a CDA document, or CdaError: too-large, dtd-forbidden, too-deep,
    not-well-formed, not-cda. Every check before the parse is linear and stops early."""
    if not 0 < max_depth <= LIBXML2_MAX_DEPTH:
        raise ValueError(f"max_depth must be 1..{LIBXML2_MAX_DEPTH}")
    if len(data) > max_bytes:
        raise CdaError("too-large", f"document is larger than {max_bytes} bytes")
    if prescan.has_doctype(data):
        raise CdaError("dtd-forbidden", "a DOCTYPE is not allowed")
    root = _parse(data, max_depth)
    if root.getroottree().docinfo.doctype:  # a DOCTYPE the byte prescan could not see
        raise CdaError("dtd-forbidden", "a DOCTYPE is not allowed")
    if max_depth < LIBXML2_MAX_DEPTH and _deeper_than(root, max_depth):
        raise CdaError("too-deep", f"elements nest deeper than {max_depth}")
    if root.tag != CDA_ROOT:
        raise CdaError(
            "not-cda", "the root element is not a CDA R2 ClinicalDocument", root.sourceline
        )
    _check_complexity(root, data)
    return root


def _check_complexity(root: etree._Element, data: bytes) -> None:
    """too-large when validating `root` would cost more than any plan document needs. Native
    XPath counts and one byte scan: linear, tens of ms for 10 MB."""
    if root.xpath("count(//@*)") > MAX_ATTRIBUTES:
        raise CdaError("too-large", f"the document has more than {MAX_ATTRIBUTES} attributes")
    if root.xpath(f"boolean(//*[count(@*) > {MAX_ELEMENT_ATTRIBUTES}])"):
        raise CdaError("too-large", f"an element has more than {MAX_ELEMENT_ATTRIBUTES} attributes")
    if prescan.namespace_declarations(data) > MAX_NAMESPACE_DECLARATIONS:
        raise CdaError(
            "too-large",
            f"the document declares more than {MAX_NAMESPACE_DECLARATIONS} namespaces",
        )


def _parse(data: bytes, max_depth: int) -> etree._Element:
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as error:
        raise _syntax_error(error, data, max_depth) from None
    except ValueError:  # e.g. an unknown or unsupported encoding declaration
        raise CdaError("not-well-formed", "the document cannot be decoded") from None


def _syntax_error(error: etree.XMLSyntaxError, data: bytes, max_depth: int) -> CdaError:
    # libxml2 reports every limit (depth, text size, amplification) as ERR_RESOURCE_LIMIT; which
    # one is told by our own scan, never by the message text. The message quotes the document.
    if error.code == etree.ErrorTypes.ERR_RESOURCE_LIMIT:
        if prescan.exceeds_depth(data, max_depth):
            return CdaError("too-deep", f"elements nest deeper than {max_depth}", error.lineno)
        return CdaError("too-large", "the document exceeds a parser resource limit", error.lineno)
    kind = _ERROR_NAMES.get(error.code, "ERR_UNKNOWN")
    return CdaError("not-well-formed", f"not well-formed XML ({kind})", error.lineno)


def _deeper_than(root: etree._Element, max_depth: int) -> bool:
    # Native and linear: one XPath step per level, the steps' node sets partition the tree.
    return bool(root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"))


def _schema() -> etree.XMLSchema:
    """This thread's compiled copy of the vendored CDA R2 schema (from local files only)."""
    schema = getattr(_LOCAL, "schema", None)
    if schema is None:
        schema = _LOCAL.schema = etree.XMLSchema(etree.parse(str(SCHEMA), _parser()))
    return schema


def validate(root: etree._Element) -> list[SchemaIssue]:
    """Every CDA R2 schema violation of a parsed document, in document order."""
    repeated = _repeated_id(root)
    if repeated is not None:  # before libxml2, which reports repeated IDs in quadratic time
        where = root.getroottree().getpath(repeated)
        return [SchemaIssue(repeated.sourceline, "duplicate-id", where)]
    schema = _schema()
    schema.validate(root)
    return [
        SchemaIssue(entry.line, _issue_message(entry), entry.path or "")
        for entry in schema.error_log
    ]


def _repeated_id(root: etree._Element) -> etree._Element | None:
    """The first element whose ID (xs:ID, the only one CDA R2 uses) another element already
    has (XML 1.0 §3.3.1, validity constraint "ID"), or None."""
    seen: set[str] = set()
    for value in root.xpath("//@ID", smart_strings=False):
        if value in seen:
            return root.xpath("(//*[@ID = $v])[2]", v=value)[0]
        seen.add(value)
    return None


def _issue_message(entry: etree._LogEntry) -> str:
    # libxml2's text quotes offending values: keep only the kind of violation.
    return entry.type_name.removeprefix("SCHEMAV_").lower().replace("_", "-")


def parse_valid_document(data: bytes, *, max_bytes: int = MAX_BYTES) -> etree._Element:
    """parse_document, then validate; CdaError schema-invalid lists every issue."""
    root = parse_document(data, max_bytes=max_bytes)
    issues = validate(root)
    if issues:
        first = issues[0]
        message = f"{len(issues)} schema violation(s), first {first.message} at {first.path}"
        raise CdaError("schema-invalid", message, first.line, issues=tuple(issues))
    return root


# --- Writing: the primitives the exporter builds documents with (only this module imports lxml).

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI_NS}}}type"
_NSMAP = {None: CDA_NS, "xsi": XSI_NS}


def new_root(tag: str = "ClinicalDocument") -> etree._Element:
    """An empty root element in the CDA namespace (xsi declared for typed values)."""
    return etree.Element(f"{{{CDA_NS}}}{tag}", nsmap=_NSMAP)


def child(
    parent: etree._Element, tag: str, attrib: dict[str, str] | None = None, text: str | None = None
) -> etree._Element:
    """A new last child `tag` (CDA namespace) with attributes and text; None values are left out."""
    el = etree.SubElement(parent, f"{{{CDA_NS}}}{tag}")
    try:
        for key, value in (attrib or {}).items():
            if value is not None:
                el.set(XSI_TYPE if key == "xsi:type" else key, value)
        if text is not None:
            el.text = text
    except ValueError:  # a control character or a non-character: XML 1.0 cannot hold it
        raise CdaError("invalid-value", f"a value of {tag} cannot be written as XML") from None
    return el


def serialise(root: etree._Element) -> bytes:
    """UTF-8 bytes with an XML declaration, indented (narrative whitespace is ours)."""
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def parse_trusted(data: bytes) -> etree._Element:
    """Parse a document this adapter wrote itself (tests, round trips): still no DTD, no network."""
    return etree.fromstring(data, _parser())
