"""Hub access for tools: an `HfApi` per call as the caller, Hub failures turned into
`ToolError`s the model can explain (402 billing, 401/403 permission, 404), the caller's
namespace looked up once per session, and the session's artifact collection."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..notices import ArtifactNotice
from .base import ToolContext, ToolError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

log = logging.getLogger("mlagent.tools.hub")
T = TypeVar("T")
REPO_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
KINDS = ("model", "dataset", "space")


def token_of(ctx: ToolContext) -> str | bool:
    """The caller's token, or False — never the server's own saved credentials."""
    return ctx.token.get_secret_value() if ctx.token is not None else False


def hub_error(exc: Exception, what: str, endpoint: str, namespace: str | None = None,
              permission: str | None = None) -> ToolError:
    import httpx  # here, not at start: huggingface_hub and httpx (with rich) are slow imports
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        detail = (getattr(exc, "server_message", None) or "").strip() or str(exc).splitlines()[0]
        if status == 402:
            where = f"namespace {namespace!r}" if namespace else "the caller's namespace"
            return ToolError(f"Billing error (HTTP 402) while trying to {what}: {where} has no credits or payment "
                             f"method for this. The user can add credits at {endpoint}/settings/billing. ({detail})")
        if status in (401, 403) and permission:
            return ToolError(f"Permission denied (HTTP {status}) while trying to {what}: the user's token lacks the "
                             f"'{permission}' permission for their namespace (a fine-grained token must grant it "
                             f"globally or scoped to the user; see {endpoint}/settings/tokens). ({detail})")
        if status in (401, 403):
            return ToolError(f"Permission denied (HTTP {status}) while trying to {what}: the user's token does not "
                             f"allow this (check its write/jobs permissions at {endpoint}/settings/tokens). ({detail})")
        if status == 404:
            return ToolError(f"Not found (HTTP 404) while trying to {what}. ({detail})")
        if status == 429:
            return ToolError(f"Rate limited by the Hub (HTTP 429) while trying to {what}; wait and retry.")
        return ToolError(f"The Hub answered HTTP {status} while trying to {what}. ({detail})")
    if isinstance(exc, httpx.HTTPError | OSError):
        return ToolError(f"Could not reach the Hub to {what}: {exc.__class__.__name__}.")
    if isinstance(exc, ValueError):
        return ToolError(f"Invalid request to {what}: {exc}")
    return ToolError(f"Hub call failed while trying to {what}: {exc.__class__.__name__}: {exc}")


class HubClient:
    """Shared by all tools of the server; holds no credentials, only per-session lookups."""

    def __init__(self, endpoint: str, dataset_viewer_url: str, cache_size: int = 4096) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.viewer_url = dataset_viewer_url.rstrip("/")
        self._namespaces: OrderedDict[str, str] = OrderedDict()
        self._collections: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def api(self, ctx: ToolContext) -> HfApi:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=token_of(ctx))

    def repo_url(self, repo_id: str, kind: str = "model") -> str:
        return f"{self.endpoint}/{REPO_PREFIX.get(kind, '')}{repo_id}"

    async def call(self, what: str, fn: Callable[..., T], *args: Any, billing_ns: str | None = None,
                   permission: str | None = None, **kw: Any) -> T:
        """Run a blocking huggingface_hub call off the event loop; failures become ToolErrors
        (a refusal names `permission`, the token permission the call needs, when given)."""
        try:
            return await asyncio.to_thread(functools.partial(fn, *args, **kw))
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 — every Hub failure is reported to the model
            raise hub_error(exc, what, self.endpoint, billing_ns, permission) from None

    async def namespace(self, ctx: ToolContext) -> str:
        """The caller's user name, from whoami once per session (never re-asked per call)."""
        cached = self._namespaces.get(ctx.session_id)
        if cached is not None:
            return cached
        info = await self.call("look up the caller's namespace", self.api(ctx).whoami)
        name: str = info["name"]
        self._remember(self._namespaces, ctx.session_id, name)
        return name

    async def qualify(self, ctx: ToolContext, repo_id: str) -> str:
        repo_id = repo_id.strip().strip("/")
        if not repo_id:
            raise ToolError("repo_id must not be empty")
        return repo_id if "/" in repo_id else f"{await self.namespace(ctx)}/{repo_id}"

    # -- the session's artifact collection --------------------------------------------
    def collection_slug(self, session_id: str) -> str | None:
        return self._collections.get(session_id)

    async def collection(self, ctx: ToolContext) -> str:
        """The session's collection (created on first use, announced as an artifact)."""
        slug = self._collections.get(ctx.session_id)
        if slug is not None:
            return slug
        ns = await self.namespace(ctx)
        api = self.api(ctx)
        coll = await self.call("create the session's artifact collection", api.create_collection,
                               f"mlagent session {ctx.session_id}"[:60], namespace=ns, private=True, exists_ok=True,
                               description=f"Repos produced by mlagent session {ctx.session_id}"[:150])
        self._remember(self._collections, ctx.session_id, coll.slug)
        ctx.notify(ArtifactNotice(type="collection", slug=coll.slug, url=f"{self.endpoint}/collections/{coll.slug}"))
        return coll.slug

    async def collect(self, ctx: ToolContext, repo_id: str, kind: str) -> str | None:
        """Add a repo to the session collection; a failure here never fails the tool call."""
        try:
            slug = await self.collection(ctx)
            await self.call("add a repo to the session collection", self.api(ctx).add_collection_item,
                            slug, repo_id, kind, exists_ok=True)
            return slug
        except ToolError as exc:
            log.info("could not add %s to the session collection: %s", repo_id, exc)
            return None

    async def recover_artifacts(self, ctx: ToolContext) -> None:
        """Announce every repo in the session's collection (repos pushed from inside jobs
        never produced an event); the reducer drops the ones already listed."""
        slug = self._collections.get(ctx.session_id)
        if slug is None:
            return
        try:
            coll = await self.call("read the session collection", self.api(ctx).get_collection, slug)
        except ToolError as exc:
            log.info("could not read collection %s at turn end: %s", slug, exc)
            return
        for item in coll.items:
            if item.item_type in KINDS:
                ctx.notify(ArtifactNotice(type=item.item_type, repo_id=item.item_id,
                                          url=self.repo_url(item.item_id, item.item_type)))

    def _remember(self, cache: OrderedDict[str, str], key: str, value: str) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > self._cache_size:
            cache.popitem(last=False)


def clamp(value: Any, low: int, high: int, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return max(low, min(high, number))


def need_str(arguments: dict[str, Any], key: str) -> str:
    value = arguments.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"'{key}' is required and must be a non-empty string")
    return value.strip()


def kind_of(arguments: dict[str, Any], key: str = "kind") -> str:
    kind = arguments.get(key) or "model"
    if kind not in KINDS:
        raise ToolError(f"'{key}' must be one of {', '.join(KINDS)}")
    return kind
