"""JSON errors for the API: every bad request gets a 4xx with {"error": "..."}, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hyphal.bus.core import BusError
from hyphal.bus.topics import TopicError
from hyphal.dataplane.errors import ServiceError

log = logging.getLogger("hyphal.api")

_DESCRIPTIONS = {
    400: "Invalid request",
    401: "Missing or wrong bearer token",
    404: "Not found",
    408: "Timed out",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported content type",
    429: "Too many requests",
}


class ErrorBody(BaseModel):
    """Every error the API answers: a sentence that says what is wrong."""

    error: str


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message})


def error_responses(
    *codes: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses=` entries documenting JSON errors with these status codes.

    ``described`` overrides the generic description of a code for these endpoints.
    """
    texts = {**_DESCRIPTIONS, **(described or {})}
    return {code: {"model": ErrorBody, "description": texts[code]} for code in codes}


def text_error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """Like error_responses, for the endpoints whose errors Mycelium's spec makes text/plain."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
        for code in codes
    }


def document_validation_as_400(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents validation errors as 422; hyphal answers them with 400 and ErrorBody."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": _DESCRIPTIONS[400],
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                    },
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["ErrorBody"] = ErrorBody.model_json_schema()
    return schema


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return error(400, f"invalid request: {details}")

    # FastAPI's HTTPException subclasses Starlette's; Starlette's own is raised by the framework
    # itself (e.g. a body that is not JSON), so handling the base class covers both.
    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(BusError)
    async def _bus(_: Request, exc: BusError) -> JSONResponse:
        return error(exc.status, str(exc))

    # Typed node failures (bad destination, no route, ...) carry their own status.
    @app.exception_handler(ServiceError)
    async def _service(_: Request, exc: ServiceError) -> JSONResponse:
        return error(exc.status, str(exc))

    # Raised by the topic table for a topic that is not configured.
    @app.exception_handler(TopicError)
    async def _topic(_: Request, exc: TopicError) -> JSONResponse:
        return error(404, str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error serving %s %s", request.method, request.url.path)
        return error(500, "internal error; see the daemon's log")
