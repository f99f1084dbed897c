"""Erasure over real HTTP: by the user (confirmed with their own id) and by admins."""

from __future__ import annotations

from tests.e2e.harness import LiveServer
from tests.e2e.test_user_data import chat_once


async def test_a_user_erases_themselves_by_repeating_their_id(live: LiveServer) -> None:
    async with live.client("leaver") as leaver, live.client("e2e-admin", admin=True) as admin:
        await chat_once(live, leaver, "forget me")
        missing = await leaver.request("DELETE", "/api/me", json={})
        wrong = await leaver.request("DELETE", "/api/me", json={"confirm": "someone-else"})
        erased = await leaver.request("DELETE", "/api/me", json={"confirm": "leaver"})
        theirs = await admin.get("/api/admin/events", params={"user_id": "leaver"})
        receipts = await admin.get("/api/admin/events", params={"type": "user.erased"})
    assert (missing.status_code, wrong.status_code) == (422, 422)
    assert wrong.json()["code"] == "validation_error"
    assert erased.status_code == 200, erased.text
    counts = erased.json()["erased"]
    assert (counts["chats"], counts["messages"], counts["runs"], counts["api_keys"]) == (1, 2, 1, 0)
    assert theirs.json()["items"] == []
    receipt = receipts.json()["items"][0]
    assert receipt["user_id"] is None and receipt["data"]["erased"] == counts
    assert "leaver" not in receipt["data"]["subject"]


async def test_admins_erase_users_and_nobody_else_may(live: LiveServer) -> None:
    async with live.client("erased-by-admin") as user, live.client("e2e-admin", admin=True) as admin:
        await chat_once(live, user, "hello")
        refused = await user.delete("/api/admin/users/erased-by-admin")
        erased = await admin.delete("/api/admin/users/erased-by-admin")
        again = await admin.delete("/api/admin/users/erased-by-admin")
    assert refused.status_code == 403
    assert (erased.status_code, erased.json()["erased"]["chats"]) == (200, 1)
    assert (again.status_code, again.json()["code"]) == (404, "not_found")
