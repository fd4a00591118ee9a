"""`python -m hiveq.worker`: a thin entry with the same options as `hiveq worker`.

Settings come from the environment (REDIS_URL, HIVEQ_APP, HIVEQ_ENV, HIVEQ_LEASE_SECONDS, …).
"""

from __future__ import annotations

import argparse
import logging
import sys

from hiveq.contract.errors import HiveqError
from hiveq.logs import setup_logging
from hiveq.settings import Settings
from hiveq.worker.main import run_worker_processes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hiveq.worker", description="Run hiveq worker processes.")
    p.add_argument("--agents", default=None, help="comma-separated agent names (default: all registered)")
    p.add_argument("--concurrency", type=int, default=None, help="concurrent jobs per process")
    p.add_argument("--processes", type=int, default=1, help="worker processes")
    p.add_argument("--module", action="append", default=[], help="module defining @agent functions")
    p.add_argument("--log-level", default="info")
    p.add_argument("--log-format", default="text", choices=["text", "json"])
    a = p.parse_args(argv)
    try:
        setup_logging(a.log_level, a.log_format)
        settings = Settings.from_env()
        agents = a.agents.split(",") if a.agents else None
        return run_worker_processes(
            settings, agents=agents, concurrency=a.concurrency, processes=a.processes, modules=a.module
        )
    except HiveqError as exc:
        logging.getLogger("hiveq.worker").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
