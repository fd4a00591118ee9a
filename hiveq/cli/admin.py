"""Operator commands that read and steer the engine directly in Redis (they work without the API):
`tasks`, `task`, `cancel`, `queues`, `workers`, `dlq`, `trace`, `purge`."""

from __future__ import annotations

import re
import time
from pathlib import PurePath
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from hiveq.cli.common import connect, console, fail, open_archive, print_json, run, settings
from hiveq.cli.watch import clock, short, styled
from hiveq.contract.errors import ExitCode
from hiveq.contract.models import Event, JobRecord
from hiveq.contract.redact import redact
from hiveq.contract.states import TaskStatus
from hiveq.contract.timing import TICK_META, iso_ms
from hiveq.contract.views import JobAction
from hiveq.queue import inspect
from hiveq.queue.cancel import cancel_task
from hiveq.queue.purge import purge_namespace
from hiveq.queue.registry import list_workers
from hiveq.queue.retry import discard_dead, retry_dead

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
FRAME_RE = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def ago(ms: int | None) -> str:
    if not ms:
        return "-"
    s = max(0.0, time.time() - ms / 1000)
    return f"{s:.1f}s ago" if s < 60 else f"{s / 60:.0f}m ago" if s < 3600 else f"{s / 3600:.1f}h ago"


