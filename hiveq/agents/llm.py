"""The `llm` agent: one chat completion against any OpenAI-compatible endpoint, streamed.

Base URL, key, model, timeout, retries and concurrency come from `settings.llm`
(HIVEQ_LLM_*). The `openai` SDK retries 408/409/429/5xx and honours `Retry-After` (up to two
minutes) when `max_retries > 0`. A worker makes at most `HIVEQ_LLM_CONCURRENCY` calls at once
(one semaphore per worker). The result carries the text and the token usage.

The reply is streamed (`stream=True`): each token goes to the job's output as it arrives
(`ctx.emit`), and a cancelled task aborts the HTTP request at once (the stream is closed). The
call is one durable step, so a job redelivered after the call finished does not pay for it again.

Input: a string (the prompt) or {"prompt" | "instructions", "system"?, "model"?, "max_tokens"?,
"temperature"?, "stream"? (false: one answer, for a server that cannot stream)}. The task
description and the dependencies' results are given as context.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hiveq.agents.registry import AgentContext, FatalError, RateLimited, agent
from hiveq.settings import LLMSettings

if TYPE_CHECKING:
    from openai import AsyncOpenAI

SYSTEM = "You are one agent in a team working on a task. Do your step well and answer concisely."


@dataclass
class LLMResources:
    """Per worker: one HTTP client (connection reuse) and the concurrency bound."""

    client: AsyncOpenAI
    limit: asyncio.Semaphore

    async def aclose(self) -> None:
        await self.client.close()


def check_config(s: LLMSettings) -> None:
    if not s.base_url:
        raise FatalError(
            "the llm agent has no endpoint: set HIVEQ_LLM_BASE_URL to an OpenAI-compatible base URL "
            "(e.g. https://api.openai.com/v1 or http://localhost:11434/v1)"
        )
    if not s.api_key:
        raise FatalError(
            "the llm agent has no API key: set HIVEQ_LLM_API_KEY (any non-empty value for a local "
            "server that needs none)"
        )


def resources(ctx: AgentContext) -> LLMResources:
    res = ctx.resources.get("llm")
    if res is None:
        try:
            from openai import AsyncOpenAI
        except ImportError:
            raise FatalError("the llm agent needs the openai package: pip install 'hiveq[llm]'") from None
        s = ctx.settings.llm
        client = AsyncOpenAI(
            base_url=s.base_url, api_key=s.api_key, timeout=s.timeout_s, max_retries=s.max_retries
        )
        res = ctx.resources["llm"] = LLMResources(client, asyncio.Semaphore(s.max_concurrency))
    assert isinstance(res, LLMResources)
    return res


def messages(ctx: AgentContext) -> list[dict[str, str]]:
    inp = ctx.input if isinstance(ctx.input, dict) else {"prompt": ctx.input}
    prompt = inp.get("prompt") or inp.get("instructions") or ctx.description
    parts = []
    if ctx.description and ctx.description != prompt:
        parts.append(f"Task: {ctx.description}")
    for sub, result in sorted(ctx.dependency_results.items()):
        text = result.get("text") if isinstance(result, dict) and "text" in result else result
        parts.append(f"Result of step {sub!r}:\n{text if isinstance(text, str) else json.dumps(text)}")
    parts.append(f"Your step: {prompt}")
    return [
        {"role": "system", "content": str(inp.get("system") or SYSTEM)},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


def _usage(usage: Any) -> dict[str, int]:
    if usage is None:
        return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    return {
        "prompt_tokens": int(usage.prompt_tokens or 0),
        "completion_tokens": int(usage.completion_tokens or 0),
        "total_tokens": int(usage.total_tokens or 0),
    }


def _retry_after(exc: Any) -> float:
    """The provider's Retry-After (seconds), or 1 s when it sent none we can read."""
    try:
        return max(0.0, float(exc.response.headers.get("retry-after", "1")))
    except (AttributeError, TypeError, ValueError):
        return 1.0


def _classify(exc: Exception, base_url: str | None, model: str = "") -> Exception:
    """4xx other than 408/409/429 will not get better by retrying: dead-letter at once. A 429
    (after the SDK's own retries) cools `model:<model>` down for every worker (RateLimited)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429:
            return RateLimited(retry_after=_retry_after(exc), key=f"model:{model}" if model else None)
        if code in (401, 403):
            return FatalError(f"{base_url} refused the API key (HTTP {code}); check HIVEQ_LLM_API_KEY")
        if 400 <= code < 500 and code not in (408, 409, 429):
            return FatalError(f"{base_url} rejected the request (HTTP {code}): {exc.message}")
        return RuntimeError(f"{base_url} answered HTTP {code} after retries: {exc.message}")
    if isinstance(exc, openai.APITimeoutError):
        return RuntimeError(f"{base_url} did not answer within HIVEQ_LLM_TIMEOUT; will retry")
    if isinstance(exc, openai.APIConnectionError):
        return RuntimeError(f"could not reach {base_url} ({exc}); will retry")
    return exc


@agent("llm")
async def llm(ctx: AgentContext) -> dict[str, Any]:
    s = ctx.settings.llm
    check_config(s)
    res = resources(ctx)
    inp = ctx.input if isinstance(ctx.input, dict) else {}
    model = str(inp.get("model") or s.model)
    extra: dict[str, Any] = {}
    if "max_tokens" in inp:
        extra["max_tokens"] = int(inp["max_tokens"])
    if "temperature" in inp:
        extra["temperature"] = float(inp["temperature"])
    # One dict of arguments: the SDK's per-message TypedDicts differ between its versions.
    request = {"model": model, "messages": messages(ctx), **extra}
    call = _stream if inp.get("stream", True) is not False else _whole
    result: dict[str, Any] = await ctx.step("completion", call, ctx, res, request)
    return result


async def _whole(ctx: AgentContext, res: LLMResources, request: dict[str, Any]) -> dict[str, Any]:
    import openai

    async with res.limit:
        await ctx.progress(0.1, f"calling {request['model']}")
        try:
            reply = await res.client.chat.completions.create(**request)
        except openai.OpenAIError as exc:
            raise _classify(exc, ctx.settings.llm.base_url, request["model"]) from None
    if reply.usage is not None:
        await ctx.report_usage(tokens=int(reply.usage.total_tokens or 0))
    choice = reply.choices[0] if reply.choices else None
    text = (choice.message.content or "") if choice else ""
    await ctx.emit(text)
    return {
        "text": text,
        "model": reply.model or request["model"],
        "finish_reason": choice.finish_reason if choice else None,
        "usage": _usage(reply.usage),
    }


async def _stream(ctx: AgentContext, res: LLMResources, request: dict[str, Any]) -> dict[str, Any]:
    import openai

    parts: list[str] = []
    finish, usage, model = None, None, request["model"]
    async with res.limit:
        await ctx.progress(0.1, f"calling {model}")
        try:
            stream = await res.client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True}
            )
            async with stream:  # closed (the request aborted) when the agent is cancelled
                async for chunk in stream:
                    model = chunk.model or model
                    usage = chunk.usage or usage
                    for choice in chunk.choices[:1]:
                        token = choice.delta.content if choice.delta else None
                        if token:
                            parts.append(token)
                            await ctx.emit(token)
                        finish = choice.finish_reason or finish
        except openai.OpenAIError as exc:
            raise _classify(exc, ctx.settings.llm.base_url, request["model"]) from None
    if usage is not None:
        await ctx.report_usage(tokens=int(usage.total_tokens or 0))
    return {"text": "".join(parts), "model": model, "finish_reason": finish, "usage": _usage(usage)}
