"""The `plan-gateway` command: validate, load (idempotent), serve's arguments (not serving), and
the outbox listing and re-sending."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gateway import cli
from gateway.app import build_services
from gateway.delivery import outbox
from gateway.samples import SAMPLES_DIR
from gateway.settings import Settings

NETWORK = SAMPLES_DIR / "00-network.json"


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def current_version(database_url: str, resource_type: str, id: str) -> int | None:
    svc = build_services(Settings(database_url=database_url))
    try:
        with svc.repo.reader() as session:
            sv = session.current(resource_type, id)
            return None if sv is None else sv.version
    finally:
        svc.repo.close()


# -- validate ---------------------------------------------------------------------------------
def test_validate_good_files() -> None:
    result = invoke("validate", SAMPLES_DIR)
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok") == len(list(SAMPLES_DIR.glob("*.json")))


def test_validate_bad_resource_names_the_path(tmp_path: Path) -> None:
    bad = write(tmp_path / "p.json", {"resourceType": "Patient", "gender": "robot"})
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert "Patient.gender" in result.output


def test_validate_bad_bundle_entry_names_the_entry(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "P"}},
            # entry 1: an unknown element inside a Task
            {
                "resource": {"resourceType": "Task", "nonsense": 1},
                "request": {"method": "POST", "url": "Task"},
            },
        ],
    }
    result = invoke("validate", write(tmp_path / "b.json", bundle))
    assert result.exit_code == 1
    assert "Bundle.entry[1].resource" in result.output
    assert "Bundle.entry[0]" not in result.output


def test_validate_malformed_json(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"resourceType": "Patient",')
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert "not valid JSON" in result.output


# -- load -------------------------------------------------------------------------------------
def test_load_samples_twice_changes_nothing(database_url: str) -> None:
    first = invoke("load", SAMPLES_DIR, "--database", database_url)
    assert first.exit_code == 0, first.output
    assert "201 Created" in first.output
    second = invoke("load", SAMPLES_DIR, "--database", database_url)
    assert second.exit_code == 0, second.output
    assert "201" not in second.output  # every entry answered 200 OK, unchanged
    assert current_version(database_url, "CarePlan", "aino-plan") == 1
    assert current_version(database_url, "Organization", "org-kela") == 1


def test_load_plain_resources_and_collections(database_url: str, tmp_path: Path) -> None:
    write(tmp_path / "a.json", {"resourceType": "Patient", "id": "p1", "gender": "female"})
    write(tmp_path / "b.json", {"resourceType": "Patient", "gender": "male"})  # no id: created
    write(
        tmp_path / "c.json",
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Organization", "id": "o1", "name": "X"}}],
        },
    )
    result = invoke("load", tmp_path, "--database", database_url)
    assert result.exit_code == 0, result.output
    assert result.output.count("201 Created") == 3
    assert current_version(database_url, "Patient", "p1") == 1
    assert current_version(database_url, "Organization", "o1") == 1


def test_load_failing_transaction_stores_nothing(database_url: str, tmp_path: Path) -> None:
    doc = json.loads(NETWORK.read_text())
    doc["entry"][-1]["resource"]["active"] = "not-a-boolean"
    result = invoke("load", write(tmp_path / "bad.json", doc), "--database", database_url)
    assert result.exit_code == 1
    assert "failed" in result.output
    assert current_version(database_url, "Organization", "org-kela") is None


def test_load_refuses_files_that_are_not_fhir(database_url: str, tmp_path: Path) -> None:
    """A JSON file without a served resourceType (e.g. an organisation registration) fails that
    file with its path and loads the rest, never a traceback."""
    write(tmp_path / "a.json", {"client_id": "kela"})  # no resourceType
    write(tmp_path / "b.json", {"resourceType": "Observation"})  # not served here
    write(tmp_path / "c.json", {"resourceType": "Patient", "id": "p1"})
    result = invoke("load", tmp_path, "--database", database_url)
    assert result.exit_code == 1
    assert result.output.count("failed (400)") == 2 and "resourceType" in result.output
    assert current_version(database_url, "Patient", "p1") == 1


# -- serve (argument parsing; the server is not started) --------------------------------------
@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int]]:
    calls: list[tuple[str, int, int]] = []
    monkeypatch.setattr(cli, "run_server", lambda h, p, w: calls.append((h, p, w)))
    # serve sets these for its workers: unset here and restored after the test (delenv alone
    # records nothing when the variable is absent, and serve's value would leak into later tests)
    for name in ("PLAN_GATEWAY_DATABASE", "PLAN_GATEWAY_REQUIRE_AUTH", "PLAN_GATEWAY_MLLP_PORT"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return calls


def test_serve_defaults(started: list, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("serve", "--no-samples")
    assert result.exit_code == 0, result.output
    assert started == [("127.0.0.1", 8080, 1)]
    expected = f"sqlite:///{tmp_path.resolve()}/data/gateway.db"
    assert os.environ["PLAN_GATEWAY_DATABASE"] == expected
    # Auth is on: the start-up text says how to get a token and use it, and warns of nothing.
    assert "PLAN_GATEWAY_REQUIRE_AUTH" not in os.environ
    assert "token --org sote-keskus --base-url http://127.0.0.1:8080" in result.output
    assert 'curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/fhir/Patient' in (
        result.output
    )
    assert "WARNING" not in result.output


def test_serve_no_auth_is_explicit_and_loud(started: list, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = invoke("serve", "--no-samples", "--no-auth")
    assert result.exit_code == 0, result.output
    assert os.environ["PLAN_GATEWAY_REQUIRE_AUTH"] == "0"  # what the workers read
    assert "authentication is OFF" in result.output and "no consent gate" in result.output
    assert "token --org" not in result.output


def test_serve_refuses_an_unreadable_auth_setting(
    started: list, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PLAN_GATEWAY_REQUIRE_AUTH", "maybe")
    result = CliRunner().invoke(cli.main, ["serve"])
    assert result.exit_code == 1 and "PLAN_GATEWAY_REQUIRE_AUTH" in result.output
    assert started == []


def test_serve_options_and_samples(started: list, database_url: str) -> None:
    result = invoke(
        "serve", "--host", "0.0.0.0", "--port", "9999", "--workers", "3", "--database", database_url
    )
    assert result.exit_code == 0, result.output
    assert started == [("0.0.0.0", 9999, 3)]
    assert "00-network.json: transaction" in result.output
    assert "--base-url http://127.0.0.1:9999)" in result.output  # reachable from this machine
    assert "http://127.0.0.1:9999/fhir/Patient/aino" in result.output
    assert current_version(database_url, "Patient", "aino") == 1


def test_serve_rejects_bad_arguments(started: list) -> None:
    assert invoke("serve", "--port", "0").exit_code == 2
    assert invoke("serve", "--workers", "0").exit_code == 2
    assert invoke("serve", "--mllp-port", "70000").exit_code == 2
    assert started == []


def test_serve_mllp_port_reaches_the_workers(started: list, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    result = invoke("serve", "--no-samples", "--mllp-port", "2575")
    assert result.exit_code == 0, result.output
    assert os.environ["PLAN_GATEWAY_MLLP_PORT"] == "2575"  # each worker's app lifespan listens
    assert Settings().mllp_port == 2575
    assert "HL7 v2 over MLLP: 127.0.0.1:2575" in result.output


def test_database_urls() -> None:
    pg = "postgresql://u:secret@db:5432/g"
    assert cli.absolute_database_url(pg) == pg
    assert "secret" not in cli.redacted(pg)
    assert cli.absolute_database_url("sqlite:////abs/g.db") == "sqlite:////abs/g.db"


# -- convert (offline; nothing stored) ------------------------------------------------------------
HL7V2 = SAMPLES_DIR.parent / "hl7v2"
CDA = SAMPLES_DIR.parent / "cda"


def test_convert_hl7v2_to_fhir_prints_the_transaction_bundle() -> None:
    result = CliRunner().invoke(
        cli.main, ["convert", "--from", "hl7v2", "--to", "fhir", str(HL7V2 / "adt-a04.hl7")]
    )
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    (entry,) = bundle["entry"]
    assert bundle["type"] == "transaction" and entry["resource"]["resourceType"] == "Patient"
    assert "example pseudonym key" in result.stderr  # ids differ from a deployment's


def test_convert_hl7v2_with_the_deployment_key_gives_that_gateways_ids(tmp_path: Path) -> None:
    from adapters.ids import Ids

    key = tmp_path / "key.hex"
    key.write_text("ab" * 32)
    result = CliRunner().invoke(
        cli.main,
        [
            "convert",
            "--from",
            "hl7v2",
            "--to",
            "fhir",
            "--id-key-file",
            str(key),
            str(HL7V2 / "adt-a04.hl7"),
        ],
    )
    assert result.exit_code == 0 and result.stderr == ""
    patient = json.loads(result.stdout)["entry"][0]["resource"]
    assert patient["id"] == Ids(bytes.fromhex("ab" * 32)).personal(
        "urn:oid:1.2.246.21", "010190-900P"
    )


def test_convert_a_bad_message_is_an_operation_outcome_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.hl7"
    bad.write_text("MSH|^~\\&|A|B|C|D|2025||ADT^A04|C1|P|2.5.1\rPID|1||010190-900P|||19901301")
    result = CliRunner().invoke(cli.main, ["convert", "--from", "hl7v2", "--to", "fhir", str(bad)])
    assert result.exit_code == 1 and result.stdout == ""
    outcome = json.loads(result.stderr[result.stderr.index("{") :])
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["expression"] == ["PID-3"]
    assert "010190-900P" not in result.stderr  # never the content


@pytest.mark.skipif(not (CDA / "hosu-aino.xml").exists(), reason="no CDA samples (H3)")
def test_convert_cda_to_fhir_and_back(tmp_path: Path) -> None:
    runner = CliRunner()
    to_fhir = runner.invoke(
        cli.main, ["convert", "--from", "cda", "--to", "fhir", str(CDA / "hosu-aino.xml")]
    )
    assert to_fhir.exit_code == 0, to_fhir.stderr
    types = {e["resource"]["resourceType"] for e in json.loads(to_fhir.stdout)["entry"]}
    assert {"Patient", "CarePlan"} <= types
    plan = tmp_path / "plan.json"
    plan.write_text(to_fhir.stdout)
    back = runner.invoke(
        cli.main, ["convert", "--from", "fhir", "--to", "cda", "--kind", "hosu", str(plan)]
    )
    assert back.exit_code == 0, back.stderr
    assert back.stdout.startswith("<?xml") and "ClinicalDocument" in back.stdout


@pytest.mark.skipif(not (CDA / "unknown-kind.xml").exists(), reason="no CDA samples (H3)")
def test_convert_an_unrecognised_cda_lists_what_was_not_mapped() -> None:
    result = CliRunner().invoke(
        cli.main, ["convert", "--from", "cda", "--to", "fhir", str(CDA / "unknown-kind.xml")]
    )
    assert result.exit_code == 1
    outcome = json.loads(result.stderr[result.stderr.index("{") :])
    assert outcome["issue"][0]["details"]["text"] == "not-recognised"
    assert any("not mapped: " in i["diagnostics"] for i in outcome["issue"][1:])


def test_convert_refuses_a_pair_it_does_not_know() -> None:
    result = CliRunner().invoke(
        cli.main, ["convert", "--from", "hl7v2", "--to", "cda", str(HL7V2 / "adt-a04.hl7")]
    )
    assert result.exit_code == 1
    assert json.loads(result.stderr)["issue"][0]["details"]["text"] == "unsupported"


# -- outbox -----------------------------------------------------------------------------------
HOOK = "https://partner.example/hook?token=SECRET-IN-URL"  # never printed: may hold a secret
RRI = "MSH|^~\\&|PLAN_GATEWAY|...\rPID|1||150390-902D||Testinen^Aino\r"  # personal data


ROWS: list[tuple[str, str, str, int, dict[str, Any]]] = [
    # id, channel, stream, queued (µs after t0), more; "error" queues it dead
    ("hs", "rest-hook", "sub-1", 0, {"kind": "handshake"}),
    ("ev1", "rest-hook", "sub-1", 0, {"seq": 1, "focus": "Task/t/_history/2", "error": "http-500"}),
    ("rri1", "mllp", "mllp://rs:2576", 1, {"kind": "message", "payload": RRI}),
    ("rri2", "mllp", "mllp://rs:2576", 2, {"kind": "message", "payload": RRI, "error": "nack-AE"}),
]


@pytest.fixture
def queued(database_url: str) -> str:
    """An outbox with a row in each state: a subscription's handshake sent, its event dead, an
    RRI pending and an RRI dead on one record system's stream."""
    svc = build_services(Settings(database_url=database_url))
    t0 = 1_760_000_000_000_000  # 2025-10-09T08:53:20Z
    try:
        with svc.repo.writer() as session:
            for id, channel, stream, at, more in ROWS:
                where = HOOK if channel == "rest-hook" else stream
                row = {"id": id, "channel": channel, "stream": stream, "destination": where}
                outbox.add(session, **row, now=t0 + at, **more)
            session.execute("UPDATE outbox SET sent_us = ?, attempts = 1 WHERE id = 'hs'", (t0,))
    finally:
        svc.repo.close()
    return database_url


