"""adapters/cda/parse.py: safe parsing (issue 5, "Safe XML") and CDA R2 schema validation.

The attack tests assert a wall-clock bound because the issue states "< 100 ms" as a safety
requirement. Each is one run with a generous margin (measured 0.1 to 1 ms here, the 50 MB one is
refused on its length before any parsing), so a slow CI machine does not make them flaky.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.cda import parse, prescan
from adapters.cda.errors import CdaError

MINIMAL = (Path(__file__).parent / "samples" / "minimal.xml").read_bytes()
BOUND_S = 0.1  # the issue's bound; every attack is refused well within it (see the docstring)
PASSWD = "root:x:0:0"  # the first line of /etc/passwd: must never show up


def xxe(system_id: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "{system_id}">]>'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">&x;</ClinicalDocument>'
    ).encode()


def billion_laughs() -> bytes:  # 10 levels of 10 references: 10^9 "lol" if expanded
    levels = ['<!ENTITY l0 "lol">'] + [
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return f'<?xml version="1.0"?><!DOCTYPE r [{"".join(levels)}]><r>&l9;</r>'.encode()


def quadratic_blowup() -> bytes:  # one 100 kB entity referenced 100,000 times: 10 GB expanded
    entity = "x" * 100_000
    return f'<!DOCTYPE r [<!ENTITY a "{entity}">]><r>{"&a;" * 100_000}</r>'.encode()


def nested(depth: int, root: bytes = b"<a>", end: bytes = b"</a>") -> bytes:
    return root + b"<a>" * (depth - 1) + b"</a>" * (depth - 1) + end


def refused(data: bytes, **limits: int) -> tuple[CdaError, float]:
    started = time.perf_counter()
    with pytest.raises(CdaError) as caught:
        parse.parse_document(data, **limits)
    return caught.value, time.perf_counter() - started


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def connect(*args: object) -> None:
        pytest.fail("the CDA parser opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local TCP port nobody should dial: catches connections made below Python (libxml2)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def test_a_minimal_cda_document_parses_and_validates_clean() -> None:
    root = parse.parse_document(MINIMAL)
    assert root.tag == "{urn:hl7-org:v3}ClinicalDocument"
    assert parse.validate(root) == []
    assert parse.parse_valid_document(MINIMAL) is not None


ATTACKS: dict[str, tuple[Callable[[], bytes], str]] = {
    "xxe-file": (lambda: xxe("file:///etc/passwd"), "dtd-forbidden"),
    "xxe-http": (lambda: xxe("http://127.0.0.1:9/"), "dtd-forbidden"),
    "billion-laughs": (billion_laughs, "dtd-forbidden"),
    "quadratic-blowup": (quadratic_blowup, "dtd-forbidden"),
    "300k-deep": (lambda: nested(300_000), "too-deep"),
    "50-MB-body": (lambda: b"<r>" + b"x" * 50_000_000 + b"</r>", "too-large"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_is_refused_fast_with_its_code(attack: str) -> None:
    build, code = ATTACKS[attack]
    error, elapsed = refused(build())
    assert error.code == code
    assert elapsed < BOUND_S, f"{attack} took {elapsed * 1000:.1f} ms"
    assert PASSWD not in str(error)


@pytest.mark.parametrize("scheme", ["file", "http"])
def test_the_parser_settings_alone_resolve_no_external_entity(
    scheme: str,
    tmp_path: Path,
    listener: socket.socket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Defence in depth: with the DOCTYPE prescan switched off, lxml's own settings still read
    # no file and dial no port, and the DOCTYPE is refused after the parse.
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-MARKER")
    port = listener.getsockname()[1]
    target = secret.as_uri() if scheme == "file" else f"http://127.0.0.1:{port}/x"
    monkeypatch.setattr(prescan, "has_doctype", lambda data: False)
    error, _ = refused(xxe(target))
    assert error.code == "dtd-forbidden"
    assert "SECRET-MARKER" not in str(error)
    with pytest.raises(BlockingIOError):  # nobody connected
        listener.accept()


def test_a_doctype_in_utf16_is_seen_too() -> None:
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    assert refused(data.encode("utf-16"))[0].code == "dtd-forbidden"


def test_depth_is_bounded_at_256_or_lower_on_request() -> None:
    cda = (b'<ClinicalDocument xmlns="urn:hl7-org:v3">', b"</ClinicalDocument>")
    assert parse.parse_document(nested(256, *cda)) is not None
    assert refused(nested(257, *cda))[0].code == "too-deep"
    assert refused(nested(11, *cda), max_depth=10)[0].code == "too-deep"
    assert parse.parse_document(nested(10, *cda), max_depth=10) is not None


def test_a_size_above_max_bytes_is_refused_before_parsing() -> None:
    assert refused(MINIMAL, max_bytes=len(MINIMAL) - 1)[0].code == "too-large"


def test_broken_xml_is_not_well_formed_and_the_message_quotes_nothing() -> None:
    error, _ = refused(b"<ClinicalDocument>\n<Meikalainen-010101-123N></ClinicalDocument>")
    assert (error.code, error.line) == ("not-well-formed", 2)
    assert "Meikalainen" not in str(error)


def test_well_formed_xml_of_another_kind_is_not_cda() -> None:
    assert refused(b'<Bundle xmlns="http://hl7.org/fhir"/>')[0].code == "not-cda"
    assert refused(b"<ClinicalDocument/>")[0].code == "not-cda"  # no HL7 v3 namespace


def test_a_schema_error_lists_issues_with_lines_and_no_values() -> None:
    broken = MINIMAL.replace(
        b'<effectiveTime value="20240115103000+0200"/>',  # line 8
        b'<effectiveTime value="huomenna"/>',  # not a TS
    ).replace(b"<confidentialityCode", b"<unexpected/><confidentialityCode")  # line 9
    issues = parse.validate(parse.parse_document(broken))
    assert [(issue.line, issue.message) for issue in issues] == [
        (8, "cvc-pattern-valid"),
        (9, "element-content"),
    ]
    with pytest.raises(CdaError) as caught:
        parse.parse_valid_document(broken)
    assert (caught.value.code, caught.value.line, caught.value.issues) == (
        "schema-invalid",
        8,
        tuple(issues),
    )
    assert "huomenna" not in str(caught.value)


def test_a_doctype_in_utf32_or_utf16_without_a_bom_is_seen_too() -> None:
    data = '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    for codec in ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be"):  # no BOM, no declaration
        assert prescan.has_doctype(data.encode(codec)), codec
        assert refused(data.encode(codec))[0].code == "dtd-forbidden", codec


def with_title_attributes(attributes: bytes) -> bytes:
    return MINIMAL.replace(b"<ClinicalDocument ", b"<ClinicalDocument " + attributes + b" ", 1)


def test_what_validation_would_walk_is_bounded_before_it() -> None:
    """Attributes in total and per element, and namespace declarations, are bounded after the
    parse (fast), so validation never holds a worker for seconds."""
    many = b" ".join(b'p%d="1"' % i for i in range(parse.MAX_ELEMENT_ATTRIBUTES + 1))
    assert refused(with_title_attributes(many))[0].code == "too-large"
    spread = b'<a b="1" c="1" d="1" e="1"/>' * (parse.MAX_ATTRIBUTES // 4 + 1)
    error, took = refused(MINIMAL.replace(b"</ClinicalDocument>", spread + b"</ClinicalDocument>"))
    assert error.code == "too-large" and took < 1.0
    names = b" ".join(b'xmlns:n%d="urn:x"' % i for i in range(parse.MAX_NAMESPACE_DECLARATIONS))
    assert refused(with_title_attributes(names))[0].code == "too-large"


def test_a_repeated_id_is_a_schema_issue_found_before_the_schema_validator() -> None:
    """libxml2 reports repeated xs:ID values in quadratic time (40,000 took 2 s): found first."""
    repeated = b'<content ID="x">a</content>' * 100_000
    data = MINIMAL.replace(
        b"</ClinicalDocument>", b"<text>" + repeated + b"</text></ClinicalDocument>"
    )
    root = parse.parse_document(data)
    started = time.perf_counter()
    issues = parse.validate(root)
    assert time.perf_counter() - started < 2.0  # ~0.1 s; libxml2 alone: ~25 s
    assert [i.message for i in issues] == ["duplicate-id"]


def test_each_thread_validates_with_its_own_schema() -> None:
    found: list[object] = []
    worker = threading.Thread(target=lambda: found.append(parse._schema()))
    worker.start()
    worker.join()
    assert found and found[0] is not parse._schema()
    assert parse.validate(parse.parse_document(MINIMAL)) == []
