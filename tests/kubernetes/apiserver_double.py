"""A recorded-request double of the Kubernetes API server, for the one thing that cannot run here:
a cluster. It answers real `kubectl` with just enough of the API (version, discovery, OpenAPI v3
for server-side field validation, server-side apply, get) and records every request, so tests see
exactly what conduit sent. Objects it stores report themselves ready, as the controllers would.
It runs on 127.0.0.1 in a thread and is stopped by the fixture that starts it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

# (group, version) -> {resource: (kind, namespaced)}
RESOURCES = {
    ("", "v1"): {"secrets": ("Secret", True), "services": ("Service", True), "namespaces": ("Namespace", False)},
    ("apps", "v1"): {"deployments": ("Deployment", True)},
    ("autoscaling", "v2"): {"horizontalpodautoscalers": ("HorizontalPodAutoscaler", True)},
    ("serving.kserve.io", "v1beta1"): {"inferenceservices": ("InferenceService", True)},
}
SHORT_NAMES = {"inferenceservices": ["isvc"], "deployments": ["deploy"], "horizontalpodautoscalers": ["hpa"]}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    content_type: Optional[str]
    body: Optional[dict]


@dataclass
class ApiServerDouble:
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict] = field(default_factory=dict)  # (resource, namespace, name)
    ready: bool = True  # whether stored workloads report ready

    def applied(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "PATCH"]


def _group_path(group: str, version: str) -> str:
    return f"api/{version}" if group == "" else f"apis/{group}/{version}"


def _resource_list(group: str, version: str) -> dict:
    resources = [
        {
            "name": name,
            "singularName": kind.lower(),
            "namespaced": namespaced,
            "kind": kind,
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": SHORT_NAMES.get(name, []),
        }
        for name, (kind, namespaced) in RESOURCES[(group, version)].items()
    ]
    group_version = version if group == "" else f"{group}/{version}"
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


def _openapi(group: str, version: str) -> dict:
    """Only what kubectl reads to decide the server validates fields itself (fieldValidation)."""
    prefix = "/" + _group_path(group, version)

    def patch(kind: str) -> dict:
        return {"patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
        }}

    paths = {
        (f"{prefix}/namespaces/{{namespace}}/{name}/{{name}}" if namespaced else f"{prefix}/{name}/{{name}}"): patch(kind)
        for name, (kind, namespaced) in RESOURCES[(group, version)].items()
    }
    return {"openapi": "3.0.0", "info": {"title": "double", "version": "0"}, "paths": paths, "components": {"schemas": {}}}


def _status_for(kind: str, obj: dict, ready: bool) -> dict:
    name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
    if kind == "InferenceService":
        condition = {"type": "Ready", "status": "True" if ready else "False", "reason": "" if ready else "RevisionMissing",
                     "message": "" if ready else "Revision has not become ready"}
        return {"url": f"http://{name}.{namespace}.example.com", "conditions": [condition]}
    if kind == "Deployment":
        replicas = obj["spec"].get("replicas", 1)
        return {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                "availableReplicas": replicas if ready else 0}
    return {}


class _Handler(BaseHTTPRequestHandler):
    double: ApiServerDouble

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what: str = "") -> None:
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                         "code": 404, "message": f"{what or self.path} not found"})

    def _record(self) -> tuple[str, dict, Optional[dict]]:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None  # kubectl sends apply patches as JSON (valid YAML)
        query = parse_qs(url.query)
        self.double.requests.append(Recorded(self.command, url.path, query, self.headers.get("Content-Type"), body))
        return url.path, query, body

    def do_GET(self) -> None:
        path, _, _ = self._record()
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        if path == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            groups = [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}}
                for g, v in RESOURCES if g
            ]
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
        if path == "/openapi/v3":
            index = {_group_path(g, v): {"serverRelativeURL": f"/openapi/v3/{_group_path(g, v)}"} for g, v in RESOURCES}
            return self._send(200, {"paths": index})
        if parts[:2] == ["openapi", "v3"]:
            return self._openapi(parts[2:])
        target = self._target(parts)
        if target is None:
            return self._not_found()
        resource, namespace, name = target
        if (group_version := self._group_version(parts)) and not name and not resource:
            return self._send(200, _resource_list(*group_version))
        if not name:
            return self._send(200, self._list(resource, namespace, parse_qs(urlsplit(self.path).query)))
        obj = self.double.objects.get((resource, namespace, name))
        return self._send(200, obj) if obj else self._not_found(f"{resource} {name}")

    def do_DELETE(self) -> None:
        path, _, _ = self._record()
        target = self._target([p for p in path.split("/") if p])
        obj = self.double.objects.pop(target, None) if target else None
        if obj is None:
            return self._not_found()
        self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200})

    def _list(self, resource: str, namespace: str, query: dict) -> dict:
        wanted = dict(pair.split("=", 1) for pair in query.get("labelSelector", [""])[0].split(",") if pair)
        items = [
            obj for (res, ns, _), obj in self.double.objects.items()
            if res == resource and ns == namespace
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}

    def do_PATCH(self) -> None:
        path, _, body = self._record()
        target = self._target([p for p in path.split("/") if p])
        if target is None or body is None or not target[2]:
            return self._not_found()
        resource, namespace, name = target
        kind = next(k for r in RESOURCES.values() for res, (k, _) in r.items() if res == resource)
        stored = {**body, "metadata": {**body.get("metadata", {}), "namespace": namespace, "generation": 1, "uid": f"uid-{name}"}}
        stored["status"] = _status_for(kind, stored, self.double.ready)
        created = (resource, namespace, name) not in self.double.objects
        self.double.objects[(resource, namespace, name)] = stored
        self._send(201 if created else 200, stored)

    def _openapi(self, rest: list[str]) -> None:
        group_version = self._group_version(rest)
        if group_version is None:
            return self._not_found()
        self._send(200, _openapi(*group_version))

    @staticmethod
    def _group_version(parts: list[str]) -> Optional[tuple[str, str]]:
        if parts[:1] == ["api"] and len(parts) >= 2:
            return ("", parts[1])
        if parts[:1] == ["apis"] and len(parts) >= 3:
            return (parts[1], parts[2])
        return None

    def _target(self, parts: list[str]) -> Optional[tuple[str, str, str]]:
        """(resource, namespace, name) of a resource path; ('', '', '') for a group-version root."""
        group_version = self._group_version(parts)
        if group_version is None or group_version not in RESOURCES:
            return None
        rest = parts[2:] if group_version[0] == "" else parts[3:]
        if not rest:
            return ("", "", "")
        if rest[0] == "namespaces" and len(rest) >= 3:
            return (rest[2], rest[1], rest[3] if len(rest) > 3 else "")
        return (rest[0], "", rest[1] if len(rest) > 1 else "")


class RunningDouble:
    """The double on a free 127.0.0.1 port, with a kubeconfig file that points kubectl at it."""

    def __init__(self, kubeconfig_path, namespace: str = "models") -> None:
        self.double = ApiServerDouble()
        handler = type("Handler", (_Handler,), {"double": self.double})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.kubeconfig = kubeconfig_path
        self.kubeconfig.write_text(self._kubeconfig(namespace))

    def _kubeconfig(self, namespace: str) -> str:
        server = f"http://127.0.0.1:{self.server.server_address[1]}"
        return json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "double",
            "clusters": [{"name": "double", "cluster": {"server": server}}],
            "users": [{"name": "tester", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "double", "context": {"cluster": "double", "user": "tester", "namespace": namespace}}],
        })

    def __enter__(self) -> "RunningDouble":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
