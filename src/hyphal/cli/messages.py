"""`hyphal message send|receive`: the message bus from the command line (through the API)."""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from hyphal.bus.limits import Limits
from hyphal.cli.common import (
    ApiAddr,
    JsonFlag,
    api_failure,
    api_hint,
    client,
    destination_body,
    err,
    fail,
    fetch,
    out,
    print_json,
    visible,
)
from hyphal.client import ApiError, Client
from hyphal.config import DEFAULT_API_ADDR

message_app = typer.Typer(help="Send and receive messages through the mesh.", no_args_is_help=True)

PROGRESS_THRESHOLD = 256 * 1024
RAW = "application/octet-stream"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@message_app.command("send")
def send(
    dest: Annotated[
        str,
        typer.Argument(
            help="Member name, overlay IPv6 address or hex public key of the receiver",
            metavar="DEST",
        ),
    ],
    message: Annotated[
        str | None, typer.Argument(help="Message text (or use --msg-path)", metavar="MESSAGE")
    ] = None,
    topic: Annotated[
        str | None, typer.Option("-t", "--topic", help="Topic (UTF-8, at most 255 bytes)")
    ] = None,
    msg_path: Annotated[
        Path | None, typer.Option("--msg-path", help="Send this file's bytes")
    ] = None,
    wait: Annotated[
        bool, typer.Option("-w", "--wait", help="Wait for a reply and print it")
    ] = False,
    timeout: Annotated[
        int, typer.Option("--timeout", help="Seconds to wait for a reply (with --wait)")
    ] = 60,
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            help="Seconds to keep trying, also while the receiver is offline or not known yet; "
            "then the message fails with a reason",
        ),
    ] = Limits().default_deadline,
    reply_to: Annotated[
        str | None, typer.Option("--reply-to", help="Send as the reply to this message id")
    ] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Send a message; with --wait, print the reply. Large messages show progress.

    With --msg-path the file's bytes go as the raw request body (application/octet-stream): no
    base64, no JSON, streamed from the file.
    """
    if (message is None) == (msg_path is None):
        raise fail("give the message text or --msg-path FILE (one of them)", 2)
    dst = destination_body(dest)
    if topic is not None and len(topic.encode()) > 255:
        raise fail("a topic has at most 255 bytes", 2)
    params: dict[str, Any] = {}
    if deadline is not None:
        params["deadline"] = deadline
    api = client(api_addr, timeout=max(timeout, 30) + 30)
    if msg_path is not None and reply_to is None:
        send_raw_file(
            api, dst, msg_path, topic, params, wait=wait, timeout=timeout, as_json=as_json
        )
        return
    try:
        payload = msg_path.read_bytes() if msg_path is not None else (message or "").encode()
    except OSError as exc:
        raise fail(f"cannot read {msg_path}: {exc.strerror}", 2) from None
    body: dict[str, Any] = {"dst": dst, "payload": _b64(payload)}
    if topic is not None:
        body["topic"] = _b64(topic.encode())
    try:
        if reply_to is not None:
            api.post(f"/messages/reply/{Client.quote(reply_to)}", body, params=params)
            if not as_json:
                out.print(f"replied to {reply_to}")
            else:
                print_json({"repliedTo": reply_to})
            return
        if wait:
            params["reply_timeout"] = timeout
            response = api.post("/messages", body, params=params)
            if response.status_code == 200:
                show_message(response.json(), as_json=as_json, raw=False)
            else:
                print_json(response.json()) if as_json else out.print(
                    f"sent {response.json()['id']}"
                )
            return
        msg_id = api.post("/messages", body, params=params).json()["id"]
    except ApiError as exc:
        if exc.status == 408:
            raise fail(f"no reply within {timeout} s") from None
        raise api_failure(exc) from None
    if len(payload) >= PROGRESS_THRESHOLD and not as_json:
        track(api, msg_id, len(payload))
    if as_json:
        print_json({"id": msg_id})
    else:
        out.print(
            f"sent {msg_id}  (status: hyphal message status{api_hint(api.api_addr)} {msg_id})"
        )


def send_raw_file(
    api: Client,
    dst: dict[str, str],
    path: Path,
    topic: str | None,
    params: dict[str, Any],
    *,
    wait: bool,
    timeout: int,
    as_json: bool,
) -> None:
    """POST a file as the raw body (application/octet-stream), streamed from disk."""
    query = dict(params)
    [(field, value)] = dst.items()
    query[f"dst_{field}"] = value
    if topic is not None:
        query["topic"] = _b64(topic.encode())
    if wait:
        query["reply_timeout"] = timeout
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}", 2) from None
    try:
        with handle:
            response = api.request(
                "POST",
                "/messages",
                params=query,
                content=handle,
                headers={"content-type": RAW, "accept": "application/json"},
            )
    except ApiError as exc:
        if exc.status == 408:
            raise fail(f"no reply within {timeout} s") from None
        raise api_failure(exc) from None
    if wait:
        if response.status_code == 200:
            show_message(response.json(), as_json=as_json, raw=False)
        else:
            print_json(response.json()) if as_json else out.print(f"sent {response.json()['id']}")
        return
    msg_id = response.json()["id"]
    if size >= PROGRESS_THRESHOLD and not as_json:
        track(api, msg_id, size)
    if as_json:
        print_json({"id": msg_id})
    else:
        out.print(
            f"sent {msg_id}  (status: hyphal message status{api_hint(api.api_addr)} {msg_id})"
        )


def track(api: Client, msg_id: str, size: int) -> None:
    """Show a progress bar until the receiver has the whole message (or it fails)."""
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress("[progress.description]{task.description}", *columns, console=err) as progress:
        task = progress.add_task("sending", total=size)
        while True:
            try:
                status = api.get(f"/messages/status/{msg_id}")
            except ApiError:
                return
            state = status["state"]
            if isinstance(state, dict):
                counts = state.get("sending", {})
                chunks = counts.get("pending", 0) + counts.get("sent", 0) + counts.get("acked", 0)
                if chunks:
                    progress.update(task, completed=size * counts.get("acked", 0) / chunks)
            elif state in ("received", "read"):
                progress.update(task, completed=size, description=state)
                return
            elif state == "aborted":
                progress.update(task, description=f"failed: {status.get('reason', '')}")
                return
            time.sleep(0.1)


@message_app.command("receive")
def receive(
    topic: Annotated[
        str | None, typer.Option("-t", "--topic", help="Only messages with this topic")
    ] = None,
    timeout: Annotated[int, typer.Option("--timeout", help="Seconds to wait for a message")] = 0,
    msg_path: Annotated[
        Path | None, typer.Option("--msg-path", help="Write the payload to this file")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print only the payload bytes")] = False,
    peek: Annotated[bool, typer.Option("--peek", help="Leave the message in the inbox")] = False,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Take the next message from the inbox (waiting up to --timeout seconds)."""
    # Not peeking, the message stays leased until it is written out, then is acked: a receive
    # that fails half way (disk full, broken pipe) leaves it in the inbox for the next try.
    params: dict[str, Any] = {"timeout": timeout, "peek": peek, "explicit_ack": not peek}
    if topic is not None:
        params["topic"] = _b64(topic.encode())
    # With --msg-path the payload comes raw (Accept: application/octet-stream) and is streamed
    # straight into the file; the metadata arrives in X-Hyphal-* headers.
    try:
        api = Client(api_addr, timeout=timeout + 30)
        if msg_path is not None:
            message = receive_raw_to_file(api, params, msg_path)
        else:
            response = api.request("GET", "/messages", params=params)
            message = response.json() if response.status_code == 200 else None
    except ApiError as exc:
        raise api_failure(exc) from None
    if message is None:
        if as_json:
            print_json(None)  # valid JSON for "nothing"; the exit code 1 says the same
        else:
            err.print("no message")
        raise typer.Exit(1)
    show_message(message, as_json=as_json, raw=raw, saved_to=msg_path)
    if not peek:
        try:
            api.request("POST", f"/messages/ack/{message['id']}")
        except ApiError as exc:
            raise fail(
                f"message shown but not acknowledged ({exc}); it returns to the inbox"
            ) from None


