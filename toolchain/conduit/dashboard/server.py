"""The dashboard's HTTP server: starlette on uvicorn, on 127.0.0.1 only, in a process of its own.

Run as `python -m conduit.dashboard.server --port N` (what `conduit dashboard` starts): it binds
first, then records its pid and port in `$CONDUIT_HOME/run/dashboard.json` (private), so the CLI
learns the port actually bound. See the package doc for what it serves and how sign-in works.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path
from typing import Any, Optional

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from conduit import paths
from conduit.dashboard import charts, running, views
from conduit.dashboard.pages import render
from conduit.dashboard.rollbacks import Rollbacks
from conduit.dashboard.sessions import COOKIE, Sessions
from conduit.errors import BadRequest, ConduitError, UsageError
from conduit.store import Store
from conduit.targets import local

STATIC = Path(__file__).resolve().parent / "static"
OPEN_PATHS = ("/signin", "/static/")  # all else needs a session
TRY_TIMEOUT_S = 120.0  # a scaled-to-zero deployment's first answer waits for a replica to start


# sign-in


async def require_session(request: Request, call_next: Any) -> Response:
    """Every path but the sign-in page and the static files needs a live session; a browser
    asking for a page without one goes to sign-in, anything else (the script's calls) is refused."""
    if request.url.path.startswith(OPEN_PATHS):
        return await call_next(request)
    session = request.app.state.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):  # a browser's navigation
            return RedirectResponse("/signin", status_code=303)
        return JSONResponse({"error": "not signed in: sign in again"}, status_code=401)
    request.state.session = session
    return await call_next(request)


def signin_page(request: Request) -> HTMLResponse:
    return HTMLResponse(render("signin.html", error=None))


