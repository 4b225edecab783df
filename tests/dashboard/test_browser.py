"""The dashboard in a real browser (headless Chromium, Debian's `chromium`, driven by Playwright)
against a real deployment with two revisions: a wrong key is refused; the right key signs in; the
deployment is listed with its state and endpoint; revisions show, and the rollback button serves
an earlier one again; the log's tail shows; the try-it form's prediction can be looked up by its id
(input, output, revision, timing); the charts have data; and the key is never in a URL, a cookie,
web storage, the page or the server's log. Skips without chromium or the playwright package."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install playwright)")

from conduit.cli.main import main
from conduit.dashboard import running
from conduit.manifest import load
from conduit.targets import local
from conduit.targets.local.processes import free_port
from targets.conftest import TEST_KEY, constant_project, serving_home, wait_for

CHROMIUM = shutil.which("chromium")
NAME = "dash"
IDLE = "dash-idle"
ROLLOUT_MS = 300_000  # a revision's start on a busy machine; a bound, not a timing assertion

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium)"),
]


def with_fields(manifest: Path, **fields) -> Path:
    """The manifest with `fields` added (JSON is YAML), its environment on the Python running
    the tests (whose wheels are here)."""
    fields = {"python_version": f"{sys.version_info.major}.{sys.version_info.minor}", **fields}
    manifest.write_text(manifest.read_text() + "".join(f"{key}: {json.dumps(value)}\n" for key, value in fields.items()))
    return manifest


def deploy(folder: Path, name: str, answer: int, **fields) -> None:
    local.apply(load(with_fields(constant_project(folder, name, answer), **fields)), progress=lambda _: None)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """NAME: revision 1 answers 1, revision 2 (serving, kept warm) answers 2. IDLE scales to zero
    a second after its last request."""
    with serving_home(tmp_path_factory.mktemp("dashboard-home")) as home:
        for answer in (1, 2):
            deploy(tmp_path_factory.mktemp("dash-project"), NAME, answer, min_replicas=1)
        deploy(tmp_path_factory.mktemp("idle-project"), IDLE, 7, min_replicas=0, cooldown=1)
        yield home


@pytest.fixture(scope="module")
def url(home):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(running.PORT_ENV, str(free_port()))
        assert main(["dashboard", "--url"]) == 0
        try:
            yield running.url_of(running.running(home)["port"])
        finally:
            main(["dashboard", "--stop"])


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page(browser, url):
    """One laptop-sized tab for the whole module; every URL it asked for is kept in `.seen`."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    tab.seen = []
    tab.on("request", lambda request: tab.seen.append(request.url))
    tab.on("dialog", lambda dialog: dialog.accept())  # the rollback button asks first
    yield tab
    context.close()


def sign_in(page, key: str) -> None:
    page.fill("#api_key", key)
    page.click("button[type=submit]")


def test_a_wrong_key_is_refused(page, url):
    page.goto(url)
    assert page.url == f"{url}signin"
    sign_in(page, "not-the-key-0123456789abcdef")
    assert "Wrong API key" in page.inner_text("[role=alert]")
    assert page.context.cookies() == [] and page.is_visible("#api_key")


def test_the_right_key_lists_the_deployment_with_state_and_endpoint(page, url):
    sign_in(page, TEST_KEY)
    row = page.wait_for_selector(f"tr[data-deployment={NAME}]")
    status = local.status(NAME)
    assert row.query_selector(".state").inner_text() == status.state == "serving"
    assert row.query_selector(".endpoint").inner_text() == status.endpoint


def test_revisions_show_and_the_log_tail_is_the_serving_revisions(page, url):
    page.click(f"a[href='/d/{NAME}']")
    page.wait_for_selector("#revisions")
    states = page.eval_on_selector_all("#revisions tbody tr", "rows => rows.map(r => [r.dataset.revision, r.dataset.state])")
    assert states == [["2", "serving"], ["1", "archived"]]
    assert page.eval_on_selector_all("button.rollback", "buttons => buttons.map(b => b.dataset.to)") == ["1"]
    shown = page.inner_text("#log").splitlines()
    written = set(Path(local.log_path(NAME)).read_text(errors="replace").splitlines())
    assert shown and all(line in written for line in shown if line.strip())


def try_it(page, body: str) -> dict:
    page.fill("#try-body", body)
    page.evaluate("document.getElementById('try-response').removeAttribute('data-status')")
    page.click("#try button[type=submit]")
    page.wait_for_selector("#try-response[data-status]")
    status, _, data = page.inner_text("#try-response").partition("\n")
    return {"status": status, "data": json.loads(data)}


