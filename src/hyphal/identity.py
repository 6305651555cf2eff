"""Node identity: the X25519 key file and the overlay address and /64 derived from the public key.

The derivation is Mycelium's, so existing key files keep their addresses: BLAKE3 in XOF mode over
the 32-byte public key, the first 16 output bytes, then byte 0 replaced by
``0x04 | (popcount(original byte 0) % 2)``. Every address lies in ``400::/7``; the node owns the
/64 around its address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from blake3 import blake3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from hyphal.filemodes import private_dir

OVERLAY_NETWORK = IPv6Network("400::/7")
KEY_SIZE = 32
DEFAULT_KEY_FILE = (
    Path(os.environ.get("XDG_DATA_HOME", str(Path.home() / ".local" / "share")))
    / "hyphal"
    / "priv_key.bin"
)


class IdentityError(Exception):
    """A key file or public key that cannot be used, with a message for the user."""


@lru_cache(maxsize=65536)
def address_bytes_for_public_key(public_key: bytes) -> bytes:
    """The 16-byte overlay address owned by ``public_key`` (cached: it is on hot paths)."""
    if len(public_key) != KEY_SIZE:
        raise IdentityError(f"a public key has {KEY_SIZE} bytes, got {len(public_key)}")
    digest = bytearray(blake3(public_key).digest(length=16))
    digest[0] = 0x04 | (bin(digest[0]).count("1") % 2)
    return bytes(digest)


def address_for_public_key(public_key: bytes) -> IPv6Address:
    """The overlay IPv6 address owned by ``public_key``."""
    return IPv6Address(address_bytes_for_public_key(public_key))


def subnet_for_public_key(public_key: bytes) -> IPv6Network:
    """The /64 overlay subnet owned by ``public_key``."""
    return IPv6Network((address_bytes_for_public_key(public_key)[:8] + bytes(8), 64))


def prefix64_for_public_key(public_key: bytes) -> bytes:
    """The first 8 bytes of the owned /64: the key every routing table uses."""
    return address_bytes_for_public_key(public_key)[:8]


_PROBE_KEY = X25519PrivateKey.generate()


@lru_cache(maxsize=4096)
def is_usable_public_key(public_key: bytes) -> bool:
    """False for keys no node can hold: wrong size, or a low-order point (all-zero agreement)."""
    if len(public_key) != KEY_SIZE:
        return False
    try:
        _PROBE_KEY.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError:
        return False
    return True


def parse_public_key(text: str) -> bytes:
    """A public key from its 64-character hex form."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise IdentityError(f"not a hex public key: {text!r}") from exc
    if len(raw) != KEY_SIZE:
        raise IdentityError(f"a public key is {2 * KEY_SIZE} hex characters, got {len(text)}")
    return raw


@dataclass(frozen=True)
class NodeIdentity:
    """A node's static X25519 key pair and what derives from it."""

    private_key: X25519PrivateKey
    public_key: bytes

    @classmethod
    def generate(cls) -> NodeIdentity:
        return cls.from_private_bytes(
            X25519PrivateKey.generate().private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )

    @classmethod
    def from_private_bytes(cls, raw: bytes) -> NodeIdentity:
        if len(raw) != KEY_SIZE:
            raise IdentityError(
                f"a private key file holds exactly {KEY_SIZE} bytes, got {len(raw)}"
            )
        key = X25519PrivateKey.from_private_bytes(raw)
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private_key=key, public_key=public)

    @classmethod
    def load(cls, path: Path) -> NodeIdentity:
        """Read a key file; raise IdentityError with a helpful message if it is unusable."""
        try:
            raw = path.read_bytes()
        except FileNotFoundError as exc:
            raise IdentityError(
                f"no key file at {path}; create one with 'hyphal generate-keys -k {path}'"
            ) from exc
        except OSError as exc:
            raise IdentityError(f"cannot read key file {path}: {exc.strerror}") from exc
        try:
            return cls.from_private_bytes(raw)
        except IdentityError as exc:
            raise IdentityError(f"{path}: {exc}") from exc

    @classmethod
    def load_or_create(cls, path: Path) -> NodeIdentity:
        """Load the key file, creating it (mode 0600) when it does not exist."""
        if not path.exists():
            identity = cls.generate()
            identity.save(path)
            return identity
        return cls.load(path)

    def save(self, path: Path, *, overwrite: bool = False, parents: bool = True) -> None:
        """Write the 32 raw private-key bytes with mode 0600.

        A missing directory is created (mode 0700) with ``parents``; without, it is an
        IdentityError (``generate-keys -k /typo/x.key`` must not invent ``/typo``)."""
        if not path.parent.exists():
            if not parents:
                raise IdentityError(
                    f"directory {path.parent} does not exist; create it first "
                    f"(mkdir -m 700 -p {path.parent})"
                )
            private_dir(path.parent, "key directory")
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError as exc:
            raise IdentityError(f"{path} exists; pass --force to replace it") from exc
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.private_bytes())
        os.chmod(path, 0o600)

    def private_bytes(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def shared_secret(self, peer_public_key: bytes) -> bytes:
        """Raw X25519 agreement with a peer's public key (callers must run it through a KDF)."""
        return self.private_key.exchange(X25519PublicKey.from_public_bytes(peer_public_key))

    @property
    def address(self) -> IPv6Address:
        return address_for_public_key(self.public_key)

    @property
    def address_bytes(self) -> bytes:
        return address_bytes_for_public_key(self.public_key)

    @property
    def subnet(self) -> IPv6Network:
        return subnet_for_public_key(self.public_key)