async def sign_in(request: Request) -> Response:
    form = await request.form()
    key = str(form.get("api_key") or "")
    token = await run_in_threadpool(request.app.state.sessions.sign_in, key, Store())
    if token is None:
        message = "Wrong API key: give the key conduit apply printed (or the one set in CONDUIT_API_KEY)."
        return HTMLResponse(render("signin.html", error=message), status_code=401)
    response = RedirectResponse("/", status_code=303)
    # No max_age: a session cookie, gone with the browser; the server forgets it on sign-out or restart.
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def sign_out(request: Request) -> Response:
    request.app.state.sessions.sign_out(request.cookies.get(COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# pages


def overview(request: Request) -> HTMLResponse:
    return HTMLResponse(render("overview.html", deployments=all_deployments()))


def overview_live(request: Request) -> JSONResponse:
    return JSONResponse({"deployments": render("deployment_rows.html", deployments=all_deployments())})


def all_deployments() -> list[dict]:
    return [views.deployment(status) for status in local.statuses()]


def deployment_page(request: Request) -> Response:
    name = request.path_params["name"]
    try:
        status = local.status(name)
    except ConduitError as exc:
        return HTMLResponse(render("missing.html", message=str(exc)), status_code=exc.http_status)
    return HTMLResponse(render("deployment.html", **fragments(name, status, request.app.state.rollbacks)))


def deployment_live(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    try:
        status = local.status(name)
    except ConduitError as exc:
        return JSONResponse({"error": str(exc)}, status_code=exc.http_status)
    values = fragments(name, status, request.app.state.rollbacks)
    return JSONResponse({
        "header": render("deployment_header.html", **values),
        "revisions": render("revisions.html", **values),
        "predictions": render("predictions.html", **values),
        "log": values["log"],
        "charts": values["charts"],
        "rollback": values["rollback"],
    })


def fragments(name: str, status: Any, rollbacks: Rollbacks) -> dict:
    """Everything the deployment page shows, read once per poll."""
    job = rollbacks.latest(name)
    return {
        "deployment": views.deployment(status),
        "revisions": views.revisions(status),
        "predictions": views.recent_predictions(name),
        "log": views.log_tail(serving_log(name)),
        "charts": charts.series(name),
        "rollback": job.view() if job is not None else None,
    }


def serving_log(name: str) -> Optional[Path]:
    try:
        return local.log_path(name)
    except ConduitError:  # no revision has a log yet
        return None


def prediction_lookup(request: Request) -> HTMLResponse:
    name, prediction_id = request.path_params["name"], request.path_params["prediction_id"]
    found = views.prediction(name, prediction_id)
    page = render("prediction.html", prediction=found, prediction_id=prediction_id)
    return HTMLResponse(page, status_code=200 if found else 404)


# actions (JSON bodies only: a cross-site form cannot send one, and SameSite=Strict keeps the cookie home)


async def json_body(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise BadRequest("send the action as application/json")
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the action's body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the action's body must be a JSON object")
    return body


async def roll_back(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    body = await json_body(request)
    to = body.get("to")
    if not isinstance(to, int) or isinstance(to, bool):
        raise BadRequest('say which revision to roll back to: {"to": <revision number>}')
    await run_in_threadpool(local.status, name)  # an unknown name is a 404 here, not a failed child
    job = request.app.state.rollbacks.start(name, to)
    return JSONResponse(job.view(), status_code=202)


async def try_it(request: Request) -> JSONResponse:
    """Post the form's body to the endpoint with the session's key; answer what it answered."""
    name = request.path_params["name"]
    text = str((await json_body(request)).get("body") or "")
    try:
        json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the request body is not JSON ({exc}): write a JSON array such as [[1, 2]]") from None
    status = await run_in_threadpool(local.status, name)
    if status.endpoint is None:
        raise UsageError(f"nothing serves {name} yet: apply it first")
    headers = {"Authorization": request.state.session.api_key, "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=TRY_TIMEOUT_S) as client:
        try:
            answer = await client.post(status.endpoint, content=text, headers=headers)
        except httpx.TransportError as exc:
            return JSONResponse({"error": f"could not reach {status.endpoint}: {exc}"}, status_code=502)
    try:
        data: Any = answer.json()
    except ValueError:
        data = answer.text
    return JSONResponse({"status_code": answer.status_code, "data": data})


async def conduit_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConduitError)
    return JSONResponse({"error": str(exc)}, status_code=exc.http_status)


def create_app() -> Starlette:
    routes = [
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", sign_in, methods=["POST"]),
        Route("/signout", sign_out, methods=["POST"]),
        Route("/", overview, methods=["GET"]),
        Route("/live", overview_live, methods=["GET"]),
        Route("/d/{name}", deployment_page, methods=["GET"]),
        Route("/d/{name}/live", deployment_live, methods=["GET"]),
        Route("/d/{name}/predictions/{prediction_id}", prediction_lookup, methods=["GET"]),
        Route("/d/{name}/rollback", roll_back, methods=["POST"]),
        Route("/d/{name}/try", try_it, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        # A page on another site that resolves its own name to 127.0.0.1 gets no answer.
        Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost"]),
        Middleware(BaseHTTPMiddleware, dispatch=require_session),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={ConduitError: conduit_error})
    app.state.sessions = Sessions()
    app.state.rollbacks = Rollbacks()
    return app


# the process


def bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    return sock


def record_running(home: Path, port: int) -> Path:
    """Write {pid, port} for the CLI, atomically, private (this process's umask is 0o077)."""
    path = running.state_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps({"pid": os.getpid(), "port": port}))
    os.replace(staging, path)
    return path


def forget_running(path: Path) -> None:
    """Remove the record if it is still this process's (a newer dashboard may have replaced it)."""
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def main(argv: Optional[list[str]] = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m conduit.dashboard.server")
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args(argv).port
    paths.keep_private()
    sock = bind(port)
    recorded = record_running(paths.conduit_home(), sock.getsockname()[1])
    config = uvicorn.Config(create_app(), log_level="info", timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        forget_running(recorded)


if __name__ == "__main__":
    main()
