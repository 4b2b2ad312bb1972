"""The hf fine-tuning backend: a TRL SFT job on Hugging Face Jobs, in the caller's
namespace, with the caller's token.

The token lives only in this process's memory, inside the task that launches and polls
the job (like a runtime turn, docs/architecture.md): never in the database, a log, or a
file. The task uploads the training/validation files to a private dataset repo, launches
the job (`created` → `queued`), follows `inspect_job` (SCHEDULING → `queued`, RUNNING →
`running`, COMPLETED/ERROR/CANCELED → terminal) and folds the metrics printed in the job's
logs into the record. After a restart nothing polls an unfinished job until its owner reads
it with a token (`attach`); the HF job itself runs on at the Hub regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from ..errors import ServiceError
from ..store.finetune import FineTuneStore
from ..store.records import FineTuningJobRecord
from ..usage.estimates import job_cost
from ..usage.hardware import JobHardware
from ..usage.prices import PriceTable
from .trl_job import TRL_REQUIREMENT, UV_IMAGE, metrics_from_logs, sft_command

if TYPE_CHECKING:
    from huggingface_hub import HfApi

log = logging.getLogger("mlagent.finetune.hf")
T = TypeVar("T")
UNFINISHED = ("created", "queued", "running")
LOG_TAIL = 500
MAX_POLL_FAILURES = 30  # consecutive transient Hub failures before a poller gives up (a read re-attaches)
LAUNCH_GRACE_SECONDS = 600.0  # a `created` job with no HF job id older than this was lost in a restart


class HubFailure(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _failure(exc: Exception, what: str, endpoint: str) -> HubFailure:
    import httpx  # here, not at start: huggingface_hub and httpx (with rich) are slow imports
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        detail = (getattr(exc, "server_message", None) or "").strip() or str(exc).splitlines()[0]
        hint = {402: f" The namespace has no credits or payment method for paid hardware ({endpoint}/settings/billing).",
                401: " The Hugging Face token is not valid any more.",
                403: f" The token lacks the permission (write access and jobs; {endpoint}/settings/tokens)."}
        return HubFailure(f"The Hub answered HTTP {status} to {what}.{hint.get(status, '')} ({detail})", status)
    if isinstance(exc, httpx.HTTPError | OSError):
        return HubFailure(f"Could not reach the Hub to {what}: {type(exc).__name__}.")
    return HubFailure(f"The Hub call to {what} failed: {type(exc).__name__}: {exc}")


class HfBackend:
    def __init__(self, store: FineTuneStore, prices: PriceTable, endpoint: str, poll_seconds: float = 10.0,
                 image: str = UV_IMAGE, trl: str = TRL_REQUIREMENT, hardware: JobHardware | None = None) -> None:
        self.store = store
        self.prices = prices
        self.hardware = hardware
        self.endpoint = endpoint.rstrip("/")
        self.poll_seconds = poll_seconds
        self.image = image
        self.trl = trl
        self._tasks: dict[str, asyncio.Task] = {}

    def flavors(self) -> list[str]:
        """The HF Jobs hardware a job may ask for: the Hub's catalogue (else the price table's)."""
        return sorted(self.prices.jobs)

    async def refresh_flavors(self, token: SecretStr | None) -> list[str]:
        if self.hardware is not None:
            await self.hardware.refresh(token.get_secret_value() if token is not None else None)
        return self.flavors()

    def estimate(self, flavor: str, seconds: float) -> float:
        return round(job_cost(self.prices, flavor, seconds).usd, 6)

    # -- Hub calls ------------------------------------------------------------------
    def _api(self, token: SecretStr) -> HfApi:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=token.get_secret_value())

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        try:
            return await asyncio.to_thread(functools.partial(fn, *args, **kw))
        except Exception as exc:  # noqa: BLE001 — every Hub failure becomes a message for the job
            raise _failure(exc, what, self.endpoint) from None

    async def logs(self, token: SecretStr, hub: dict[str, Any], tail: int) -> str:
        """The HF job's log lines, read from the Hub with the owner's token."""
        api = self._api(token)
        lines = await self._call(f"fetch the logs of HF job {hub['job_id']}", lambda: list(
            api.fetch_job_logs(job_id=hub["job_id"], namespace=hub["namespace"], tail=tail)))
        return "\n".join(str(line) for line in lines)

    async def check_model(self, token: SecretStr, model_id: str) -> None:
        """The base model must be a Hub model the caller can read (400 naming `model_id`)."""
        try:
            await self._call(f"look up model {model_id}", self._api(token).model_info, model_id)
        except HubFailure as exc:
            if exc.status in (401, 403, 404):
                raise ServiceError(400, "invalid_request_error", f"Model {model_id!r} was not found on the Hugging "
                                   "Face Hub (or this token cannot read it): an hf-backend job fine-tunes a Hub "
                                   "model id such as 'Qwen/Qwen2.5-0.5B'.", "model_id", retryable=False) from None
            raise ServiceError(502, "upstream_error", exc.message, "model_id") from None

    # -- lifecycle ------------------------------------------------------------------
    def submit(self, job: FineTuningJobRecord, token: SecretStr, training: str, validation: str | None) -> None:
        self._start(job.id, self._launch(job, token, training, validation))

    def attach(self, job: FineTuningJobRecord, token: SecretStr) -> None:
        """Resume following an unfinished job (after a restart, or on another replica) with
        the token of an owner who just read it."""
        if job.backend != "hf" or job.status not in UNFINISHED or job.id in self._tasks:
            return
        if job.hub and job.hub.get("job_id"):
            self._start(job.id, self._poll(job.id, token, dict(job.hub)))
        elif time.time() - job.updated_at > LAUNCH_GRACE_SECONDS:
            self._start(job.id, self.store.transition(
                job.id, ("created",), "failed", error="The server restarted before the HF job was launched."))

    async def cancel(self, job: FineTuningJobRecord, token: SecretStr | None) -> bool:
        hub_job = job.hub.get("job_id") if job.hub else None
        if job.hub and hub_job:
            if token is None:
                raise ServiceError(403, "permission_error", "Cancelling an hf-backend job calls the Hub with your "
                                   "Hugging Face token: send 'Authorization: Bearer <HF token>' (without X-API-Key).",
                                   "job_id", retryable=False)
            try:
                await self._call(f"cancel HF job {hub_job}", self._api(token).cancel_job, job_id=hub_job,
                                 namespace=job.hub["namespace"])
            except HubFailure as exc:
                if exc.status != 404:
                    raise ServiceError(502, "upstream_error", f"The job could not be cancelled: {exc.message}",
                                       "job_id") from None
            if job.id not in self._tasks:  # nobody polls it: record the cost from the Hub now
                self._start(job.id, self._poll(job.id, token, dict(job.hub)))
        # A job still being launched is cancelled on the Hub by its launcher, which sees this status.
        return await self.store.transition(job.id, UNFINISHED, "cancelled")

    async def shutdown(self) -> None:
        """Stop polling (tokens go with the tasks); the HF jobs run on at the Hub."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    def _start(self, job_id: str, coro) -> None:
        task = asyncio.create_task(coro, name=f"finetune-hf:{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(lambda t: self._tasks.pop(job_id, None) if self._tasks.get(job_id) is t else None)

    # -- the job --------------------------------------------------------------------
    async def _launch(self, job: FineTuningJobRecord, token: SecretStr, training: str, validation: str | None) -> None:
        hub = dict(job.hub or {})
        ns, dataset = hub["namespace"], hub["dataset_repo"]
        from huggingface_hub import CommitOperationAdd

        api = self._api(token)
        cfg = job.compute_config
        try:
            await self._call(f"create the dataset repo {dataset}", api.create_repo, dataset, repo_type="dataset",
                             private=True, exist_ok=True)
            ops = [CommitOperationAdd("train.jsonl", training)]  # paths: huggingface_hub streams them
            if validation:
                ops.append(CommitOperationAdd("validation.jsonl", validation))
            await self._call(f"upload the training data to {dataset}", api.create_commit, dataset, ops,
                             commit_message=f"mlagent fine-tuning job {job.id}", repo_type="dataset")
            current = await self.store.job(job.id)
            if current is None or current.status != "created":
                return  # cancelled while the data was uploading: nothing was launched
            command = sft_command(model_id=job.model_id, dataset=dataset, hub_model_id=hub["model_repo"],
                                  epochs=int(cfg["epochs"]), learning_rate=float(cfg["learning_rate"]),
                                  batch_size=int(cfg["batch_size"]), has_validation=bool(validation), trl=self.trl)
            info = await self._call(f"launch an HF Job on {hub['flavor']}", api.run_job, image=self.image,
                                    command=command, env={"HUB_MODEL_ID": hub["model_repo"], "HUB_DATASET_ID": dataset},
                                    secrets={"HF_TOKEN": token.get_secret_value()}, flavor=hub["flavor"],
                                    timeout=int(cfg["timeout_seconds"]), namespace=ns,
                                    name=f"mlagent-{job.id}", labels={"mlagent-finetune": job.id})
        except HubFailure as exc:
            await self.store.transition(job.id, ("created",), "failed", error=exc.message)
            return
        except (OSError, ValueError) as exc:  # CommitOperationAdd checks the file exists
            await self.store.transition(job.id, ("created",), "failed",
                                        error=f"An uploaded file could not be read: {type(exc).__name__}.")
            return
        hub.update(job_id=info.id, url=info.url)
        if not await self.store.transition(job.id, ("created",), "queued", hub=hub):
            await self.store.update(job.id, hub=hub)  # cancelled during the launch: stop what was started
            with contextlib.suppress(HubFailure):
                await self._call(f"cancel HF job {info.id}", api.cancel_job, job_id=info.id, namespace=ns)
        await self._poll(job.id, token, hub)

    async def _poll(self, job_id: str, token: SecretStr, hub: dict[str, Any]) -> None:
        api, ns, hub_job = self._api(token), hub["namespace"], hub["job_id"]
        failures = 0
        while True:
            try:
                info = await self._call(f"inspect HF job {hub_job}", api.inspect_job, job_id=hub_job, namespace=ns)
                stage = str(getattr(info.status.stage, "value", info.status.stage))
                lines: list[str] = []
                if stage != "SCHEDULING":
                    lines = await self._call(f"fetch the logs of HF job {hub_job}", lambda: list(
                        api.fetch_job_logs(job_id=hub_job, namespace=ns, tail=LOG_TAIL)))
                failures = 0
            except HubFailure as exc:
                if exc.status == 404:
                    await self.store.transition(job_id, UNFINISHED, "failed",
                                                error=f"The HF job {hub_job} no longer exists on the Hub.")
                    return
                failures += 1
                if exc.status in (401, 403) or failures >= MAX_POLL_FAILURES:
                    log.warning("stopped following fine-tuning job %s: %s", job_id, exc.message)
                    return
                await asyncio.sleep(self.poll_seconds)
                continue
            job = await self.store.job(job_id)
            if job is None:
                return
            metrics = metrics_from_logs(lines, job.metrics) if lines else job.metrics
            if stage in ("COMPLETED", "ERROR", "CANCELED", "CANCELLED", "DELETED"):
                await self._finish(job, api, hub, stage, info, lines, metrics)
                return
            if stage == "RUNNING":
                await self.store.transition(job_id, ("created", "queued"), "running")
            if metrics and metrics != job.metrics and job.status in UNFINISHED:
                await self.store.set_metrics(job_id, metrics)
            await asyncio.sleep(self.poll_seconds)

    async def _finish(self, job: FineTuningJobRecord, api: HfApi, hub: dict[str, Any], stage: str, info: Any,
                      lines: list[str], metrics: dict[str, float] | None) -> None:
        durations = getattr(info, "durations", None)
        seconds = (durations.running_secs or durations.total_secs or 0) if durations is not None else 0
        cost = self.estimate(hub["flavor"], float(seconds))
        done = {"metrics": metrics, "cost_usd": cost}
        if stage == "COMPLETED":
            model = hub["model_repo"]
            try:
                await self._call(f"check the pushed model {model}", api.repo_info, model, repo_type="model")
            except HubFailure:
                await self.store.transition(job.id, UNFINISHED, "failed", **done, error=(
                    f"The HF job completed but the model repo {model} is not on the Hub: it did not push."))
                return
            await self.store.transition(job.id, UNFINISHED, "succeeded", fine_tuned_model=model, **done)
        elif stage in ("CANCELED", "CANCELLED"):
            if not await self.store.transition(job.id, UNFINISHED, "cancelled", **done):
                await self.store.update(job.id, cost_usd=cost)
        else:
            last = next((line.strip() for line in reversed(lines) if line.strip()), "")
            message = getattr(info.status, "message", None) or ("deleted" if stage == "DELETED" else "error")
            await self.store.transition(job.id, UNFINISHED, "failed", **done,
                                        error=f"The HF job ended {stage}: {message}. {last[:300]}".strip())
