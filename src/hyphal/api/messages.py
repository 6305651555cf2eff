"""Mycelium-compatible message endpoints (``/api/v1/messages...``) as a FastAPI router.

Mount with ``app.include_router(messages_router(lambda: node.messages))``. Field names and
status codes follow Mycelium's OpenAPI spec; hyphal additions are the optional ``deadline`` query
parameter of ``POST /api/v1/messages`` (seconds, default 300, up to 30 days), the ``reason``,
``dstPk`` and ``reply`` fields of the status response, and a raw-bytes path beside the JSON one.
As in Mycelium, a destination that is not reachable now is accepted (201): a message to an
overlay address no known node owns waits for a route until its deadline (``dstPk`` is null
until then), and ends ``aborted`` with a ``reason`` if none appears.

* ``POST /api/v1/messages`` with ``Content-Type: application/octet-stream`` takes the payload as
  the raw request body and the destination / topic as query parameters (``dst_pk`` or ``dst_ip``,
  ``topic`` in base64);
* ``GET /api/v1/messages`` (and a ``reply_timeout`` POST) with ``Accept: application/octet-stream``
  answers with the raw payload and the metadata in ``X-Hyphal-*`` response headers.

Request bodies of the two POST routes are read here, not by FastAPI, so that an oversized body is
refused with 413 from its ``Content-Length`` (or, for a chunked body, as soon as the running count
passes the limit) before anything is buffered, parsed or base64-decoded. Schema violations raise
``RequestValidationError`` (the daemon's handler answers 400 ``{"error": ...}``); every other bad
input raises ``HTTPException``, which the daemon also answers as JSON ``{"error": "..."}``.
Bus limits map to 413 (message too large) and 429 (outbox full). Topics in paths may use the
standard or the URL-safe base64 alphabet. Base64 is decoded strictly (alphabet, length a multiple
of four, at most two ``=``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.background import BackgroundTask

from hyphal.api.codec import (
    MAX_TOPIC_B64,
    NameLookup,
    b64_field,
    bad,
    message_destination,
    message_json,
    off_loop,
    parse_msg_id,
    topic_from_b64,
)
from hyphal.api.errors import error_responses
from hyphal.bus.core import MessageStatus
from hyphal.bus.inbox import InboundMessage
from hyphal.bus.service import MessageService
from hyphal.identity import address_for_public_key

PREFIX = "/api/v1/messages"
#: Longest long poll (GET ``timeout``) and reply wait (POST ``reply_timeout``), in seconds.
MAX_WAIT = 3600
#: Room in a JSON send/reply body beyond the base64 payload: dst, topic, keys, whitespace.
JSON_BODY_SLACK = 64 * 1024
OCTET_STREAM = "application/octet-stream"

# Raw-path response headers (GET with Accept: application/octet-stream).
H_ID = "X-Hyphal-Message-Id"
H_SRC_PK = "X-Hyphal-Src-Pk"
H_SRC_IP = "X-Hyphal-Src-Ip"
H_DST_PK = "X-Hyphal-Dst-Pk"
H_DST_IP = "X-Hyphal-Dst-Ip"
H_TOPIC = "X-Hyphal-Topic"
H_REPLY = "X-Hyphal-Reply"


class MessageDestination(BaseModel):
    """Exactly one of ip (overlay address) or pk (64 hex characters)."""

    ip: str | None = Field(default=None, description="An overlay IP in the receiver's subnet")
    pk: str | None = Field(default=None, description="Hex public key of the receiver")
    name: str | None = Field(
        default=None, description="(hyphal) The receiver's member name (see /members)"
    )


class PushMessageBody(BaseModel):
    dst: MessageDestination
    topic: str | None = Field(default=None, description="Optional base64 topic (<= 255 bytes)")
    payload: str = Field(description="Base64 payload")


class ReplyMessageBody(BaseModel):
    dst: MessageDestination | None = None
    topic: str | None = None
    payload: str


class PushMessageResponseId(BaseModel):
    id: str


class InboundMessageModel(BaseModel):
    """Mycelium's InboundMessage (``topic`` omitted when empty)."""

    id: str
    srcIp: str
    srcPk: str
    dstIp: str
    dstPk: str
    topic: str | None = None
    payload: str


