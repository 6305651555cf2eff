"""Run-time ingress listeners outlive a restart: the state file round-trips every field, a bad
file is moved aside (never overwritten), and the part reopens saved listeners at its start."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from hyphal.ingress.limits import Limits
from hyphal.ingress.part import IngressPart
from hyphal.ingress.spec import IngressSpec, UnwrapSpec, unwrap_from_dict
from hyphal.ingress.state import load_listeners, save_listeners
from hyphal.testing.loopback import free_port


def unwrap(port: int) -> UnwrapSpec:
    return unwrap_from_dict(
        {"listen": f"127.0.0.1:{port}", "backend": "127.0.0.1:6668", "transparent": False}
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = tmp_path / "ingress.json"
    specs = [
        unwrap_from_dict(
            {
                "listen": "[::1]:6700",
                "backend": "127.0.0.1:6668",
                "allow": ["400::/7", "192.0.2.0/24"],
                "transparent": True,
                "route_table": 2000,
                "header_timeout": 4.5,
            }
        ),
        IngressSpec(("0.0.0.0", 6697), "irc", "v1", Limits(max_per_client=8, idle_timeout=30.0)),
    ]
    save_listeners(path, specs)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(load_listeners(path), key=lambda s: s.key) == sorted(specs, key=lambda s: s.key)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        json.dumps({"version": 2}),
        json.dumps({"version": 1, "ingress": {"listen": "x"}}),
        json.dumps({"version": 1, "ingress": [{"listen": "0.0.0.0:1", "service": ""}]}),
        json.dumps({"version": 1, "unwrap": [{"listen": "0.0.0.0:1", "backend": "0.0.0.0:2"}]}),
    ],
)
def test_a_bad_file_is_moved_aside_and_logged(
    tmp_path: Path, body: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ingress.json"
    path.write_text(body)
    assert load_listeners(path) == []
    assert not path.exists() and (tmp_path / "ingress.json.bad").read_text() == body
    assert "cannot read the ingress state file" in caplog.text


async def test_added_listeners_come_back_and_removed_ones_do_not(tmp_path: Path) -> None:
    path = tmp_path / "ingress.json"
    kept, configured = free_port(), free_port()
    first = IngressPart(lambda: None, unwraps=(unwrap(configured),), state_file=path)
    await first.start()
    await first.add(unwrap(kept), keep=True)
    await first.stop()  # a daemon stop forgets nothing
    assert [s.key for s in load_listeners(path)] == [f"127.0.0.1:{kept}"]

    second = IngressPart(lambda: None, unwraps=(unwrap(configured),), state_file=path)
    await second.start()
    try:
        assert set(second.listeners) == {f"127.0.0.1:{kept}", f"127.0.0.1:{configured}"}
        _, writer = await asyncio.open_connection("127.0.0.1", kept)  # it really listens
        writer.close()
        assert await second.remove(f"127.0.0.1:{kept}")
        assert await second.remove(f"127.0.0.1:{configured}")  # config's: not in the file
        assert load_listeners(path) == []
    finally:
        await second.stop()


async def test_the_config_wins_over_a_saved_listener_on_the_same_address(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "ingress.json"
    port = free_port()
    save_listeners(path, [unwrap(port)])
    configured = unwrap_from_dict(
        {"listen": f"127.0.0.1:{port}", "backend": "127.0.0.1:7000", "transparent": False}
    )
    part = IngressPart(lambda: None, unwraps=(configured,), state_file=path)
    await part.start()
    try:
        listener = part.find(f"127.0.0.1:{port}")
        assert listener is not None and listener.spec == configured
        assert "the config file declares" in caplog.text
    finally:
        await part.stop()
