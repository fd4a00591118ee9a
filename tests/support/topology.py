"""Real Redis topologies on loopback for the suite: a 3-primary + 3-replica Redis Cluster and a
Sentinel set (1 primary, 1 replica, 3 sentinels), from Debian's redis-server.

The cluster is formed from Python (CLUSTER MEET / ADDSLOTSRANGE / REPLICATE), so redis-cli is
not needed; every port (client and bus) is a free port. Sentinels are `redis-server --sentinel`.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.crc import key_slot

from hiveq.queue.keys import Keyspace
from hiveq.server import ServerProcess, free_port

NODE_TIMEOUT_MS = 2000  # cluster-node-timeout: a killed primary is replaced about this long after
SLOT_RANGES = ((0, 5460), (5461, 10922), (10923, 16383))


def redis_binary() -> str:
    found = shutil.which("redis-server")
    assert found, "redis-server is needed (apt-get install redis-server); .ci/run installs it"
    return found


def wait(check: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            got = check()
            if got:
                return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Node:
    server: ServerProcess
    bus: int

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def node_id(self) -> str:
        with self.client() as r:
            return str(r.execute_command("CLUSTER", "MYID"))

    def role(self) -> str:
        with self.client() as r:
            return str(r.info("replication")["role"])

    def kill(self) -> None:
        """SIGKILL (ServerProcess.stop(kill=True) sends it, waits and closes the pipe)."""
        assert self.server.proc is not None
        self.server.stop(kill=True)

    def start(self) -> None:
        self.server.start()


@dataclass
class Cluster:
    nodes: list[Node]
    base: Path

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes if n.server.proc is not None and n.role() == "master"]

    def owner(self, slot: int) -> Node:
        """The primary serving `slot` now."""
        with self.nodes_alive()[0].client() as r:
            for start, end, primary, *_ in r.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(primary[1])
                    return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"slot {slot} is not served")

    def replica_of(self, primary: Node) -> Node:
        pid = primary.node_id()
        for n in self.nodes_alive():
            with n.client() as r:
                info = r.info("replication")
                if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                    return n
        raise AssertionError(f"no replica of {pid}")

    def nodes_alive(self) -> list[Node]:
        return [n for n in self.nodes if n.server.proc is not None]

    def healthy(self) -> bool:
        """Every live node says the cluster is ok and knows 3 primaries each with a replica."""
        for n in self.nodes_alive():
            with n.client() as r:
                if r.cluster("info")["cluster_state"] != "ok":
                    return False
                lines = str(r.execute_command("CLUSTER", "NODES")).splitlines()
                live = [ln for ln in lines if "fail" not in ln.split()[2]]
                if sum(" master " in f" {ln.split()[2].replace(',', ' ')} " for ln in live) != 3:
                    return False
        return True

    def stop(self) -> None:
        for n in self.nodes:
            n.server.stop(kill=True)


def start_cluster(base: Path, extra: list[str] | None = None) -> Cluster:
    binary = redis_binary()
    nodes: list[Node] = []
    for i in range(6):
        d = base / f"node{i}"
        d.mkdir(parents=True, exist_ok=True)
        bus = free_port()
        args = ["--cluster-enabled", "yes", "--cluster-config-file", str(d / "nodes.conf")]
        args += ["--cluster-port", str(bus), "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
        args += ["--dir", str(d), "--cluster-replica-validity-factor", "0"]
        args += ["--cluster-allow-replica-migration", "no", *(extra or [])]
        nodes.append(Node(ServerProcess(binary, extra_args=args).start(), bus))
    first = nodes[0]
    with first.client() as r:
        for n in nodes[1:]:
            r.execute_command("CLUSTER", "MEET", "127.0.0.1", n.port, n.bus)
    for n, (lo, hi) in zip(nodes[:3], SLOT_RANGES, strict=True):
        with n.client() as r:
            r.execute_command("CLUSTER", "ADDSLOTSRANGE", lo, hi)
    ids = [n.node_id() for n in nodes[:3]]
    for n in nodes:
        wait(lambda n=n: _knows(n, 6), 20, f"node {n.port} to know all 6 nodes")  # type: ignore[misc]
    for replica, primary_id in zip(nodes[3:], ids, strict=True):
        with replica.client() as r:
            r.execute_command("CLUSTER", "REPLICATE", primary_id)
    c = Cluster(nodes, base)
    wait(c.healthy, 30, "the cluster to be ok with 3 primaries")
    for replica in nodes[3:]:
        wait(lambda r=replica: _synced(r), 20, "replicas to sync")  # type: ignore[misc]
    return c


def _knows(n: Node, count: int) -> bool:
    with n.client() as r:
        return len(str(r.execute_command("CLUSTER", "NODES")).splitlines()) >= count


def _synced(n: Node) -> bool:
    with n.client() as r:
        return bool(r.info("replication").get("master_link_status") == "up")


def app_on(cluster: Cluster, node: Node, env: str = "test") -> str:
    """A fresh app name whose namespace's slot the primary `node` serves."""
    while True:
        app = "t" + secrets.token_hex(4)
        if cluster.owner(slot_of(app, env)).port == node.port:
            return app


