"""A fake Kubernetes API server on loopback: the REST and watch protocol for Jobs, Pods, pod logs,
evictions, ConfigMaps and Nodes, with Indexed Jobs whose pods run as local processes.

Every request body is checked against the vendored OpenAPI definitions (schema.py), and so is
every object it serves; errors are `Status` objects with the real codes and reasons. Requests
need the bearer token of the kubeconfig `write_kubeconfig` writes. Knobs for tests:
`refuse_next_create` (an admission webhook or quota refusal) and `evict`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from skyd.testing.fake_kube import schema
from skyd.testing.fake_kube.kubelet import FakeKubelet, FakeNode
from skyd.testing.fake_kube.objects import Obj, ObjectStore, Watcher, now_rfc3339

JOB_NAME = "batch.kubernetes.io/job-name"
JOB_INDEX = "batch.kubernetes.io/job-completion-index"
_KINDS = {"jobs": ("Job", "V1Job", "batch/v1"), "pods": ("Pod", "V1Pod", "v1")}


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def _served(kind: str, obj: Obj) -> Obj:
    """What the fake answers must itself fit the definitions the real client decodes."""
    causes: list[schema.Cause] = []
    schema.check_object(obj, kind, "", causes)
    if causes:
        raise AssertionError(f"the fake served an invalid {kind}: {causes}")
    return obj


class FakeKubeServer:
    def __init__(self, root: Path, nodes: list[FakeNode], *, namespace: str = "default") -> None:
        self.root = root
        self.namespace = namespace
        self.token = secrets.token_hex(16)
        self.store = ObjectStore()
        self.kubelet = FakeKubelet(self.store, nodes, root)
        self.kubelet.on_pod_end = self._pod_ended
        self.nodes = nodes
        self.requests: list[tuple[str, str]] = []
        self._refusals: list[tuple[str, int, str, str]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- knobs -----------------------------------------------------------------------

    def refuse_next_create(self, kind: str, code: int, reason: str, message: str) -> None:
        self._refusals.append((kind, code, reason, message))

    def evict(self, namespace: str, name: str, reason: str = "EvictionByEvictionAPI") -> None:
        pod = self.store.get("Pod", namespace, name)
        if pod is None:
            raise KeyError(name)
        self.kubelet.evict(pod, reason)

    def pods(self, selector: str = "") -> list[Obj]:
        return self.store.select("Pod", None, selector)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        app = web.Application(middlewares=[self._auth])
        core = "/api/v1/namespaces/{ns}"
        app.router.add_get("/api/v1/nodes", self._nodes)
        app.router.add_get(core + "/pods", self._list("pods"))
        app.router.add_get(core + "/pods/{name}", self._get("pods"))
        app.router.add_delete(core + "/pods/{name}", self._delete_pod)
        app.router.add_get(core + "/pods/{name}/log", self._log)
        app.router.add_post(core + "/pods/{name}/eviction", self._eviction)
        app.router.add_post(core + "/configmaps", self._create_config_map)
        app.router.add_get(core + "/configmaps/{name}", self._get_config_map)
        app.router.add_delete(core + "/configmaps/{name}", self._delete_config_map)
        batch = "/apis/batch/v1/namespaces/{ns}"
        app.router.add_get(batch + "/jobs", self._list("jobs"))
        app.router.add_post(batch + "/jobs", self._create_job)
        app.router.add_get(batch + "/jobs/{name}", self._get("jobs"))
        app.router.add_delete(batch + "/jobs/{name}", self._delete_job)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def aclose(self) -> None:
        await self.kubelet.aclose()
        if self._runner is not None:
            await self._runner.cleanup()

    def write_kubeconfig(self, path: Path, context: str = "fake") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": f"http://127.0.0.1:{self.port}"}}],
            "users": [{"name": f"{context}-user", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": context,
                    "context": {
                        "cluster": context,
                        "user": f"{context}-user",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": context,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    # -- plumbing --------------------------------------------------------------------

    @web.middleware
    async def _auth(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    async def _body(self, request: web.Request, kind: str) -> Obj | web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return status(400, "BadRequest", "the body of the request was not valid JSON")
        code, causes = schema.validate(kind, body)
        name = (body.get("metadata") or {}).get("name", "") if isinstance(body, dict) else ""
        short = kind.removeprefix("V1")
        if code == 400:
            fields = ", ".join(f'unknown field "{c.field}"' for c in causes)
            return status(400, "BadRequest", f"strict decoding error: {fields}")
        if code == 422:
            text = "; ".join(f"{c.field}: {c.message}" for c in causes)
            return status(
                422,
                "Invalid",
                f'{short} "{name}" is invalid: {text}',
                name=name,
                kind=short,
                causes=[
                    {"reason": c.reason, "message": c.message, "field": c.field} for c in causes
                ],
            )
        assert isinstance(body, dict)
        for i, (refused_kind, rcode, reason, message) in enumerate(self._refusals):
            if refused_kind == short:
                del self._refusals[i]
                return status(rcode, reason, message)
        return body

    def _list(self, plural: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        kind, definition, api_version = _KINDS[plural]

        async def handler(request: web.Request) -> web.StreamResponse:
            namespace = request.match_info["ns"]
            selector = request.query.get("labelSelector", "")
            if request.query.get("watch", "").lower() in ("true", "1"):
                return await self._watch(request, kind, definition, namespace, selector)
            items = [_served(definition, o) for o in self.store.select(kind, namespace, selector)]
            return web.json_response(
                {
                    "apiVersion": api_version,
                    "kind": f"{kind}List",
                    "metadata": {"resourceVersion": str(self.store.version)},
                    "items": items,
                }
            )

        return handler

    async def _watch(
        self, request: web.Request, kind: str, definition: str, namespace: str, selector: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        rv = request.query.get("resourceVersion")
        if rv and rv.isdigit():
            backlog = self.store.since(kind, namespace, selector, int(rv))
        else:  # no version: the current state as ADDED events, then changes
            backlog = [("ADDED", o) for o in self.store.select(kind, namespace, selector)]
        watcher = Watcher(kind, namespace, selector)
        self.store.watchers.append(watcher)
        timeout = float(request.query.get("timeoutSeconds", "30"))
        try:
            for event, obj in backlog:
                await self._send(response, event, definition, obj)
            async with asyncio.timeout(timeout):
                while True:
                    event, obj = await watcher.queue.get()
                    await self._send(response, event, definition, obj)
        except (TimeoutError, ConnectionResetError):
            pass
        finally:
            self.store.watchers.remove(watcher)
        with contextlib.suppress(ConnectionResetError):  # the client may hang up first
            await response.write_eof()
        return response

    async def _send(
        self, response: web.StreamResponse, event: str, definition: str, obj: Obj
    ) -> None:
        line = json.dumps({"type": event, "object": _served(definition, obj)}) + "\n"
        await response.write(line.encode())

    def _get(self, plural: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        kind, definition, _ = _KINDS[plural]

        async def handler(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            obj = self.store.get(kind, request.match_info["ns"], name)
            if obj is None:
                return self._not_found(plural, name)
            return web.json_response(_served(definition, obj))

        return handler

    def _not_found(self, plural: str, name: str) -> web.Response:
        group = "batch" if plural == "jobs" else ""
        what = f"{plural}.{group}" if group else plural
        return status(404, "NotFound", f'{what} "{name}" not found', name=name, kind=plural)

    # -- nodes, configmaps -----------------------------------------------------------

    async def _nodes(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "apiVersion": "v1",
                "kind": "NodeList",
                "metadata": {"resourceVersion": str(self.store.version)},
                "items": [n.to_object() for n in self.nodes],
            }
        )

    async def _create_config_map(self, request: web.Request) -> web.Response:
        body = await self._body(request, "V1ConfigMap")
        if isinstance(body, web.Response):
            return body
        namespace = request.match_info["ns"]
        name = body["metadata"].get("name", "")
        if self.store.get("ConfigMap", namespace, name) is not None:
            return status(409, "AlreadyExists", f'configmaps "{name}" already exists', name=name)
        obj = self.store.create("ConfigMap", namespace, body)
        self.kubelet.config_map_changed(namespace, name)
        return web.json_response(obj, status=201)

    async def _get_config_map(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        obj = self.store.get("ConfigMap", request.match_info["ns"], name)
        if obj is None:
            return self._not_found("configmaps", name)
        return web.json_response(obj)

    async def _delete_config_map(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.store.delete("ConfigMap", request.match_info["ns"], name) is None:
            return self._not_found("configmaps", name)
        return status_ok(name, "configmaps")

    # -- jobs: the job controller ------------------------------------------------------

    async def _create_job(self, request: web.Request) -> web.Response:
        body = await self._body(request, "V1Job")
        if isinstance(body, web.Response):
            return body
        namespace = request.match_info["ns"]
        name = body["metadata"].get("name", "")
        if self.store.get("Job", namespace, name) is not None:
            return status(409, "AlreadyExists", f'jobs.batch "{name}" already exists', name=name)
        body.setdefault("apiVersion", "batch/v1")
        body.setdefault("kind", "Job")
        job = self.store.create("Job", namespace, body)
        job["status"] = {"active": 0, "startTime": now_rfc3339()}
        spec = job["spec"]
        completions = int(spec.get("completions") or 1)
        for index in range(completions):
            self._create_pod(job, index if spec.get("completionMode") == "Indexed" else None)
        return web.json_response(_served("V1Job", job), status=201)

    def _create_pod(self, job: Obj, index: int | None) -> None:
        template = json.loads(json.dumps(job["spec"]["template"]))
        meta = template.get("metadata") or {}
        job_name = job["metadata"]["name"]
        labels = dict(meta.get("labels") or {})
        labels.update({JOB_NAME: job_name, "job-name": job_name})
        annotations = dict(meta.get("annotations") or {})
        suffix = f"{index}-" if index is not None else ""
        if index is not None:
            labels[JOB_INDEX] = str(index)
            annotations[JOB_INDEX] = str(index)
            for container in template["spec"]["containers"]:
                container.setdefault("env", []).append(
                    {"name": "JOB_COMPLETION_INDEX", "value": str(index)}
                )
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{job_name}-{suffix}{uuid.uuid4().hex[:5]}",
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job_name,
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending", "conditions": []},
        }
        pod = self.store.create("Pod", job["metadata"]["namespace"], pod)
        job["status"]["active"] = job["status"].get("active", 0) + 1
        self.store.modified("Job", job)
        self.kubelet.schedule(pod)

    def _pod_ended(self, pod: Obj) -> None:
        owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("name")
        job = self.store.get("Job", pod["metadata"]["namespace"], owner) if owner else None
        if job is None:
            return
        state = job["status"]
        state["active"] = max(0, state.get("active", 0) - 1)
        key = "succeeded" if pod["status"]["phase"] == "Succeeded" else "failed"
        state[key] = state.get(key, 0) + 1
        completions = int(job["spec"].get("completions") or 1)
        if _fails_job(job, pod):
            self._condition(
                job,
                "Failed",
                "PodFailurePolicy",
                f"Pod {pod['metadata']['namespace']}/{pod['metadata']['name']} has condition "
                "DisruptionTarget matching FailJob rule at index 0",
            )
        elif state.get("failed", 0) > int(job["spec"].get("backoffLimit", 6)):
            self._condition(job, "Failed", "BackoffLimitExceeded")
        elif state.get("succeeded", 0) >= completions:
            self._condition(job, "Complete", "CompletionsReached")
        self.store.modified("Job", job)

    def _condition(self, job: Obj, kind: str, reason: str, message: str = "") -> None:
        if job["status"].get("conditions"):
            return  # a finished Job stays as it finished
        stamp = now_rfc3339()
        job["status"]["conditions"] = [
            {
                "type": kind,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastProbeTime": stamp,
                "lastTransitionTime": stamp,
            }
        ]
        if kind == "Complete":
            job["status"]["completionTime"] = stamp
        for pod in self.store.select("Pod", job["metadata"]["namespace"]):
            if pod["metadata"]["labels"].get(JOB_NAME) == job["metadata"]["name"]:
                self.kubelet.kill(pod)  # a failed Job stops its other pods

    async def _delete_job(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["ns"], request.match_info["name"]
        if request.can_read_body:
            options = await self._body(request, "V1DeleteOptions")
            if isinstance(options, web.Response):
                return options
        job = self.store.delete("Job", namespace, name)
        if job is None:
            return self._not_found("jobs", name)
        for pod in self.store.select("Pod", namespace, f"{JOB_NAME}={name}"):
            self.kubelet.kill(pod)
            self.store.delete("Pod", namespace, pod["metadata"]["name"])
        self.kubelet.schedule_pending()
        return status_ok(name, "jobs")

    # -- pods ------------------------------------------------------------------------

    async def _delete_pod(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["ns"], request.match_info["name"]
        pod = self.store.get("Pod", namespace, name)
        if pod is None:
            return self._not_found("pods", name)
        self.kubelet.kill(pod)
        self.store.delete("Pod", namespace, name)
        return status_ok(name, "pods")

    async def _eviction(self, request: web.Request) -> web.Response:
        body = await self._body(request, "V1Eviction")
        if isinstance(body, web.Response):
            return body
        namespace, name = request.match_info["ns"], request.match_info["name"]
        if self.store.get("Pod", namespace, name) is None:
            return self._not_found("pods", name)
        self.evict(namespace, name)
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"},
            status=201,
        )

    async def _log(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["ns"], request.match_info["name"]
        pod = self.store.get("Pod", namespace, name)
        if pod is None:
            return self._not_found("pods", name)
        if not pod["spec"].get("nodeName") or pod["status"]["phase"] == "Pending":
            return status(
                400,
                "BadRequest",
                f'container "{pod["spec"]["containers"][0]["name"]}" in pod "{name}" is '
                "waiting to start: ContainerCreating",
            )
        try:
            data = self.kubelet.log_path(pod).read_bytes()
        except FileNotFoundError:
            data = b""
        limit = request.query.get("limitBytes")
        if limit and limit.isdigit():
            data = data[: int(limit)]
        return web.Response(body=data, content_type="text/plain")


def _fails_job(job: Obj, pod: Obj) -> bool:
    """A podFailurePolicy FailJob rule on a condition the failed pod has (DisruptionTarget)."""
    if pod["status"]["phase"] != "Failed":
        return False
    conditions = {
        c["type"] for c in pod["status"].get("conditions") or [] if c.get("status") == "True"
    }
    for rule in (job["spec"].get("podFailurePolicy") or {}).get("rules") or []:
        wanted = {c["type"] for c in rule.get("onPodConditions") or []}
        if rule.get("action") == "FailJob" and wanted & conditions:
            return True
    return False


def status_ok(name: str, kind: str) -> web.Response:
    return web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "kind": kind},
        }
    )
