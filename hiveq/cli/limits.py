"""`hiveq limits` (the rules with live usage), `hiveq limits set KEY [--concurrency N] [--rate
N/s|N/min] [--tokens N/min] [--budget-tokens N] [--budget-usd X] [--on-exhausted wait|fail]` and
`hiveq limits rm KEY` (docs/limits.md). A change takes effect on the next claim."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from hiveq.cli.common import connect, console, fail, print_json, run, settings
from hiveq.contract.errors import ExitCode
from hiveq.contract.limit_rules import LimitRule, LimitView
from hiveq.queue import limits

COLUMNS = ("rule", "limits", "key", "in use", "holders", "starts", "tokens/min", "budget used", "throttled")
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (the shape of GET /limits).")]


def describe_rule(r: LimitRule) -> str:
    parts = []
    if r.concurrency is not None:
        parts.append(f"concurrency {r.concurrency}")
    if r.rate is not None:
        parts.append(f"rate {r.rate}")
    if r.tokens is not None:
        parts.append(f"tokens {r.tokens:,}/min")
    if r.budget_tokens is not None:
        parts.append(f"budget {r.budget_tokens:,} tokens")
    if r.budget_usd is not None:
        parts.append(f"budget {r.budget_usd:,.2f} USD")
    if r.budget_tokens is not None or r.budget_usd is not None:
        parts.append(f"on exhausted: {r.on_exhausted}")
    return ", ".join(parts)


def render(views: list[LimitView]) -> None:
    if not views:
        console.print("no limit rules; add one with `hiveq limits set KEY --concurrency N`")
        return
    table = Table(*COLUMNS)
    for v in views:
        rows = v.usage or []
        if not rows:
            table.add_row(escape(v.key), escape(describe_rule(v.rule)), "–", "0", "", "0", "0", "0", "0")
        for i, u in enumerate(rows):
            cool = " (cooling)" if u.cooling_until_ms else ""
            table.add_row(
                escape(v.key) if i == 0 else "",
                escape(describe_rule(v.rule)) if i == 0 else "",
                escape(u.key) + cool,
                str(u.in_use),
                escape(", ".join(u.holders[:3]) + (" …" if len(u.holders) > 3 else "")),
                str(u.starts_in_window),
                f"{u.tokens_this_minute:,}",
                f"{u.budget_tokens_used:,} tok / {u.budget_usd_used:,.2f} USD",
                str(u.throttled_total),
            )
    console.print(table)


def limits_app() -> typer.Typer:
    app = typer.Typer(help="Limit rules: concurrency, rates, tokens and budgets per key (docs/limits.md).")

    @app.callback(invoke_without_command=True)
    def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
        """The rules, each with the live usage of the keys under it."""
        if ctx.invoked_subcommand is not None:
            return
        s = settings(ctx)

        async def go() -> list[LimitView]:
            async with connect(s) as b:
                return await limits.views(b)

        views = run(go())
        if as_json:
            print_json(views)
        else:
            render(views)

    @app.command("set")
    def set_cmd(
        ctx: typer.Context,
        key: Annotated[str, typer.Argument(metavar="KEY", help="e.g. tenant:acme, model:gpt-4o, tenant:*")],
        concurrency: Annotated[int | None, typer.Option("--concurrency", help="jobs running at once")] = None,
        rate: Annotated[str | None, typer.Option("--rate", help="job starts: N/s or N/min")] = None,
        tokens: Annotated[str | None, typer.Option("--tokens", help="tokens per minute: N/min")] = None,
        budget_tokens: Annotated[int | None, typer.Option("--budget-tokens", help="tokens in total")] = None,
        budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="US dollars in total")] = None,
        on_exhausted: Annotated[
            str, typer.Option("--on-exhausted", help="a spent budget: wait (hold the job) or fail it")
        ] = "wait",
        as_json: JsonOpt = False,
    ) -> None:
        """Create or replace the rule for KEY; it takes effect on the next claim."""
        if on_exhausted not in ("wait", "fail"):
            fail("--on-exhausted: must be wait or fail", ExitCode.USAGE)
        mode: Literal["wait", "fail"] = "fail" if on_exhausted == "fail" else "wait"
        try:
            rule = LimitRule(
                concurrency=concurrency,
                rate=rate,
                tokens=tokens,
                budget_tokens=budget_tokens,
                budget_usd=budget_usd,
                on_exhausted=mode,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = "-".join(str(p) for p in first["loc"]).replace("_", "-")
            field = f"--{loc}" if loc else "rule"
            fail(f"{field}: {str(first['msg']).removeprefix('Value error, ')}", ExitCode.USAGE)
        s = settings(ctx)

        async def go() -> LimitView:
            async with connect(s, write=True) as b:
                await limits.set_limit(b, key, rule)
                return await limits.view(b, key, rule)

        v = run(go())
        if as_json:
            print_json(v)
        else:
            said = escape(describe_rule(rule))
            console.print(f"limit {escape(key)}: {said} (takes effect on the next claim)")

    @app.command("rm")
    def rm_cmd(ctx: typer.Context, key: Annotated[str, typer.Argument(metavar="KEY")]) -> None:
        """Remove the rule for KEY (its keys' counters are kept)."""
        s = settings(ctx)

        async def go() -> None:
            async with connect(s, write=True) as b:
                await limits.remove_limit(b, key)

        run(go())
        console.print(f"limit {escape(key)} removed")

    return app


def register(app: typer.Typer) -> None:
    app.add_typer(limits_app(), name="limits")