def slot_of(app: str, env: str = "test") -> int:
    return int(key_slot(Keyspace(app, env).meta.encode()))


@dataclass
class SentinelProcess(ServerProcess):
    """`redis-server CONF --sentinel` (Sentinel rewrites its config file, so it has one)."""

    conf: Path = Path()

    def args(self) -> list[str]:
        return [self.binary, str(self.conf), "--sentinel"]


@dataclass
class SentinelSet:
    primary: ServerProcess
    replica: ServerProcess
    sentinels: list[ServerProcess] = field(default_factory=list)
    service: str = "hiveqsvc"

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def current_primary_port(self) -> int:
        for s in self.sentinels:
            if s.proc is None:
                continue
            with contextlib.suppress(Exception), Redis(port=s.port, decode_responses=True) as r:
                host_port = r.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                return int(host_port[1])
        raise AssertionError("no sentinel answers")

    def stop(self) -> None:
        for s in [*self.sentinels, self.primary, self.replica]:
            s.stop(kill=True)


def start_sentinels(base: Path, down_after_ms: int = 1000) -> SentinelSet:
    binary = redis_binary()
    primary = ServerProcess(binary, extra_args=["--dir", str(base)]).start()
    replica = ServerProcess(
        binary, extra_args=["--dir", str(base), "--replicaof", "127.0.0.1", str(primary.port)]
    ).start()
    ss = SentinelSet(primary, replica)
    wait(lambda: _link_up(replica.port), 20, "the replica to sync")
    for i in range(3):
        port = free_port()
        conf = base / f"sentinel{i}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {base}\n"
            f"sentinel monitor {ss.service} 127.0.0.1 {primary.port} 2\n"
            f"sentinel down-after-milliseconds {ss.service} {down_after_ms}\n"
            f"sentinel failover-timeout {ss.service} 10000\n"
            f"sentinel parallel-syncs {ss.service} 1\n"
        )
        ss.sentinels.append(SentinelProcess(binary, port=port, conf=conf).start())
    wait(lambda: _sentinels_know(ss), 20, "the sentinels to know the replica and each other")
    return ss


def _link_up(port: int) -> bool:
    with Redis(port=port, decode_responses=True) as r:
        return bool(r.info("replication").get("master_link_status") == "up")


def _sentinels_know(ss: SentinelSet) -> bool:
    for s in ss.sentinels:
        with Redis(port=s.port, decode_responses=True) as r:
            m = r.execute_command("SENTINEL", "MASTER", ss.service)
            d = dict(zip(m[::2], m[1::2], strict=True)) if isinstance(m, list) else dict(m)
            if int(d["num-slaves"]) < 1 or int(d["num-other-sentinels"]) < 2:
                return False
    return True