def tasks_cmd(
    ctx: typer.Context,
    status: Annotated[TaskStatus | None, typer.Option(help="Only tasks with this status.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="Only descriptions containing this (any case).")
    ] = None,
    agent: Annotated[str | None, typer.Option(help="Only tasks with a subtask for this agent.")] = None,
    meta: Annotated[
        list[str] | None, typer.Option(help="Metadata key:value (repeatable; all must match).")
    ] = None,
    since: Annotated[int | None, typer.Option(help="Created at or after (ms since the epoch).")] = None,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the previous page.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Without an archive and a search only.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """List tasks, newest first (with an archive: its whole history, searchable)."""
    s = settings(ctx)

    async def go() -> None:
        from hiveq.archive import read  # here: SQLAlchemy loads only for commands that use it

        nxt: str | None = None
        async with connect(s) as b, open_archive(s) as archive:
            if archive is None and not (agent or meta or since or cursor):
                found = await inspect.list_tasks(b, status, offset, limit, q=search or None)
                total, items = found.total, found.items
            else:
                f = read.parse_filter(status, search, agent, since, None, meta or ())
                page = await read.list_tasks(b, archive, f, cursor=cursor, limit=limit)
                total, items, nxt = page.total, page.items, page.next_cursor
        if as_json:
            print_json({"total": total, "items": items, "next_cursor": nxt})
            return
        table = Table(
            "task",
            "status",
            "progress",
            "priority",
            "planner",
            "created",
            "description",
            title=f"{len(items)} of {total} tasks in {s.namespace}",
            title_justify="left",
        )
        for t in items:
            table.add_row(
                t.id,
                styled(t.status),
                f"{t.succeeded}/{t.total}",
                str(t.priority),
                t.planner,
                ago(t.created_ms),
                escape(short(t.description, 60)),
            )
        console.print(table)
        if nxt:
            console.print(f"more: --cursor {nxt}")

    run(go())


def task_cmd(
    ctx: typer.Context,
    task_id: Annotated[str, typer.Argument(metavar="TASK")],
    as_json: JsonOpt = False,
) -> None:
    """Show one task: status, progress, every subtask with its worker, attempts and result."""
    s = settings(ctx)

    async def go() -> None:
        from hiveq.archive import read

        async with connect(s) as b, open_archive(s) as archive:
            view = await read.task_view(b, archive, task_id)
        if as_json:
            print_json(view)
            return
        p = view.progress
        console.print(
            f"task [bold]{view.id}[/] {styled(view.status)} {p.done}/{p.total}  priority {view.priority}"
            f"  planner {view.planner}\n{escape(view.description)}"
        )
        if view.plan_note:
            console.print(f"[yellow]note:[/] {escape(view.plan_note)}")
        if view.run_at_ms:
            console.print(f"starts no earlier than {iso_ms(view.run_at_ms)} (run_at)")
        if view.schedule:
            tick = view.metadata.get(TICK_META, "?")
            console.print(
                f"fired by schedule [bold]{escape(view.schedule)}[/] for its tick {escape(str(tick))}"
            )
        table = Table("subtask", "agent", "state", "attempts", "worker", "depends on", "result / error")
        for st in view.subtasks:
            outcome = short(st.result, 70) if st.result is not None else (st.error or st.reason or "")
            table.add_row(
                escape(st.id),
                st.agent,
                styled(st.state),
                str(st.attempts),
                escape(st.worker or "-"),
                ", ".join(st.depends_on) or "-",
                escape(outcome),
            )
        console.print(table)
        for pr in view.problems:
            console.print(f"[bold red]✘ {escape(pr.subtask_id)}: {escape(pr.message)}[/] — {escape(pr.fix)}")

    run(go())


def cancel_cmd(
    ctx: typer.Context, task_id: Annotated[str, typer.Argument(metavar="TASK")], as_json: JsonOpt = False
) -> None:
    """Cancel every unfinished subtask of a task (exit 4 if it already finished)."""
    s = settings(ctx)

    async def go() -> None:
        async with connect(s, write=True) as b:
            n = await cancel_task(b, task_id, reason=f"cancelled from the CLI by {b.identity}")
        if as_json:
            print_json({"task_id": task_id, "cancelled": n})
        else:
            console.print(f"task {task_id}: cancelled {n} unfinished subtask(s)")

    run(go())


def queues_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Waiting jobs per agent (by priority, oldest age) and jobs per place."""
    s = settings(ctx)

    async def go() -> None:
        async with connect(s) as b:
            depths = await inspect.queue_depths(b)
            counts = await inspect.counts(b)
        if as_json:
            print_json({"queues": depths, "counts": counts})
            return
        table = Table(
            "agent",
            "waiting",
            "by priority",
            "oldest",
            title=f"queues in {s.namespace}",
            title_justify="left",
        )
        for q in depths:
            prios = " ".join(f"p{p}:{n}" for p, n in sorted(q.by_priority.items())) or "-"
            oldest = f"{q.oldest_age_ms / 1000:.1f}s" if q.oldest_age_ms is not None else "-"
            table.add_row(q.agent, str(q.waiting), prios, oldest)
        console.print(table)
        console.print("  ".join(f"{k} {v}" for k, v in counts.items()))

    run(go())


def workers_cmd(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Registered workers: id, host, pid, Redis connection, agents, load, last heartbeat."""
    s = settings(ctx)

    async def go() -> None:
        async with connect(s) as b:
            workers = await list_workers(b)
        if as_json:
            print_json({"workers": workers})
            return
        table = Table(
            "worker",
            "host",
            "pid",
            "redis client",
            "agents",
            "running",
            "heartbeat",
            "started",
            title=f"{len(workers)} workers in {s.namespace}",
            title_justify="left",
        )
        for w in workers:
            table.add_row(
                escape(w.id),
                w.host,
                str(w.pid),
                w.client,
                ", ".join(w.agents),
                f"{w.running}/{w.concurrency}",
                ago(w.last_heartbeat_ms),
                ago(w.started_ms),
            )
        console.print(table)

    run(go())


def trace_cmd(
    ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="JOB")], as_json: JsonOpt = False
) -> None:
    """The whole custody history of a job: who enqueued it, which worker took it when, every attempt."""
    s = settings(ctx)

    async def go() -> None:
        from hiveq.archive import read

        async with connect(s) as b, open_archive(s) as archive:
            job = await read.get_job(b, archive, job_id)
            history = await read.job_history(b, archive, job_id)
        if as_json:
            print_json({"job": job, "events": history})
            return
        console.print(
            f"job [bold]{job.id}[/] ({job.agent}) of task {job.task_id}: {styled(job.state)}, "
            f"{job.attempts} deliveries, {job.failures} failures"
        )
        table = Table("time", "transition", "attempt", "worker", "host", "pid", "redis client", "reason")
        for ev in history:
            table.add_row(
                clock(ev.ts),
                transition(ev),
                str(ev.attempt or ""),
                escape(ev.worker or ""),
                escape(ev.host or ""),
                str(ev.pid or ""),
                ev.client or "",
                escape(ev.reason or ""),
            )
        console.print(table)
        if job.error:
            console.print(f"last error: {escape(job.error)}")
        print_tracebacks(job)

    run(go())


def transition(ev: Event) -> str:
    """A custody event's middle column: the state change, or what a durable agent did (a stored
    step with the time it took, a signal)."""
    if ev.type == "job":
        return f"{ev.frm or 'new'} -> {styled(ev.to or '?')}"
    data = ev.data if isinstance(ev.data, dict) else {}
    if ev.type == "step":
        took = f" ({data['ms']} ms)" if isinstance(data.get("ms"), int) else ""
        return f"step {escape(str(data.get('name', ev.reason or '')))}{took}"
    if ev.type == "signal":
        return f"signal {escape(str(data.get('name', '')))}"
    if ev.type == "late":  # another execution's outcome, refused (its lease had expired)
        return "[bold red]late outcome refused[/]"
    return ev.type


def print_tracebacks(job: JobRecord) -> None:
    """Each kept traceback, oldest first, as the agent's code raised it (plain text, no markup)."""
    if not job.tracebacks:
        return
    console.print(f"\n[bold]agent tracebacks[/] (the last {len(job.tracebacks)} failed attempts kept):")
    for tb in job.tracebacks:
        head = f"attempt {tb.attempt or '?'} (failure {tb.failure or '?'}) at {clock(tb.ts)}"
        console.print(f"\n{head} on worker {escape(tb.worker or '?')}:")
        console.print(tb.traceback.rstrip("\n"), markup=False, emoji=False)


