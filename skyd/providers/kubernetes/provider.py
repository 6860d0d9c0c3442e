"""The `kubernetes` provider (kubernetes_asyncio): a context's nodes as offerings; an attempt is an
Indexed Job whose pods are its gang.

Offers: per context, the nodes' allocatable CPUs, memory and `nvidia.com/gpu` (named by the
node label `nvidia.com/gpu.product`), at the lab's internal price. Launch: an Indexed Job
(completions = parallelism = num_nodes, backoffLimit 0, labels = skyd's tags, GPUs as
`nvidia.com/gpu` limits and a node selector on the product). Each completion index is one
Instance (`<job>.<index>@<context>`). States from the pods' phase and conditions: a
`DisruptionTarget` condition (eviction, preemption, drain) — or the Job failed by the
podFailurePolicy rule for it — is PREEMPTED. Terminate deletes the Job (pods in the
background) and its launch ConfigMap. Reconcile lists Jobs by label. Kubeconfig by the
standard chain: `kubeconfig` setting, $KUBECONFIG, ~/.kube/config, then in-cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client.rest import ApiException

from skyd.clock import Clock
from skyd.errors import AuthError, CapacityError, ProviderError
from skyd.model import Instance, InstanceState, LaunchRequest, Offer
from skyd.providers.base import TAG_DAEMON, TAG_MANAGED, launch_tags
from skyd.providers.kubernetes.config import IN_CLUSTER, KubernetesConfig
from skyd.providers.kubernetes.errors import (
    K8S_CLOUD,
    instance_id,
    parse_instance_id,
    translate,
)
from skyd.providers.kubernetes.manifests import (
    GPU_RESOURCE,
    disrupted,
    job_manifest,
    job_name,
    label_tags,
    selector,
)
from skyd.providers.kubernetes.runner import KubernetesRunner

JOB_INDEX = "batch.kubernetes.io/job-completion-index"
JOB_NAME = "batch.kubernetes.io/job-name"

log = logging.getLogger(__name__)

_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}


def quantity(text: str) -> float:
    """A Kubernetes quantity (`16Gi`, `500m`, `4`) as a number (bytes, cores)."""
    text = str(text)
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    for unit, factor in _UNITS.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


def gpu_name(product: str) -> str:
    """`NVIDIA-A100-SXM4-80GB` → `A100`, `Tesla-V100-SXM2-16GB` → `V100`; unknown → `GPU`."""
    name = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
    return name.split("-")[0].upper() if name else "GPU"


@dataclass(frozen=True, slots=True)
class NodeShape:
    cpus: int
    memory_gib: int
    gpu_product: str
    gpus: int
    count: int

    def instance_type(self, gpus: int) -> str:
        """The shape plus the GPUs a job of it gets (each count is an offering of its own)."""
        base = f"{self.cpus}cpu-{self.memory_gib}gb"
        if gpus:
            return f"{base}-{gpu_name(self.gpu_product)}x{gpus}"
        return f"{base}-cpu" if self.gpus else base

    def instance_types(self) -> list[str]:
        return [self.instance_type(k) for k in range(self.gpus, -1, -1)]


class KubernetesProvider:
    name = K8S_CLOUD

    def __init__(self, config: KubernetesConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._clients: dict[str, client.ApiClient] = {}
        self._offers: list[Offer] = []
        self._last_read: dict[str, list[NodeShape]] = {}  # context -> shapes it last answered
        self._shapes: dict[tuple[str, str], NodeShape] = {}
        self.contexts: list[str] = list(config.contexts)
        self.refresh_errors: dict[str, str] = {}
        self._runner: KubernetesRunner | None = None

    # -- connection --------------------------------------------------------------------

    def _kubeconfig(self) -> str | None:
        if self.config.kubeconfig is not None:
            return str(self.config.kubeconfig)
        env = os.environ.get("KUBECONFIG")
        if env:
            return env
        default = Path.home() / ".kube" / "config"
        return str(default) if default.exists() else None

    async def api(self, context: str) -> client.ApiClient:
        if context not in self._clients:
            path = self._kubeconfig()
            if context == IN_CLUSTER or path is None:
                configuration = client.Configuration()
                kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                api = client.ApiClient(configuration)
            else:
                api = await kube_config.new_client_from_config(
                    config_file=path, context=context, persist_config=False
                )
            self._clients[context] = api
        return self._clients[context]

    def _known_contexts(self) -> list[str]:
        if self.config.contexts:
            return list(self.config.contexts)
        path = self._kubeconfig()
        if path is None:
            return [IN_CLUSTER]
        _, current = kube_config.list_kube_config_contexts(config_file=path)
        if not current:
            raise kube_config.ConfigException(f"{path} has no current-context; set contexts")
        return [str(current["name"])]

    @property
    def attempt_runner(self) -> KubernetesRunner:
        """Runs each attempt in its Job's pods (the scheduler asks for it)."""
        if self._runner is None:
            self._runner = KubernetesRunner(self)
        return self._runner

    @property
    def timeout(self) -> float:
        return self.config.request_timeout_s

    # -- offers ----------------------------------------------------------------------

    async def refresh(self) -> None:
        offers: list[Offer] = []
        shapes: dict[tuple[str, str], NodeShape] = {}
        errors: dict[str, str] = {}
        try:
            self.contexts = self._known_contexts()
        except (OSError, kube_config.ConfigException) as exc:
            self.refresh_errors = {"kubeconfig": str(exc)}
            return
        for context in self.contexts:
            try:
                found = await self._node_shapes(context)
            except (ProviderError, kube_config.ConfigException) as exc:
                errors[context] = str(exc)
                log.warning("kubernetes context %s: %s", context, exc)
                # one that stops answering keeps what it offered (a running pod's offering
                # must not vanish); one never read offers nothing until it answers
                found = self._last_read.get(context, [])
            else:
                self._last_read[context] = found
            for shape in found:
                for kind in shape.instance_types():
                    shapes[(context, kind)] = shape
                offers.extend(self._shape_offers(context, shape))
        self._offers, self._shapes, self.refresh_errors = offers, shapes, errors

    async def _node_shapes(self, context: str) -> list[NodeShape]:
        core = client.CoreV1Api(await self.api(context))
        try:
            nodes = await core.list_node(_request_timeout=self.timeout)
        except (ApiException, OSError, TimeoutError) as exc:
            raise translate(exc, context) from exc
        counts: dict[tuple[int, int, str, int], int] = {}
        for node in nodes.items:
            if node.spec is not None and node.spec.unschedulable:
                continue
            ready = any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            )
            if not ready:
                continue
            alloc = node.status.allocatable or {}
            labels = node.metadata.labels or {}
            key = (
                int(quantity(alloc.get("cpu", "0"))),
                int(quantity(alloc.get("memory", "0")) // 2**30),
                labels.get(self.config.gpu_label, ""),
                int(quantity(alloc.get(GPU_RESOURCE, "0"))),
            )
            counts[key] = counts.get(key, 0) + 1
        return [NodeShape(*key, count=n) for key, n in sorted(counts.items())]

    def _shape_offers(self, context: str, shape: NodeShape) -> list[Offer]:
        def offer(gpus: int) -> Offer:
            return Offer(
                cloud=K8S_CLOUD,
                region=context,
                zone="",
                instance_type=shape.instance_type(gpus),
                accelerator_name=gpu_name(shape.gpu_product) if gpus else "",
                accelerator_count=gpus,
                vcpus=float(shape.cpus),
                memory_gib=float(shape.memory_gib),
                price_micros=self.config.hourly_price_micros,
                spot_price_micros=None,
            )

        return [offer(k) for k in range(shape.gpus, 0, -1)] + [offer(0)]

    def offers(self) -> Sequence[Offer]:
        return list(self._offers)

    async def check(self) -> str:
        """`skyctl check`: list the nodes of every context; what each offers, or why not."""
        try:
            contexts = self._known_contexts()
        except (OSError, kube_config.ConfigException) as exc:
            raise AuthError(f"no usable kubeconfig: {exc}", scope=K8S_CLOUD) from exc
        answers: list[str] = []
        failures: list[str] = []
        kind: type[ProviderError] = ProviderError  # the first failure's kind picks the fix
        for context in contexts:
            try:
                shapes = await self._node_shapes(context)
            except (ProviderError, kube_config.ConfigException) as exc:
                if not failures:
                    kind = type(exc) if isinstance(exc, ProviderError) else AuthError
                failures.append(f"context {context}: {exc}")
                continue
            gpus = sum(s.gpus * s.count for s in shapes)
            answers.append(
                f"context {context}: {sum(s.count for s in shapes)} ready node(s), {gpus} GPU(s)"
            )
        if failures:
            raise kind("; ".join(failures + answers))
        return "; ".join(answers)

    def max_nodes(self, offer: Offer) -> int:
        shape = self._shapes.get((offer.region, offer.instance_type))
        return shape.count if shape else 0

    # -- launch ----------------------------------------------------------------------

    async def launch(self, request: LaunchRequest) -> list[Instance]:
        offer = request.offer
        context = offer.region
        if offer.cloud != K8S_CLOUD or context not in self.contexts:
            raise ProviderError(f"{offer.key} is not an offer of a configured Kubernetes context")
        shape = self._shapes.get((context, offer.instance_type))
        scope = f"{K8S_CLOUD}/{context}"
        if shape is None or request.num_nodes > shape.count:
            have = shape.count if shape else 0
            raise CapacityError(
                f"context {context} has {have} {offer.instance_type} nodes; "
                f"{request.num_nodes} asked",
                scope=offer.key,
            )
        tags = launch_tags(request)
        name = job_name(request.client_token)
        batch = client.BatchV1Api(await self.api(context))
        namespace = self.config.namespace
        manifest = job_manifest(
            name=name,
            tags=tags,
            nodes=request.num_nodes,
            # image_id: docker:IMAGE is the pod's image (it needs bash, as the default does)
            image=request.container_image or self.config.image,
            gpus=offer.accelerator_count,
            gpu_label=self.config.gpu_label,
            gpu_product=shape.gpu_product,
            time_limit_s=request.time_limit_s,
            linger_s=self.config.linger_s,
            cpus=request.cpus,
            memory_gib=request.memory_gib,
        )
        try:
            job = await batch.create_namespaced_job(
                namespace,
                manifest,  # type: ignore[arg-type]  # the client sends a plain dict as is
                _request_timeout=self.timeout,
            )
        except ApiException as exc:
            if exc.status != 409:
                raise translate(exc, context) from exc
            job = await self._read_job(context, name)  # a retried launch: the first Job
            if job is None or (job.metadata.labels or {}).get(TAG_DAEMON) != label_tags(tags).get(
                TAG_DAEMON
            ):
                raise ProviderError(
                    f"a Job named {name} that skyd did not launch exists in {namespace}",
                    scope=scope,
                ) from exc
        except (OSError, TimeoutError) as exc:
            raise translate(exc, context) from exc
        return self._instances_of(context, job, offer.instance_type, request.spot)

    async def _read_job(self, context: str, name: str) -> Any:
        batch = client.BatchV1Api(await self.api(context))
        try:
            return await batch.read_namespaced_job(
                name, self.config.namespace, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise translate(exc, context) from exc

    def _instances_of(
        self, context: str, job: Any, instance_type: str = "", spot: bool = False
    ) -> list[Instance]:
        labels = dict(job.metadata.labels or {})
        return [
            Instance(
                instance_id=instance_id(context, job.metadata.name, index),
                provider=self.name,
                cloud=K8S_CLOUD,
                region=context,
                zone="",
                instance_type=instance_type,
                spot=spot,
                state=InstanceState.PENDING,
                tags=labels,
            )
            for index in range(int(job.spec.completions or 1))
        ]

    # -- describe --------------------------------------------------------------------

    async def _managed(self, context: str, label_selector: str) -> tuple[dict[str, Any], Any]:
        api = await self.api(context)
        try:
            jobs = await client.BatchV1Api(api).list_namespaced_job(
                self.config.namespace, label_selector=label_selector, _request_timeout=self.timeout
            )
            pods = await client.CoreV1Api(api).list_namespaced_pod(
                self.config.namespace, label_selector=label_selector, _request_timeout=self.timeout
            )
        except (ApiException, OSError, TimeoutError) as exc:
            raise translate(exc, context) from exc
        return {j.metadata.name: j for j in jobs.items}, pods.items

    def _state(self, job: Any, index: int, pods: Sequence[Any]) -> InstanceState:
        if job is None:
            return InstanceState.TERMINATED
        for condition in job.status.conditions or [] if job.status else []:
            if condition.type == "Failed" and condition.reason == "PodFailurePolicy":
                return InstanceState.PREEMPTED
        mine = [
            p
            for p in pods
            if (p.metadata.labels or {}).get(JOB_NAME) == job.metadata.name
            and (p.metadata.labels or {}).get(JOB_INDEX) == str(index)
        ]
        if any(disrupted(p) for p in mine):
            return InstanceState.PREEMPTED
        if not mine:
            return InstanceState.PENDING
        phase = mine[-1].status.phase
        if phase == "Running":
            return InstanceState.RUNNING
        if phase == "Pending":
            return InstanceState.PENDING
        return InstanceState.TERMINATED

    async def describe(
        self, instance_ids: Sequence[str] | None = None, tags: Mapping[str, str] | None = None
    ) -> dict[str, InstanceState]:
        result: dict[str, InstanceState] = {}
        if instance_ids is None:
            for inst in await self.instances(tags or {}):
                result[inst.instance_id] = inst.state
            return result
        wanted: dict[str, list[tuple[str, str, int]]] = {}
        for iid in instance_ids:
            parsed = parse_instance_id(iid)
            if parsed is None or parsed[0] not in self.contexts:
                result[iid] = InstanceState.TERMINATED
                continue
            wanted.setdefault(parsed[0], []).append((iid, parsed[1], parsed[2]))
        for context, items in wanted.items():
            jobs, pods = await self._managed(context, f"{TAG_MANAGED}=1")
            for iid, name, index in items:
                result[iid] = self._state(jobs.get(name), index, pods)
        return result

    async def instances(self, tags: Mapping[str, str]) -> list[Instance]:
        found: list[Instance] = []
        for context in self.contexts:
            jobs, pods = await self._managed(context, selector({TAG_MANAGED: "1", **tags}))
            for job in jobs.values():
                for inst in self._instances_of(context, job):
                    index = int(inst.instance_id.rpartition("@")[0].rpartition(".")[2])
                    state = self._state(job, index, pods)
                    found.append(replace(inst, state=state))
        return found

    async def pods_of(self, context: str, job: str) -> list[Any]:
        """The Job's pods by completion index (the newest pod of each index)."""
        _, pods = await self._managed(context, f"{JOB_NAME}={job}")
        by_index: dict[int, Any] = {}
        for pod in pods:
            index = (pod.metadata.labels or {}).get(JOB_INDEX)
            if index is not None and index.isdigit():
                by_index[int(index)] = pod
        return [by_index[i] for i in sorted(by_index)]

    # -- stop / start / terminate ----------------------------------------------------

    async def stop(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("a Kubernetes Job cannot be stopped and kept; terminate it")

    async def start(self, instance_ids: Sequence[str]) -> None:
        raise ProviderError("a Kubernetes Job cannot be started again; launch a new one")

    async def terminate(self, instance_ids: Sequence[str]) -> None:
        jobs = {(p[0], p[1]) for p in map(parse_instance_id, instance_ids) if p is not None}
        for context, name in sorted(jobs):
            if context in self.contexts:
                await self.delete_job(context, name)

    async def delete_job(self, context: str, name: str) -> None:
        api = await self.api(context)
        options = client.V1DeleteOptions(propagation_policy="Background")
        try:
            await client.BatchV1Api(api).delete_namespaced_job(
                name, self.config.namespace, body=options, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise translate(exc, context) from exc
        except (OSError, TimeoutError) as exc:
            raise translate(exc, context) from exc
        try:
            await client.CoreV1Api(api).delete_namespaced_config_map(
                f"{name}-launch", self.config.namespace, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise translate(exc, context) from exc

    async def aclose(self) -> None:
        for api in self._clients.values():
            await api.close()
        self._clients.clear()
