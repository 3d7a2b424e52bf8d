"""The `plan-gateway` command: serve the FHIR API, load FHIR files, validate FHIR files offline,
list and re-send the delivery outbox.

Output names files, statuses and element paths only; it must never print resource content or
request data (personal data stays out of terminals and logs).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

import gateway
from gateway.errors import FhirError, Issue
from gateway.settings import Settings

DEFAULT_DATABASE = "sqlite:///data/gateway.db"
PATHS = click.Path(exists=True, path_type=Path)


def absolute_database_url(url: str) -> str:
    """A SQLite URL (or bare path) made absolute against the working directory, so every worker
    process opens the same file; other URLs unchanged."""
    if url.startswith(("postgresql://", "postgres://")):
        return url
    path = Path(url.removeprefix("sqlite:///"))
    return f"sqlite:///{path.resolve()}"


def redacted(url: str) -> str:
    """The URL with any password replaced, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _database_option(fn: Any) -> Any:
    return click.option(
        "--database",
        envvar="PLAN_GATEWAY_DATABASE",
        default=DEFAULT_DATABASE,
        show_default=True,
        help="sqlite:///path (default, under the working directory) or postgresql://…",
    )(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(gateway.__version__, prog_name="plan-gateway")
def main() -> None:
    """fhir-plan-gateway: a FHIR R4 gateway for the client's coordinator, plan and network."""


def _report_error(path: Path, err: FhirError) -> None:
    from gateway.samples import describe

    click.echo(f"{path}: failed ({err.status})", err=True)
    for line in describe(err):
        click.echo(f"  {line}", err=True)


def _load(settings: Settings, paths: list[Path] | None) -> bool:
    """Load the files (or the samples when `paths` is None); True when everything loaded."""
    from gateway.app import build_services
    from gateway.samples import json_files, load_file, sample_files

    files = sample_files() if paths is None else json_files(paths)
    svc = build_services(settings)
    ok = True
    try:
        for path in files:
            try:
                result = load_file(svc, path)
            except FhirError as err:
                _report_error(path, err)
                ok = False
                continue
            counts = ", ".join(f"{n} x {s}" for s, n in sorted(result.statuses.items()))
            click.echo(f"{path}: {result.kind}, {counts or 'no entries'}")
            ok = ok and not result.failed
    finally:
        svc.repo.close()
    return ok


def run_server(host: str, port: int, workers: int) -> None:
    """Start uvicorn; workers build their app from the environment (PLAN_GATEWAY_*)."""
    import uvicorn

    # The access log would print query strings (e.g. identifier=<HETU>): personal data. Off.
    uvicorn.run(
        "gateway.app:server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
    )


def _command() -> str:
    """How to run this command again, for the hints we print: `plan-gateway` when that is the
    one on PATH, else its path (relative to the working directory when below it, as
    `.venv/bin/plan-gateway` for ./scripts/serve)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("plan-gateway")
    on_path = shutil.which("plan-gateway")
    if argv0.name != "plan-gateway" or (on_path and Path(on_path).resolve() == argv0.resolve()):
        return "plan-gateway"
    try:
        return str(argv0.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(argv0)


def _token_hint(root: str, samples: bool) -> list[str]:
    """What a tester does to call the API: get a demo organisation's token, send it."""
    example = "Patient/aino" if samples else "Patient"
    return [
        "Every FHIR request needs a bearer token (demo organisations: samples/organisations/):",
        f"  TOKEN=$({_command()} token --org sote-keskus --base-url {root})",
        f'  curl -H "Authorization: Bearer $TOKEN" {root}/fhir/{example}',
        "A token lasts 5 minutes; get a new one when the API answers 401.",
    ]


NO_AUTH_WARNING = (
    "WARNING: authentication is OFF (--no-auth / PLAN_GATEWAY_REQUIRE_AUTH=0). UNSAFE: with no "
    "caller there is no consent gate and no audit trail, and anyone who can reach this port "
    "reads and writes everything. Local experiments with sample data only."
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@_database_option
@click.option("--samples/--no-samples", default=True, show_default=True, help="Load samples/.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--no-auth",
    is_flag=True,
    help="UNSAFE, local experiments only: serve without bearer tokens (no caller, so no consent "
    "gate and no audit). Same as PLAN_GATEWAY_REQUIRE_AUTH=0.",
)
@click.option(
    "--mllp-port",
    type=click.IntRange(1, 65535),
    envvar="PLAN_GATEWAY_MLLP_PORT",
    help="Also listen for HL7 v2 over MLLP on this port (PLAN_GATEWAY_MLLP_HOST, default "
    "127.0.0.1); senders are the registrations' hl7v2 sections.",
)
def serve(
    host: str,
    port: int,
    database: str,
    samples: bool,
    workers: int,
    no_auth: bool,
    mllp_port: int | None,
) -> None:
    """Serve the FHIR API at http://HOST:PORT/fhir; every FHIR request needs a bearer token
    (`plan-gateway token --org NAME`). With --mllp-port, HL7 v2 messages over MLLP too."""
    from gateway.journeys import sample_journeys

    database = absolute_database_url(database)
    if no_auth:
        os.environ["PLAN_GATEWAY_REQUIRE_AUTH"] = "0"  # what every worker process reads
    if mllp_port is not None:
        os.environ["PLAN_GATEWAY_MLLP_PORT"] = str(mllp_port)  # each worker listens (reuse_port)
    try:
        require_auth = Settings(database_url=database).require_auth
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"database: {redacted(database)}")
    if samples and not _load(Settings(database_url=database, load_samples=True), None):
        raise click.ClickException("the samples did not load; see above")
    if samples and not _replay(Settings(database_url=database), sample_journeys(), strict=False):
        # Journeys are demonstrations on top of the samples: the server starts without them.
        click.echo("WARNING: a sample journey did not replay (see above)", err=True)
    # Each worker process reads its settings from the environment.
    os.environ["PLAN_GATEWAY_DATABASE"] = database
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    root = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"
    click.echo(f"FHIR base: {root}/fhir")
    # what the delivery relay names in notifications unless PLAN_GATEWAY_BASE_URL says otherwise
    os.environ.setdefault("PLAN_GATEWAY_DELIVERY_BASE", f"{root}/fhir")
    if mllp_port is not None:
        mllp_host = os.environ.get("PLAN_GATEWAY_MLLP_HOST", "127.0.0.1")
        click.echo(f"HL7 v2 over MLLP: {mllp_host}:{mllp_port}")
    if require_auth:
        for line in _token_hint(root, samples):
            click.echo(line)
    else:
        click.echo(NO_AUTH_WARNING, err=True)
    run_server(host, port, workers)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=PATHS)
