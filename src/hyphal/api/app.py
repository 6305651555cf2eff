"""Builds the daemon's FastAPI application from its routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from hyphal import __version__
from hyphal.api.admin import admin_router
from hyphal.api.admission import admission_router
from hyphal.api.dns import dns_router
from hyphal.api.errors import document_validation_as_400, install_error_handlers
from hyphal.api.guard import RequestGuard
from hyphal.api.ingress import ingress_router
from hyphal.api.members import members_router
from hyphal.api.messages import messages_router
from hyphal.api.service_addresses import service_addresses_router
from hyphal.api.services import services_router
from hyphal.api.topics import topics_router

if TYPE_CHECKING:
    from hyphal.node import Node


def create_app(node: Node, token: str | None = None, bind_host: str = "127.0.0.1") -> FastAPI:
    """The daemon's API app for ``node``, behind the request guard for ``bind_host``.

    With ``token`` every request must carry it as a bearer token.
    """
    return build_app(
        admin_router(node),
        messages_router(node.message_service, node.key_for_name),
        topics_router(node.message_service),
        members_router(node.members),
        dns_router(node),
        ingress_router(node.parts),
        admission_router(node.members, node.gate),
        services_router(node.services),
        service_addresses_router(node),
        token=token,
        bind_host=bind_host,
    )


def build_app(*routers: APIRouter, token: str | None, bind_host: str) -> FastAPI:
    """An app serving ``routers`` as the daemon serves them: guard, JSON errors, schema."""
    app = FastAPI(
        title="hyphal API",
        version=__version__,
        description="Local API of a hyphal node (Mycelium-compatible paths and shapes).",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    install_error_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_validation_as_400(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestGuard, bind_host=bind_host, token=token)
    for router in routers:
        app.include_router(router)
    return app
