"""Users are provisioned once, even under races; API keys are found by hash until revoked."""

from __future__ import annotations

import asyncio

import pytest

from chatserver.domain import User
from chatserver.errors import Conflict
from chatserver.storage.sql import SqlUnitOfWorkFactory
from tests.support.builders import NOW, api_key, at, user


async def _add_users(uow_factory: SqlUnitOfWorkFactory, *users: User) -> None:
    async with uow_factory() as uow:
        for each in users:
            await uow.users.add(each)
        await uow.commit()


async def test_an_added_user_is_found_by_id_and_by_name(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add_users(uow_factory, user("u1", name="carol", is_admin=True))
    async with uow_factory() as uow:
        by_id, by_name = await uow.users.get("u1"), await uow.users.get_by_name("carol")
        missing = (await uow.users.get("nobody"), await uow.users.get_by_name("nobody"))
    assert by_id == by_name == user("u1", name="carol", is_admin=True)
    assert missing == (None, None)


@pytest.mark.parametrize("clash", [user("u1", name="other"), user("u2", name="carol")])
async def test_a_taken_user_id_or_name_is_a_conflict(uow_factory: SqlUnitOfWorkFactory, clash: User) -> None:
    await _add_users(uow_factory, user("u1", name="carol"))
    async with uow_factory() as uow:
        with pytest.raises(Conflict, match="is taken"):
            await uow.users.add(clash)
        assert await uow.users.count() == 1


async def test_users_without_a_name_do_not_clash(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add_users(uow_factory, user("u1"), user("u2"))
    async with uow_factory() as uow:
        assert await uow.users.count() == 2


async def test_ensure_creates_a_missing_user_and_keeps_is_admin_current(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    for is_admin in (False, True, False):
        async with uow_factory() as uow:
            await uow.users.ensure("u1", is_admin=is_admin, now=at(1 if is_admin else 0))
            await uow.commit()
        async with uow_factory() as uow:
            assert await uow.users.get("u1") == User("u1", None, is_admin, NOW)
            assert await uow.users.count() == 1


async def test_a_jwt_subject_is_provisioned_once_as_a_plain_user_and_never_onto_a_user_of_keys(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _add_users(uow_factory, user("keyed", name="carol", is_admin=True))
    async with uow_factory() as uow:
        outcomes = [
            await uow.users.provision_subject("jwt-user", now=NOW),
            await uow.users.provision_subject("jwt-user", now=at(1)),
            await uow.users.provision_subject("keyed", now=NOW),
        ]
        await uow.commit()
    async with uow_factory() as uow:
        stored = [await uow.users.get("jwt-user"), await uow.users.get("keyed")]
    assert outcomes == [True, True, False]
    assert stored == [User("jwt-user", None, False, NOW), user("keyed", name="carol", is_admin=True)]


async def test_concurrent_ensures_of_one_new_user_all_succeed_and_create_it_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async def ensure() -> None:
        async with uow_factory(user_id="racer") as uow:
            await uow.users.ensure("racer", is_admin=False, now=NOW)
            await uow.commit()

    await asyncio.wait_for(asyncio.gather(*(ensure() for _ in range(8))), timeout=30)
    async with uow_factory() as uow:
        assert await uow.users.count() == 1


async def test_an_api_key_is_found_by_its_hash_together_with_its_user(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _add_users(uow_factory, user("u1", name="carol", is_admin=True))
    key = api_key("u1", key_id="k1")
    async with uow_factory() as uow:
        await uow.api_keys.add(key, key_hash="hash-1")
        await uow.commit()
    async with uow_factory() as uow:
        found = await uow.api_keys.find_active("hash-1")
        unknown = await uow.api_keys.find_active("hash-2")
    assert found == (key, user("u1", name="carol", is_admin=True))
    assert unknown is None


async def test_a_duplicate_key_hash_is_a_conflict(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add_users(uow_factory, user("u1"))
    async with uow_factory() as uow:
        await uow.api_keys.add(api_key("u1"), key_hash="same")
        with pytest.raises(Conflict):
            await uow.api_keys.add(api_key("u1"), key_hash="same")
        assert len(await uow.api_keys.list_for_user("u1")) == 1


async def test_a_key_revoked_by_id_or_by_prefix_is_no_longer_active(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    await _add_users(uow_factory, user("u1"))
    async with uow_factory() as uow:
        await uow.api_keys.add(api_key("u1", key_id="k1", prefix="cs_one"), key_hash="h1")
        await uow.api_keys.add(api_key("u1", key_id="k2", prefix="cs_two"), key_hash="h2")
        revoked = [
            await uow.api_keys.revoke("k1", now=at(5)),
            await uow.api_keys.revoke("cs_two", now=at(5)),
            await uow.api_keys.revoke("k1", now=at(6)),
            await uow.api_keys.revoke("no-such-key", now=at(6)),
        ]
        active = [await uow.api_keys.find_active(h) for h in ("h1", "h2")]
        listed = await uow.api_keys.list_for_user("u1")
    assert revoked == [True, True, False, False]
    assert active == [None, None]
    assert [(k.id, k.revoked_at) for k in listed] == [("k1", at(5)), ("k2", at(5))]


async def test_a_user_lists_only_their_own_keys(uow_factory: SqlUnitOfWorkFactory) -> None:
    await _add_users(uow_factory, user("u1"), user("u2"))
    async with uow_factory() as uow:
        await uow.api_keys.add(api_key("u1", key_id="mine"), key_hash="h1")
        await uow.api_keys.add(api_key("u2", key_id="theirs"), key_hash="h2")
        listed = {u: [k.id for k in await uow.api_keys.list_for_user(u)] for u in ("u1", "u2", "u3")}
    assert listed == {"u1": ["mine"], "u2": ["theirs"], "u3": []}