def outbox_state(database_url: str) -> dict[str, tuple[str, int]]:
    svc = build_services(Settings(database_url=database_url))
    try:
        with svc.repo.reader() as session:
            return {r.id: (r.state, r.attempts) for r in outbox.listing(session)}
    finally:
        svc.repo.close()


def test_outbox_list_prints_one_line_per_row_and_nothing_carried(queued: str) -> None:
    result = invoke("outbox", "list", "--database", queued)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        "hs  rest-hook  sub-1  0/handshake  sent  attempts=1  created=2025-10-09T08:53:20Z  "
        "error=-",
        "ev1  rest-hook  sub-1  1/event  dead  attempts=0  created=2025-10-09T08:53:20Z  "
        "error=http-500",
        "rri1  mllp  mllp://rs:2576  0/message  pending  attempts=0  "
        "created=2025-10-09T08:53:20Z  error=-",
        "rri2  mllp  mllp://rs:2576  0/message  dead  attempts=0  "
        "created=2025-10-09T08:53:20Z  error=nack-AE",
    ]
    assert "4 row(s)" in result.stderr
    for secret in ("SECRET", "Testinen", "150390", "MSH", "partner.example", "Task/t"):
        assert secret not in result.output


@pytest.mark.parametrize(
    ("options", "ids"),
    [
        (["--state", "dead"], ["ev1", "rri2"]),
        (["--state", "pending"], ["rri1"]),
        (["--state", "sent"], ["hs"]),
        (["--state", "all", "--stream", "mllp://rs:2576"], ["rri1", "rri2"]),
        (["--state", "dead", "--stream", "sub-1"], ["ev1"]),
        (["--limit", "2"], ["hs", "ev1"]),
        (["--stream", "nobody"], []),
    ],
)
def test_outbox_list_filters(queued: str, options: list[str], ids: list[str]) -> None:
    result = invoke("outbox", "list", *options, "--database", queued)
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == ids


