"""The dashboard: a page on 127.0.0.1 that shows and steers the local target's deployments.

`conduit dashboard` starts it (`running.py`) as a process of its own (`server.py`, starlette on
uvicorn), so it never shares a fate with the gateway or slows its requests. What it shows is read
from the store, the logs and the prediction log (`views.py`, `charts.py`); what it steers goes
through the same calls as the CLI (a rollback is `conduit rollback` in a child, `rollbacks.py`).

Pages are rendered on the server (Jinja2, `templates/`); one small script (`static/dashboard.js`)
polls a JSON document every two seconds and swaps in the server-rendered fragments, and draws the
charts with Chart.js, vendored from PyPI into `static/` with its licence. No front-end build step.

Security: sign-in takes the API key from a password field in a POST body only; a session is a
random token in an HttpOnly, SameSite=Strict cookie, held in this process's memory with the key
(`sessions.py`), which the try-it form needs and nothing stores. Every page and action but the
sign-in page needs a session; actions take JSON bodies, which a cross-site form cannot send.
"""
