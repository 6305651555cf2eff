"""`hyphal run`: logging, event loop (uvloop), signals, and the node plus its API until stopped."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from dataclasses import replace
from pathlib import Path

from hyphal import logs
from hyphal.api.app import create_app
from hyphal.api.auth import load_or_create_token
from hyphal.api.guard import RequestGuard, is_loopback
from hyphal.api.metrics import metrics_app
from hyphal.api.server import ApiBindError, ApiServer
from hyphal.config import DEFAULT_API_ADDR, ConfigError, NodeConfig, parse_host_port
from hyphal.dataplane.tun import TunError
from hyphal.filemodes import warn_if_loose
from hyphal.identity import IdentityError, NodeIdentity
from hyphal.node import Node
from hyphal.reload import ConfigLoader, Reloader

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


def with_state_files(config: NodeConfig) -> NodeConfig:
    """``config`` with the daemon's state files beside the key file where it names none: what
    ``hyphal service add`` and ``hyphal ingress add`` change outlives a restart."""
    if config.services_file is None:
        config = replace(config, services_file=config.key_file.parent / "services.json")
    if config.ingress_file is None:
        config = replace(config, ingress_file=config.key_file.parent / "ingress.json")
    return config


def _with_state_files_on_reload(load: ConfigLoader) -> ConfigLoader:
    return lambda: with_state_files(load())


async def serve(
    config: NodeConfig,
    identity: NodeIdentity,
    reload: ConfigLoader | None = None,
    config_source: str | None = None,
) -> None:
    _log_start(config)
    config = with_state_files(config)
    if reload is not None:  # a reload must see the same defaults, or it reports them changed
        reload = _with_state_files_on_reload(reload)
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
    log.info(
        "API on http://%s:%d/api/v1 (try: %s)", api_host, api.port, status_hint(config, api.port)
    )
    if metrics is not None:
        metrics.start()
        log.info("Prometheus metrics on http://%s/metrics", config.metrics_api_address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reloader = Reloader(node, config, reload, config_source)
    loop.add_signal_handler(signal.SIGHUP, reloader.reload)
    await stop.wait()
    log.info("shutting down")
    await api.stop()
    if metrics is not None:
        await metrics.stop()
    await node.stop()
    log.info("stopped")


def status_hint(config: NodeConfig, port: int) -> str:
    """The command that shows this daemon's status, with --api-addr when it is not the default."""
    if config.api_addr == DEFAULT_API_ADDR:
        return "hyphal status"
    host, _ = parse_host_port(config.api_addr, "api_addr")
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"hyphal status --api-addr {shown}"


def listen_error(config: NodeConfig, exc: OSError) -> str:
    """Why the peer listener could not open, with the flag to change."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen for peers on tcp port {config.tcp_listen_port}: {exc.strerror} "
            "(is another hyphal using it? pick another with -t/--tcp-listen-port)"
        )
    if isinstance(exc, socket.gaierror) or exc.errno in (
        errno.EADDRNOTAVAIL,
        errno.EAFNOSUPPORT,
        errno.EINVAL,
    ):
        return (
            f"cannot listen for peers on {config.listen_address}: {exc.strerror} (it must be an "
            "address of this machine; see --listen-address, default :: for all)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"cannot listen for peers on tcp port {config.tcp_listen_port}: {exc.strerror} "
            "(ports below 1024 need root; pick another with -t/--tcp-listen-port)"
        )
    return f"cannot start: {exc}"


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


def run_daemon(
    config: NodeConfig,
    key_source: str = "the default path",
    reload: ConfigLoader | None = None,
    config_source: str | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; return the process exit code. SIGHUP calls ``reload`` (the
    config file re-read with the same flags on top) and applies it (``hyphal.reload``)."""
    try:
        config = config.validate()
        config.network_key()  # an unusable network key file is a usage error, as a bad node key
        identity = load_identity(config, key_source)
    except (ConfigError, IdentityError) as exc:
        log.error("%s", exc)
        return 2
    try:
        import uvloop

        uvloop.run(serve(config, identity, reload, config_source))
    except (ApiBindError, ConfigError, TunError) as exc:
        log.error("%s", exc)
        return 1
    except OSError as exc:
        log.error("%s", listen_error(config, exc))
        return 1
    except KeyboardInterrupt:
        pass
    return 0
