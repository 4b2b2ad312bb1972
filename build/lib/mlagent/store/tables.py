"""SQLAlchemy table definitions. Changing them means adding an Alembic migration."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Account(Base):
    """Everyone who has called the server: a Hugging Face user or an API-key account."""

    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)


class Session(Base):
    """A conversation: the LLM history and budget that chained responses share."""

    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    agent: Mapped[str] = mapped_column(String(100), default="ml-agent")
    model: Mapped[str] = mapped_column(String(200))
    max_cost_usd: Mapped[float] = mapped_column(Float)
    spent_usd: Mapped[float] = mapped_column(Float, default=0.0)
    messages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Turn(Base):
    """One response: a turn of a session. `snapshot` caches the reducer's output."""

    __tablename__ = "turns"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id"), index=True)
    account: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_seq: Mapped[int] = mapped_column(Integer, default=-1)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    # The agent the turn was addressed to when not the session's own (operator inject; 0002_operator).
    agent: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True, default=None)
    __table_args__ = (UniqueConstraint("account", "idempotency_key", name="uq_turns_idempotency"),)


class PausedAgent(Base):
    """An agent the operator paused; kept until resumed, across restarts (0005_paused_agents)."""

    __tablename__ = "paused_agents"
    agent: Mapped[str] = mapped_column(String(100), primary_key=True)
    paused_by: Mapped[str] = mapped_column(String(200))
    paused_at: Mapped[float] = mapped_column(Float)


class EventRow(Base):
    """One event of a turn's append-only log."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(ForeignKey("turns.id"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        UniqueConstraint("response_id", "seq", name="uq_events_response_seq"),
        Index("ix_events_response_seq", "response_id", "seq"),
    )
