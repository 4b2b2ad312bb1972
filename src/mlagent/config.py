"""Server configuration, read from the environment (DESIGN.md's configuration table)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODELS = (
    "moonshotai/Kimi-K2.6:novita",
    "moonshotai/Kimi-K2-Instruct:novita",
    "Qwen/Qwen3-Coder-480B-A35B-Instruct:novita",
    "deepseek-ai/DeepSeek-V3.1:novita",
    "openai/gpt-oss-120b:novita",
)


class Settings(BaseSettings):
    """Every knob of the server. Names are a contract: tests and operators rely on them."""

    model_config = SettingsConfigDict(env_prefix="MLAGENT_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8000
    grpc_port: int = 50051
    # Where users reach this server (scheme://host[:port]), for URLs the agent reports, e.g. a
    # deployment's endpoint. Unset: http://<host>:<port> (127.0.0.1 when bound to all interfaces).
    public_url: str | None = None
    data_dir: Path = Path("./.mlagent")
    database_url: str | None = None
    hf_endpoint: str = Field(
        "https://huggingface.co", validation_alias=AliasChoices("HF_ENDPOINT", "MLAGENT_HF_ENDPOINT")
    )
    inference_base_url: str = "https://router.huggingface.co/v1"
    # The server's own LLM credential, used for callers that have no HF token (X-API-Key accounts).
    inference_api_key: str | None = None
    models: str = ",".join(DEFAULT_MODELS)
    default_model: str | None = None
    agent_api_key: str | None = Field(None, validation_alias=AliasChoices("AGENT_API_KEY"))
    api_keys_file: Path | None = None
    operator_key: str | None = None
    job_backend: str = "local"  # local | ray (docs/scaling.md, "Ray")
    # The Ray cluster's job API (its dashboard address, e.g. http://127.0.0.1:8265), for job_backend=ray.
    ray_address: str | None = None
    # How a Ray job's inputs and outputs travel: paths (the worker reads and writes this server's
    # job directories: one machine or a shared filesystem), blobs (through MLAGENT_BLOB_URL, for
    # workers on other hosts) or auto (blobs when MLAGENT_BLOB_URL is set, else paths).
    ray_transfer: Literal["auto", "paths", "blobs"] = "auto"
    # A JSON runtime environment merged into each job's (e.g. {"py_modules": [...]} or {"pip": [...]}).
    ray_runtime_env: str | None = None
    # The Python that runs the entrypoint on the worker; unset: this server's interpreter path.
    ray_python: str | None = None
    ray_job_cpus: float = Field(1.0, ge=0)  # CPUs a job's entrypoint reserves on the cluster (its queue)
    # The organism file (agents, their prompts and tools); unset: the built-in organism/default.yaml.
    organism_path: Path | None = None
    # POST /api/v1/organism/stop: how long running turns may take to finish before they are ended.
    stop_grace_seconds: float = 300.0
    # Seed 001 surfaces: CORS origins (comma-separated, "*" for any; empty disables CORS).
    cors_origins: str = "*"

    # Model registry, serving and training jobs (seed 003, docs/mlconnector.md).
    max_upload_bytes: int = 200 * 1024 * 1024
    serving_memory_mb: int = 2048
    # A text-generation deployment's worker (torch + transformers need more address space).
    serving_generate_memory_mb: int = 4096
    serving_start_timeout_seconds: float = 120.0
    predict_timeout_seconds: float = 60.0
    max_predict_rows: int = 10_000
    # Predict calls queued for the operations log before a predict waits for the writer
    # (serving/operations.py: backpressure, never loss).
    operations_max_pending: int = Field(20_000, ge=1)
    job_cpu_seconds: int = 600
    job_memory_mb: int = 2048
    job_wall_seconds: float = 900.0
    job_max_processes: int = 64  # processes + threads a /mltraining job may run (its pids cgroup, sandbox/cgroups.py)
    job_file_size_mb: int = 1024  # largest file a job may write (RLIMIT_FSIZE)

    # Blob storage shared by replicas (docs/scaling.md): unset keeps artifacts under data_dir;
    # s3://bucket/prefix or file:///shared/dir. S3 credentials/region: the standard AWS_* variables.
    blob_url: str | None = None
    s3_endpoint_url: str | None = None
    # Workspace snapshots (on when blob_url is set): the most a session's sandbox may hold to be
    # snapshotted at the end of a turn; files past it are left out (and logged).
    workspace_snapshot_max_mb: int = Field(512, ge=0)

    # Limits (seed 000, "Limits & persistence").
    max_sessions_per_account: int = 10
    max_sessions_global: int = 200
    idle_eviction_seconds: float = 900.0
    # A session with no running turn gives its slot to a new one once idle this long (runtime/live.py).
    session_reclaim_seconds: float = 10.0
    whoami_cache_seconds: float = 300.0
    max_input_chars: int = 100_000
    max_instructions_chars: int = 20_000
    # Bounds on what a request may cost before it is refused (docs/limits.md).
    max_body_bytes: int = 4 * 1024 * 1024  # any request body, unless a rule below is larger
    max_predict_body_bytes: int = 32 * 1024 * 1024  # POST /deployment/{id}/predict
    max_training_file_bytes: int = 50 * 1024 * 1024  # POST /ml-api/files/ (a fine-tuning file)
    max_json_depth: int = 64
    max_input_messages: int = 100  # messages in a turn's input, and content parts in a message
    max_input_total_chars: int = 400_000  # all of a turn's input: text plus any other field
    max_content_field_chars: int = 2_000  # a content part's non-text field (ids, urls), serialised

    # PostgreSQL's connection pool per process (docs/operating.md, "Database connections"):
    # connections kept open, more opened under load, how long a statement waits for one
    # (then a request answers 503 with Retry-After), the age at which one is replaced, and
    # whether each checkout first pings the server (a round trip each; off: a dropped
    # connection fails one statement, which is retried or answered 503).
    db_pool_size: int = Field(20, ge=1)
    db_max_overflow: int = Field(10, ge=0)
    db_pool_timeout_seconds: float = Field(30.0, gt=0)
    db_pool_recycle_seconds: float = 1800.0
    db_pool_pre_ping: bool = False

    # Runtime tuning.
    worker_concurrency: int = 16
    lease_seconds: float = 30.0
    # Who owns this replica's local jobs (jobs/replica.py); unset: host name + an id kept in the data dir.
    replica_id: str | None = Field(None, min_length=1, max_length=100)
    keepalive_seconds: float = 15.0
    # PostgreSQL: how often the end of a tailed response's log is re-read, one timer per
    # response (docs/architecture.md, "Live tails"). Unset: 5 s with LISTEN/NOTIFY (which
    # wakes tails), else 1 s. SQLite has one writer, this process: no re-read at all.
    tail_poll_seconds: float | None = Field(None, gt=0)
    # PostgreSQL LISTEN/NOTIFY for tails on other replicas; off behind a pooler that cannot
    # LISTEN (PgBouncer in transaction mode).
    pg_notify: bool = True
    llm_timeout_seconds: float = 600.0
    llm_max_retries: int = 2
    max_agent_steps: int = 50
    log_level: str = "info"
    # Operability (docs/operating.md): log lines as JSON objects or text; a bearer token GET /metrics requires.
    log_format: Literal["text", "json"] = "text"
    metrics_token: str | None = None

    # Agent tools (docs/agent-tools.md).
    dataset_viewer_url: str = "https://datasets-server.huggingface.co"
    sandbox_isolation: str = "auto"  # auto (bwrap when it works, else a logged fallback) | bwrap | none
    sandbox_cpu_seconds: int = 600
    sandbox_memory_mb: int = 4096
    sandbox_max_processes: int = 128
    sandbox_file_size_mb: int = 1024
    sandbox_wall_seconds: float = 900.0
    sandbox_disk_mb: int = 4096  # how far untrusted code may grow its writable directories (sandbox/disk.py)
    sandbox_retention_hours: float = 24.0  # an idle, evicted session's sandbox is removed after this; 0 keeps all
    job_poll_seconds: float = 10.0
    # How long the Hub's HF Jobs hardware catalogue (flavors and prices) is cached (usage/hardware.py).
    jobs_hardware_ttl_seconds: float = 3600.0
    trackio_dashboards: bool = True
    context_window_tokens: int = 120_000
    research_max_tokens: int = 60_000
    # Cost control and usage accounting (docs/cost-and-usage.md).
    price_table: Path | None = None  # YAML/JSON laid over the built-in usage/prices.yaml
    thread_token_budget: int = 2_000_000  # default per-thread (session) token budget

    @cached_property
    def model_ids(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]

    @property
    def resolved_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in {"", "0.0.0.0", "::"} else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def default_model_id(self) -> str:
        return self.default_model or self.model_ids[0]

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mlagent.db').resolve()}"

    @property
    def is_loopback(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"} or self.host.startswith("127.")
