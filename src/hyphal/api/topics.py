"""The topic endpoints (``/api/v1/messages/topics...``): the default action, topics, their source
ACLs and forward sockets. An unknown topic (TopicError) is a 404 via the app's error handler.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel

from hyphal.api.codec import bad, parse_subnet, topic_from_b64
from hyphal.api.errors import error_responses
from hyphal.bus.service import MessageService
from hyphal.bus.topics import MAX_TOPIC_LEN

PREFIX = "/api/v1/messages"


class DefaultTopicAction(BaseModel):
    accept: bool


class TopicSourceRequest(BaseModel):
    subnet: str


class TopicForwardSocketRequest(BaseModel):
    socket_path: str


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return error_responses(*codes, described=TOPIC_ERRORS)


TOPIC_ERRORS = {
    400: "malformed topic, subnet or body",
    403: "forward socket outside forward_dir (or none configured)",
    404: "unknown topic",
}


def topics_router(get_service: Callable[[], MessageService]) -> APIRouter:
    """The topic endpoints, calling ``get_service()`` on every request."""
    router = APIRouter(prefix=PREFIX, tags=["Message"])

    @router.get("/topics/default", tags=["Topic"])
    async def get_default_action() -> DefaultTopicAction:
        return DefaultTopicAction(accept=get_service().get_default_accept())

    @router.put(
        "/topics/default",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "set"}, **_errors(400)},
    )
    async def set_default_action(body: DefaultTopicAction) -> Response:
        get_service().set_default_accept(body.accept)
        return Response(status_code=204)

    @router.get("/topics", tags=["Topic"])
    async def get_topics() -> list[str]:
        return [base64.b64encode(t).decode() for t in get_service().topics.topics()]

    @router.post(
        "/topics",
        status_code=201,
        tags=["Topic"],
        response_class=Response,
        responses={201: {"description": "topic added (empty body)"}, **_errors(400)},
    )
    async def add_topic(body: Annotated[str | list[int], Body()]) -> Response:
        if isinstance(body, str):
            topic = topic_from_b64(body)
        else:
            if any(not 0 <= b <= 255 for b in body) or len(body) > MAX_TOPIC_LEN:
                raise bad(400, "topic must be at most 255 bytes")
            topic = bytes(body)
        get_service().topics.add_topic(topic)
        return Response(status_code=201)

    @router.delete(
        "/topics/{topic}",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "removed"}, **_errors(400)},
    )
    async def remove_topic(topic: str) -> Response:
        get_service().topics.remove_topic(topic_from_b64(topic))
        return Response(status_code=204)

    @router.get("/topics/{topic}/sources", tags=["Topic"], responses=_errors(400, 404))
    async def get_sources(topic: str) -> list[str]:
        return [str(n) for n in get_service().topics.sources(topic_from_b64(topic))]

    @router.post(
        "/topics/{topic}/sources",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "added"}, **_errors(400, 404)},
    )
    async def add_source(topic: str, body: TopicSourceRequest) -> Response:
        get_service().topics.add_source(topic_from_b64(topic), parse_subnet(body.subnet))
        return Response(status_code=204)

    @router.delete(
        "/topics/{topic}/sources/{subnet:path}",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "removed"}, **_errors(400, 404)},
    )
    async def remove_source(topic: str, subnet: str) -> Response:
        get_service().topics.remove_source(topic_from_b64(topic), parse_subnet(subnet))
        return Response(status_code=204)

    @router.get("/topics/{topic}/forward", tags=["Topic"], responses=_errors(400, 404))
    async def get_forward(topic: str) -> str | None:
        return get_service().topics.forward_socket(topic_from_b64(topic))

    @router.put(
        "/topics/{topic}/forward",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "set"}, **_errors(400, 403, 404)},
    )
    async def set_forward(topic: str, body: TopicForwardSocketRequest) -> Response:
        if not body.socket_path or "\0" in body.socket_path:
            raise bad(400, "socket_path must be a non-empty path")
        get_service().topics.set_forward_socket(topic_from_b64(topic), body.socket_path)
        return Response(status_code=204)

    @router.delete(
        "/topics/{topic}/forward",
        status_code=204,
        tags=["Topic"],
        response_class=Response,
        responses={204: {"description": "removed"}, **_errors(400, 404)},
    )
    async def remove_forward(topic: str) -> Response:
        get_service().topics.set_forward_socket(topic_from_b64(topic), None)
        return Response(status_code=204)

    return router
