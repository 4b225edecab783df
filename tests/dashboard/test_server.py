"""`conduit dashboard` on a real server process: it starts once per home and prints its URL;
everything but the sign-in page needs a session; a wrong key is refused; the session cookie is
HttpOnly and SameSite=Strict and holds no key; actions take JSON only; a foreign Host gets no
page; its state file is private; --stop stops it."""
from __future__ import annotations

import contextlib
import stat
from collections.abc import Iterator

import httpx
import pytest

from conduit.cli.main import main
from conduit.dashboard import running
from conduit.dashboard.sessions import COOKIE
from conduit.keys import HOME_KEY_SETTING
from conduit.serving.auth import key_sha256
from conduit.store import Store
from conduit.targets.local.processes import free_port, is_ours

KEY = "dashboard-server-key-0123456789"


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    home = tmp_path_factory.mktemp("dashboard-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONDUIT_HOME", str(home))
        patch.setenv(running.PORT_ENV, str(free_port()))
        Store(home).set_setting(HOME_KEY_SETTING, key_sha256(KEY))
        assert main(["dashboard", "--url"]) == 0
        found = running.running(home)
        try:
            yield home, running.url_of(found["port"])
        finally:
            main(["dashboard", "--stop"])


@contextlib.contextmanager
def signed_in(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as client:
        assert client.post("/signin", data={"api_key": KEY}).status_code == 303
        yield client


def test_url_is_printed_and_a_second_call_reuses_the_server(dashboard, capsys):
    home, url = dashboard
    first = running.running(home)
    assert main(["dashboard", "--url"]) == 0
    assert capsys.readouterr().out.strip() == url
    assert running.running(home) == first and is_ours(first["pid"], running.MODULE)
    assert stat.S_IMODE(running.state_file(home).stat().st_mode) == 0o600


def test_pages_need_a_session(dashboard):
    _, url = dashboard
    page = httpx.get(url, headers={"Accept": "text/html"})
    assert (page.status_code, page.headers["location"]) == (303, "/signin")
    assert httpx.get(url).status_code == 401
    assert httpx.get(f"{url}live").status_code == 401
    assert httpx.get(f"{url}d/any/predictions/some-id").status_code == 401
    assert httpx.post(f"{url}d/any/rollback", json={"to": 1}).status_code == 401
    assert httpx.post(f"{url}d/any/try", json={"body": "[[1]]"}).status_code == 401
    assert httpx.get(f"{url}signin").status_code == 200


def test_a_wrong_key_is_refused_without_a_cookie(dashboard):
    _, url = dashboard
    refused = httpx.post(f"{url}signin", data={"api_key": "not-the-key-0123456789"})
    assert refused.status_code == 401 and "Wrong API key" in refused.text
    assert "set-cookie" not in refused.headers


def test_the_right_key_gives_a_strict_http_only_cookie_without_the_key(dashboard):
    _, url = dashboard
    answer = httpx.post(f"{url}signin", data={"api_key": KEY})
    cookie = answer.headers["set-cookie"]
    assert answer.status_code == 303 and KEY not in cookie
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    with signed_in(url) as client:
        assert "No deployments yet" in client.get("/").text
        token = client.cookies[COOKIE]
        assert client.post("/signout").status_code == 303
    # The server forgot the session: its old cookie, sent again, is refused.
    assert httpx.get(f"{url}live", cookies={COOKIE: token}).status_code == 401


def test_actions_take_json_only_and_name_a_revision(dashboard):
    _, url = dashboard
    with signed_in(url) as client:
        form = client.post("/d/any/rollback", data={"to": "1"})
        assert (form.status_code, form.json()) == (400, {"error": "send the action as application/json"})
        assert client.post("/d/any/rollback", json={"to": "one"}).status_code == 400
        assert client.post("/d/nothing-here/rollback", json={"to": 1}).status_code == 404


def test_a_foreign_host_gets_no_page(dashboard):
    _, url = dashboard
    assert httpx.get(f"{url}signin", headers={"Host": "rebound.example"}).status_code == 400


def test_the_key_is_not_in_the_servers_log(dashboard):
    home, _ = dashboard
    assert KEY not in running.log_file(home).read_text()


def test_stop_stops_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONDUIT_HOME", str(tmp_path))
    monkeypatch.setenv(running.PORT_ENV, str(free_port()))
    assert main(["dashboard", "--url"]) == 0
    pid = running.running(tmp_path)["pid"]
    assert main(["dashboard", "--stop"]) == 0
    assert not is_ours(pid, running.MODULE) and running.running(tmp_path) is None
    assert main(["dashboard", "--stop"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "The dashboard was not running"
