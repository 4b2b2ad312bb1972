"""Schemathesis over the whole OpenAPI document against a real server: every operation, with
examples, boundary values and random (valid and invalid) data, must answer without a server
error and as the document says (status code, content type, body schema, headers), reject
invalid data, and answer undocumented methods with 405 and an `Allow` header.

Bounded: a few examples per operation and a wall-clock budget for the whole run. Callers
are a Hugging Face token (the fake hub) for /v1 and a non-operator X-API-Key elsewhere (an
operator key could stop the server mid-run)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .api_servers import start_api_server
from .conftest import PG_URL
from .harness import create_pg_database, drop_pg_database

BUDGET_SECONDS = 75
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance,negative_data_rejection,unsupported_method,allow_header_conformance")
# One worker: with two, hypothesis's lambda descriptions hit a CPython 3.11 `ast.parse`
# thread-safety bug ("AST constructor recursion depth mismatch") inside schemathesis.
RUNNER = "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; schemathesis()"

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_llm, fake_hub, database):
    env = {"MLAGENT_MAX_SESSIONS_PER_ACCOUNT": "100000", "MLAGENT_MAX_SESSIONS_GLOBAL": "100000"}
    url = None
    if database == "postgresql":
        url = env["MLAGENT_DATABASE_URL"] = create_pg_database(PG_URL)
    proc = start_api_server(tmp_path_factory.mktemp("fuzz"), fake_llm, fake_hub, start_timeout=120, **env)
    yield proc
    proc.stop()
    if url:
        drop_pg_database(PG_URL, url)


def test_openapi_fuzz_finds_no_server_error_and_no_schema_violation(server, fake_hub, tmp_path):
    token = fake_hub.user_token("fuzzer")
    argv = [sys.executable, "-c", RUNNER, "run", f"{server.url}/openapi.json",
            "-H", f"Authorization: Bearer {token}", "-H", "X-API-Key: key-alice",
            "--checks", CHECKS, "--max-examples", "5", "--max-time", str(BUDGET_SECONDS),
            "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-shrink", "--seed", "20261130",
            "--request-timeout", "20", "--suppress-health-check", "all", "--warnings", "off",
            "--report", "junit", "--report-dir", str(tmp_path)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=BUDGET_SECONDS + 120,
                          cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-20_000:]
    assert "Traceback" not in server.log(), server.log()[-5000:]
