"""`CHATSERVER_DATABASE_URL` naming the `postgres` superuser, as a new user first tries: ready at once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import prepared_database
from tests.e2e.harness import LiveServer, serve_in_thread
from tests.integration.test_superuser_url import superuser_url

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def as_superuser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with prepared_database("postgres", tmp_path_factory.mktemp("superuser")) as settings:
        settings = settings.model_copy(update={"database_url": superuser_url(settings.database_url)})
        with serve_in_thread(settings) as server:
            yield server


async def test_a_server_on_a_superuser_url_is_ready_and_serves(as_superuser: LiveServer) -> None:
    async with as_superuser.raw_client() as anonymous:
        ready = await anonymous.get("/readyz")
    async with as_superuser.client("su-user") as user:
        me = await user.get("/api/me")
    assert ready.status_code == 200, ready.text
    assert me.json()["id"] == "su-user"
