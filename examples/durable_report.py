"""A durable agent end to end: a planner spawns researchers, waits for a person's approval, and
writes a report with streamed output (README "Durable agents"; docs/durable.md).

    python examples/durable_report.py "vector databases"            # you approve the plan
    python examples/durable_report.py "vector databases" --approve  # approved for you

It starts a throwaway stack (`hiveq up` with an embedded Valkey in a temporary folder and ONE
worker with ONE slot, serving these agents), submits the task through the HTTP API, prints the
output as it streams, asks for the approval when the planner waits for it, sends it as a signal
(what the dashboard's button and `hiveq signal` do), and prints the report. With your own stack:
`hiveq up --module examples.durable_report` (from the repository root), then submit a task whose
one subtask is `{"id": "plan", "agent": "report.plan", "input": {"topic": "…"}}`.

The researchers and the writer are offline stand-ins (they say so); a real one would call a model
inside each `ctx.step`, so a worker that dies after the call does not pay for it twice.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hiveq import AgentContext, Client, agent
from hiveq.contract.models import Event

ROOT = Path(__file__).resolve().parents[1]


def questions_for(topic: str) -> list[str]:
    """What the report must answer (a real planner asks a model here: this runs in a step)."""
    return [f"What is {topic}?", f"Who uses {topic}, and for what?", f"What can go wrong with {topic}?"]


@agent("report.research")
async def research(ctx: AgentContext) -> dict[str, str]:
    question = ctx.input["question"]
    await ctx.emit(f"researching: {question}\n")
    return {"question": question, "finding": f"(offline stand-in) notes on {question!r}"}


async def write_report(ctx: AgentContext, topic: str, findings: list[dict[str, str]]) -> str:
    lines = [f"# {topic}\n"] + [f"- {f['question']} {f['finding']}\n" for f in findings]
    for line in lines:
        await ctx.emit(line)  # streamed: `hiveq watch TASK --output`, the dashboard's output panel
    return "".join(lines)


@agent("report.plan")
async def plan(ctx: AgentContext) -> dict[str, Any]:
    topic = ctx.input["topic"]
    questions = await ctx.step("questions", questions_for, topic)
    researchers = await ctx.spawn(
        [
            {"id": f"research-{i}", "agent": "report.research", "input": {"topic": topic, "question": q}}
            for i, q in enumerate(questions, 1)
        ]
    )
    findings = await ctx.wait_for(researchers)  # suspended meanwhile: its slot runs the researchers
    await ctx.emit(f"{len(findings)} findings ready; waiting for approval\n")
    decision = await ctx.wait_for_signal("approval", timeout_s=24 * 3600)  # suspended, no slot held
    if not (isinstance(decision, dict) and decision.get("approved")):
        return {"published": False, "decision": decision}
    report = await ctx.step("report", write_report, ctx, topic, findings)
    return {"published": True, "approved_by": decision.get("by"), "report": report}


# -- the throwaway stack and the person at the keyboard ------------------------------------------


def start_stack(folder: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "HIVEQ_REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    argv = [sys.executable, "-m", "hiveq", "up", "--module", "examples.durable_report"]
    argv += ["--workers", "1", "--concurrency", "1", "--port", str(port), "--redis-port", "0"]
    argv += ["--data-dir", str(folder / "data")]
    with open(folder / "stack.log", "wb") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=log, start_new_session=True)


def wait_ready(client: Client, stack: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    """Until the API answers and a worker serves the planner."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise SystemExit(f"the stack exited at start (exit code {stack.returncode})")
        try:
            if any("report.plan" in w.agents for w in client.workers()):
                return
        except Exception:  # the API is still starting
            pass
        time.sleep(0.2)
    raise SystemExit(f"the stack was not ready within {timeout_s:.0f} s")


def approve(auto: bool) -> dict[str, Any]:
    if auto:
        return {"approved": True, "by": "--approve"}
    answer = input("Approve the plan and write the report? [y/N] ").strip().lower()
    return {"approved": answer in ("y", "yes"), "by": getpass.getuser()}


def follow(client: Client, task_id: str, auto: bool) -> None:
    """Print the task's streamed output live; answer the planner's approval wait when it comes."""
    for ev in client.events(task_id):
        if ev.type == "output":
            print((ev.data or {}).get("text", ""), end="", flush=True)
        elif waits_for_approval(ev):
            assert ev.job is not None
            sent = client.signal(ev.job, "approval", approve(auto))
            print(f"[approval sent: {'the planner resumes' if sent.delivered else 'kept for the planner'}]")
        elif ev.type == "task" and ev.to in ("succeeded", "failed", "cancelled"):
            return


def waits_for_approval(ev: Event) -> bool:
    return ev.type == "job" and ev.to == "suspended" and "signal approval" in (ev.reason or "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("topic", nargs="?", default="durable AI agents")
    parser.add_argument("--approve", action="store_true", help="approve the plan without asking")
    args = parser.parse_args(argv)
    from hiveq.server import free_port

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hiveq-report-") as tmp:
        stack = start_stack(Path(tmp), port)
        try:
            with Client(f"http://127.0.0.1:{port}") as client:
                wait_ready(client, stack)
                task = client.submit(
                    f"A report on {args.topic}",
                    subtasks=[{"id": "plan", "agent": "report.plan", "input": {"topic": args.topic}}],
                )
                print(f"task {task.task_id}: planning (watch it live: `hiveq watch {task.task_id} --output`)")
                follow(client, task.task_id, args.approve)
                view = client.get_task(task.task_id)
        finally:
            stack.send_signal(signal.SIGTERM)
            stack.wait(60)
    final = view.result["final"] if view.result else None
    done = f"{view.progress.done}/{view.progress.total}"
    print(f"task {view.id} {view.status.value}: {done} subtasks succeeded")
    if isinstance(final, dict) and final.get("published"):
        print(f"published, approved by {final['approved_by']}")
        return 0
    print(f"not published: {final!r}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
