"""What the runtime may ask of the database: narrow protocols over the stores.

One module for all of them, rather than one next to each store, because it is the
contract a reader (or a second backend) needs in one place: the operations, the value
types they return (`records.py`) and the errors they raise (below). The SQLAlchemy
classes (`TurnStore`, `SessionStore`, ...) implement them for SQLite and PostgreSQL alike;
tests/test_store_conformance.py runs the same checks against both through these
protocols. Runtime code types its dependencies with these names, so it sees records, not
rows, and cannot reach past the protocol (an ORM session, a table).

Only what the runtime uses is here; a store's extra methods (maintenance, benches) are not
part of the contract."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from ..events.types import StoredEvent
from .records import (
    AccountRecord,
    DeploymentRecord,
    FineTuningJobRecord,
    ModelFileRecord,
    ModelRecord,
    OperationRecord,
    SessionRecord,
    TrainingRecord,
    TurnRecord,
    UploadedFileRecord,
)

EventRows = Sequence[tuple[int, str, str]]
"""Events to append: (sequence number, type, JSON)."""


class DuplicateIdempotencyKey(Exception):
    """The (account, idempotency key) pair already names a turn: `existing`, the winner."""

    def __init__(self, existing: TurnRecord) -> None:
        super().__init__(existing.idempotency_key)
        self.existing = existing


class SessionBusy(Exception):
    """The session already has a turn queued, running or paused on an approval."""

    def __init__(self, turn_id: str, paused: bool) -> None:
        super().__init__(turn_id)
        self.turn_id = turn_id
        self.paused = paused


class DuplicateError(Exception):
    """A unique key (e.g. an account's deployment id) is already taken."""


class SessionClosed(Exception):
    """The session was ended (killed); it takes no more turns."""


class TurnLog(Protocol):
    """A turn's append-only event log and the projection stored with it."""

    async def append(self, turn_id: str, events: EventRows, snapshot: dict[str, Any], status: str,
                     only_if: tuple[str, int] | None = None, **values: Any) -> bool:
        """Append and store the projection in one transaction; with `only_if=(status,
        last_seq)` a compare-and-set that writes nothing (False) if the turn moved."""
        ...

    async def read(self, turn_id: str, after_seq: int = -1, limit: int = 1000) -> list[StoredEvent]: ...

    async def log_end(self, turn_id: str) -> tuple[str, int] | None:
        """(status, last sequence number); None: no such turn."""
        ...

    async def last_seqs(self, turn_ids: Sequence[str]) -> dict[str, int]:
        """The last sequence number of each of these turns that exists, in one read."""
        ...

    async def snapshot(self, turn_id: str) -> tuple[str, dict[str, Any]] | None:
        """(account, stored projection); None: no such turn."""
        ...

    async def account_of(self, turn_id: str) -> str | None:
        """The turn's account; None: no such turn."""
        ...


class Turns(TurnLog, Protocol):
    """Turns: created with their first events, claimed under a lease, cancelled, listed."""

    async def create(self, session: SessionRecord | None, turn: TurnRecord, first_events: EventRows) -> None:
        """Insert the new session (when given), the turn and its first events atomically;
        `DuplicateIdempotencyKey` when a same-key turn committed first."""
        ...

    async def create_followup(self, session_id: str, turn: TurnRecord, first_events: EventRows,
                              **session_values: Any) -> None:
        """Add the turn to an idle session (setting `session_values` on it), atomically;
        `SessionClosed`, `SessionBusy` or `DuplicateIdempotencyKey` otherwise."""
        ...

    async def get(self, turn_id: str) -> TurnRecord | None: ...

    async def require(self, turn_id: str) -> TurnRecord:
        """A turn that must exist; LookupError if not."""
        ...

    async def chain_point(self, turn_id: str) -> tuple[TurnRecord, SessionRecord, TurnRecord] | None:
        """(the turn, its session, the session's latest turn)."""
        ...

    async def by_idempotency_key(self, account: str, key: str) -> TurnRecord | None: ...

    async def latest_for_session(self, session_id: str) -> TurnRecord | None: ...

    async def list_for_account(self, account: str, limit: int, before: TurnRecord | None = None) -> list[TurnRecord]:
        """Newest first (ties by id descending), strictly older than `before`."""
        ...

    async def claim(self, turn_id: str, owner: str, lease_seconds: float) -> TurnRecord | None:
        """Queued → in progress for `owner`; None when it was not queued (one winner)."""
        ...

    async def claim_with_session(self, turn_id: str, owner: str,
                                 lease_seconds: float) -> tuple[TurnRecord, SessionRecord] | None:
        """`claim` and the turn's session, read in the same transaction."""
        ...

    async def release(self, turn_id: str) -> None:
        """Drop the turn's lease."""
        ...

    async def request_cancel(self, turn_id: str) -> bool:
        """Flag an in-progress turn for its worker; False when it is not in progress."""
        ...

    async def renew_many(self, turn_ids: Sequence[str], owner: str, lease_seconds: float) -> set[str]:
        """Extend `owner`'s leases; the ids among them whose cancellation was requested."""
        ...

    async def orphaned(self, now: float, include_unleased: bool) -> list[TurnRecord]:
        """Queued or running turns whose lease expired (or, with `include_unleased`, all)."""
        ...

    async def delete(self, turn_id: str) -> bool:
        """Remove the turn and its log (and its session with its last turn)."""
        ...


class Sessions(Protocol):
    """Conversations: history, pending approvals, budget, closed flag."""

    async def get(self, session_id: str) -> SessionRecord | None: ...

    async def require(self, session_id: str) -> SessionRecord:
        """A session that must exist; LookupError if not."""
        ...

    async def save_messages(self, session_id: str, messages: list[dict[str, Any]], turn_id: str | None = None) -> bool:
        """Replace the history; with `turn_id`, only while that turn is the session's running one."""
        ...

    async def update(self, session_id: str, **values: Any) -> None: ...

    async def busy(self, session_ids: Sequence[str], since: float) -> set[str]:
        """Those updated since `since` or with a queued / running turn."""
        ...


class Accounts(Protocol):
    """Who has called the server."""

    async def seen(self, name: str, kind: str) -> None:
        """Insert or touch (idempotent, safe under concurrency)."""
        ...

    async def list(self) -> list[AccountRecord]:
        """All accounts, by name."""
        ...

    async def count(self) -> int: ...


class Approvals(Protocol):
    """The one atomic write of an approval decision."""

    async def resume(self, turn_id: str, session_id: str, pending: dict[str, Any], max_cost_usd: float | None,
                     owner: str, lease_seconds: float) -> bool:
        """Paused turn → queued under `owner`'s lease, with `pending` (and a new cap) on its
        session, in one transaction; False when the turn was not paused any more."""
        ...


class Pauses(Protocol):
    """Agents the operator paused, kept across restarts."""

    async def names(self) -> list[str]: ...

    async def add(self, agent: str, by: str) -> None:
        """Idempotent: the first pause's record stays."""
        ...

    async def remove(self, agent: str) -> None: ...

    async def keep(self, agents: Iterable[str]) -> None:
        """Drop the pauses of agents not in `agents`."""
        ...


class ModelRegistry(Protocol):
    """The model registry: models and their versioned files, trainings, deployments and the
    operations log. Reads by account answer None for another account's row."""

    async def add_model(self, model: ModelRecord) -> ModelRecord: ...

    async def get_model(self, account: str, model_id: str) -> ModelRecord | None: ...

    async def list_models(self, account: str, skip: int = 0, limit: int = 100, kind: str | None = None
                          ) -> list[ModelRecord]:
        """Oldest first; `kind` compared case-insensitively."""
        ...

    async def update_model(self, account: str, model_id: str, **values: Any) -> ModelRecord | None:
        """The model after the update; None when the account has no such model."""
        ...

    async def delete_model(self, account: str, model_id: str) -> list[str]:
        """Remove the model and its files; the removed files' sha256 (empty: nothing removed)."""
        ...

    async def add_file(self, *, id: str, model_id: str, kind: str, filename: str, size: int, sha256: str,
                       source: str, created_at: float | None = None) -> ModelFileRecord:
        """Insert as the next version of (model, kind)."""
        ...

    async def list_files(self, model_id: str) -> list[ModelFileRecord]: ...

    async def get_file(self, file_id: str) -> ModelFileRecord | None: ...

    async def latest_file(self, model_id: str, kind: str) -> ModelFileRecord | None: ...

    async def sha_in_use(self, sha256: str) -> bool:
        """Some file row still names these bytes."""
        ...

    async def add_training(self, training: TrainingRecord) -> TrainingRecord: ...

    async def get_training(self, account: str, training_id: str) -> TrainingRecord | None: ...

    async def list_trainings(self, account: str, skip: int = 0, limit: int = 100) -> list[TrainingRecord]: ...

    async def update_training(self, training_id: str, **values: Any) -> None: ...

    async def add_deployment(self, *, account: str, deployment_id: str, model_id: str, file_id: str | None,
                             ownerid: str, placement: dict[str, Any], inference_data: int, status: str = "pending",
                             reason: str | None = None) -> DeploymentRecord:
        """Insert (the record carries its `pk`); `DuplicateError` when the
        account already has this deployment id."""
        ...

    async def get_deployment(self, account: str, deployment_id: str) -> DeploymentRecord | None: ...

    async def list_deployments(self, account: str, skip: int = 0, limit: int = 100) -> list[DeploymentRecord]: ...

    async def active_deployments(self, account: str | None = None, model_id: str | None = None
                                 ) -> list[DeploymentRecord]:
        """Pending or running."""
        ...

    async def set_deployment_status(self, pk: int, status: str, reason: str | None = None,
                                    only_from: Sequence[str] | None = None) -> bool:
        """False when `only_from` is given and the deployment was in none of those statuses."""
        ...

    async def add_operations(self, rows: Sequence[dict[str, Any]]) -> None:
        """Many operations' column values in one statement (the predict path's batches)."""
        ...

    async def add_operation(self, *, account: str, ownerid: str, deployment_id: str, model_id: str, data: str,
                            result: str) -> OperationRecord: ...

    async def list_operations(self, account: str, *, ownerid: str | None = None, deployment_id: str | None = None,
                              skip: int = 0, limit: int = 1000) -> list[OperationRecord]:
        """Oldest first."""
        ...


class FineTunes(Protocol):
    """Files uploaded for fine-tuning and fine-tuning jobs. Reads are by id; the caller checks
    the record's `account` (another account's file or job is the caller's 404)."""

    async def add_file(self, file: UploadedFileRecord) -> None: ...

    async def file(self, file_id: str) -> UploadedFileRecord | None: ...

    async def files(self, account: str) -> list[UploadedFileRecord]:
        """Oldest first."""
        ...

    async def add_job(self, job: FineTuningJobRecord) -> None: ...

    async def job(self, job_id: str) -> FineTuningJobRecord | None: ...

    async def jobs(self, account: str | None) -> list[FineTuningJobRecord]:
        """Newest first; every account's with None."""
        ...

    async def by_model(self, account: str, fine_tuned_model: str) -> FineTuningJobRecord | None:
        """The account's job that produced this model."""
        ...

    async def transition(self, job_id: str, from_statuses: tuple[str, ...], to: str, **values: Any) -> bool:
        """Move the job to `to` (setting `values`) only from `from_statuses`: one winner of a race."""
        ...

    async def set_metrics(self, job_id: str, metrics: dict[str, Any]) -> None: ...

    async def update(self, job_id: str, **values: Any) -> None:
        """Set columns whatever the status."""
        ...
