"""claim_namespace.lua: a namespace records its owner and protocol; other versions are refused."""

from __future__ import annotations

import pytest

from hiveq.contract.errors import NamespaceError
from hiveq.contract.protocol import PROTOCOL_VERSION
from hiveq.queue.broker import Broker
from hiveq.server import ServerProcess
from tests.conftest import fresh_settings


async def test_first_use_records_the_owner_and_protocol(any_server: ServerProcess) -> None:
    s = fresh_settings(any_server.url)
    b = await Broker.connect(s, role="test")
    try:
        meta = await b.redis.hgetall(b.keys.meta)
        assert (meta["app"], meta["env"], meta["protocol"]) == (s.app, s.env, str(PROTOCOL_VERSION))
        assert meta["created_by"] == b.client_name
        again = await Broker.connect(s, role="worker")  # a second client of the same version is fine
        assert (await again.claim_namespace())["created_ms"] == int(meta["created"])
        await again.close()
    finally:
        await b.redis.delete(b.keys.meta)
        await b.close()


async def test_a_client_of_another_protocol_version_refuses_the_namespace(any_broker: Broker) -> None:
    b = any_broker
    await b.redis.hset(b.keys.meta, "protocol", "99")
    expected = rf"speaks hiveq protocol v99, this client speaks v{PROTOCOL_VERSION}"
    with pytest.raises(NamespaceError, match=expected) as err:
        await Broker.connect(b.settings, role="worker")
    assert "HIVEQ_ENV" in str(err.value)
    assert await b.redis.hget(b.keys.meta, "protocol") == "99"  # not overwritten


async def test_a_namespace_recorded_for_another_owner_is_refused(any_broker: Broker) -> None:
    b = any_broker
    await b.redis.hset(b.keys.meta, mapping={"app": "someone-else"})
    with pytest.raises(NamespaceError, match="owned by app='someone-else'"):
        await Broker.connect(b.settings, role="worker")
