from __future__ import annotations

import random
import string

import pytest

from conduit import keys
from conduit.errors import UsageError
from conduit.serving.auth import key_sha256
from conduit.store import Store


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    monkeypatch.delenv("CONDUIT_API_KEY", raising=False)
    return Store()


def test_first_key_is_generated_and_only_its_hash_remembered(store):
    key = keys.resolve(store)
    assert key.generated and len(key.generated) >= 40
    assert key.sha256 == key_sha256(key.generated)
    assert store.setting(keys.HOME_KEY_SETTING) is None  # nothing kept before the apply succeeds
    keys.remember(store, key)
    assert store.setting(keys.HOME_KEY_SETTING) == key.sha256
    again = keys.resolve(store)
    assert again.generated is None and again.sha256 == key.sha256
    assert key.generated.encode() not in store.path.read_bytes()


def test_environment_key_wins_and_becomes_default_only_when_none(store, monkeypatch):
    monkeypatch.setenv("CONDUIT_API_KEY", "first-key-0123456789")
    first = keys.resolve(store)
    assert first.generated is None and first.sha256 == key_sha256("first-key-0123456789")
    keys.remember(store, first)
    monkeypatch.setenv("CONDUIT_API_KEY", "second-key-0123456789")
    second = keys.resolve(store)
    keys.remember(store, second)
    assert second.sha256 == key_sha256("second-key-0123456789")
    assert store.setting(keys.HOME_KEY_SETTING) == first.sha256


def test_argument_beats_environment(store, monkeypatch):
    monkeypatch.setenv("CONDUIT_API_KEY", "from-environment-0123")
    assert keys.resolve(store, "from-argument-012345").sha256 == key_sha256("from-argument-012345")


def test_redeploy_without_key_keeps_the_deployments_key(store):
    keys.remember(store, keys.resolve(store, "home-default-key-0123"))
    current = key_sha256("deployment-own-key-01")
    assert keys.resolve(store, current_sha256=current).sha256 == current


@pytest.mark.parametrize("bad", ["short", "has a space in it 0123", ""])
def test_weak_or_malformed_keys_are_refused(store, bad):
    with pytest.raises(UsageError, match="API key"):
        keys.resolve(store, bad)


@pytest.mark.parametrize(("weak", "bits"), [
    ("aaaaaaaaaaaaaaaa", 5), ("abababababababab", 14), ("1234567890123456", 13), ("passwordpassword", 38),
])
def test_a_key_with_too_little_entropy_is_refused(store, monkeypatch, weak, bits):
    monkeypatch.setenv("CONDUIT_API_KEY", weak)
    with pytest.raises(UsageError) as caught:
        keys.resolve(store)
    assert str(caught.value) == (
        f"API key is too easy to guess (about {bits} bits of entropy, at least 48 needed): make a random one with "
        "`python -c 'import secrets; print(secrets.token_urlsafe(24))'`, or give none and conduit generates one"
    )
    assert store.setting(keys.HOME_KEY_SETTING) is None


def test_random_sixteen_character_keys_pass():
    urlsafe = string.ascii_letters + string.digits + "-_"
    drawn = random.Random(16)  # seeded: the same 5,000 keys every run
    for _ in range(5000):
        key = "".join(drawn.choices(urlsafe, k=16))
        assert keys.explicit_key(key) == key


def test_a_kubernetes_secret_refuses_a_weak_key_too(monkeypatch):
    from conduit.targets.kubernetes import api_key_sha256_from_env

    monkeypatch.setenv("CONDUIT_API_KEY", "passwordpassword")
    with pytest.raises(UsageError, match="^API key is too easy to guess"):
        api_key_sha256_from_env()