def look_up(page, prediction_id: str) -> None:
    """Look the id up until the prediction log's writer (it flushes every 0.2 s) has it."""
    page.fill("#lookup-id", prediction_id)
    for _ in range(100):
        page.evaluate("document.getElementById('lookup-result').innerHTML = ''")
        page.press("#lookup-id", "Enter")
        page.wait_for_selector("#prediction, #prediction-missing")
        if page.is_visible("#prediction"):
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"prediction {prediction_id} never appeared in the log")


def test_try_it_answers_and_its_prediction_is_looked_up_by_id(page):
    answer = try_it(page, "[[1, 2]]")
    assert answer["status"] == "HTTP 200" and answer["data"]["result"] == [2]
    (prediction_id,) = answer["data"]["prediction_ids"]
    assert "prediction" in page.get_attribute("#lookup-id", "placeholder")
    look_up(page, prediction_id)
    assert page.get_attribute("#prediction", "data-prediction-id") == prediction_id
    assert json.loads(page.inner_text("#prediction .input")) == [1, 2]
    assert json.loads(page.inner_text("#prediction .output")) == 2
    assert page.inner_text("#prediction .revision") == "2"
    assert page.inner_text("#prediction .run-time").endswith(" ms")
    assert page.inner_text("#prediction .latency").endswith(" ms")
    page.wait_for_selector(f"#recent-predictions a.lookup[data-id='{prediction_id}']")


def test_a_slow_answer_does_not_overwrite_a_later_ones(page):
    """A first send held (as while a replica starts), a second answered: the held answer, when it
    comes, leaves the second's shown."""
    held = []
    page.route("**/try", lambda route: held.append(route) if not held else route.continue_())
    try:
        page.fill("#try-body", "[[5, 6]]")
        page.click("#try button[type=submit]")
        page.wait_for_function("document.getElementById('try-response').innerText.startsWith('Sending')")
        for _ in range(100):  # the route callback runs while the page is driven
            if held:
                break
            page.wait_for_timeout(50)
        assert try_it(page, "[[7, 8")["status"] == "HTTP 400"
        with page.expect_response(lambda response: response.url.endswith("/try")) as released:
            held[0].continue_()
        released.value.finished()
        page.evaluate("() => new Promise(done => setTimeout(() => setTimeout(done, 0), 0))")  # its .then chain
        assert page.inner_text("#try-response").startswith("HTTP 400")
    finally:
        page.unroute("**/try")


def test_the_charts_have_data(page):
    page.wait_for_function("Number(document.getElementById('chart-rate').dataset.total) > 0")
    page.wait_for_function("Number(document.getElementById('chart-latency').dataset.points) > 0")
    assert page.get_attribute("#chart-errors", "data-total") == "0"
    assert page.eval_on_selector("#chart-rate canvas", "canvas => canvas.width") > 0


def test_the_rollback_button_serves_an_earlier_revision_again(page):
    page.click("button.rollback[data-to='1']")
    page.wait_for_selector("#revisions tr[data-revision='3'][data-state='serving']", timeout=ROLLOUT_MS)
    page.wait_for_selector("#rollback-progress[data-state='done']")
    assert page.get_attribute("#revisions tr[data-revision='2']", "data-state") == "archived"
    assert "rollback to r1" in page.inner_text("#revisions tr[data-revision='3'] .note")
    assert try_it(page, "[[3, 4]]")["data"]["result"] == [1]


def test_a_deployment_scaled_to_zero_is_shown_so_and_not_woken(page, url):
    wait_for(lambda: local.status(IDLE).state == "scaled to zero")
    page.goto(f"{url}d/{IDLE}")
    assert page.inner_text("#state") == "scaled to zero"
    for _ in range(3):  # three of the page's polls
        with page.expect_response(lambda response: response.url.endswith(f"/d/{IDLE}/live")):
            pass
    status = local.status(IDLE)
    assert (status.state, status.replicas_ready) == ("scaled to zero", 0)
    page.goto(url)
    assert page.inner_text(f"tr[data-deployment={IDLE}] .state") == "scaled to zero"


def test_the_key_is_in_no_url_cookie_storage_page_or_log(page, home):
    assert page.seen and not [seen for seen in page.seen + [page.url] if TEST_KEY in seen]
    assert page.context.cookies() and not [c for c in page.context.cookies() if TEST_KEY in c["value"]]
    stored = page.evaluate("JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])")
    assert TEST_KEY not in stored and TEST_KEY not in page.content()
    assert TEST_KEY not in running.log_file(home).read_text()
