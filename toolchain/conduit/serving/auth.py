"""API key check. The service holds only the key's sha256; a request's key is hashed and the two
digests are compared with `hmac.compare_digest`, so timing says nothing about the key."""
from __future__ import annotations

import hashlib
import hmac

from conduit.errors import Unauthorized

# Where a served bento finds the key's hash (never the key itself).
API_KEY_SHA256_ENV = "CONDUIT_API_KEY_SHA256"


def key_sha256(key: str) -> str:
    """The hex sha256 of an API key: what stores, environments and services hold instead of it."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def presented_key(header: bytes) -> bytes:
    """The key in an `Authorization` header value: `<key>` or `Bearer <key>`."""
    value = header.strip()
    if value[:7].lower() == b"bearer ":
        value = value[7:].strip()
    return value


class KeyCheck:
    def __init__(self, expected_sha256_hex: str | None) -> None:
        try:
            self._expected = bytes.fromhex(expected_sha256_hex or "")
        except ValueError:
            self._expected = b""
        # A service started without a valid key hash refuses every call rather than serving openly.
        self.configured = len(self._expected) == hashlib.sha256().digest_size

    def verify(self, header: bytes | None) -> None:
        if not header:
            raise Unauthorized("missing API key: send it in the Authorization header")
        if not self.configured:
            raise Unauthorized("this server has no API key configured; it accepts no calls")
        digest = hashlib.sha256(presented_key(header)).digest()
        if not hmac.compare_digest(digest, self._expected):
            raise Unauthorized("wrong API key")
