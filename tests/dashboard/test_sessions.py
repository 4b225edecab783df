"""Sign-in: a key signs in when its sha256 is the home default's or a serving revision's; any
other key is refused; a session lives in memory until sign-out."""
from __future__ import annotations

from conduit.dashboard.sessions import Sessions
from conduit.keys import HOME_KEY_SETTING
from conduit.serving.auth import key_sha256
from conduit.store import Store

HOME_KEY = "home-default-key-0123456789"
SERVING_KEY = "serving-revision-key-987654"


def test_home_default_key_signs_in_and_a_wrong_one_does_not(tmp_path):
    store = Store(tmp_path)
    store.set_setting(HOME_KEY_SETTING, key_sha256(HOME_KEY))
    sessions = Sessions()
    assert sessions.sign_in("wrong-key-0123456789abcdef", store) is None
    assert sessions.sign_in("", store) is None
    token = sessions.sign_in(HOME_KEY, store)
    assert token and HOME_KEY not in token
    assert sessions.get(token).api_key == HOME_KEY
    sessions.sign_out(token)
    assert sessions.get(token) is None


def test_a_serving_revisions_key_signs_in_an_archived_ones_does_not(tmp_path):
    store = Store(tmp_path)
    store.ensure_deployment("keyed")
    old = store.add_revision("keyed", "keyed:old", key_sha256("archived-revision-key-1234"))
    store.promote("keyed", old.revision)
    new = store.add_revision("keyed", "keyed:new", key_sha256(SERVING_KEY))
    store.promote("keyed", new.revision)
    sessions = Sessions()
    assert sessions.sign_in(SERVING_KEY, store) is not None
    assert sessions.sign_in("archived-revision-key-1234", store) is None


def test_no_key_signs_in_where_nothing_accepts_one(tmp_path):
    assert Sessions().sign_in(HOME_KEY, Store(tmp_path)) is None
