"""Shared fixtures: the fake LLM and hub (real HTTP), and real server processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .fakes.hub import FakeHub
from .fakes.llm import FakeLLM
from .harness import ServerProcess, create_pg_database, drop_pg_database

PG_URL = os.environ.get("MLAGENT_TEST_DATABASE_URL")
PG_SKIP = "MLAGENT_TEST_DATABASE_URL is not set: the PostgreSQL runs of these tests are skipped"


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    llm = FakeLLM().start()
    yield llm
    llm.stop()


@pytest.fixture(scope="session")
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub().start()
    yield hub
    hub.stop()


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback (real HTTP), for the blob-store tests."""
    from .fakes.s3 import S3Server

    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(request) -> None:
    if "fake_llm" in request.fixturenames:
        request.getfixturevalue("fake_llm").reset()


def database_params() -> list:
    return ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP))]


@pytest.fixture
def make_server(tmp_path_factory, fake_llm: FakeLLM, fake_hub: FakeHub) -> Iterator[Callable[..., ServerProcess]]:
    """Build (not start) server processes; all are stopped and their databases dropped."""
    made: list[ServerProcess] = []
    databases: list[str] = []

    def make(database: str = "sqlite", data_dir: Path | None = None, database_url: str | None = None,
             **env: str) -> ServerProcess:
        data_dir = data_dir or tmp_path_factory.mktemp("mlagent")
        values = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url,
                  "MLAGENT_LLM_MAX_RETRIES": "0", **{k.upper(): v for k, v in env.items()}}
        if database == "postgresql":
            if database_url is None:
                database_url = create_pg_database(PG_URL)
                databases.append(database_url)
            values["MLAGENT_DATABASE_URL"] = database_url
        server = ServerProcess(data_dir, values)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()
    for url in databases:
        drop_pg_database(PG_URL, url)


@pytest.fixture(params=database_params(), scope="module")
def database(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def shared_server(request, tmp_path_factory, fake_llm, fake_hub, database) -> Iterator[ServerProcess]:
    """One server per test module and database, for tests that need no special settings."""
    data_dir = tmp_path_factory.mktemp("shared")
    values = {"HF_ENDPOINT": fake_hub.url, "MLAGENT_INFERENCE_BASE_URL": fake_llm.url, "MLAGENT_LLM_MAX_RETRIES": "0",
              # Many tests share this server and account names; the limits have their own tests.
              "MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "10000", "MLAGENT_MAX_SESSIONS_GLOBAL": "10000"}
    url = None
    if database == "postgresql":
        url = create_pg_database(PG_URL)
        values["MLAGENT_DATABASE_URL"] = url
    server = ServerProcess(data_dir, values).start()
    yield server
    server.stop()
    if url:
        drop_pg_database(PG_URL, url)

# The agent-tool tests' server (fake hub dataset viewer, fast job polling, small sandbox limits).
from .agent_support import agent_server  # noqa: E402,F401

# The /ui browser tests' Chromium (skipped when absent) and screenshot folder.
from .ui_support import browser, screenshots  # noqa: E402,F401