def raised_at(job: JobRecord) -> str:
    """Where the agent raised on its last failed attempt: `file.py:12 in fn` (innermost frame)."""
    frames = FRAME_RE.findall(job.tracebacks[-1].traceback) if job.tracebacks else []
    if not frames:
        return "-"
    path, line, fn = frames[-1]
    return f"{PurePath(path).name}:{line} in {fn}"


def purge_cmd(
    ctx: typer.Context,
    namespace: Annotated[
        bool, typer.Option("--namespace", help="Required: delete the whole namespace.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete every key of this namespace (tasks, jobs, events). Other apps' keys are never touched."""
    s = settings(ctx)
    if not namespace:
        fail("say what to purge: `hiveq purge --namespace` deletes the whole namespace", ExitCode.USAGE)
    question = f"Delete every key of namespace {s.namespace} at {redact(s.redis_url)}?"
    if not yes and not typer.confirm(question, err=as_json):  # stdout stays pure JSON
        fail("not confirmed; nothing deleted", ExitCode.FAILURE)

    async def go() -> int:
        async with connect(s, write=True) as b:  # checks the namespace is ours before deleting
            return await b.guard(purge_namespace(b.redis, b.keys))

    removed = run(go())
    if as_json:
        print_json({"namespace": s.namespace, "removed_keys": removed})
    else:
        console.print(f"removed {removed} keys of namespace {s.namespace}")


def dlq_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Dead-lettered and quarantined jobs, newest first."""
    s = settings(ctx)

    async def go() -> None:
        async with connect(s) as b:
            items = await inspect.list_dead(b, 0, limit)
        if as_json:
            print_json({"items": items})
            return
        table = Table(
            "job",
            "agent",
            "state",
            "attempts",
            "failures",
            "worker",
            "raised at",
            "reason",
            title=f"{len(items)} dead letters in {s.namespace}",
            title_justify="left",
        )
        for j in items:
            table.add_row(
                j.id,
                j.agent,
                styled(j.state),
                str(j.attempts),
                str(j.failures),
                escape(j.worker or "-"),
                escape(raised_at(j)),
                escape(short(j.reason or j.error or "", 80)),
            )
        console.print(table)
        if any(j.tracebacks for j in items):
            console.print("the agent's tracebacks: `hiveq trace JOB` (or --json here for the last one)")

    run(go())


def dlq_retry(
    ctx: typer.Context, job_id: Annotated[str, typer.Argument(metavar="JOB")], as_json: JsonOpt = False
) -> None:
    """Put a dead letter back in its queue (its task runs again)."""
    s = settings(ctx)

    async def go() -> JobAction:
        async with connect(s, write=True) as b:
            await retry_dead(b, job_id, who=b.identity)
            return JobAction(job_id=job_id, state=(await inspect.get_job(b, job_id)).state)

    done = run(go())
    if as_json:
        print_json(done)  # the shape of POST /dlq/{job_id}/retry
    else:
        console.print(f"job {job_id}: back in its queue ({done.state})")


def dlq_purge(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(metavar="[JOB]", help="One job; default: all.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Mark dead letters handled (discarded: moved to cancelled, kept for the retention period)."""
    s = settings(ctx)
    question = f"Discard every dead letter in {s.namespace}?"
    if job_id is None and not yes and not typer.confirm(question, err=as_json):
        fail("not confirmed; nothing discarded", ExitCode.FAILURE)

    async def go() -> list[JobAction]:
        async with connect(s, write=True) as b:
            everything = [] if job_id else await inspect.list_dead(b, 0, 1_000_000, tracebacks=0)
            ids = [job_id] if job_id else [j.id for j in everything]
            for jid in ids:
                await discard_dead(b, jid, who=b.identity)
            return [JobAction(job_id=j.id, state=j.state) for j in await inspect.get_jobs(b, ids)]

    done = run(go())
    if as_json:
        print_json({"discarded": len(done), "items": done})  # items: POST /dlq/{id}/discard's shape
    else:
        console.print(f"discarded {len(done)} dead letter(s)")


def dlq_app() -> typer.Typer:
    dlq = typer.Typer(
        help="Dead letters: jobs that failed max_attempts times, killed their worker, or were quarantined.",
        no_args_is_help=True,
    )
    dlq.command("list")(dlq_list)
    dlq.command("retry")(dlq_retry)
    dlq.command("purge")(dlq_purge)
    return dlq


def register(app: typer.Typer) -> None:
    app.command("tasks")(tasks_cmd)
    app.command("task")(task_cmd)
    app.command("cancel")(cancel_cmd)
    app.command("queues")(queues_cmd)
    app.command("workers")(workers_cmd)
    app.command("trace")(trace_cmd)
    app.command("purge")(purge_cmd)
    app.add_typer(dlq_app(), name="dlq")