@_database_option
def load(paths: tuple[Path, ...], database: str) -> None:
    """Load FHIR JSON resources or Bundles (files or directories of *.json), and replay client
    journeys (a directory with steps.json, a directory of them, or samples/: its bundles, then
    its journeys).

    Transaction and batch Bundles go through the same transaction interaction as POST [base];
    a resource with an id is PUT (idempotent), one without is created. A journey's steps run
    as its organisations through the HTTP API, in-process.
    """
    from gateway.journeys import split_paths

    settings = Settings(database_url=absolute_database_url(database))
    files, journeys = split_paths(paths)
    loaded = _load(settings, files)
    if not (_replay(settings, journeys, strict=True) and loaded):
        sys.exit(1)


def _replay(settings: Settings, journeys: list[Path], strict: bool) -> bool:
    """Replay the journeys in-process; True when each was replayed (or was already). `strict`:
    one replayed part-way before (left alone) counts as a failure too."""
    from gateway.journeys import replay_in_process

    if not journeys:
        return True
    results = replay_in_process(settings, journeys, click.echo)
    bad = ("failed", "partial") if strict else ("failed",)
    return not any(r.state in bad for r in results)


def document_issues(doc: Any) -> list[Issue]:
    """Every problem of a parsed file (a resource or a Bundle of resources), offline."""
    from gateway.validation.validator import Validator, structure_issues

    validator = Validator()
    if not (isinstance(doc, dict) and doc.get("resourceType") == "Bundle"):
        return _resource_issues(validator, doc, "")
    entries = doc.get("entry") if isinstance(doc.get("entry"), list) else []
    envelope = {**doc, "entry": [_without_resource(e) for e in entries]}
    issues = structure_issues("Bundle", envelope)
    for n, entry in enumerate(entries):
        if isinstance(entry, dict) and "resource" in entry:
            issues += _resource_issues(validator, entry["resource"], f"Bundle.entry[{n}].resource")
    return issues


