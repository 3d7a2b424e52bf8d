"""The coordination benchmark's data set: N synthetic clients, each shaped exactly like the sample
client Aino (samples/bundles/10-client-aino.json: Patient, network CareTeam, Goals, a
ServiceRequest + Task per responsibility, the shared plan, a Consent), ids `bc0000000-plan` ….

Loaded in process through the gateway's own transaction interaction (gateway.samples), so every
resource passes the same validation (structure + our profiles) as a REST write; never written
around it. Values are synthetic: HETUs in the 9xx test range. Never put real personal data here.
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from bench import data

# The holder (author of each plan, manager of each client's consent) and its coordinator role;
# the receiver of handovers (a social worker of adult social work) and its role.
HOLDER, HOLDER_ORG = "tyokykytiimi", "org-tyokykytiimi"
HOLDER_ROLE = "PractitionerRole/role-tyokykykoordinaattori"
RECEIVER, RECEIVER_ORG = "sosiaalipalvelut", "org-sosiaalipalvelut"
RECEIVER_ROLE = "PractitionerRole/role-sosiaalityontekija"
IRCP = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CLIENTS_PER_BUNDLE = 10
# What $follow-up reports per client on 2027-03-01 (bench/coordination_ops.FOLLOW_UP_DATE): the
# plan past its review date, Kela's and the work trial's responsibilities overdue.
FOLLOW_UP_ITEMS = 3


def client_id(n: int) -> str:
    return f"bc{n:07d}"


# Patterns for the load generators (one %07d, filled with a client number).
PLAN = "bc%07d-plan"
CARETEAM = "bc%07d-careteam"


@cache
def _template() -> str:
    from gateway.samples import SAMPLES_DIR

    return (SAMPLES_DIR / "10-client-aino.json").read_text(encoding="utf-8")


def client(n: int) -> list[dict[str, Any]]:
    """Client n's resources: Aino's, renamed, with their own HETU; the Consent also permits the
    handover receiver (its social worker must see the network to accept); no sample Provenance."""
    cid = client_id(n)
    text = _template().replace('"aino', f'"{cid}').replace("/aino", f"/{cid}")
    out = []
    for entry in orjson.loads(text)["entry"]:
        r = entry["resource"]
        if r["resourceType"] == "Provenance":
            continue
        if r["resourceType"] == "Patient":
            r["identifier"] = copy.deepcopy(data.patient(n)["identifier"])
        if r["resourceType"] == "Consent":
            actor = copy.deepcopy(r["provision"]["actor"][0])
            actor["reference"] = {"reference": f"Organization/{RECEIVER_ORG}"}
            r["provision"]["actor"].append(actor)
        out.append(r)
    return out


def bundle(first: int, last: int) -> dict[str, Any]:
    """One transaction of clients [first, last), PUT under their own ids."""
    resources = [r for n in range(first, last) for r in client(n)]
    return data.put_bundle(resources)


# -- loading, in process (before any server starts) -----------------------------------------------
_services = None


def _chunk(url: str, first: int, last: int) -> int:
    global _services
    from gateway.samples import load_document

    if _services is None:
        from gateway.app import build_services
        from gateway.settings import Settings

        _services = build_services(Settings(database_url=url))
    if first == last:  # the network: Organizations, Practitioners, PractitionerRoles
        from gateway.samples import SAMPLES_DIR, load_file

        return sum(load_file(_services, SAMPLES_DIR / "00-network.json").statuses.values())
    result = load_document(_services, bundle(first, last), Path("bench-coordination"))
    if result.failed:
        raise RuntimeError(f"clients {first}..{last}: {dict(result.statuses)}")
    return sum(result.statuses.values())


def load(url: str, clients: int, procs: int) -> tuple[int, float]:
    """Load the network and `clients` clients; (resources, seconds)."""
    from bench import databases

    start = time.perf_counter()
    done = _chunk(url, 0, 0)  # creates the schema once, before parallel writers
    step = CLIENTS_PER_BUNDLE
    chunks = [(p, min(p + step, clients)) for p in range(0, clients, step)]
    if procs == 1:  # SQLite: one writer anyway
        done += sum(_chunk(url, first, last) for first, last in chunks)
    else:  # spawn: a forked child would share this process's open database connection
        with ProcessPoolExecutor(procs, mp_context=multiprocessing.get_context("spawn")) as pool:
            done += sum(j.result() for j in [pool.submit(_chunk, url, *c) for c in chunks])
    databases.analyze(url)
    return done, time.perf_counter() - start


def close() -> None:
    """Close this process's services (the loader's database connections)."""
    global _services
    if _services is not None:
        _services.repo.close()
        _services = None
