"""adapters/cda/convert.py: every sample document imports into a bundle that passes the
invariant checks and equals its golden (UPDATE_GOLDENS=1 rewrites them); importing twice gives
the same bundle; every document we write is CDA R2 schema-valid; a generic C-CDA care plan is
mapped as far as recognised; a document of no known kind is refused with the list."""

from __future__ import annotations

import json
import os

import pytest

from adapters.cda import parse
from adapters.cda.convert import EXPORT_KINDS, from_fhir, to_fhir
from adapters.cda.errors import CdaError
from tests.adapters.cda.helpers import (
    EXPORTED,
    IDS,
    NOW,
    SAMPLES,
    check_invariants,
    client,
    network,
    organisation,
)

IMPORTABLE = [*sorted(EXPORTED), "ccda-care-plan.xml"]


@pytest.mark.parametrize("name", IMPORTABLE)
def test_sample_imports_and_matches_its_golden(name: str) -> None:
    result = to_fhir((SAMPLES / name).read_bytes(), IDS)
    check_invariants(result.bundle)
    golden = SAMPLES / name.replace(".xml", ".fhir.json")  # paired by name
    actual = {
        "kind": result.kind,
        "unrecognised": result.unrecognised,
        "document_id": result.document_id,
        "set_id": result.set_id,
        "custodian_oid": result.custodian_oid,
        "bundle": result.bundle,  # nothing volatile: no times, no random ids
    }
    if os.environ.get("UPDATE_GOLDENS") == "1":
        golden.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", IMPORTABLE)
def test_importing_twice_gives_the_same_bundle(name: str) -> None:
    data = (SAMPLES / name).read_bytes()
    assert to_fhir(data, IDS).bundle == to_fhir(data, IDS).bundle


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_our_kinds_carry_plan_network_and_custodian(name: str) -> None:
    result = to_fhir((SAMPLES / name).read_bytes(), IDS)
    types = [e["resource"]["resourceType"] for e in result.bundle["entry"]]
    for needed in (
        "Patient",
        "CarePlan",
        "CareTeam",
        "Goal",
        "ServiceRequest",
        "Task",
        "Provenance",
    ):
        assert needed in types
    assert result.kind == EXPORTED[name][1]
    assert result.unrecognised == []
    assert result.custodian_oid and result.custodian_oid.startswith("1.2.246.10.")
    team = next(
        e["resource"] for e in result.bundle["entry"] if e["resource"]["resourceType"] == "CareTeam"
    )
    coordinators = [
        p for p in team["participant"] if p["role"][0]["coding"][0]["code"] == "asiakasvastaava"
    ]
    assert len(coordinators) == 1


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_every_exported_document_is_schema_valid(name: str) -> None:
    bundle, kind, org = EXPORTED[name]
    data = from_fhir(network() + client(bundle), kind, author_org=organisation(org), now=NOW)
    assert parse.validate(parse.parse_document(data)) == []
    assert data == (SAMPLES / name).read_bytes()  # the samples are these exports


@pytest.mark.parametrize("kind", EXPORT_KINDS)
def test_an_import_exports_again_schema_valid(kind: str) -> None:
    result = to_fhir((SAMPLES / "hosu-aino.xml").read_bytes(), IDS)
    data = from_fhir(result.bundle, kind, author_org=organisation("org-tyokykytiimi"), now=NOW)
    assert parse.validate(parse.parse_document(data)) == []


def test_generic_ccda_care_plan_is_mapped_as_far_as_recognised() -> None:
    result = to_fhir((SAMPLES / "ccda-care-plan.xml").read_bytes(), IDS)
    assert result.kind == "ccda-care-plan"
    # the outcomes section (11383-7) is not mapped, and is listed without content
    assert result.unrecognised == ["section 2.16.840.1.113883.6.1|11383-7"]
    by_type = {e["resource"]["resourceType"]: e["resource"] for e in result.bundle["entry"]}
    assert by_type["Goal"]["description"]["text"] == "Return to part-time work within six months"
    assert by_type["ServiceRequest"]["intent"] == "plan"  # moodCode INT
    assert by_type["CarePlan"]["description"] == "Chronic low back pain limiting work"
    assert "category" not in by_type["CarePlan"]  # not our client plan: no client-plan profile


def test_a_document_of_no_known_kind_is_refused_with_the_list() -> None:
    with pytest.raises(CdaError) as caught:
        to_fhir((SAMPLES / "unknown-kind.xml").read_bytes(), IDS)
    assert caught.value.code == "not-recognised"
    assert caught.value.details == (
        "templateId 2.16.840.1.113883.10.20.22.1.8",
        "section 2.16.840.1.113883.6.1|8648-8",
    )
    assert "150390" not in str(caught.value)  # no content in the message


def test_our_kind_without_a_network_section_is_refused() -> None:
    data = (SAMPLES / "hosu-aino.xml").read_bytes()
    start = data.index(
        b"<component>\n        <section>\n          <templateId root="
        b'"2.25.62423729588183648788789587467293120093.1.10.4"'
    )
    end = data.index(b"</component>", data.index(b"</section>", start)) + len(b"</component>")
    with pytest.raises(CdaError) as caught:
        to_fhir(data[:start] + data[end:], IDS)
    assert caught.value.code == "missing-element"


def test_export_refuses_unknown_kind_and_incomplete_input() -> None:
    org = organisation("org-tyokykytiimi")
    with pytest.raises(CdaError) as caught:
        from_fhir(client("10-client-aino"), "discharge", author_org=org, now=NOW)
    assert caught.value.code == "unknown-kind"
    without_patient = [r for r in client("10-client-aino") if r["resourceType"] != "Patient"]
    with pytest.raises(CdaError) as caught:
        from_fhir(without_patient, "hosu", author_org=org, now=NOW)
    assert caught.value.code == "export-incomplete"


def test_hidden_resources_are_left_out_of_the_export() -> None:
    # a caller who may not see the Tasks and Goals (the gate left them out) still gets a valid CDA
    visible = [
        r for r in network() + client("10-client-aino") if r["resourceType"] not in ("Task", "Goal")
    ]
    data = from_fhir(visible, "hosu", author_org=organisation("org-tyokykytiimi"), now=NOW)
    assert parse.validate(parse.parse_document(data)) == []
    result = to_fhir(data, IDS)
    types = {e["resource"]["resourceType"] for e in result.bundle["entry"]}
    assert "Task" not in types and "Goal" not in types


def test_schema_invalid_input_is_a_cda_error() -> None:
    bad = (SAMPLES / "hosu-aino.xml").read_bytes().replace(b'<realmCode code="FI"/>', b"<bogus/>")
    with pytest.raises(CdaError) as caught:
        to_fhir(bad, IDS)
    assert caught.value.code == "schema-invalid"
