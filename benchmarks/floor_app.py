"""The floor: a bare FastAPI route doing one turn's database work, with no agent framework.

It verifies the same JWT and runs the statements a turn cannot do without, on an engine built
exactly like chatserver's (same driver, pool and SQLite pragmas), in the same two transactions:
claim the turn, store the user's message and read the window; then store the answer and an audit
event. On PostgreSQL each transaction first sets the row-level security context, as it must for a
role without BYPASSRLS. No chat lock, no agent, no logging or metrics: chatserver's CPU per turn is
reported as a multiple of this.

Run: CHATSERVER_DATABASE_URL=... uvicorn benchmarks.floor_app:app --no-access-log
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import jwt
from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from benchmarks.common import JWT_SECRET
from chatserver.config import Settings
from chatserver.storage.sql.engine import create_engine
from chatserver.storage.sql.tables import audit_events, chat_messages, chats

WINDOW_TURNS = 50


class Body(BaseModel):
    agent_name: str
    message: str
    session_id: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.engine = create_engine(Settings())
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def acting_for(conn: AsyncConnection, user_id: str) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(
            select(func.set_config("app.user_id", user_id, True), func.set_config("app.system", "off", True))
        )


@app.post("/floor")
async def floor(body: Body, request: Request, authorization: Annotated[str, Header()]) -> dict[str, Any]:
    claims = jwt.decode(
        authorization.removeprefix("Bearer "), JWT_SECRET, ["HS256"], audience="authenticated"
    )
    user_id, now = claims["sub"], datetime.now(UTC)
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as conn:
        await acting_for(conn, user_id)
        claimed = await conn.execute(
            update(chats)
            .where(chats.c.id == body.session_id, chats.c.user_id == user_id)
            .values(turn_count=chats.c.turn_count + 1, updated_at=now)
            .returning(chats.c.turn_count)
        )
        turn = claimed.scalar_one_or_none()
        if turn is None:
            raise HTTPException(404)
        await conn.execute(
            insert(chat_messages).values(
                chat_id=body.session_id,
                user_id=user_id,
                turn=turn,
                role="user",
                content=body.message,
                created_at=now,
            )
        )
        m = chat_messages.c
        window = (
            select(chat_messages)
            .where(m.chat_id == body.session_id, m.turn >= turn - WINDOW_TURNS, m.turn < turn)
            .where(m.user_id == user_id)
            .order_by(m.turn.desc(), m.id.desc())
            .limit(WINDOW_TURNS * 64)
        )
        (await conn.execute(window)).all()
    answer = f"echo: {body.message}"
    async with engine.begin() as conn:
        await acting_for(conn, user_id)
        await conn.execute(
            insert(chat_messages).values(
                chat_id=body.session_id,
                user_id=user_id,
                turn=turn,
                role="assistant",
                content=answer,
                created_at=now,
            )
        )
        await conn.execute(
            insert(audit_events).values(
                type="turn.completed",
                user_id=user_id,
                agent_name=body.agent_name,
                chat_id=body.session_id,
                data={"turn": turn},
                created_at=now,
            )
        )
    usage = {"input_tokens": 0, "output_tokens": 0, "requests": 1}
    return {
        "session_id": body.session_id,
        "response": answer,
        "tool_name": None,
        "tool_input": None,
        "error": None,
        "tool_calls": [],
        "usage": usage,
    }
