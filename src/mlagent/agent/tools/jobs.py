"""HF Jobs: run (Docker image or Python script via uv), inspect, logs, wait, cancel — in the
caller's namespace, billed to the caller. Launching a job seeds a trackio dashboard Space
for it (when the caller may create Spaces) and announces both as artifacts. Cancelling a
turn never cancels a launched job; only `hf_job_cancel` does.

Cost (docs/cost-and-usage.md): a launch is charged its estimate (flavor × timeout) when it
is admitted; a launch that fails is charged nothing; once a job has ended, the tool that
sees it (`hf_job_wait`, `hf_job_inspect`, `hf_job_cancel`) settles the launch's charge at
the flavor's price × the time the job ran, as the Hub reports it. The job carries the
session and the launching call in its labels, so the charge can be found again."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ...sandbox import Sandbox
from ..notices import ArtifactNotice, CostNotice, JobStatusNotice
from .base import Tool, ToolContext, ToolError
from .hubclient import HubClient, clamp, need_str

if TYPE_CHECKING:
    from huggingface_hub import HfApi, JobInfo

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
TERMINAL_STAGES = {"COMPLETED", "ERROR", "CANCELED", "CANCELLED", "DELETED"}
# The hardware HF Jobs offers comes from the Hub's catalogue (usage/hardware.py, injected as
# `hardware`); this list (huggingface_hub's `JobHardware`) is only used without one. What each
# costs comes from the server's price table, injected as `job_price`: one source of prices.
FLAVORS = (
    "cpu-basic", "cpu-upgrade", "cpu-xl", "cpu-performance", "t4-small", "t4-medium", "l4x1", "l4x4",
    "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "l40sx1", "l40sx4", "l40sx8", "a100-large",
    "a100x4", "a100x8", "h200", "h200x2", "h200x4", "h200x8", "rtx-pro-6000", "rtx-pro-6000x2",
    "rtx-pro-6000x4", "rtx-pro-6000x8",
)


class FlavorCatalogue(Protocol):
    """The flavors HF Jobs offers now (usage/hardware.JobHardware)."""

    def names(self) -> list[str]: ...

    async def refresh(self, token: str | None = None) -> list[str]: ...


DEFAULT_TIMEOUT = "30m"
SESSION_LABEL, CALL_LABEL = "mlagent-session", "mlagent-call"
OUTPUT_ENV_KEYS = ("HUB_MODEL_ID", "HUB_DATASET_ID", "OUTPUT_REPO")


def timeout_seconds(value: Any) -> int:
    if value is None or value == "":
        value = DEFAULT_TIMEOUT
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip().lower()
    factors = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if text[-1] in factors:
            return int(float(text[:-1]) * factors[text[-1]])
        return int(float(text))
    except (ValueError, IndexError):
        raise ToolError(f"timeout {value!r} is not a duration like '30m', '2h' or 1800") from None


def _str_map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ToolError(f"'{key}' must be an object of string values")
    return {k: str(v) for k, v in value.items()}


class JobRunTool(Tool):
    name = "hf_job_launch"
    needs_hf_token = True
    read_only = False
    cost_kind = "job"
    description = (
        "Launch an HF Job on Hugging Face cloud hardware, in the user's namespace and billed to them. Give either "
        "`script` (Python source, or an https URL to a .py file; run with uv, PEP 723 metadata honoured) or "
        "`image` + `command`. Set `push_to_hub` to give the job the user's token as the HF_TOKEN secret, and put "
        "the repo it will push to in `output_repo` (also set as HUB_MODEL_ID). Returns the job id and URL."
    )
    parameters = {
        "type": "object",
        "properties": {
            "script": {"type": "string", "description": "inline Python source or an https URL to a script"},
            "script_path": {"type": "string", "description": "a Python file in your sandbox to run instead"},
            "dependencies": {"type": "array", "items": {"type": "string"}, "description": "pip packages for uv"},
            "image": {"type": "string", "description": "Docker image (with `command`)"},
            "command": {"type": "array", "items": {"type": "string"}},
            "flavor": {"type": "string", "description": "hardware, default cpu-basic"},
            "timeout": {"type": "string", "description": "max duration, e.g. '30m' (default) or '2h'"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
            "secrets": {"type": "object", "additionalProperties": {"type": "string"}},
            "push_to_hub": {"type": "boolean", "description": "pass the user's token as secret HF_TOKEN"},
            "output_repo": {"type": "string", "description": "repo id the job pushes to (recorded as an artifact)"},
        },
    }

    def __init__(self, hub: HubClient, sandbox: Sandbox | None = None, trackio: bool = True,
                 job_price: Callable[[str, float], float] | None = None,
                 hardware: FlavorCatalogue | None = None) -> None:
        self.hub = hub
        self.hardware = hardware
        self.sandbox = sandbox
        self.trackio = trackio
        self.job_price = job_price  # (flavor, seconds) -> USD; None prices every job at 0 (unpriced)

    def flavors(self) -> list[str]:
        return self.hardware.names() if self.hardware is not None else sorted(FLAVORS)

    def spec(self) -> dict[str, Any]:
        """The flavor enum is the current catalogue's, not a list frozen at start-up."""
        spec = super().spec()
        params = {**self.parameters, "properties": {**self.parameters["properties"]}}
        params["properties"]["flavor"] = {**params["properties"]["flavor"], "enum": self.flavors()}
        spec["function"]["parameters"] = params
        return spec

    def estimate_cost_usd(self, arguments: dict[str, Any]) -> float:
        flavor = arguments.get("flavor") or "cpu-basic"
        seconds: float
        try:
            seconds = timeout_seconds(arguments.get("timeout"))
        except ToolError:
            seconds = 1800.0
        return 0.0 if self.job_price is None else round(self.job_price(flavor, seconds), 4)

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        try:
            flavor, job, ns, timeout, env, output_repo = await self._launch(arguments, ctx)
        except Exception:
            ctx.notify(CostNotice(usd=0.0))  # no job ran: the admitted estimate is not spent
            raise
        ctx.notify(ArtifactNotice(type="hf_job", id=job.id, url=job.url))
        dashboard = await self._dashboard(ctx, env) if self.trackio else None
        lines = [f"Launched HF Job {job.id} ({flavor}, timeout {timeout}s) in namespace {ns}: {job.url}",
                 f"status: {job.status.stage}"]
        if dashboard:
            lines.append(f"trackio dashboard: {dashboard} (project {env['TRACKIO_PROJECT']})")
        if output_repo:
            lines.append(f"expected output repo: {self.hub.repo_url(output_repo)}")
        lines.append("Use hf_job_wait to wait for it, hf_job_logs for its logs.")
        return "\n".join(lines)

    async def _launch(self, arguments: dict[str, Any], ctx: ToolContext) -> tuple[str, JobInfo, str, int, dict[str, str], str | None]:
        flavor = arguments.get("flavor") or "cpu-basic"
        if self.hardware is not None:
            await self.hardware.refresh(ctx.token.get_secret_value() if ctx.token is not None else None)
        if flavor not in self.flavors():
            raise ToolError(f"unknown flavor {flavor!r}; HF Jobs offers: {', '.join(self.flavors())}")
        timeout = timeout_seconds(arguments.get("timeout"))
        env = _str_map(arguments.get("env"), "env")
        secrets = _str_map(arguments.get("secrets"), "secrets")
        image, command = self._command(arguments, ctx, env)
        output_repo = arguments.get("output_repo")
        ns = await self.hub.namespace(ctx)
        if output_repo:
            output_repo = await self.hub.qualify(ctx, str(output_repo))
            env.setdefault("HUB_MODEL_ID", output_repo)
        if arguments.get("push_to_hub") or output_repo:
            if ctx.token is None:
                raise ToolError("this caller has no Hugging Face token to give the job for pushing")
            secrets.setdefault("HF_TOKEN", ctx.token.get_secret_value())
        slug = await self._collection(ctx)
        if slug:
            env.setdefault("MLAGENT_COLLECTION", slug)
        if self.trackio:
            env.setdefault("TRACKIO_SPACE_ID", f"{ns}/trackio")
            env.setdefault("TRACKIO_PROJECT", f"mlagent-{ctx.session_id}")
        api = self.hub.api(ctx)
        job = await self.hub.call(f"launch an HF Job ({flavor})", api.run_job, image=image, command=command, env=env,
                                  secrets=secrets or None, flavor=flavor, timeout=timeout, namespace=ns,
                                  labels={SESSION_LABEL: ctx.session_id[:60], CALL_LABEL: ctx.call_id[:60]},
                                  billing_ns=ns, permission="job.write")
        return flavor, job, ns, timeout, env, output_repo

    def _command(self, arguments: dict[str, Any], ctx: ToolContext, env: dict[str, str]) -> tuple[str, list[str]]:
        script = arguments.get("script")
        if arguments.get("script_path"):
            if self.sandbox is None:
                raise ToolError("script_path needs the sandbox")
            try:
                data, size = self.sandbox.read_bytes(ctx.session_id, str(arguments["script_path"]), 1024 * 1024)
            except ValueError as exc:
                raise ToolError(str(exc)) from None
            if size > len(data):
                raise ToolError("the script is larger than 1 MB")
            script = data.decode()
        deps = arguments.get("dependencies") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ToolError("'dependencies' must be a list of strings")
        with_args = " ".join(f"--with '{d}'" for d in deps if "'" not in d)
        if script:
            if not isinstance(script, str):
                raise ToolError("'script' must be a string")
            image = arguments.get("image") or UV_IMAGE
            if script.startswith(("https://", "http://")):
                return image, ["uv", "run", *sum((["--with", d] for d in deps), []), script]
            env["MLAGENT_SCRIPT_B64"] = base64.b64encode(script.encode()).decode()
            return image, ["bash", "-c", f'echo "$MLAGENT_SCRIPT_B64" | base64 -d > /tmp/job.py && uv run {with_args} /tmp/job.py']
        image = arguments.get("image")
        command = arguments.get("command")
        if not image or not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise ToolError("give `script` (or `script_path`), or `image` with a non-empty `command` list")
        return image, command

    async def _collection(self, ctx: ToolContext) -> str | None:
        try:
            return await self.hub.collection(ctx)
        except ToolError:
            return None

    async def _dashboard(self, ctx: ToolContext, env: dict[str, str]) -> str | None:
        """Seed the trackio dashboard Space the job logs to (TRACKIO_SPACE_ID / TRACKIO_PROJECT);
        skipped (not fatal) where the caller cannot create Spaces."""
        space_id, project = env["TRACKIO_SPACE_ID"], env["TRACKIO_PROJECT"]
        try:
            await self.hub.call("create the trackio dashboard Space", self.hub.api(ctx).create_repo, space_id,
                                repo_type="space", space_sdk="gradio", exist_ok=True, private=True)
        except ToolError:
            return None
        url = self.hub.repo_url(space_id, "space")
        ctx.notify(ArtifactNotice(type="trackio_dashboard", space_id=space_id, url=url, project=project))
        await self.hub.collect(ctx, space_id, "space")
        return url


