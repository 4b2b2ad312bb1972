"""The live agent roster: the organism in force, which agents are paused, and which
turns each agent is running. The turn runner asks it before claiming a turn (`admit`)
and for the agent's prompt and tools when the turn starts (`profile`), so a reload or a
pause changes what happens next and never what is already running. Pauses are written
through `store.protocols.Pauses` (the database, wired by server.py) so they outlive a restart."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from ..agent.tools.delegate import DelegateTool
from ..store.protocols import Pauses
from . import spec as organism_spec
from .spec import AgentSpec, OrganismSpec

DELEGATE = DelegateTool.name


class ReloadResult(BaseModel):
    success: bool = True
    path: str
    added: list[str]
    removed: list[str]
    updated: list[str]
    unchanged: list[str]


@dataclass
class AgentProfile:
    """What a turn of an agent runs with, fixed when the turn starts."""

    name: str
    system_prompt: str
    tools: list[str]
    model: str | None
    peers: list[str] = field(default_factory=list)


@dataclass
class _Counters:
    running: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)


class AgentRoster:
    def __init__(self, path: Path | None, tool_names: list[str], models: list[str],
                 pauses: Pauses | None = None) -> None:
        self.path = path
        self.pauses = pauses
        self.tool_names = list(tool_names)
        self.models = list(models)
        self.spec: OrganismSpec = organism_spec.load(path, self.tool_names, self.models)
        self.loaded_at = time.time()
        self.started_at = time.time()
        self.reloads = 0
        self.paused: set[str] = set()
        self.stopping = False
        self._counters: dict[str, _Counters] = {}
        self._changed = asyncio.Condition()

    # -- reading ----------------------------------------------------------------------
    @property
    def source(self) -> str:
        return str(self.path or organism_spec.DEFAULT_PATH)

    def get(self, name: str) -> AgentSpec | None:
        return self.spec.agent(name)

    def agents(self) -> list[AgentSpec]:
        return list(self.spec.agents)

    def tools_of(self, agent: AgentSpec) -> list[str]:
        """The agent's tools; `delegate` only when it has peers to delegate to."""
        return [t for t in agent.select_tools(self.tool_names) if t != DELEGATE or agent.peers]

    def state(self, name: str) -> Literal["idle", "running", "paused"]:
        if name in self.paused:
            return "paused"
        return "running" if self.running(name) else "idle"

    def running(self, name: str | None = None) -> list[str]:
        if name is not None:
            return sorted(self._counters.get(name, _Counters()).running)
        return sorted(t for c in self._counters.values() for t in c.running)

    def waiting(self, name: str | None = None) -> list[str]:
        if name is not None:
            return sorted(self._counters.get(name, _Counters()).waiting)
        return sorted(t for c in self._counters.values() for t in c.waiting)

    def profile(self, name: str) -> AgentProfile | None:
        agent = self.spec.agent(name)
        if agent is None:
            return None
        return AgentProfile(agent.name, agent.system_prompt, self.tools_of(agent), agent.model, list(agent.peers))

    # -- the runner's gate --------------------------------------------------------------
    async def admit(self, agent: str, turn_id: str) -> None:
        """Wait while `agent` is paused or the server is stopping; then count the turn as
        running (no await between the last check and the count, so stop sees it)."""
        counters = self._counters.setdefault(agent, _Counters())
        async with self._changed:
            counters.waiting.add(turn_id)
            try:
                await self._changed.wait_for(lambda: not self.stopping and agent not in self.paused)
            finally:
                counters.waiting.discard(turn_id)
            counters.running.add(turn_id)

    @contextlib.contextmanager
    def turn(self, agent: str, turn_id: str) -> Iterator[None]:
        try:
            yield
        finally:
            self._counters.setdefault(agent, _Counters()).running.discard(turn_id)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- operator actions -----------------------------------------------------------------
    async def restore(self) -> None:
        """At start-up: take back the pauses kept from before the restart, for agents the
        organism still has (a removed agent's pause is dropped, as a reload would)."""
        if self.pauses is None:
            return
        names = self.spec.names()
        await self.pauses.keep(names)
        self.paused = set(await self.pauses.names()) & set(names)
        await self._notify()

    async def pause(self, name: str, by: str = "operator") -> None:
        if self.pauses is not None:
            await self.pauses.add(name, by)  # kept first: a pause the caller saw succeed survives a crash
        self.paused.add(name)
        await self._notify()

    async def resume(self, name: str) -> None:
        if self.pauses is not None:
            await self.pauses.remove(name)
        self.paused.discard(name)
        await self._notify()

    async def stop(self) -> None:
        self.stopping = True
        await self._notify()

    async def reload(self) -> ReloadResult:
        """Re-read the file; on any error raise `OrganismError` and keep the old spec."""
        new = organism_spec.load(self.path, self.tool_names, self.models)
        old = {a.name: a for a in self.spec.agents}
        fresh = {a.name: a for a in new.agents}
        result = ReloadResult(
            path=self.source,
            added=sorted(set(fresh) - set(old)),
            removed=sorted(set(old) - set(fresh)),
            updated=sorted(n for n in set(fresh) & set(old) if fresh[n] != old[n]),
            unchanged=sorted(n for n in set(fresh) & set(old) if fresh[n] == old[n]),
        )
        self.spec = new
        self.loaded_at = time.time()
        self.reloads += 1
        self.paused &= set(fresh)  # a removed agent's held turns are released
        if self.pauses is not None:
            await self.pauses.keep(sorted(fresh))
        await self._notify()
        return result