def receive_raw_to_file(
    client: Client, params: dict[str, Any], path: Path
) -> dict[str, Any] | None:
    """GET the next message raw and write its payload to ``path``; its metadata as a dict shaped
    like the JSON message (``payloadLen`` instead of ``payload``), or None for 204."""
    response = client.request("GET", "/messages", params=params, headers={"accept": RAW})
    if response.status_code == 204:
        return None
    if response.headers.get("content-type", "").split(";")[0] != RAW:
        message: dict[str, Any] = response.json()  # a daemon without the raw path answered JSON
        data = base64.b64decode(message["payload"])
    else:
        h = response.headers
        data = response.content
        message = {
            "id": h.get("x-hyphal-message-id", ""),
            "srcIp": h.get("x-hyphal-src-ip", ""),
            "srcPk": h.get("x-hyphal-src-pk", ""),
            "dstIp": h.get("x-hyphal-dst-ip", ""),
            "dstPk": h.get("x-hyphal-dst-pk", ""),
            "payloadLen": len(data),
        }
        if h.get("x-hyphal-topic"):
            message["topic"] = h["x-hyphal-topic"]
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    return message


def show_message(
    message: dict[str, Any], *, as_json: bool, raw: bool, saved_to: Path | None = None
) -> None:
    payload = base64.b64decode(message.get("payload", ""))
    size = message.get("payloadLen", len(payload))
    if as_json:
        print_json(message)
    elif raw:
        if saved_to is None:
            sys.stdout.buffer.write(payload)
            sys.stdout.flush()
    else:
        topic = (
            base64.b64decode(message["topic"]).decode(errors="replace")
            if message.get("topic")
            else ""
        )
        out.print(
            f"message {message['id']} from {message['srcIp']}"
            + (f" topic {topic!r}" if topic else "")
            + f", {size} bytes"
        )
        if saved_to is not None:
            out.print(f"saved to {saved_to}")
        else:
            out.print(visible(payload.decode(errors="replace")), markup=False, highlight=False)


@message_app.command("status")
def status(
    msg_id: Annotated[str, typer.Argument(help="Message id (16 hex characters)", metavar="ID")],
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Delivery status of a message this node sent."""
    info = fetch(api_addr, f"/messages/status/{Client.quote(msg_id)}")
    if as_json:
        print_json(info)
        return
    state = info["state"]
    if state == "aborted":  # Mycelium's name in the API; people read "failed"
        state = "failed"
    if isinstance(state, dict):
        counts = state.get("sending", {})
        state = "sending ({acked} acked, {sent} in flight, {pending} waiting)".format(
            acked=counts.get("acked", 0),
            sent=counts.get("sent", 0),
            pending=counts.get("pending", 0),
        )
    out.print(
        f"{msg_id} to {info['dst']}: {state}"
        + (f" ({info['reason']})" if info.get("reason") else "")
    )
