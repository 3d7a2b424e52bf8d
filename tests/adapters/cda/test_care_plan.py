"""The CarePlan's own sections (adapters/cda/cda_to_fhir/care_plan.py): a participation
section's peer-support act without its detail observations (the client's answer) is listed as
not recognised, never a crash and never an offer without an answer."""

from __future__ import annotations

from adapters.cda.convert import to_fhir
from tests.adapters.cda.helpers import IDS, SAMPLES, check_invariants

P = "2.25.62423729588183648788789587467293120093"
OFFER_WITHOUT_DETAILS = (  # who offered (performer), but no answer/date observations
    f'<component><section><templateId root="{P}.1.10.6"/>'
    f'<code code="osallisuus" codeSystem="{P}.2.9"/><title>x</title><text>x</text>'
    f'<entry><act classCode="ACT" moodCode="EVN"><templateId root="{P}.1.20.8"/>'
    f'<code code="vertaistuki" codeSystem="{P}.2.9"/><performer typeCode="PRF">'
    '<assignedEntity><id root="1.2.246.10.99990001.10.17"/><representedOrganization>'
    '<id root="1.2.246.10.99990001.10.17"/></representedOrganization></assignedEntity>'
    "</performer></act></entry></section></component>"
).encode()


def test_a_peer_support_act_without_details_is_listed_not_mapped() -> None:
    sample = (SAMPLES / "hosu-aino.xml").read_bytes()
    data = sample.replace(b"<structuredBody>", b"<structuredBody>" + OFFER_WITHOUT_DETAILS, 1)
    imported = to_fhir(data, IDS)
    assert "entry section0/entry[0]" in imported.unrecognised
    check_invariants(imported.bundle)
    plan = next(
        e["resource"]
        for e in imported.bundle["entry"]
        if e["resource"]["resourceType"] == "CarePlan"
    )
    offers = [e for e in plan.get("extension", []) if e["url"].endswith("/peer-support-offer")]
    # the sample's own offer (a later participation section) still carries its answer
    assert all(any(x["url"] == "answer" for x in o["extension"]) for o in offers)
