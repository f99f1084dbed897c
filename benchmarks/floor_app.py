"""The floor: a bare FastAPI route doing one turn's database work, with no agent framework.

It verifies the same JWT and runs the same statements a chatserver turn runs (claim the turn,
store the user's message, read the window, store the answer and an audit event, in two
transactions), so chatserver's CPU per turn can be reported as a multiple of this.
Run: CHATSERVER_DATABASE_URL=... uvicorn benchmarks.floor_app:app
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import FastAPI, Header, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import and_, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from benchmarks.common import JWT_SECRET
from chatserver.storage.sql.tables import audit_events, chat_messages, chats


class Body(BaseModel):
    agent_name: str
    message: str
    session_id: str


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.engine = create_async_engine(os.environ["CHATSERVER_DATABASE_URL"], pool_size=10)
    yield
    await app.state.engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/floor")
async def floor(body: Body, request: Request, authorization: Annotated[str, Header()]) -> dict[str, str]:
    claims = jwt.decode(
        authorization.removeprefix("Bearer "), JWT_SECRET, ["HS256"], audience="authenticated"
    )
    user_id, now = claims["sub"], datetime.now(UTC)
    engine: AsyncEngine = request.app.state.engine
    async with engine.begin() as conn:
        claimed = await conn.execute(
            update(chats)
            .where(and_(chats.c.id == body.session_id, chats.c.user_id == user_id))
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
        window = (
            select(chat_messages)
            .where(and_(chat_messages.c.chat_id == body.session_id, chat_messages.c.user_id == user_id))
            .where(chat_messages.c.turn >= turn - 50, chat_messages.c.turn < turn)
            .order_by(chat_messages.c.turn.desc(), chat_messages.c.id.desc())
            .limit(50 * 64)
        )
        (await conn.execute(window)).all()
    answer = f"echo: {body.message}"
    async with engine.begin() as conn:
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
    return {"session_id": body.session_id, "response": answer}
