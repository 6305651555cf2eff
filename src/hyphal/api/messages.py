"""Mycelium-compatible message endpoints (``/api/v1/messages...``) as a FastAPI router.

Mount with ``app.include_router(messages_router(lambda: node.messages))``. Field names and
status codes follow Mycelium's OpenAPI spec; hyphal additions are the optional ``deadline`` query
parameter of ``POST /api/v1/messages`` (seconds, default 300, up to 30 days) and the ``reason``,
``dstPk`` and ``reply`` fields of the status response. Every bad input is a 4xx with a JSON body
``{"detail": "..."}``; bus limits map to 413 (message too large) and 429 (outbox full).
Topics in paths may use the standard or the URL-safe base64 alphabet.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from ipaddress import AddressValueError, IPv6Address, IPv6Network, ip_network
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hyphal.bus.core import BusError, MessageStatus
from hyphal.bus.inbox import InboundMessage
from hyphal.bus.service import MessageService
from hyphal.bus.topics import MAX_TOPIC_LEN, TopicError
from hyphal.identity import address_for_public_key

MAX_TOPIC_B64 = 340
PREFIX = "/api/v1/messages"


class MessageDestination(BaseModel):
    ip: str | None = Field(default=None, description="An overlay IP in the receiver's subnet")
    pk: str | None = Field(default=None, description="Hex public key of the receiver")


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


class DefaultTopicAction(BaseModel):
    accept: bool


class TopicSourceRequest(BaseModel):
    subnet: str


class TopicForwardSocketRequest(BaseModel):
    socket_path: str


def _bad(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _bad(400, f"{what} is not valid base64") from None


def _topic(text: str | None) -> bytes:
    if text is None:
        return b""
    if len(text) > MAX_TOPIC_B64:
        raise _bad(400, f"topic longer than {MAX_TOPIC_B64} base64 characters")
    topic = _b64(text, "topic")
    if len(topic) > MAX_TOPIC_LEN:
        raise _bad(400, f"topic longer than {MAX_TOPIC_LEN} bytes")
    return topic


def _msg_id(text: str) -> bytes:
    if len(text) != 16:
        raise _bad(400, "message id is 16 hex characters")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _bad(400, "message id is not hex") from None


def _subnet(text: str) -> IPv6Network:
    try:
        net = ip_network(text.strip(), strict=False)
    except ValueError:
        raise _bad(400, f"not a subnet: {text!r}") from None
    if not isinstance(net, IPv6Network):
        raise _bad(400, "only IPv6 subnets are meaningful on the overlay")
    return net


def _destination(service: MessageService, dst: MessageDestination) -> bytes:
    if (dst.ip is None) == (dst.pk is None):
        raise _bad(400, "dst needs exactly one of ip or pk")
    try:
        if dst.pk is not None:
            try:
                pk = bytes.fromhex(dst.pk)
            except ValueError:
                raise _bad(400, "dst.pk is not hex") from None
            if len(pk) != 32:
                raise _bad(400, "dst.pk must be 64 hex characters")
            return service.resolve_destination(pk=pk)
        assert dst.ip is not None
        try:
            ip = IPv6Address(dst.ip)
        except (AddressValueError, ValueError):
            raise _bad(400, f"dst.ip is not an IPv6 address: {dst.ip!r}") from None
        return service.resolve_destination(ip=ip)
    except BusError as exc:
        raise _bad(exc.status, str(exc)) from None


def message_json(message: InboundMessage) -> dict[str, Any]:
    """Mycelium's InboundMessage shape."""
    out: dict[str, Any] = {
        "id": message.msg_id.hex(),
        "srcIp": str(address_for_public_key(message.src_pk)),
        "srcPk": message.src_pk.hex(),
        "dstIp": str(address_for_public_key(message.dst_pk)),
        "dstPk": message.dst_pk.hex(),
        "payload": base64.b64encode(message.payload).decode(),
    }
    if message.topic:
        out["topic"] = base64.b64encode(message.topic).decode()
    return out


def status_json(st: MessageStatus) -> dict[str, Any]:
    """Mycelium's MessageStatusResponse shape (plus reason / dstPk / reply)."""
    state: Any = st.state
    if st.state == "sending":
        state = {"sending": {"pending": st.pending, "sent": st.sent, "acked": st.acked}}
    out: dict[str, Any] = {
        "dst": str(address_for_public_key(st.dst_pk)),
        "dstPk": st.dst_pk.hex(),
        "state": state,
        "created": int(st.created),
        "deadline": int(st.deadline),
        "msgLen": st.msg_len,
        "reply": st.reply,
    }
    if st.reason is not None:
        out["reason"] = st.reason
    return out


