"""The worker: claims jobs, runs their agents, records outcomes (see loop.py for the flow)."""

from hiveq.worker.main import run_worker, run_worker_processes

__all__ = ["run_worker", "run_worker_processes"]
