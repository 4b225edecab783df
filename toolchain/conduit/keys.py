"""API keys for local deployments.

Policy: one key per CONDUIT_HOME, like the one key on a Cerebrium profile. The first apply without
a key generates one (`secrets.token_urlsafe`), shows it once, and stores only its sha256 as the
home's default. Later applies reuse the hash, so every deployment in the home accepts the same key.

A key given explicitly (`api_key=` or `CONDUIT_API_KEY`) wins for the deployment being applied; it
becomes the home default only when the home has none yet. Without an explicit key a redeploy keeps
the key its serving revision accepts, so a redeploy never silently changes a deployment's key.
Every revision records the hash it serves with; the served process receives that hash
(`CONDUIT_API_KEY_SHA256`) and compares digests in constant time (`conduit.serving.auth`).

An explicit key must also be hard to guess: `guessable_bits` estimates its entropy and keys
below `MIN_KEY_BITS` are refused, so `aaaaaaaaaaaaaaaa` never guards an endpoint. Generated keys
(the default) are 256 random bits.
"""
from __future__ import annotations

import math
import os
import secrets
import string
from dataclasses import dataclass
from typing import Optional

from conduit.errors import UsageError
from conduit.serving.auth import key_sha256
from conduit.store import Store

KEY_ENV = "CONDUIT_API_KEY"
HOME_KEY_SETTING = "api_key_sha256"
MIN_KEY_LENGTH = 16
# 48 bits is 2^48 guesses: centuries at the thousands of requests a second a local endpoint
# answers. A random 16-character urlsafe key (96 bits) scores 59 or more on the estimate below
# (none of 300,000 drawn scored less), patterns far less: passwordpassword 38, 1234567890123456 13.
MIN_KEY_BITS = 48
MAKE_A_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(24))'"
CHARACTER_CLASSES = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
OTHER_CHARACTERS = 33  # printable ASCII punctuation and the space: the class of anything else


@dataclass(frozen=True)
class ResolvedKey:
    sha256: str
    # The plain key only when it was generated just now: shown to the person once, never stored.
    generated: Optional[str] = None
    # Whether this hash becomes the home's default once the deployment succeeds (see remember).
    becomes_home_default: bool = False


def explicit_key(api_key: str | None = None) -> Optional[str]:
    """The key a person gave: the argument, else `CONDUIT_API_KEY`, else None."""
    key = api_key if api_key is not None else os.environ.get(KEY_ENV)
    if key is None:
        return None
    if len(key) < MIN_KEY_LENGTH or any(c.isspace() for c in key):
        raise UsageError(f"API key must be at least {MIN_KEY_LENGTH} characters with no spaces")
    bits = guessable_bits(key)
    if bits < MIN_KEY_BITS:
        raise UsageError(
            f"API key is too easy to guess (about {bits:.0f} bits of entropy, at least {MIN_KEY_BITS} needed): "
            f"make a random one with `{MAKE_A_KEY}`, or give none and conduit generates one"
        )
    return key


def guessable_bits(key: str) -> float:
    """A deliberately simple entropy estimate: the characters a guesser could not predict from the
    ones before them, times log2 of the alphabet the key's character classes span."""
    surprising = sum(1 for index in range(len(key)) if not _predictable(key, index))
    return surprising * math.log2(_alphabet_size(key))


def _predictable(key: str, index: int) -> bool:
    """A repeat (`aa`), the next step of a run (`123`, `aceg`), or a pair seen before (`passwordpassword`)."""
    if index == 0:
        return False
    char, previous = key[index], key[index - 1]
    if char == previous or key[index - 1 : index + 1] in key[:index]:
        return True
    return index >= 2 and ord(char) - ord(previous) == ord(previous) - ord(key[index - 2])


def _alphabet_size(key: str) -> int:
    size = sum(len(chars) for chars in CHARACTER_CLASSES if any(char in chars for char in key))
    others = {char for char in key if not any(char in chars for chars in CHARACTER_CLASSES)}
    return size + (max(OTHER_CHARACTERS, len(others)) if others else 0)


def resolve(store: Store, api_key: str | None = None, current_sha256: str | None = None) -> ResolvedKey:
    """The key hash a new revision serves with (see the module doc for the order). Nothing is
    stored here: `remember` does that once the revision serves, so a failed first apply never
    leaves a home default whose key nobody saw."""
    key = explicit_key(api_key)
    home_sha256 = store.setting(HOME_KEY_SETTING)
    if key is not None:
        return ResolvedKey(key_sha256(key), becomes_home_default=home_sha256 is None)
    if current_sha256:
        return ResolvedKey(current_sha256)
    if home_sha256:
        return ResolvedKey(home_sha256)
    generated = secrets.token_urlsafe(32)
    return ResolvedKey(key_sha256(generated), generated, becomes_home_default=True)


def remember(store: Store, key: ResolvedKey) -> None:
    if key.becomes_home_default and store.setting(HOME_KEY_SETTING) is None:
        store.set_setting(HOME_KEY_SETTING, key.sha256)
