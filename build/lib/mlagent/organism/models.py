"""The operator API's typed replies and requests (seed 002's models, made concrete)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AgentState = Literal["idle", "running", "paused"]
ThreadStatus = Literal["active", "idle", "failed", "killed"]


class ThreadCounts(BaseModel):
    active: int = 0
    idle: int = 0
    failed: int = 0
    killed: int = 0
    total: int = 0


class OrganismInfo(BaseModel):
    name: str
    status: Literal["running", "stopping"]
    config_path: str
    loaded_at: float
    reloads: int
    uptime_seconds: float
    agent_count: int
    agents: list[str]
    paused_agents: list[str]
    capability_count: int
    running_turns: int
    waiting_turns: int
    threads: ThreadCounts
    message_count: int
    scope: Literal["all", "own"] = Field(description="'own' when the counts cover only the caller's threads")


class CapabilityInfo(BaseModel):
    name: str
    description: str
    read_only: bool
    agents: list[str] = Field(description="Agents whose tool list includes this capability")


class CapabilityListResponse(BaseModel):
    capabilities: list[CapabilityInfo]
    count: int


class ExampleCall(BaseModel):
    name: str
    arguments: dict[str, Any]


class CapabilityDetail(CapabilityInfo):
    parameters: dict[str, Any] = Field(description="JSON Schema of the arguments")
    example: ExampleCall


class AgentInfo(BaseModel):
    name: str
    description: str
    is_agent: bool = True
    model: str
    tools: list[str]
    peers: list[str]
    token_budget: int
    state: AgentState
    running_turns: int
    waiting_turns: int
    thread_count: int


class AgentListResponse(BaseModel):
    agents: list[AgentInfo]
    count: int


class AgentStateChange(BaseModel):
    success: bool = True
    agent: str
    state: AgentState


class Message(BaseModel):
    id: str = Field(description="'<response id>:in' for the input, '<response id>:out' for the answer")
    thread_id: str
    response_id: str
    direction: Literal["inbound", "outbound"]
    from_id: str
    to_id: str
    agent: str
    status: str
    payload: dict[str, Any]
    created_at: float


class MessageListResponse(BaseModel):
    messages: list[Message]
    count: int
    total: int
    offset: int
    limit: int


class ThreadSummary(BaseModel):
    id: str
    account: str
    agent: str
    participants: list[str]
    model: str
    status: ThreadStatus
    turn_count: int
    token_budget: int | None
    max_cost_usd: float
    spent_usd: float
    created_at: float
    updated_at: float


class ThreadInfo(ThreadSummary):
    message_count: int
    messages: list[Message] = Field(description="The first 100 messages; page the rest with /threads/{id}/messages")


class ThreadListResponse(BaseModel):
    threads: list[ThreadSummary]
    count: int
    total: int
    offset: int
    limit: int


class KillResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    success: bool = True
    thread_id: str = Field(serialization_alias="threadId")
    cancelled: list[str]
    status: ThreadStatus = "killed"


class InjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str = Field(min_length=1, description="The agent to deliver the payload to")
    payload: dict[str, Any] | str = Field(description="An object matching the agent's input schema, or plain text")
    thread_id: str | None = Field(None, description="Deliver into this thread; a new thread when absent")


class InjectResponse(BaseModel):
    thread_id: str
    message_id: str
    response_id: str
    status: str


class StopResponse(BaseModel):
    success: bool = True
    status: Literal["stopping"] = "stopping"
    running_turns: int
    waiting_turns: int
    grace_seconds: float
