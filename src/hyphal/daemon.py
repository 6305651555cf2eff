"""`hyphal run`: logging, event loop (uvloop), signals, and the node plus its API until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from hyphal import logs
from hyphal.api.app import create_app
from hyphal.api.auth import load_or_create_token
from hyphal.api.guard import RequestGuard, is_loopback
from hyphal.api.metrics import metrics_app
from hyphal.api.server import ApiBindError, ApiServer
from hyphal.config import ConfigError, NodeConfig, parse_host_port
from hyphal.dataplane.tun import TunError
from hyphal.filemodes import warn_if_loose
from hyphal.identity import IdentityError, NodeIdentity
from hyphal.node import Node

log = logging.getLogger("hyphal")


def setup_logging(
    debug: bool = False, quiet: bool = False, *, level: str | None = None, fmt: str = "text"
) -> logs.LogSpec:
    """Logging for the daemon: ``level`` (a spec, see hyphal.logs) wins over debug/quiet."""
    return logs.setup(level or logs.flags_spec(debug, quiet), fmt)


def effective_log_spec(config: NodeConfig, flag: str | None, debug: bool, quiet: bool) -> str:
    """--log-level, else --debug/--silent, else the config's log_level, else info."""
    if flag is not None:
        return flag
    if debug or quiet:
        return logs.flags_spec(debug, quiet)
    return config.log_level or logs.DEFAULT_SPEC


def _token_file(config: NodeConfig) -> Path:
    return config.api_token_file or config.key_file.parent / "api_token"


def _token(config: NodeConfig) -> str:
    path = _token_file(config)
    token = load_or_create_token(path)
    warn_if_loose(path, "API token file")
    return token


def _log_start(config: NodeConfig) -> None:
    if config.network_name is None:
        log.info("network: the public hyphal network (no network key)")
    else:
        log.info(
            "network: private network '%s' (key from %s)",
            config.network_name,
            config.network_key_file,
        )


async def serve(config: NodeConfig, identity: NodeIdentity) -> None:
    _log_start(config)
    node = Node(config, identity)
    api_host, api_port = node.api_bind()
    token = None
    if not is_loopback(api_host):
        token_file = _token_file(config)
        token = _token(config)
        log.warning(
            "the API listens on %s:%d, beyond this machine: every request needs the bearer token "
            "in %s (clients: export HYPHAL_API_TOKEN=$(cat %s))",
            api_host,
            api_port,
            token_file,
            token_file,
        )
    # Bind before joining the mesh, so a port in use fails fast with a clear message.
    api = ApiServer(create_app(node, token, api_host), api_host, api_port)
    metrics = None
    if config.metrics_api_address:
        host, port = parse_host_port(config.metrics_api_address, "metrics_api_address")
        metrics_token = None if is_loopback(host) else token or _token(config)
        metrics = ApiServer(
            RequestGuard(metrics_app(node), host, metrics_token), host, port, "Prometheus metrics"
        )
    await node.start()
    api.start()
    log.info("API on http://%s:%d/api/v1 (try: hyphal peers list)", api_host, api.port)
    if metrics is not None:
        metrics.start()
        log.info("Prometheus metrics on http://%s/metrics", config.metrics_api_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await api.stop()
    if metrics is not None:
        await metrics.stop()
    await node.stop()
    log.info("stopped")


def load_identity(config: NodeConfig, key_source: str) -> NodeIdentity:
    """The node key: loaded, or created (and said so); a key open to others is warned about."""
    path = config.key_file
    if path.exists():
        identity = NodeIdentity.load(path)
        log.info("node key %s (%s)", path, key_source)
        warn_if_loose(path, "node key file")
    else:
        identity = NodeIdentity.load_or_create(path)
        log.info(
            "created a new node key at %s (%s), mode 0600: it is this node's identity and "
            "overlay address %s; keep it, and back it up",
            path,
            key_source,
            identity.address,
        )
    return identity


def run_daemon(config: NodeConfig, key_source: str = "the default path") -> int:
    """Run until SIGINT/SIGTERM; return the process exit code."""
    try:
        config.validate()
        identity = load_identity(config, key_source)
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
