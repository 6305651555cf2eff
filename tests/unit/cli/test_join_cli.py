"""`hyphal network create`, `hyphal invite` and `hyphal join` on files: modes, idempotence,
refusals with clear messages and exit codes (the daemon side is in tests/netns/test_join.py)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hyphal.cli import main
from hyphal.cli.join import parse_duration
from hyphal.config import load_config_file
from hyphal.membership import admission
from hyphal.membership import token as token_mod


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    return code, captured.out, captured.err


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _create(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Path:
    code, out, err = run_cli(
        capsys, "network", "create", "fleet", "--config-dir", str(tmp_path / "a"), "--json"
    )
    assert code == 0, err
    return Path(json.loads(out)["config"])


def test_create_writes_secrets_0600_and_admits_the_creator(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "network", "create", "fleet", "--config-dir", str(tmp_path / "a"), "--name", "a1"
    )
    assert code == 0, err
    assert "Back up the admin key" in err
    config = load_config_file(tmp_path / "a" / "hyphal.toml")
    assert config.network_name == "fleet" and config.member_name == "a1"
    assert config.network_key_file is not None and _mode(config.network_key_file) == 0o600
    admin_key = tmp_path / "a" / "admin" / "fleet.admin.key"
    assert _mode(admin_key) == 0o600 and _mode(admin_key.parent) == 0o700
    raw = config.own_admission()
    assert raw is not None
    adm = admission.decode_admission(raw)
    assert adm.invite.inviter and adm.invite.issuer in config.admin_keys
    before = (tmp_path / "a" / "hyphal.toml").read_text()
    code, out, _ = run_cli(
        capsys, "network", "create", "fleet", "--config-dir", str(tmp_path / "a")
    )
    assert code == 0 and "nothing changed" in out
    assert (tmp_path / "a" / "hyphal.toml").read_text() == before
    code, _, err = run_cli(
        capsys, "network", "create", "other", "--config-dir", str(tmp_path / "a")
    )
    assert code == 2 and "already belongs to network 'fleet'" in err


def test_invite_prints_a_secret_token_and_needs_a_peer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = _create(capsys, tmp_path)
    with cfg.open("a") as f:  # no daemon answers there: the endpoints cannot come from the API
        f.write('api_addr = "127.0.0.1:1"\n')
    code, _, err = run_cli(capsys, "invite", "--config-file", str(cfg))
    assert code == 2 and "--peer" in err
    code, out, err = run_cli(
        capsys, "invite", "--config-file", str(cfg), "--peer", "tcp://[fd00::1]:9651",
        "--name", "db1", "--region", "fra", "--uses", "2", "--expires", "2h",
    )  # fmt: skip
    assert code == 0, err
    assert "secret" in err
    tokens = out.split()
    assert len(tokens) == 2 and tokens[0] != tokens[1]
    t = token_mod.decode(tokens[0])
    assert (t.network_name, t.name, t.region, t.peers) == (
        "fleet",
        "db1",
        "fra",
        ("tcp://[fd00::1]:9651",),
    )
    config = load_config_file(cfg)
    assert config.network_key_file is not None
    assert t.network_key == config.network_key_file.read_bytes()
    assert t.admin_keys == config.admin_keys
    code, _, err = run_cli(capsys, "invite", "--config-file", str(cfg), "--expires", "soon")
    assert code == 2 and "duration" in err


def test_join_foreground_refuses_bad_and_expired_tokens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(capsys, "join", "hyphal1-garbage", "--foreground")
    assert code == 2 and "damaged" in err
    code, _, err = run_cli(capsys, "join", "nope", "--foreground", "--json")
    assert code == 2 and "not a hyphal invite token" in json.loads(err)["error"]


def test_invite_without_a_private_network_says_what_to_do(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "plain.toml").write_text("peers = []\n")
    code, _, err = run_cli(capsys, "invite", "--config-file", str(tmp_path / "plain.toml"))
    assert code == 2 and "hyphal network create" in err


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("5", 5)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "-1h", "1w", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_join_region_overrides_the_invites_suggestion(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from hyphal.cli.join import _write_join_files

    cfg = _create(capsys, tmp_path)
    code, out, err = run_cli(
        capsys, "invite", "--config-file", str(cfg), "--peer", "tcp://[fd00::1]:9651",
        "--name", "leaf-x", "--region", "fra",
    )  # fmt: skip
    assert code == 0, err
    t = token_mod.decode(out.split()[0])
    files = dict(member_name=None, api_addr=None, tcp_listen_port=None, no_tun=True, service=False)
    suggested, _ = _write_join_files(
        t, tmp_path / "b" / "hyphal.toml", tmp_path / "b" / "k", **files
    )
    chosen, _ = _write_join_files(
        t, tmp_path / "c" / "hyphal.toml", tmp_path / "c" / "k", region="ams", **files
    )
    assert (suggested.region, chosen.region) == ("fra", "ams")
    assert load_config_file(tmp_path / "c" / "hyphal.toml").region == "ams"
    code, _, err = run_cli(
        capsys, "join", out.split()[0], "--foreground", "--region", "not a label"
    )
    assert code == 2 and "--region" in err