def _without_resource(entry: Any) -> Any:
    return {k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, dict) else entry


def _resource_issues(validator: Any, resource: Any, prefix: str) -> list[Issue]:
    """Issues of one resource; inside a Bundle their paths start at the entry."""
    if not isinstance(resource, dict):
        return [Issue("a FHIR resource must be a JSON object", (prefix or "resource",))]
    rid = resource.get("id")
    try:
        validator.validate_resource(resource, rid if isinstance(rid, str) else None)
    except FhirError as err:
        if not prefix:
            return err.issues
        rtype = str(resource.get("resourceType"))
        return [
            Issue(
                i.diagnostics, tuple(_within(prefix, rtype, e) for e in i.expression) or (prefix,)
            )
            for i in err.issues
        ]
    return []


def _within(prefix: str, resource_type: str, expression: str) -> str:
    """`CarePlan.status` inside entry 3 -> `Bundle.entry[3].resource.status`."""
    if expression == resource_type or expression.startswith(resource_type + "."):
        return prefix + expression[len(resource_type) :]
    return f"{prefix}.{expression}"


@main.command()
@click.argument("paths", nargs=-1, required=True, type=PATHS)
def validate(paths: tuple[Path, ...]) -> None:
    """Validate FHIR JSON resources or Bundles offline; print each problem with its path."""
    from gateway.samples import json_files, read_json

    problems = 0
    for path in json_files(paths):
        try:
            issues = document_issues(read_json(path))
        except FhirError as err:
            issues = err.issues
        for issue in issues:
            where = ", ".join(issue.expression)
            click.echo(
                f"{path}: {where}: {issue.diagnostics}" if where else f"{path}: {issue.diagnostics}"
            )
        problems += len(issues)
        if not issues:
            click.echo(f"{path}: ok")
    if problems:
        click.echo(f"{problems} problem(s)", err=True)
        sys.exit(1)


@main.command()
@click.option("--org", "org_name", required=True, help="client_id or Organization id, e.g. kela.")
@click.option("--scope", "scopes", multiple=True, help="Repeatable; default: all registered.")
@click.option("--base-url", help="Ask this running gateway (its root or FHIR base URL).")
@_database_option
def token(org_name: str, scopes: tuple[str, ...], base_url: str | None, database: str) -> None:
    """Print an access token for a demo organisation (samples/organisations), signed with its
    demo key: from a running gateway (--base-url) or issued here against --database."""
    from gateway.security import demo_client

    settings = Settings(database_url=absolute_database_url(database))
    try:
        if base_url:
            access = demo_client.remote_token(settings, org_name, scopes, base_url)
        else:
            access = demo_client.local_token(settings, org_name, scopes)
    except demo_client.TokenFailed as err:
        raise click.ClickException(str(err)) from None
    click.echo(access)