_ERROR_TEXT = {
    400: "malformed input (bad base64, hex, id, destination, topic, subnet, ...)",
    404: "unknown destination, message id or topic",
    408: "no reply in time",
    409: "a reply to this id is still being sent",
    413: "request body or message too large",
    429: "outbox full; retry later",
}


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return error_responses(*codes, described=_ERROR_TEXT)


def _model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema with its ``$defs`` inlined, to embed in an OpenAPI request body."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    return dict(inline(schema))


_RAW_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}


def _request_body(schema: dict[str, Any], raw: bool) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if raw:
        content[OCTET_STREAM] = {"schema": _RAW_SCHEMA}
    return {"requestBody": {"required": True, "content": content}}


_RAW_HEADERS: dict[str, Any] = {
    H_ID: {"description": "message id (16 hex)", "schema": {"type": "string"}},
    H_SRC_PK: {"description": "sender's public key (hex)", "schema": {"type": "string"}},
    H_SRC_IP: {"description": "sender's overlay address", "schema": {"type": "string"}},
    H_DST_PK: {"description": "receiver's public key (hex)", "schema": {"type": "string"}},
    H_DST_IP: {"description": "receiver's overlay address", "schema": {"type": "string"}},
    H_TOPIC: {"description": "base64 topic (absent when empty)", "schema": {"type": "string"}},
    H_REPLY: {"description": "1 when the message is a reply", "schema": {"type": "string"}},
}


def _message_content() -> dict[str, Any]:
    return {
        "application/json": {"schema": InboundMessageModel.model_json_schema()},
        OCTET_STREAM: {"schema": _RAW_SCHEMA},
    }


def message_headers(message: InboundMessage) -> dict[str, str]:
    """The raw path's metadata headers of a message."""
    headers = {
        H_ID: message.msg_id.hex(),
        H_SRC_PK: message.src_pk.hex(),
        H_SRC_IP: str(address_for_public_key(message.src_pk)),
        H_DST_PK: message.dst_pk.hex(),
        H_DST_IP: str(address_for_public_key(message.dst_pk)),
    }
    if message.topic:
        headers[H_TOPIC] = base64.b64encode(message.topic).decode()
    if message.reply:
        headers[H_REPLY] = "1"
    return headers


async def _message_response(message: InboundMessage, raw: bool, status: int = 200) -> Response:
    if raw:
        return Response(
            message.payload,
            status_code=status,
            media_type=OCTET_STREAM,
            headers=message_headers(message),
        )
    return Response(
        await off_loop(len(message.payload), message_json, message),
        status_code=status,
        media_type="application/json",
    )