class _JobTool(Tool):
    needs_hf_token = True
    parameters = {"type": "object", "properties": {"job_id": {"type": "string"}}, "required": ["job_id"]}

    def __init__(self, hub: HubClient, poll_seconds: float = 10.0,
                 job_price: Callable[[str, float], float] | None = None) -> None:
        self.hub = hub
        self.poll_seconds = poll_seconds
        self.job_price = job_price  # (flavor, seconds) -> USD, as JobRunTool's

    async def _inspect(self, api: HfApi, job_id: str, ns: str) -> JobInfo:
        return await self.hub.call(f"inspect job {job_id}", api.inspect_job, job_id=job_id, namespace=ns)

    def _settle(self, job: JobInfo, ctx: ToolContext) -> None:
        """A job of this session that has ended: its launch's charge becomes what it cost."""
        labels = job.labels or {}
        seconds = ran_seconds(job)
        if (job.status.stage in TERMINAL_STAGES and self.job_price is not None and job.flavor and seconds is not None
                and labels.get(CALL_LABEL) and labels.get(SESSION_LABEL) == ctx.session_id[:60]):
            ctx.notify(CostNotice(usd=round(self.job_price(job.flavor, seconds), 4), call_id=labels[CALL_LABEL]))

    async def _logs(self, api: HfApi, job_id: str, ns: str, tail: int) -> list[str]:
        return await self.hub.call(f"fetch the logs of job {job_id}",
                                   lambda: list(api.fetch_job_logs(job_id=job_id, namespace=ns, tail=tail)))

    @staticmethod
    def _describe(job: JobInfo) -> str:
        lines = [f"job {job.id}: {job.status.stage}" + (f" ({job.status.message})" if job.status.message else ""),
                 f"url: {job.url}", f"flavor: {job.flavor}"]
        if job.durations is not None:
            lines.append(f"running for {job.durations.running_secs}s (total {job.durations.total_secs}s)")
        return "\n".join(lines)


