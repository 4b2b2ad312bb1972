"""The fake hub's content endpoints, answering exactly what huggingface_hub (and the dataset
viewer client) call: search and read models/datasets/Spaces, README files, papers, the
dataset viewer (mounted at /viewer), HF Jobs, repo create + commit, and collections.

Jobs are simulated: a job runs until it has been inspected `job_inspects_to_finish` times,
then completes; if it was given HUB_MODEL_ID and an HF_TOKEN secret it "pushes" that model
repo (and adds it to the collection named in MLAGENT_COLLECTION), as a real training
script would. A namespace with a profile in `hub.job_profiles` gets a scripted `trl sft`
job instead (hub_trl.py): SCHEDULING, then RUNNING with trainer log lines, then the end."""

from __future__ import annotations

import base64
import json
import secrets as _secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from . import hub_catalog, hub_trl

if TYPE_CHECKING:
    from .hub import FakeHub

KIND_OF = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _log_time() -> str:
    """Log timestamps a little in the past: huggingface_hub ends a no-follow log replay at events
    newer than the response's Date + 1 s, and uvicorn's Date header may lag by up to a second."""
    return (datetime.now(UTC) - timedelta(seconds=3)).isoformat().replace("+00:00", "Z")


def _err(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def seed(hub: FakeHub) -> None:
    for kind, rows in (("model", hub_catalog.MODELS), ("dataset", hub_catalog.DATASETS), ("space", hub_catalog.SPACES)):
        for row in rows:
            repo = {k: v for k, v in row.items() if k != "card"}
            repo.update(kind=kind, owner=row["id"].split("/")[0], private=False, sha=_secrets.token_hex(20),
                        files={"README.md": row.get("card", "").encode()}, lastModified="2025-06-01T00:00:00.000Z")
            hub.repos[(kind, row["id"])] = repo
    hub.papers = {p["id"]: p for p in hub_catalog.PAPERS}


def install(app: FastAPI, hub: FakeHub) -> None:
    def caller(request: Request) -> dict[str, Any] | None:
        return hub.tokens.get(request.headers.get("authorization", "")[7:])

    def can_write(info: dict[str, Any] | None, scope: str = "repo.write") -> bool:
        if info is None:
            return False
        access = info.get("auth", {}).get("accessToken", {})
        if access.get("role") == "write":
            return True
        if access.get("role") != "fineGrained":
            return False
        grants = access.get("fineGrained", {})
        if scope in grants.get("global", []):
            return True
        return any(e["entity"]["type"] == "user" and e["entity"]["_id"] == info.get("id") and scope in e["permissions"]
                   for e in grants.get("scoped", []))

    def visible(repo: dict[str, Any], info: dict[str, Any] | None) -> bool:
        return not repo["private"] or (info is not None and info["name"] == repo["owner"])

    def repo_json(repo: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in repo.items() if k not in ("files", "kind", "owner", "rows", "splits", "features",
                                                           "bytes_parquet", "bytes_memory", "linked")}
        out["siblings"] = [{"rfilename": name} for name in sorted(repo["files"])]
        out["author"] = repo["owner"]
        return out

    # -- search and read ------------------------------------------------------------
    @app.get("/api/{kinds}")
    async def search(kinds: str, request: Request):
        if kinds not in KIND_OF:
            return _err(404, "not found")
        hub.calls.append(f"search:{kinds}")
        q = request.query_params
        info = caller(request)
        found = [r for (k, _), r in hub.repos.items() if k == KIND_OF[kinds] and visible(r, info)]
        if q.get("search"):
            found = [r for r in found if q["search"].lower() in r["id"].lower()]
        if q.get("author"):
            found = [r for r in found if r["owner"] == q["author"]]
        for tag in q.getlist("filter"):
            found = [r for r in found if tag in r.get("tags", []) or tag == r.get("pipeline_tag")]
        found.sort(key=lambda r: r.get(q.get("sort") or "downloads", 0) or 0, reverse=True)
        limit = int(q.get("limit") or 1000)
        return [repo_json(r) for r in found[:limit]]

    @app.get("/api/{kinds}/{ns}/{name}")
    async def read_repo(kinds: str, ns: str, name: str, request: Request):
        repo = hub.repos.get((KIND_OF.get(kinds, ""), f"{ns}/{name}"))
        hub.calls.append(f"read:{kinds}/{ns}/{name}")
        if repo is None or not visible(repo, caller(request)):
            return _err(404, "Repository not found")
        return repo_json(repo)

    async def resolve(kind: str, ns: str, name: str, path: str, request: Request):
        repo = hub.repos.get((kind, f"{ns}/{name}"))
        if repo is None or not visible(repo, caller(request)):
            return _err(404, "Repository not found")
        if path not in repo["files"]:
            return _err(404, "Entry not found")
        return Response(repo["files"][path], media_type="text/plain")

    @app.get("/{ns}/{name}/resolve/{rev}/{path:path}")
    async def resolve_model(ns: str, name: str, rev: str, path: str, request: Request):
        return await resolve("model", ns, name, path, request)

    @app.get("/{prefix}/{ns}/{name}/resolve/{rev}/{path:path}")
    async def resolve_other(prefix: str, ns: str, name: str, rev: str, path: str, request: Request):
        kind = {"datasets": "dataset", "spaces": "space"}.get(prefix)
        if kind is None:
            return _err(404, "not found")
        return await resolve(kind, ns, name, path, request)

    # -- papers -----------------------------------------------------------------------
    def paper_json(p: dict[str, Any], linked: bool) -> dict[str, Any]:
        out = {"id": p["id"], "title": p["title"], "summary": p["summary"], "publishedAt": p["publishedAt"],
               "upvotes": p["upvotes"], "authors": p["authors"]}
        if linked:
            out["linkedModels"] = [repo_json(hub.repos[("model", m)]) for m in p["linked"] if ("model", m) in hub.repos]
        return out

    @app.get("/api/papers/search")
    async def paper_search(request: Request):
        hub.calls.append("papers:search")
        words = [w for w in request.query_params.get("q", "").lower().split() if len(w) > 3]
        scored = []
        for p in hub.papers.values():
            text = (p["title"] + " " + p["summary"]).lower()
            score = sum(w.rstrip("s") in text for w in words)
            if score:
                scored.append((score, p))
        scored.sort(key=lambda sp: -sp[0])
        limit = int(request.query_params.get("limit") or 50)
        return [{"paper": paper_json(p, False), "title": p["title"], "numComments": 0} for _, p in scored[:limit]]

    @app.get("/api/papers/{paper_id}")
    async def paper(paper_id: str):
        hub.calls.append(f"papers:{paper_id}")
        p = hub.papers.get(paper_id)
        return paper_json(p, True) if p else _err(404, "Paper not found")

    # -- dataset viewer ------------------------------------------------------------------
    def viewer_dataset(request: Request) -> dict[str, Any] | JSONResponse:
        name = request.query_params.get("dataset", "")
        repo = hub.repos.get(("dataset", name))
        if repo is None or not visible(repo, caller(request)):
            return _err(404, "The dataset does not exist, or is not accessible without authentication.")
        return repo

    @app.get("/viewer/splits")
    async def viewer_splits(request: Request):
        hub.calls.append("viewer:splits")
        repo = viewer_dataset(request)
        if isinstance(repo, JSONResponse):
            return repo
        return {"splits": [{"dataset": repo["id"], "config": "default", "split": s} for s in repo["splits"]],
                "pending": [], "failed": []}

    @app.get("/viewer/info")
    async def viewer_info(request: Request):
        repo = viewer_dataset(request)
        if isinstance(repo, JSONResponse):
            return repo
        return {"dataset_info": {"config_name": "default", "features": repo["features"],
                                 "splits": {s: {"name": s, "num_examples": n} for s, n in repo["splits"].items()}},
                "partial": False}

    @app.get("/viewer/size")
    async def viewer_size(request: Request):
        repo = viewer_dataset(request)
        if isinstance(repo, JSONResponse):
            return repo
        return {"size": {"dataset": {"dataset": repo["id"], "num_rows": sum(repo["splits"].values()),
                                     "num_bytes_parquet_files": repo["bytes_parquet"],
                                     "num_bytes_memory": repo["bytes_memory"]}}, "partial": False}

    @app.get("/viewer/first-rows")
    async def viewer_rows(request: Request):
        repo = viewer_dataset(request)
        if isinstance(repo, JSONResponse):
            return repo
        return {"dataset": repo["id"], "config": "default", "split": request.query_params.get("split"),
                "features": [{"feature_idx": i, "name": k, "type": v} for i, (k, v) in enumerate(repo["features"].items())],
                "rows": [{"row_idx": i, "row": r, "truncated_cells": []} for i, r in enumerate(repo["rows"])],
                "truncated": False}

    # -- repos -------------------------------------------------------------------------
    def create(kind: str, repo_id: str, owner: str, private: bool, **extra: Any) -> dict[str, Any]:
        repo = {"id": repo_id, "kind": kind, "owner": owner, "private": private, "sha": _secrets.token_hex(20),
                "files": {".gitattributes": b"*.bin filter=lfs\n"}, "downloads": 0, "likes": 0, "tags": [],
                "lastModified": _now(), **extra}
        hub.repos[(kind, repo_id)] = repo
        return repo

    hub.create_repo = create  # type: ignore[attr-defined]

    @app.post("/api/repos/create")
    async def repo_create(request: Request):
        info = caller(request)
        body = await request.json()
        kind = body.get("type") or "model"
        ns = body.get("organization") or (info or {}).get("name")
        repo_id = f"{ns}/{body['name']}"
        hub.calls.append(f"create:{kind}:{repo_id}")
        url = f"{hub.url}/{URL_PREFIX[kind]}{repo_id}"
        if info is None:
            return _err(401, "Invalid credentials in Authorization header")
        if not can_write(info) or ns != info["name"]:
            return _err(403, f"You don't have the rights to create a {kind} under the namespace \"{ns}\"")
        if (kind, repo_id) in hub.repos:
            return _err(409, "You already created this repo", url=url)
        extra = {"sdk": body.get("sdk")} if kind == "space" else {}
        create(kind, repo_id, ns, body.get("private") or body.get("visibility") == "private", **extra)
        return {"url": url, "name": repo_id, "id": _secrets.token_hex(12)}

    def writable(kinds: str, ns: str, name: str, request: Request) -> dict[str, Any] | JSONResponse:
        info = caller(request)
        repo = hub.repos.get((KIND_OF.get(kinds, ""), f"{ns}/{name}"))
        if repo is None or not visible(repo, info):
            return _err(404, "Repository not found")
        if not can_write(info) or info["name"] != repo["owner"]:
            return _err(403, "You don't have the rights to write to this repo")
        return repo

    @app.post("/api/validate-yaml")
    async def validate_yaml():
        return {"errors": [], "warnings": []}

    @app.post("/api/{kinds}/{ns}/{name}/preupload/{rev}")
    async def preupload(kinds: str, ns: str, name: str, rev: str, request: Request):
        repo = writable(kinds, ns, name, request)
        if isinstance(repo, JSONResponse):
            return repo
        body = await request.json()
        return {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                          for f in body["files"]], "commitOid": repo["sha"]}

    @app.post("/api/{kinds}/{ns}/{name}/commit/{rev}")
    async def commit(kinds: str, ns: str, name: str, rev: str, request: Request):
        repo = writable(kinds, ns, name, request)
        if isinstance(repo, JSONResponse):
            return repo
        for line in (await request.body()).decode().splitlines():
            entry = json.loads(line)
            if entry["key"] == "file":
                value = entry["value"]
                repo["files"][value["path"]] = base64.b64decode(value["content"])
        repo["sha"] = _secrets.token_hex(20)
        hub.calls.append(f"commit:{repo['id']}")
        return {"commitUrl": f"{hub.url}/{URL_PREFIX[repo['kind']]}{repo['id']}/commit/{repo['sha']}",
                "commitOid": repo["sha"], "success": True}

    # -- collections ------------------------------------------------------------------------
    def collection_json(c: dict[str, Any]) -> dict[str, Any]:
        return {"slug": c["slug"], "title": c["title"], "description": c["description"],
                "owner": {"name": c["owner"], "type": "user"}, "private": c["private"], "theme": "blue",
                "upvotes": 0, "position": 0, "lastUpdated": _now(),
                "items": [{"_id": f"{i:024x}", "id": it["id"], "type": it["type"], "position": i}
                          for i, it in enumerate(c["items"])]}

    @app.post("/api/collections")
    async def collection_create(request: Request):
        info = caller(request)
        body = await request.json()
        if not can_write(info) or body.get("namespace") not in (None, info["name"]):
            return _err(403, "You don't have the rights to create a collection here")
        ns = body.get("namespace") or info["name"]
        for c in hub.collections.values():
            if c["owner"] == ns and c["title"] == body["title"]:
                return _err(409, "Collection already exists", slug=c["slug"])
        slug = f"{ns}/{body['title'].lower().replace(' ', '-')}-{_secrets.token_hex(12)}"
        hub.collections[slug] = {"slug": slug, "title": body["title"], "description": body.get("description"),
                                 "owner": ns, "private": bool(body.get("private")), "items": []}
        hub.calls.append(f"collection:create:{slug}")
        return collection_json(hub.collections[slug])

    @app.get("/api/collections/{ns}/{name}")
    async def collection_get(ns: str, name: str, request: Request):
        c = hub.collections.get(f"{ns}/{name}")
        info = caller(request)
        if c is None or (c["private"] and (info is None or info["name"] != c["owner"])):
            return _err(404, "Collection not found")
        return collection_json(c)

    @app.post("/api/collections/{ns}/{name}/items")
    async def collection_add(ns: str, name: str, request: Request):
        c = hub.collections.get(f"{ns}/{name}")
        info = caller(request)
        if c is None or info is None or info["name"] != c["owner"]:
            return _err(404, "Collection not found")
        item = (await request.json())["item"]
        if (KIND_OF.get(item["type"] + "s"), item["id"]) not in hub.repos:
            return _err(404, f"{item['type']} {item['id']} not found")
        if any(it["id"] == item["id"] and it["type"] == item["type"] for it in c["items"]):
            return _err(409, "Item already in the collection")
        c["items"].append({"id": item["id"], "type": item["type"]})
        return collection_json(c)

    # -- jobs ----------------------------------------------------------------------------
    def job_json(job: dict[str, Any]) -> dict[str, Any]:
        return {"id": job["id"], "createdAt": job["createdAt"], "dockerImage": job["spec"].get("dockerImage"),
                "command": job["spec"].get("command"), "arguments": [], "environment": job["spec"].get("environment"),
                "secrets": {k: None for k in job["spec"].get("secrets") or {}}, "flavor": job["spec"].get("flavor"),
                "labels": job["spec"].get("labels"), "status": {"stage": job["stage"], "message": job["message"]},
                "owner": {"id": f"{job['owner']}-id", "name": job["owner"], "type": "user"},
                "durations": {"scheduling_secs": 1, "running_secs": job["inspects"], "total_secs": job["inspects"] + 1}}

    def job_for(ns: str, job_id: str, request: Request) -> dict[str, Any] | JSONResponse:
        info = caller(request)
        job = hub.jobs.get(job_id)
        if info is None:
            return _err(401, "Invalid credentials in Authorization header")
        if job is None or job["owner"] != ns or info["name"] != ns:
            return _err(404, "Job not found")
        return job

    @app.post("/api/jobs/{ns}")
    async def job_create(ns: str, request: Request):
        info = caller(request)
        spec = await request.json()
        hub.calls.append(f"jobs:create:{ns}")
        if info is None:
            return _err(401, "Invalid credentials in Authorization header")
        if info["name"] != ns or not can_write(info, "job.write"):
            return _err(403, "This token is not allowed to run jobs in this namespace")
        if ns in hub.no_credits:
            return _err(402, "Payment Required: you need to add credits to your account to run jobs on paid hardware")
        job_id = _secrets.token_hex(12)
        hub.jobs[job_id] = {"id": job_id, "owner": ns, "spec": spec, "stage": "RUNNING", "message": None,
                            "inspects": 0, "createdAt": _now(), "logs": [("Job started", _log_time())]}
        if ns in hub.job_profiles:
            hub_trl.start(hub, hub.jobs[job_id], hub.job_profiles[ns])
        return job_json(hub.jobs[job_id])

    @app.get("/api/jobs/{ns}/{job_id}")
    async def job_inspect(ns: str, job_id: str, request: Request):
        job = job_for(ns, job_id, request)
        if isinstance(job, JSONResponse):
            return job
        hub.calls.append(f"jobs:inspect:{job_id}")
        if "profile" in job:
            hub_trl.step(hub, job, _log_time)
        elif job["stage"] == "RUNNING":
            job["inspects"] += 1
            if job["inspects"] >= hub.job_inspects_to_finish:
                finish_job(job)
        return job_json(job)

    def finish_job(job: dict[str, Any]) -> None:
        env = job["spec"].get("environment") or {}
        token = (job["spec"].get("secrets") or {}).get("HF_TOKEN")
        owner = hub.tokens.get(token or "", {}).get("name")
        lines = ["Loading dataset stanfordnlp/imdb (subset of 2000 reviews)", "Epoch 1/1: loss=0.41",
                 "{'eval_loss': 0.3127, 'eval_accuracy': 0.874}"]
        repo_id = env.get("HUB_MODEL_ID")
        if repo_id:
            if owner and repo_id.split("/")[0] == owner:
                repo = hub.repos.get(("model", repo_id)) or hub.create_repo("model", repo_id, owner, False)
                repo["files"]["README.md"] = b"# fine-tuned distilbert\neval_accuracy: 0.874\n"
                repo["files"]["model.safetensors"] = b"weights"
                slug = env.get("MLAGENT_COLLECTION")
                if slug in hub.collections and not any(i["id"] == repo_id for i in hub.collections[slug]["items"]):
                    hub.collections[slug]["items"].append({"id": repo_id, "type": "model"})
                lines.append(f"Pushed model to {hub.url}/{repo_id}")
            else:
                job["stage"], job["message"] = "ERROR", "push failed: no write token"
                lines.append("huggingface_hub.errors.HfHubHTTPError: 401 Unauthorized")
        if job["stage"] == "RUNNING":
            job["stage"] = "COMPLETED"
        job["logs"] += [(line, _log_time()) for line in lines]

    @app.get("/api/jobs/{ns}/{job_id}/logs")
    async def job_logs(ns: str, job_id: str, request: Request):
        job = job_for(ns, job_id, request)
        if isinstance(job, JSONResponse):
            return job
        hub.calls.append(f"jobs:logs:{job_id}")
        logs = job["logs"]
        tail = request.query_params.get("tail")
        if tail:
            logs = logs[-int(tail):]
        body = "".join(f"data: {json.dumps({'data': line, 'timestamp': ts})}\n\n" for line, ts in logs)
        return StreamingResponse(iter([body.encode()]), media_type="text/event-stream")

    @app.post("/api/jobs/{ns}/{job_id}/cancel")
    async def job_cancel(ns: str, job_id: str, request: Request):
        job = job_for(ns, job_id, request)
        if isinstance(job, JSONResponse):
            return job
        hub.calls.append(f"jobs:cancel:{job_id}")
        if job["stage"] in ("RUNNING", "SCHEDULING"):
            job["stage"] = "CANCELED"
        return PlainTextResponse("")

    # Catch-all patterns (/api/{kinds}/…, /{ns}/{name}/resolve/…) must not shadow the routes above.
    generic = [r for r in app.router.routes if getattr(r, "path", "").startswith(("/api/{kinds}", "/{"))]
    app.router.routes[:] = [r for r in app.router.routes if r not in generic] + generic
