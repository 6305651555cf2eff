"""`hyphal run`: logging, event loop (uvloop), signals, and the node plus its API until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from hyphal.api.app import create_app
from hyphal.api.server import ApiBindError, ApiServer
from hyphal.config import ConfigError, NodeConfig
from hyphal.dataplane.tun import TunError
from hyphal.identity import IdentityError, NodeIdentity
from hyphal.node import Node

log = logging.getLogger("hyphal")


def setup_logging(debug: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("uvicorn", "uvicorn.error", "uvicorn.access", "pyroute2", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(config: NodeConfig, identity: NodeIdentity) -> None:
    node = Node(config, identity)
    api_host, api_port = node.api_bind()
    api = ApiServer(
        create_app(node), api_host, api_port
    )  # bind first: fail before joining the mesh
    await node.start()
    api.start()
    if api_host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("the API listens on %s:%d, beyond this machine", api_host, api.port)
    log.info("API on http://%s:%d/api/v1 (try: hyphal peers list)", api_host, api.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await api.stop()
    await node.stop()


def run_daemon(config: NodeConfig) -> int:
    """Run until SIGINT/SIGTERM; return the process exit code."""
    try:
        config.validate()
        identity = NodeIdentity.load_or_create(config.key_file)
    except (ConfigError, IdentityError) as exc:
        log.error("%s", exc)
        return 2
    try:
        import uvloop

        uvloop.run(serve(config, identity))
    except (ApiBindError, ConfigError, TunError) as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error(
            "cannot start: %s (is another hyphal using tcp port %d? see -t)",
            exc,
            config.tcp_listen_port,
        )
        return 1
    except KeyboardInterrupt:
        pass
    return 0