@main.command()
@click.option("--from", "source", type=click.Choice(["hl7v2", "cda", "fhir"]), required=True)
@click.option("--to", "target", type=click.Choice(["fhir", "cda"]), required=True)
@click.option(
    "--kind", type=click.Choice(["hosu", "social-plan"]), default="hosu", show_default=True
)
@click.option(
    "--id-key-file",
    envvar="PLAN_GATEWAY_ID_KEY_FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The deployment's pseudonym key (hex), so Patient ids match that gateway's; default: "
    "the example key (ids differ from any deployment's).",
)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def convert(source: str, target: str, kind: str, id_key_file: Path | None, path: Path) -> None:
    """Convert one file offline: an HL7 v2 message or a CDA document to a FHIR transaction
    Bundle (JSON), or FHIR resources (a Bundle) to a CDA document (XML, --kind). Output on
    stdout; a problem as an OperationOutcome (JSON) on stderr, exit code 1."""
    from gateway.intake.convert import ConvertError, run

    try:
        output, warnings = run(source, target, path.read_bytes(), kind, id_key_file)
    except ConvertError as err:
        click.echo(err.outcome_json(), err=True)
        sys.exit(1)
    for warning in warnings:
        click.echo(warning, err=True)
    sys.stdout.buffer.write(output)
    if not output.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")


# -- the outbox: what the gateway pushes, for the operator ---------------------------------------
@main.group()
def outbox() -> None:
    """The delivery outbox (subscription notifications and HL7 v2 answers): list its rows,
    put dead letters back in the queue. Never shows what a row carries."""


def _outbox_repo(database: str) -> Any:
    from gateway.search.engine import SearchEngine
    from gateway.storage import open_repository

    return open_repository(absolute_database_url(database), SearchEngine().index)


def _when(us: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@outbox.command("list")
@click.option(
    "--state",
    type=click.Choice(["pending", "dead", "sent", "all"]),
    default="all",
    show_default=True,
    help="sent includes rows withheld by consent.",
)
@click.option("--stream", help="One stream: a Subscription id, or an mllp:// endpoint.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@_database_option
def outbox_list(state: str, stream: str | None, limit: int, database: str) -> None:
    """One line per row, oldest first: id, channel, stream, event number/kind, state, attempts,
    when it was queued, and its last error (a code). Never the payload, headers or endpoint."""
    from gateway.delivery.outbox import listing

    repo = _outbox_repo(database)
    try:
        with repo.reader() as session:
            rows = listing(
                session, state=None if state == "all" else state, stream=stream, limit=limit
            )
    finally:
        repo.close()
    for r in rows:
        click.echo(
            f"{r.id}  {r.channel}  {r.stream}  {r.seq}/{r.kind}  {r.state}  "
            f"attempts={r.attempts}  created={_when(r.created_us)}  error={r.last_error or '-'}"
        )
    click.echo(f"{len(rows)} row(s)", err=True)


@outbox.command("resend")
@click.option("--id", "ids", multiple=True, help="A dead letter's id (repeatable).")
@click.option("--stream", help="Every dead letter of this stream.")
@click.option("--all-dead", is_flag=True, help="Every dead letter.")
@_database_option
def outbox_resend(ids: tuple[str, ...], stream: str | None, all_dead: bool, database: str) -> None:
    """Put dead letters back in the queue with a new retry window; each goes again in its old
    place in its stream's order (receivers de-duplicate by its id and event number)."""
    import time

    from gateway.delivery.outbox import resend

    if sum((bool(ids), stream is not None, all_dead)) != 1:
        raise click.UsageError("give exactly one of --id, --stream, --all-dead")
    repo = _outbox_repo(database)
    try:
        with repo.writer() as session:
            count = resend(
                session, time.time_ns() // 1000, ids=ids, stream=stream, all_dead=all_dead
            )
    finally:
        repo.close()
    if ids and count == 0:
        raise click.ClickException("no dead letter has the given id(s); see `outbox list`")
    missing = len(set(ids)) - count
    missing_text = f" ({missing} of the ids not a dead letter)" if missing > 0 else ""
    click.echo(f"{count} put back in the queue{missing_text}")