def test_outbox_resend_by_id_puts_the_dead_letter_back(queued: str) -> None:
    result = invoke("outbox", "resend", "--id", "rri2", "--database", queued)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 put back in the queue"
    assert outbox_state(queued) == {
        "hs": ("sent", 1),
        "ev1": ("dead", 0),
        "rri1": ("pending", 0),
        "rri2": ("pending", 0),
    }


def test_outbox_resend_says_which_ids_were_not_dead_letters(queued: str) -> None:
    result = invoke("outbox", "resend", "--id", "ev1", "--id", "rri1", "--database", queued)
    assert result.exit_code == 0, result.output
    assert "1 put back in the queue (1 of the ids not a dead letter)" in result.stdout
    assert outbox_state(queued)["ev1"] == ("pending", 0)


@pytest.mark.parametrize("ids", [["nobody"], ["rri1"], ["hs"]])  # unknown, pending, sent
def test_outbox_resend_of_no_dead_letter_by_id_fails(queued: str, ids: list[str]) -> None:
    args = [a for i in ids for a in ("--id", i)]
    result = CliRunner().invoke(cli.main, ["outbox", "resend", *args, "--database", queued])
    assert result.exit_code == 1
    assert "no dead letter has the given id" in result.stderr
    assert outbox_state(queued)["rri2"] == ("dead", 0)  # nothing else touched


def test_outbox_resend_a_stream_or_every_dead_letter(queued: str) -> None:
    result = invoke("outbox", "resend", "--stream", "sub-1", "--database", queued)
    assert (result.exit_code, result.stdout.strip()) == (0, "1 put back in the queue")
    assert outbox_state(queued)["ev1"] == ("pending", 0)
    assert outbox_state(queued)["rri2"] == ("dead", 0)
    result = invoke("outbox", "resend", "--all-dead", "--database", queued)
    assert (result.exit_code, result.stdout.strip()) == (0, "1 put back in the queue")
    assert {state for state, _ in outbox_state(queued).values()} == {"sent", "pending"}
    result = invoke("outbox", "resend", "--all-dead", "--database", queued)
    assert (result.exit_code, result.stdout.strip()) == (0, "0 put back in the queue")


@pytest.mark.parametrize(
    "options", [[], ["--id", "x", "--all-dead"], ["--stream", "s", "--all-dead"]]
)
def test_outbox_resend_takes_exactly_one_selection(queued: str, options: list[str]) -> None:
    result = CliRunner().invoke(cli.main, ["outbox", "resend", *options, "--database", queued])
    assert result.exit_code == 2
    assert "exactly one of --id, --stream, --all-dead" in result.stderr
