"""Never anything but a CdaError: every sample with one element removed, or one attribute
removed or emptied, either imports or raises CdaError, with and without schema validation (the
mapping code must not rely on the schema having run). What imports has unique ids and resolving
references; the gateway's validator either accepts each resource or answers a FhirError (a 4xx:
a mutant may lack what our profiles require, e.g. the coordinator's period), never anything else.
Deterministic: every element and attribute of the samples, no randomness."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.cda import parse
from adapters.cda.convert import to_fhir
from adapters.cda.errors import CdaError
from gateway.errors import FhirError
from gateway.validation.validator import Validator
from tests.adapters.cda.helpers import IDS, SAMPLES, check_invariants

# sample -> stride over its mutants (every mutant of the small one; every 4th of the large ones
# keeps the test under ~20 s; the strides are co-prime with the mutation kinds, so every kind of
# element is still hit)
SAMPLE_NAMES = {"hosu-aino.xml": 4, "social-plan-laura.xml": 5, "ccda-care-plan.xml": 1}


def _mutants(data: bytes, stride: int) -> Iterator[bytes]:
    count = sum(1 for _ in parse.parse_trusted(data).iter())
    for i in range(1, count, stride):  # never the root
        root = parse.parse_trusted(data)
        el = list(root.iter())[i]
        if not isinstance(el.tag, str):  # a comment
            continue
        el.getparent().remove(el)
        yield parse.serialise(root)
    for i in range(0, count, stride):
        for value in (None, ""):
            root = parse.parse_trusted(data)
            el = list(root.iter())[i]
            if not isinstance(el.tag, str) or not el.keys():
                continue
            if value is None:
                del el.attrib[el.keys()[0]]
            else:
                el.set(el.keys()[-1], value)
            yield parse.serialise(root)


@pytest.mark.parametrize("name", sorted(SAMPLE_NAMES))
@pytest.mark.parametrize("validate", [True, False])
def test_mutants_import_or_raise_cda_error(name: str, validate: bool) -> None:
    outcomes = {"ok": 0, "refused": 0}
    for i, mutant in enumerate(_mutants((SAMPLES / name).read_bytes(), SAMPLE_NAMES[name])):
        try:
            result = to_fhir(mutant, IDS, validate_schema=validate)
        except CdaError as error:
            assert "150390" not in str(error) and "Testinen" not in str(error)
            outcomes["refused"] += 1
            continue
        check_invariants(result.bundle, profiles=False)
        # the profile walker is the slow part: every 10th mutant, to stay fast
        for entry in result.bundle["entry"] if validate and i % 10 == 0 else ():
            resource = entry["resource"]
            try:
                Validator().validate_resource(resource, expect_id=resource["id"])
            except FhirError as error:
                assert error.category.value in ("invalid", "unprocessable")
        outcomes["ok"] += 1
    assert outcomes["ok"] and outcomes["refused"]
