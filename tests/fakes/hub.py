"""A fake Hugging Face Hub: the endpoints mlagent calls, starting with whoami-v2.

Tokens are registered per test with the account they belong to; anything else is 401.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import hub_api, hub_catalog
from .serve import BackgroundServer


class FakeHub:
    def __init__(self) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.user_ids: dict[str, str] = {}
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
        # GET /api/jobs/hardware: HF Jobs' catalogue in the Hub's shape (tests may add or remove rows)
        self.hardware: list[dict[str, Any]] = hub_catalog.jobs_hardware()
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

    def user_token(self, name: str, *, fine_grained_scopes: list[str] | None = None, role: str = "write",
                   scoped: dict[str, list[str]] | None = None) -> str:
        """A classic token (`role` write or read), or a fine-grained one: `fine_grained_scopes` are its
        `global` permissions, `scoped` maps an entity to its permissions, as the Hub's token page
        grants them: `"user"` is the token's own user (by id, as the Hub answers), `"user:<name>"`
        another user, `"org:<name>"` an organization."""
        token = f"hf_{secrets.token_hex(12)}"
        user_id = self.user_ids.setdefault(name, secrets.token_hex(12))
        if fine_grained_scopes is None and scoped is None:
            access = {"displayName": "test", "role": role, "createdAt": "2026-01-01T00:00:00.000Z"}
        else:
            entries = []
            for key, perms in (scoped or {}).items():
                kind, _, other = key.partition(":")
                ent_name = other or name
                ent_id = user_id if not other else self.user_ids.setdefault(ent_name, secrets.token_hex(12))
                entries.append({"entity": {"_id": ent_id, "type": kind, "name": ent_name}, "permissions": perms})
            access = {"displayName": "test", "role": "fineGrained", "createdAt": "2026-01-01T00:00:00.000Z",
                      "fineGrained": {"canReadGatedRepos": False, "global": fine_grained_scopes or [],
                                      "scoped": entries}}
        self.tokens[token] = {"type": "user", "id": user_id, "name": name, "fullname": name.title(),
                              "email": None, "emailVerified": False, "isPro": False, "canPay": False,
                              "avatarUrl": "", "orgs": [], "auth": {"type": "access_token", "accessToken": access}}
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

        @app.get("/api/jobs/hardware")  # before hub_api's /api/jobs/{namespace}
        async def jobs_hardware():
            self.calls.append("jobs:hardware")
            return self.hardware

        hub_api.install(app, self)
        return app