def messages_router(get_service: Callable[[], MessageService]) -> APIRouter:
    """The message endpoints, calling ``get_service()`` on every request."""
    router = APIRouter(prefix=PREFIX, tags=["Message"])

    @router.get("", responses={200: {"description": "a message"}, 204: {"description": "none"}})
    async def pop_message(
        peek: bool = False,
        timeout: Annotated[int, Query(ge=0, le=86400)] = 0,  # noqa: ASYNC109
        topic: Annotated[str | None, Query(max_length=MAX_TOPIC_B64)] = None,
    ) -> Response:
        service = get_service()
        prefix = _topic(topic) if topic is not None else None
        message = await service.pop(prefix, peek=peek, timeout=float(timeout))
        if message is None:
            return Response(status_code=204)
        return JSONResponse(message_json(message))

    @router.post(
        "",
        status_code=201,
        responses={
            200: {"description": "the reply arrived in time"},
            201: {"model": PushMessageResponseId},
            408: {"model": PushMessageResponseId, "description": "no reply in time"},
        },
    )
    async def push_message(
        body: PushMessageBody,
        reply_timeout: Annotated[int | None, Query(ge=0, le=86400)] = None,
        deadline: Annotated[float | None, Query(gt=0, le=30 * 86400)] = None,
    ) -> Response:
        service = get_service()
        dst = _destination(service, body.dst)
        topic = _topic(body.topic)
        payload = _b64(body.payload, "payload")
        try:
            if reply_timeout is None:
                msg_id = service.send(dst, payload, topic=topic, deadline=deadline)
                return JSONResponse({"id": msg_id.hex()}, status_code=201)
            msg_id, reply = await service.send_and_wait_reply(
                dst, payload, float(reply_timeout), topic=topic, deadline=deadline
            )
        except BusError as exc:
            raise _bad(exc.status, str(exc)) from None
        if reply is None:
            return JSONResponse({"id": msg_id.hex()}, status_code=408)
        return JSONResponse(message_json(reply), status_code=200)

    @router.post("/reply/{msg_id}", status_code=204)
    async def push_reply(msg_id: str, body: ReplyMessageBody) -> Response:
        service = get_service()
        mid = _msg_id(msg_id)
        dst = _destination(service, body.dst) if body.dst is not None else None
        topic = _topic(body.topic)
        payload = _b64(body.payload, "payload")
        try:
            service.reply(mid, payload, topic=topic, dst=dst)
        except BusError as exc:
            raise _bad(exc.status, str(exc)) from None
        return Response(status_code=204)

    @router.get("/status/{msg_id}")
    async def message_status(msg_id: str) -> dict[str, Any]:
        st = get_service().status(_msg_id(msg_id))
        if st is None:
            raise _bad(404, "no outbound message with this id")
        return status_json(st)

    @router.get("/topics/default", tags=["Topic"])
    async def get_default_action() -> DefaultTopicAction:
        return DefaultTopicAction(accept=get_service().get_default_accept())

    @router.put("/topics/default", status_code=204, tags=["Topic"])
    async def set_default_action(body: DefaultTopicAction) -> Response:
        get_service().set_default_accept(body.accept)
        return Response(status_code=204)

    @router.get("/topics", tags=["Topic"])
    async def get_topics() -> list[str]:
        return [base64.b64encode(t).decode() for t in get_service().topics.topics()]

    @router.post("/topics", status_code=201, tags=["Topic"])
    async def add_topic(body: Annotated[str | list[int], Body()]) -> Response:
        if isinstance(body, str):
            topic = _topic(body)
        else:
            if any(not 0 <= b <= 255 for b in body) or len(body) > MAX_TOPIC_LEN:
                raise _bad(400, "topic must be at most 255 bytes")
            topic = bytes(body)
        get_service().topics.add_topic(topic)
        return Response(status_code=201)

    @router.delete("/topics/{topic}", status_code=204, tags=["Topic"])
    async def remove_topic(topic: str) -> Response:
        get_service().topics.remove_topic(_topic(topic))
        return Response(status_code=204)

    @router.get("/topics/{topic}/sources", tags=["Topic"])
    async def get_sources(topic: str) -> list[str]:
        try:
            return [str(n) for n in get_service().topics.sources(_topic(topic))]
        except TopicError as exc:
            raise _bad(404, str(exc)) from None

    @router.post("/topics/{topic}/sources", status_code=204, tags=["Topic"])
    async def add_source(topic: str, body: TopicSourceRequest) -> Response:
        try:
            get_service().topics.add_source(_topic(topic), _subnet(body.subnet))
        except TopicError as exc:
            raise _bad(404, str(exc)) from None
        return Response(status_code=204)

    @router.delete("/topics/{topic}/sources/{subnet:path}", status_code=204, tags=["Topic"])
    async def remove_source(topic: str, subnet: str) -> Response:
        try:
            get_service().topics.remove_source(_topic(topic), _subnet(subnet))
        except TopicError as exc:
            raise _bad(404, str(exc)) from None
        return Response(status_code=204)

    @router.get("/topics/{topic}/forward", tags=["Topic"])
    async def get_forward(topic: str) -> str | None:
        try:
            return get_service().topics.forward_socket(_topic(topic))
        except TopicError as exc:
            raise _bad(404, str(exc)) from None

    @router.put("/topics/{topic}/forward", status_code=204, tags=["Topic"])
    async def set_forward(topic: str, body: TopicForwardSocketRequest) -> Response:
        if not body.socket_path or "\0" in body.socket_path:
            raise _bad(400, "socket_path must be a non-empty path")
        try:
            get_service().topics.set_forward_socket(_topic(topic), body.socket_path)
        except TopicError as exc:
            raise _bad(404, str(exc)) from None
        return Response(status_code=204)

    @router.delete("/topics/{topic}/forward", status_code=204, tags=["Topic"])
    async def remove_forward(topic: str) -> Response:
        try:
            get_service().topics.set_forward_socket(_topic(topic), None)
        except TopicError as exc:
            raise _bad(404, str(exc)) from None
        return Response(status_code=204)

    return router