def ran_seconds(job: JobInfo) -> float | None:
    """How long the job ran, as the Hub reports it (its running time, else its timestamps)."""
    if job.durations is not None and job.durations.running_secs is not None:
        return float(job.durations.running_secs)
    if job.started_at is not None and job.finished_at is not None:
        return max(0.0, (job.finished_at - job.started_at).total_seconds())
    return None


class JobInspectTool(_JobTool):
    name = "hf_job_inspect"
    description = "Get an HF Job's status, hardware and URL."

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        job_id = need_str(arguments, "job_id")
        ns = await self.hub.namespace(ctx)
        job = await self._inspect(self.hub.api(ctx), job_id, ns)
        self._settle(job, ctx)
        return self._describe(job)


class JobLogsTool(_JobTool):
    name = "hf_job_logs"
    description = "Fetch the last lines of an HF Job's logs (does not wait for more)."
    parameters = {"type": "object", "properties": {"job_id": {"type": "string"},
                                                   "tail": {"type": "integer", "minimum": 1, "maximum": 2000}},
                  "required": ["job_id"]}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        job_id = need_str(arguments, "job_id")
        ns = await self.hub.namespace(ctx)
        lines = await self._logs(self.hub.api(ctx), job_id, ns, clamp(arguments.get("tail"), 1, 2000, 200))
        return "\n".join(lines) if lines else f"No log lines yet for job {job_id}."


