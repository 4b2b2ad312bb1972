"""A fake Hugging Face Hub: the endpoints mlagent calls, starting with whoami-v2.

Tokens are registered per test with the account they belong to; anything else is 401.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import hub_api
from .serve import BackgroundServer


class FakeHub:
    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.whoami_calls = 0
        # Content endpoints (hub_api.py): repos by (kind, id), papers, jobs, collections.
        self.repos: dict[tuple[str, str], dict[str, Any]] = {}
        self.papers: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.collections: dict[str, dict[str, Any]] = {}
        self.no_credits: set[str] = set()  # accounts whose job launches answer 402
        self.job_inspects_to_finish = 2
        # namespace -> scripted `trl sft` job profile (hub_trl.py); other namespaces keep the simple jobs
        self.job_profiles: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []  # a log of content calls, for assertions
        hub_api.seed(self)
        self.app = self._build()
        self._server = BackgroundServer(self.app)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> FakeHub:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def user_token(self, name: str, *, fine_grained_scopes: list[str] | None = None, role: str = "write") -> str:
        """A classic token (`role` write or read), or a fine-grained one with exactly `fine_grained_scopes`."""
        token = f"hf_{secrets.token_hex(12)}"
        if fine_grained_scopes is None:
            access = {"displayName": "test", "role": role}
        else:
            access = {"displayName": "test", "role": "fineGrained",
                      "fineGrained": {"global": fine_grained_scopes, "scoped": []}}
        self.tokens[token] = {"type": "user", "name": name, "fullname": name.title(), "orgs": [],
                              "auth": {"type": "access_token", "accessToken": access}}
        return token

    def jobs_of(self, namespace: str) -> list[str]:
        return [job_id for job_id, job in list(self.jobs.items()) if job["owner"] == namespace]

    def org_token(self, name: str) -> str:
        token = f"api_org_{secrets.token_hex(12)}"
        self.tokens[token] = {"type": "org", "name": name, "auth": {"type": "access_token"}}
        return token

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/whoami-v2")
        async def whoami(request: Request):
            self.whoami_calls += 1
            token = request.headers.get("authorization", "")[7:]
            info = self.tokens.get(token)
            if info is None:
                return JSONResponse({"error": "Invalid credentials in Authorization header"}, status_code=401)
            return info

        hub_api.install(app, self)
        return app