def _wants_raw(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return OCTET_STREAM in accept and "application/json" not in accept


def _is_raw_body(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return ctype.split(";", 1)[0].strip().lower() == OCTET_STREAM


def status_json(st: MessageStatus) -> dict[str, Any]:
    """Mycelium's MessageStatusResponse shape (plus reason / dstPk / reply)."""
    state: Any = st.state
    if st.state == "sending":
        state = {"sending": {"pending": st.pending, "sent": st.sent, "acked": st.acked}}
    out: dict[str, Any] = {
        "dst": str(IPv6Address(st.dst_ip)),
        "dstPk": None if st.dst_pk is None else st.dst_pk.hex(),
        "state": state,
        "created": int(st.created),
        "deadline": int(st.deadline),
        "msgLen": st.msg_len,
        "reply": st.reply,
    }
    if st.reason is not None:
        out["reason"] = st.reason
    return out


class BodyTooLarge(Exception):
    """The request body is over the limit (by its Content-Length or by what has arrived)."""


def _too_large(limit: int) -> Response:
    # Connection: close makes the server drop the connection instead of reading (and
    # discarding) the rest of a body that may be hundreds of megabytes.
    return JSONResponse(
        {"error": f"request body larger than {limit} bytes"},
        status_code=413,
        headers={"Connection": "close"},
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (BodyTooLarge) as soon as it is known to exceed ``limit``.

    The declared Content-Length is checked before a byte is read; a chunked body is counted as
    it streams in, so at most ``limit`` bytes (plus one network read) are ever held.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise BodyTooLarge
        except ValueError:
            raise bad(400, "bad Content-Length") from None
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        if part:
            size += len(part)
            if size > limit:
                raise BodyTooLarge
            parts.append(part)
    if len(parts) == 1:
        return parts[0]
    return b"".join(parts)


def _parse_json(raw: bytes, model: type[PushMessageBody] | type[ReplyMessageBody]) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            errors.append(
                {
                    "type": e["type"],
                    "loc": ("body", *e["loc"]),
                    "msg": e["msg"],
                    "input": None,
                }
            )
        raise RequestValidationError(errors) from None


async def _ack_on_loop(service: MessageService, msg_id: bytes) -> None:
    # A coroutine on purpose: Starlette runs a plain function's background task in a thread,
    # and the bus (and its SQLite store) belong to the event loop.
    service.ack(msg_id)


async def _client_gone(request: Request) -> None:
    """Returns when the HTTP client disconnects (the request body is empty or already read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _take_while_connected(
    service: MessageService,
    request: Request,
    topic: bytes | None,
    timeout: float,  # noqa: ASYNC109
) -> InboundMessage | None:
    """Lease the next message, giving up (and leasing nothing) if the client leaves first."""
    take = asyncio.ensure_future(service.take(topic, timeout))
    gone = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({take, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        gone.cancel()
        take.cancel()
        if take.done() and not take.cancelled() and take.exception() is None:
            leased = take.result()
            if leased is not None:
                service.release(leased.msg_id)
        raise
    left = gone.done()
    gone.cancel()
    if not take.done():
        # Cancelled before it resumed, the take leases nothing.
        take.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await take
        return None
    message = take.result()
    if message is not None and left:
        service.release(message.msg_id)  # the client left as the message arrived
        return None
    return message


def messages_router(
    get_service: Callable[[], MessageService], key_for_name: NameLookup | None = None
) -> APIRouter:
    """The message endpoints, calling ``get_service()`` on every request; ``key_for_name``
    resolves a destination's member ``name`` (none: names are not accepted)."""
    names: dict[str, Any] = {} if key_for_name is None else {"key_for_name": key_for_name}
    router = APIRouter(prefix=PREFIX, tags=["Message"])

    def json_limit(service: MessageService) -> int:
        return -(-service.core.limits.max_message_size // 3) * 4 + JSON_BODY_SLACK

    @router.get(
        "",
        responses={
            200: {
                "description": "the oldest matching message (raw with Accept: application/octet-stream)",
                "content": _message_content(),
                "headers": _RAW_HEADERS,
            },
            204: {"description": "no message arrived in time"},
            **_errors(400),
        },
        response_class=Response,
    )
    async def pop_message(
        request: Request,
        peek: bool = False,
        timeout: Annotated[  # noqa: ASYNC109
            int, Query(ge=0, le=MAX_WAIT, description="long poll: seconds to wait")
        ] = 0,
        topic: Annotated[
            str | None, Query(max_length=MAX_TOPIC_B64, description="base64 topic prefix")
        ] = None,
        explicit_ack: Annotated[
            bool,
            Query(
                description="hyphal: keep the message leased until POST /messages/ack/{id} "
                "(unacked leases return to the inbox after the lease time)"
            ),
        ] = False,
    ) -> Response:
        service = get_service()
        prefix = topic_from_b64(topic) if topic is not None else None
        if peek:
            message = await service.pop(prefix, peek=True, timeout=float(timeout))
            if message is None:
                return Response(status_code=204)
            return await _message_response(message, _wants_raw(request))
        message = await _take_while_connected(service, request, prefix, float(timeout))
        if message is None:
            return Response(status_code=204)
        try:
            response = await _message_response(message, _wants_raw(request))
        except BaseException:
            service.release(message.msg_id)
            raise
        if not explicit_ack:
            # Removed from the inbox (and READ sent) only once the response has been handed to
            # the connection; a client that went away while waiting never consumes a message.
            response.background = BackgroundTask(_ack_on_loop, service, message.msg_id)
        return response

    @router.post(
        "/ack/{msg_id}",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "removed from the inbox, READ sent"}, **_errors(400, 404)},
    )
    async def ack_message(msg_id: str) -> Response:
        """hyphal: the client has a message it took with ``explicit_ack``; remove it."""
        if not get_service().ack(parse_msg_id(msg_id)):
            raise bad(404, "no leased message with this id (never taken, or the lease ran out)")
        return Response(status_code=204)

    @router.post(
        "",
        status_code=201,
        response_class=Response,
        responses={
            200: {
                "description": "the reply arrived in time (raw with Accept: application/octet-stream)",
                "content": _message_content(),
                "headers": _RAW_HEADERS,
            },
            201: {"model": PushMessageResponseId, "description": "queued"},
            408: {"model": PushMessageResponseId, "description": "no reply in time"},
            **_errors(400, 404, 413, 429),
        },
        openapi_extra=_request_body(_model_schema(PushMessageBody), raw=True),
    )
    async def push_message(
        request: Request,
        reply_timeout: Annotated[
            int | None, Query(ge=0, le=MAX_WAIT, description="seconds to wait for the reply")
        ] = None,
        deadline: Annotated[
            float | None,
            Query(gt=0, le=30 * 86400, description="seconds the bus keeps trying (hyphal)"),
        ] = None,
        dst_pk: Annotated[
            str | None, Query(description="raw body only: receiver's hex public key")
        ] = None,
        dst_ip: Annotated[
            str | None, Query(description="raw body only: an overlay IP of the receiver")
        ] = None,
        dst_name: Annotated[
            str | None, Query(description="raw body only: the receiver's member name (hyphal)")
        ] = None,
        topic: Annotated[
            str | None, Query(description="raw body only: base64 topic (<= 255 bytes)")
        ] = None,
    ) -> Response:
        service = get_service()
        if _is_raw_body(request):
            dst = message_destination(
                dst_ip, dst_pk, service.owner_of, "dst", name=dst_name, **names
            )
            topic_bytes = topic_from_b64(topic)
            limit = service.core.limits.max_message_size
            try:
                payload = await read_body(request, limit)
            except BodyTooLarge:
                return _too_large(limit)
        else:
            limit = json_limit(service)
            try:
                raw = await read_body(request, limit)
            except BodyTooLarge:
                return _too_large(limit)
            body: PushMessageBody = await off_loop(len(raw), _parse_json, raw, PushMessageBody)
            del raw
            dst = message_destination(
                body.dst.ip, body.dst.pk, service.owner_of, "dst", name=body.dst.name, **names
            )
            topic_bytes = topic_from_b64(body.topic)
            text = body.payload
            del body
            payload = await off_loop(len(text), b64_field, text, "payload")
            del text
        if reply_timeout is None:
            msg_id = await service.submit(dst, payload, topic=topic_bytes, deadline=deadline)
            return Response(
                b'{"id":"' + msg_id.hex().encode() + b'"}',
                status_code=201,
                media_type="application/json",
            )
        msg_id, reply = await service.send_and_wait_reply(
            dst, payload, float(reply_timeout), topic=topic_bytes, deadline=deadline
        )
        if reply is None:
            return JSONResponse({"id": msg_id.hex()}, status_code=408)
        return await _message_response(reply, _wants_raw(request))

    @router.post(
        "/reply/{msg_id}",
        status_code=204,
        response_class=Response,
        responses={204: {"description": "reply queued"}, **_errors(400, 404, 409, 413, 429)},
        openapi_extra=_request_body(_model_schema(ReplyMessageBody), raw=False),
    )
    async def push_reply(msg_id: str, request: Request) -> Response:
        service = get_service()
        mid = parse_msg_id(msg_id)
        limit = json_limit(service)
        try:
            raw = await read_body(request, limit)
        except BodyTooLarge:
            return _too_large(limit)
        body: ReplyMessageBody = await off_loop(len(raw), _parse_json, raw, ReplyMessageBody)
        del raw
        dst = (
            message_destination(
                body.dst.ip, body.dst.pk, service.owner_of, "dst", name=body.dst.name, **names
            )
            if body.dst is not None
            else None
        )
        topic = topic_from_b64(body.topic)
        text = body.payload
        del body
        payload = await off_loop(len(text), b64_field, text, "payload")
        del text
        service.reply(mid, payload, topic=topic, dst=dst)
        return Response(status_code=204)

    @router.get("/status/{msg_id}", responses=_errors(400, 404))
    async def message_status(msg_id: str) -> dict[str, Any]:
        st = get_service().status(parse_msg_id(msg_id))
        if st is None:
            raise bad(404, "no outbound message with this id")
        return status_json(st)

    return router