class JobWaitTool(_JobTool):
    name = "hf_job_wait"
    description = ("Wait until an HF Job finishes (or `timeout_seconds` passes), then report its final status, "
                   "the end of its logs and the repo it pushed (if any).")
    parameters = {"type": "object", "properties": {"job_id": {"type": "string"},
                                                   "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 14400}},
                  "required": ["job_id"]}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        job_id = need_str(arguments, "job_id")
        limit = clamp(arguments.get("timeout_seconds"), 1, 14400, 3600)
        ns = await self.hub.namespace(ctx)
        api = self.hub.api(ctx)
        deadline = time.monotonic() + limit
        job = await self._inspect(api, job_id, ns)
        stage = None
        while True:
            if job.status.stage != stage:  # progress reaches the stream while the wait goes on
                stage = job.status.stage
                ctx.notify(JobStatusNotice(job_id=job.id, stage=stage, message=job.status.message, url=job.url))
            if stage in TERMINAL_STAGES or time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(self.poll_seconds, max(0.0, deadline - time.monotonic())))
            job = await self._inspect(api, job_id, ns)
        self._settle(job, ctx)
        parts = [self._describe(job)]
        if job.status.stage not in TERMINAL_STAGES:
            parts.append(f"Still {job.status.stage} after {limit}s; call hf_job_wait again to keep waiting.")
        logs = await self._logs(api, job_id, ns, 60)
        if logs:
            parts.append("--- last log lines ---\n" + "\n".join(logs))
        if job.status.stage == "COMPLETED":
            parts += await self._outputs(job, ctx, api)
        return "\n".join(parts)

    async def _outputs(self, job: JobInfo, ctx: ToolContext, api: HfApi) -> list[str]:
        """Record the repo the job pushed (declared through its environment) as an artifact."""
        found = []
        for key in OUTPUT_ENV_KEYS:
            repo_id = (job.environment or {}).get(key)
            if not repo_id:
                continue
            kind = "dataset" if key == "HUB_DATASET_ID" else "model"
            try:
                await self.hub.call(f"check the output repo {repo_id}", api.repo_info, repo_id, repo_type=kind)
            except ToolError:
                found.append(f"output repo {repo_id} was not found on the Hub: the job may not have pushed it")
                continue
            url = self.hub.repo_url(repo_id, kind)
            ctx.notify(ArtifactNotice(type=kind, repo_id=repo_id, url=url))
            await self.hub.collect(ctx, repo_id, kind)
            found.append(f"output {kind}: {url}")
        return found


class JobCancelTool(_JobTool):
    name = "hf_job_cancel"
    read_only = False
    description = "Cancel a running HF Job (only when the user asks, or the job is clearly broken)."

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        job_id = need_str(arguments, "job_id")
        ns = await self.hub.namespace(ctx)
        api = self.hub.api(ctx)
        await self.hub.call(f"cancel job {job_id}", api.cancel_job, job_id=job_id, namespace=ns,
                            permission="job.write")
        job = await self._inspect(api, job_id, ns)
        self._settle(job, ctx)
        return f"Cancellation requested for job {job_id}.\n" + self._describe(job)
