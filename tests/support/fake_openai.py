"""A local OpenAI-compatible stand-in: a real HTTP server on a free port.

    with fake_openai() as fake:
        fake.script(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="hello"))
        ... AsyncOpenAI(base_url=fake.base_url, api_key="k") ...
        fake.requests  # what arrived, with arrival times

Unscripted requests get a default completion that echoes the last user message. Reusable by
any test that needs an LLM endpoint (the llm agent, the llm planner).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hiveq.server import free_port


@dataclass
class Reply:
    status: int = 200
    text: str | None = None  # completion text; None: echo the prompt
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer this late (a slow server, for timeouts)
    body: dict[str, Any] | None = None  # full JSON body, overrides `text`
    usage: tuple[int, int] = (11, 7)  # prompt, completion tokens


@dataclass
class Seen:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any


class FakeOpenAI:
    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[Seen] = []
        self._script: list[Reply] = []
        self.in_flight = 0
        self.max_in_flight = 0  # the most requests served at the same time
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else Reply()

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = json.loads(raw or b"null")
                with fake._lock:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    fake.requests.append(Seen(time.monotonic(), self.path, headers, body))
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    reply = fake._next()
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    self._answer(reply, body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

            def _answer(self, reply: Reply, body: Any) -> None:
                if reply.body is not None:
                    payload = reply.body
                elif reply.status != 200:
                    payload = {"error": {"message": f"scripted {reply.status}", "type": "scripted"}}
                else:
                    payload = completion(reply, body)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def completion(reply: Reply, body: Any) -> dict[str, Any]:
    msgs = (body or {}).get("messages") or [{}]
    text = reply.text if reply.text is not None else "echo: " + str(msgs[-1].get("content", ""))[:200]
    p, c = reply.usage
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": (body or {}).get("model", "fake-model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()
