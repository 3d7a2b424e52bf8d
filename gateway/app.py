"""create_app(settings): the one place that wires storage, search, validation and the HTTP shell."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import delivery
from gateway.audit.writer import AuditWriter
from gateway.consent.enforcement import install_write_guards
from gateway.coordination import ALL_OPERATIONS
from gateway.coordination.guards import guard_write
from gateway.delivery import routes as upstream_routes
from gateway.delivery.operations import OPERATIONS as DELIVERY_OPERATIONS
from gateway.documents import DOCUMENT_OPERATIONS
from gateway.errors import Category, FhirError
from gateway.fhir_api.context import Services
from gateway.fhir_api.operations import Registry
from gateway.fhir_api.routes import install, outcome_response
from gateway.intake import return_path
from gateway.search.engine import SearchEngine
from gateway.security.authority import build_authority
from gateway.security.pseudonyms import load_ids
from gateway.security.routes import install_auth
from gateway.settings import Settings
from gateway.storage import open_repository
from gateway.validation.validator import Validator

_HTTP_CATEGORY = {
    404: Category.NOT_FOUND,
    405: Category.METHOD_NOT_ALLOWED,
    413: Category.TOO_LARGE,
    415: Category.UNSUPPORTED_MEDIA,
}


def build_services(settings: Settings) -> Services:
    install_write_guards([guard_write])  # the named coordinator changes only by its operations
    search = SearchEngine()
    repo = open_repository(settings.database_url, search.index)
    return Services(
        repo=repo,
        settings=settings,
        search=search,
        validator=Validator(),
        security=build_authority(settings),
        audit=AuditWriter(repo, settings.audit_reads_fsync),
        operations=Registry(ALL_OPERATIONS + DOCUMENT_OPERATIONS + DELIVERY_OPERATIONS),
        ids=load_ids(settings),
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or Settings()
    svc = services or build_services(settings)
    return_path.install(svc)  # Task changes enqueue RRI^I12 in their own transaction
    delivery.install(svc)  # subscriptions: events queued in the writing transaction

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mllp, relay = None, None
        if settings.mllp_port is not None:  # HL7 v2 over MLLP on this process's loop
            from gateway.intake.mllp_server import MllpServer

            # reuse_port: every worker process listens; the kernel spreads the connections
            mllp = MllpServer(svc, settings.mllp_host, settings.mllp_port, reuse_port=True)
            await mllp.start()
        if settings.delivery_relay:  # pushes to partners and record systems (the outbox)
            from gateway.delivery.relay import Relay

            relay = Relay(svc)
            relay.start()
        app.state.relay = relay
        app.state.mllp = mllp
        yield
        if relay is not None:
            relay.stop()
        if mllp is not None:
            await mllp.stop()
        if svc.audit is not None:
            svc.audit.close()
        svc.repo.close()

    app = FastAPI(title="fhir-plan-gateway", version="0.1.0", lifespan=lifespan)
    app.state.services = svc

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):  # type: ignore[no-untyped-def]
        category = _HTTP_CATEGORY.get(exc.status_code, Category.INVALID)
        return outcome_response(FhirError(category, str(exc.detail)))

    @app.exception_handler(RequestValidationError)
    async def request_error(request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        return outcome_response(FhirError(Category.INVALID, "the request is not well-formed"))

    install_auth(app, svc)  # before the FHIR routes: /fhir/.well-known/… is not a resource type
    install(app, svc)
    upstream_routes.install(app, svc)  # as a partner: upstreams' notifications in
    return app


def server_app() -> FastAPI:
    """The app of one server process (`plan-gateway serve`, uvicorn factory): built, then the
    heap built so far (definitions, compiled profiles, search registry) moved out of the
    garbage collector's reach. A large request (a follow-up report decides thousands of
    resources) otherwise triggers full collections that walk all of it again and again (measured:
    30 to 40 % less CPU per `$follow-up` request). Not for tests: they build many apps."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
