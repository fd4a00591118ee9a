"""Follow a task live from the event stream: `hiveq watch`, `hiveq submit --wait` and `hiveq demo`.

On a terminal: a rich progress bar per subtask. Elsewhere (pipes, CI logs): one line per
transition, so a log shows who took what and when. With `--output`: one line per transition and
the agents' streamed output (`ctx.emit`, the llm agent's tokens) as it arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from hiveq.aggregate import task_view
from hiveq.cli.common import connect, console, err_console, print_json, run, settings
from hiveq.contract.errors import ExitCode, RedisUnavailable
from hiveq.contract.models import Event, JobRecord, TaskRecord
from hiveq.contract.protocol import subtask_of
from hiveq.contract.states import TERMINAL_TASK_STATUSES, JobState, TaskStatus
from hiveq.diagnose.neighbours import unserved_hint
from hiveq.queue import inspect
from hiveq.queue.broker import Broker
from hiveq.queue.events import job_history, last_event_id, read_events
from hiveq.queue.output import read_output
from hiveq.worker.reconnect import ReconnectDelay

T = TypeVar("T")

STATE_STYLE = {
    "succeeded": "green",
    "active": "cyan",
    "waiting": "yellow",
    "blocked": "dim",
    "delayed": "magenta",
    "suspended": "blue",
    "dead": "red",
    "cancelled": "dim red",
    "quarantined": "red",
    "vanished": "bold red",
    "failed": "red",
    "running": "cyan",
    "queued": "yellow",
}


def styled(state: str) -> str:
    return f"[{STATE_STYLE.get(state, 'white')}]{state}[/]"


def clock(ms: int | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) + f".{ms % 1000:03d}" if ms else "-"


@dataclass
class Snapshot:
    task: TaskRecord
    jobs: list[JobRecord]
    stuck: list[str] = field(default_factory=list)  # vanished jobs no one will recover by itself

    @property
    def done(self) -> bool:
        return self.task.status in TERMINAL_TASK_STATUSES

    def label(self, job_id: str | None) -> str:
        return subtask_of(job_id or "") or (job_id or "")


async def snapshot(b: Broker, task_id: str) -> Snapshot:
    task = await inspect.get_task(b, task_id)
    return Snapshot(task, await inspect.get_jobs(b, task.job_ids))


class View(Protocol):
    def update(self, snap: Snapshot) -> None: ...
    def event(self, snap: Snapshot, ev: Event) -> None: ...
    def close(self) -> None: ...


def who(ev: Event) -> str:
    if not ev.worker:
        return ""
    where = f" ({ev.host} pid {ev.pid})" if ev.host else ""
    return f"worker {ev.worker}{where}"


def stream_id(ev_id: str) -> tuple[int, int]:
    ms, _, seq = ev_id.partition("-")
    return int(ms), int(seq or 0)


class LineView:
    """One line per event: readable in logs and pipes. With `output`, the agents' streamed output
    is written as it comes, after what each job had emitted before (`shown`: the event id each
    job's kept output is complete up to, so nothing is printed twice)."""

    def __init__(self, console: Console, output: bool = False, shown: dict[str, str] | None = None) -> None:
        self.console = console
        self.output = output
        self.shown = {job: stream_id(at) for job, at in (shown or {}).items()}
        self.mid_line = False  # the last output did not end a line

    def update(self, snap: Snapshot) -> None:
        pass

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()
        self.mid_line = not text.endswith("\n")

    def event(self, snap: Snapshot, ev: Event) -> None:
        if ev.type == "output":
            data = ev.data if isinstance(ev.data, dict) else {}
            seen = self.shown.get(ev.job or "")
            if self.output and (seen is None or stream_id(ev.id) > seen):
                self.write(str(data.get("text", "")))
            return
        if self.mid_line:
            self.write("\n")
        self.line(snap, ev)

    def line(self, snap: Snapshot, ev: Event) -> None:
        c = self.console
        data = ev.data if isinstance(ev.data, dict) else {}
        if ev.type == "step":
            took = f" ({data['ms']} ms)" if isinstance(data.get("ms"), int) else ""
            c.print(f"{clock(ev.ts)}  {snap.label(ev.job)}: step {escape(ev.reason or '')}{took}")
        elif ev.type == "signal":
            c.print(f"{clock(ev.ts)}  {snap.label(ev.job)}: {escape(ev.reason or '')}")
        elif ev.type == "task":
            c.print(f"{clock(ev.ts)}  task {ev.task}: {ev.frm or 'new'} -> {styled(ev.to or '?')}")
        elif ev.type == "progress":
            data = ev.data if isinstance(ev.data, dict) else {}
            pct = int(float(data.get("progress", 0) or 0) * 100)
            c.print(f"{clock(ev.ts)}  {snap.label(ev.job)}: {pct}% {escape(ev.reason or '')}".rstrip())
        elif ev.job:
            extra = f" attempt {ev.attempt}" if ev.attempt else ""
            reason = f" - {escape(ev.reason)}" if ev.reason and ev.to != "active" else ""
            c.print(
                f"{clock(ev.ts)}  {snap.label(ev.job)}: {ev.frm or 'new'} -> {styled(ev.to or '?')}"
                f" {who(ev)}{extra}{reason}".rstrip()
            )

    def close(self) -> None:
        pass


class BarsView:
    """A live progress bar per subtask plus one for the whole task."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[state]}"),
            TextColumn("[dim]{task.fields[who]}"),
            console=console,
            transient=False,
        )
        self.rows: dict[str, TaskID] = {}
        self.ran_by: dict[str, str] = {}
        self.progress.start()

    def update(self, snap: Snapshot) -> None:
        p = self.progress
        if "" not in self.rows:
            self.rows[""] = p.add_task(
                f"[bold]{escape(snap.task.description[:40])}", total=1, state="", who=""
            )
        t = snap.task
        p.update(
            self.rows[""],
            total=max(t.total, 1),
            completed=t.succeeded,
            state=styled(t.status),
            who=f"{t.succeeded}/{t.total}",
        )
        for j in snap.jobs:
            if j.id not in self.rows:
                self.rows[j.id] = p.add_task(f"  {escape(j.subtask_id)}", total=1.0, state="", who="")
            frac = 1.0 if j.state == JobState.SUCCEEDED else (j.progress or 0.0)
            p.update(
                self.rows[j.id],
                completed=frac,
                state=styled(j.state),
                who=self.ran_by.get(j.id, j.worker or ""),
            )

    def event(self, snap: Snapshot, ev: Event) -> None:
        if ev.type == "job" and ev.job and ev.to == "active" and ev.worker:
            self.ran_by[ev.job] = who(ev).removeprefix("worker ")

    def close(self) -> None:
        self.progress.stop()


class Blips:
    """Ride out a Redis blip while following (a restart, a failover): one line on stderr when
    Redis is lost, one when it is back, and retries with growing, jittered delays in between.
    The stream position is kept, so no event is missed (Redis with persistence keeps them).
    A Redis that never answered (a wrong REDIS_URL) still ends the command at once (exit 5)."""

    def __init__(self, err: Console) -> None:
        self.err = err
        self.delay = ReconnectDelay(base=0.1, cap=2.0)
        self.down_since: float | None = None
        self.reached = False

    async def call(self, op: Callable[[], Awaitable[T]]) -> T:
        while True:
            try:
                value = await op()
            except RedisUnavailable as exc:
                if not self.reached:
                    raise
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    self.err.print(f"{exc}; reconnecting (Ctrl-C to stop)", markup=False, soft_wrap=True)
                await asyncio.sleep(self.delay.next_delay())
                continue
            if self.down_since is not None:
                took = time.monotonic() - self.down_since
                self.err.print(f"Redis is back after {took:.1f} s; following again", soft_wrap=True)
                self.down_since = None
                self.delay.reset()
            self.reached = True
            return value


class Hint:
    """Says once, on stderr, when no live worker of this namespace serves the jobs the task waits
    on (naming other namespaces' workers on this Redis: a wrong HIVEQ_APP waits forever else)."""

    FIRST_S = 2.0  # workers just started by `hiveq up` register within about a second
    EVERY_S = 5.0

    def __init__(self, err: Console) -> None:
        self.err = err
        self.said = False
        self.due = time.monotonic() + self.FIRST_S

    async def check(self, b: Broker, snap: Snapshot) -> None:
        if self.said or snap.done or time.monotonic() < self.due:
            return
        self.due = time.monotonic() + self.EVERY_S
        pending = {j.agent for j in snap.jobs if j.state in (JobState.WAITING, JobState.DELAYED)}
        text = await unserved_hint(b, pending) if pending else None
        if text:
            self.err.print(f"hint: {text}", markup=False, soft_wrap=True)
            self.said = True


def auto_recovered(ev: Event) -> bool:
    """A vanished event whose watch recovers the job by itself (HIVEQ_RECOVER_VANISHED=auto)."""
    return isinstance(ev.data, dict) and ev.data.get("recover") == "auto"


def vanished_line(console: Console, snap: Snapshot, ev: Event) -> None:
    """The red line for a job that vanished: which job, from which key, the suspected culprit."""
    then = (
        "the watch recovers it (HIVEQ_RECOVER_VANISHED=auto)"
        if auto_recovered(ev)
        else f"the task cannot finish until it is back: `hiveq recover {ev.job}`"
    )
    console.print(
        f"[bold red]{clock(ev.ts)}  ✘ {escape(snap.label(ev.job))} ({ev.job}) "
        f"{escape(ev.reason or 'vanished')} — {escape(then)}[/]",
        soft_wrap=True,
    )


async def _stuck_at_start(b: Broker, snap: Snapshot, console: Console, quiet: bool) -> list[str]:
    """Jobs already vanished when following starts (their vanished event is in their history)."""
    stuck = []
    for j in snap.jobs:
        if j.state != JobState.VANISHED:
            continue
        marks = [e for e in await job_history(b, j.id) if e.to == JobState.VANISHED]
        if marks and not quiet:
            vanished_line(console, snap, marks[-1])
        if not (marks and auto_recovered(marks[-1])):
            stuck.append(j.id)
    return stuck


def show(events: list[Event], snap: Snapshot, view: View | None, console: Console, quiet: bool) -> list[str]:
    """Show a batch of events; returns the jobs among them that vanished for good."""
    stuck = []
    for ev in events:
        if ev.type == "job" and ev.to == JobState.VANISHED:
            if not quiet:
                vanished_line(console, snap, ev)
            if not auto_recovered(ev) and ev.job:
                stuck.append(ev.job)
        elif view is not None:
            view.event(snap, ev)
    return stuck


async def follow(
    b: Broker,
    task_id: str,
    console: Console,
    *,
    after: str | None = None,
    quiet: bool = False,
    output: bool = False,
) -> Snapshot:
    """Show the task until it finishes, or until a job of it vanished that nothing will recover by
    itself (`stuck`); returns its last state. Events drive the updates; a Redis blip on the way is
    reported and ridden out.

    `after`: the stream id to show events from (take it before submitting, so that a task that
    finishes at once is still shown step by step); default: from now. `output`: print the jobs'
    streamed output too, from its start.
    """
    blips = Blips(err_console)
    hint = Hint(err_console)
    # The position is taken before the snapshot, so no transition is missed.
    start = after if after is not None else await blips.call(partial(last_event_id, b))
    snap = await blips.call(partial(snapshot, b, task_id))
    view: View | None = None
    if output:
        view = LineView(console, output=True, shown=await earlier_output(b, snap))
    elif not quiet:
        view = BarsView(console) if console.is_terminal else LineView(console)
    stuck = await _stuck_at_start(b, snap, console, quiet)
    try:
        if view is not None:
            view.update(snap)
        while not stuck:
            finished = snap.done
            # Until it finishes: wait for events. Then: drain what is left and stop.
            block = None if finished else 1000
            last, events = await blips.call(partial(read_events, b, start, block_ms=block, task_id=task_id))
            stuck += show(events, snap, view, console, quiet)
            if finished and last == start:
                break
            start = last
            if not finished or stuck:
                snap = await blips.call(partial(snapshot, b, task_id))
                await blips.call(partial(hint.check, b, snap))
            if view is not None:
                view.update(snap)
    finally:
        if view is not None:
            view.close()
    snap.stuck = [j for j in stuck if any(x.id == j and x.state == JobState.VANISHED for x in snap.jobs)]
    return snap


async def earlier_output(b: Broker, snap: Snapshot) -> dict[str, str]:
    """Print what each job emitted before the watch began; the event id each print is complete to."""
    shown = {}
    for j in snap.jobs:
        if j.output_bytes:
            kept = await read_output(b, j.id)
            sys.stdout.write(f"── output of {j.subtask_id} so far ──\n{kept.text}")
            if kept.text and not kept.text.endswith("\n"):
                sys.stdout.write("\n")
            shown[j.id] = kept.last_event_id
    sys.stdout.flush()
    return shown


def short(value: Any, width: int = 160) -> str:
    """A one-line preview of a result: its summary/text field if it has one, else compact JSON."""
    if isinstance(value, dict):
        for key in ("summary", "text", "output", "content", "artifact", "result"):
            if isinstance(value.get(key), str):
                value = value[key]
                break
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


async def custody(b: Broker, jobs: list[JobRecord]) -> dict[str, Event]:
    """For each job, the event of its last claim: which worker, host, pid and connection ran it."""
    out: dict[str, Event] = {}
    for j in jobs:
        claims = [e for e in await job_history(b, j.id) if e.type == "job" and e.to == "active" and e.worker]
        if claims:
            out[j.id] = claims[-1]
    return out


def render_summary(console: Console, snap: Snapshot, ran: dict[str, Event]) -> None:
    t = snap.task
    table = Table(title=f"Who ran what - task {t.id}", title_justify="left")
    for col in ("subtask", "agent", "state", "attempts", "worker", "host", "pid", "took"):
        table.add_column(col, justify="right" if col in ("attempts", "pid", "took") else "left")
    for j in snap.jobs:
        ev = ran.get(j.id)
        took = f"{(j.finished_ms - j.started_ms) / 1000:.1f}s" if j.finished_ms and j.started_ms else "-"
        table.add_row(
            escape(j.subtask_id),
            j.agent,
            styled(j.state),
            str(j.attempts),
            escape(ev.worker or "") if ev else "-",
            escape(ev.host or "") if ev else "-",
            str(ev.pid) if ev and ev.pid else "-",
            took,
        )
    console.print(table)
    for j in snap.jobs:
        if j.state == JobState.SUCCEEDED:
            console.print(
                f"[green]✔[/] [bold]{escape(j.title or j.subtask_id)}[/]: {escape(short(j.result))}"
            )
        elif j.error or j.reason:
            console.print(
                f"[red]✘[/] [bold]{escape(j.title or j.subtask_id)}[/]: {escape(j.reason or j.error or '')}"
            )
    canned = [j.result for j in snap.jobs if isinstance(j.result, dict) and j.result.get("demo") is True]
    if canned:  # the demo agent marks its results; say so where a person reads them
        note = str(canned[0].get("note") or "produced by hiveq's built-in demo agent; no model was called")
        console.print(
            f"[yellow]note:[/] {len(canned)} of these results are canned, not real work: {escape(note)}",
            soft_wrap=True,
        )
    took = f" in {(t.finished_ms - t.created_ms) / 1000:.1f}s" if t.finished_ms and t.created_ms else ""
    console.print(f"task {t.id} {styled(t.status)}{took}: {t.succeeded}/{t.total} subtasks succeeded")


async def finish(b: Broker, snap: Snapshot, console: Console, as_json: bool) -> int:
    """Print the outcome (results and who ran what) and return the exit code."""
    if as_json:
        print_json(await task_view(b, snap.task.id))
    else:
        render_summary(console, snap, await custody(b, snap.jobs))
        if snap.stuck:
            console.print(
                f"[bold red]task {snap.task.id} cannot finish: {len(snap.stuck)} subtask(s) vanished "
                f"({', '.join(snap.stuck)}); stop the culprit, then `hiveq recover --all` and "
                f"`hiveq watch {snap.task.id}`[/]",
                soft_wrap=True,
            )
    if snap.stuck:
        return ExitCode.FAILURE
    return ExitCode.OK if snap.task.status == TaskStatus.SUCCEEDED else ExitCode.FAILURE


def register(app: typer.Typer) -> None:
    @app.command("watch")
    def watch_cmd(
        ctx: typer.Context,
        task_id: Annotated[str, typer.Argument(metavar="TASK", help="The task id (from `hiveq submit`).")],
        as_json: Annotated[bool, typer.Option("--json", help="Print only the final task as JSON.")] = False,
        output: Annotated[
            bool, typer.Option("--output", help="Print the agents' streamed output (ctx.emit) live.")
        ] = False,
    ) -> None:
        """Follow a task live until it finishes; exit 0 if it succeeded, 1 if not."""
        s = settings(ctx)

        async def go() -> int:
            async with connect(s) as b:
                snap = await follow(b, task_id, console, quiet=as_json, output=output and not as_json)
                return await finish(b, snap, console, as_json)

        raise typer.Exit(run(go()))
