"""A local OpenAI-compatible stand-in: a real HTTP server on a free port.

    with fake_openai() as fake:
        fake.script(Reply(status=429, headers={"Retry-After": "1"}), Reply(text="hello"))
        ... AsyncOpenAI(base_url=fake.base_url, api_key="k") ...
        fake.requests  # what arrived, with arrival times

Unscripted requests get a default completion that echoes the last user message. A request with
`"stream": true` is answered as the OpenAI API streams (server-sent `chat.completion.chunk`s, one
per word, `stream_delay_s` apart, the usage last when `stream_options.include_usage`, then
`[DONE]`); a client that hangs up mid-stream is noticed at once (`fake.disconnects`). Reusable
by any test that needs an LLM endpoint (the llm agent, the llm planner).
"""

from __future__ import annotations

import json
import select
import socket
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
    stream_delay_s: float = 0.0  # between streamed chunks (a slow model)


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
        self.chunks_sent = 0  # streamed chunks written so far, all requests
        self.disconnects: list[float] = []  # time.monotonic() when a client hung up mid-stream
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
        handler = type("BoundHandler", (Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Handler(BaseHTTPRequestHandler):
    """One request to the stand-in; `fake` is the FakeOpenAI it reports to."""

    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"null")
        with self.fake._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.fake.requests.append(Seen(time.monotonic(), self.path, headers, body))
            self.fake.in_flight += 1
            self.fake.max_in_flight = max(self.fake.max_in_flight, self.fake.in_flight)
        try:
            reply = self.fake._next()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            self._answer(reply, body)
        finally:
            with self.fake._lock:
                self.fake.in_flight -= 1

    def _answer(self, reply: Reply, body: Any) -> None:
        if reply.status == 200 and reply.body is None and (body or {}).get("stream"):
            self._stream(reply, body)
            return
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

    def _stream(self, reply: Reply, body: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for i, data in enumerate(stream_chunks(reply, body)):
                if i and reply.stream_delay_s and self._hung_up(reply.stream_delay_s):
                    return
                raw = f"data: {json.dumps(data)}\n\n".encode() if data else b"data: [DONE]\n\n"
                self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
                self.wfile.flush()
                with self.fake._lock:
                    self.fake.chunks_sent += 1
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self._noted_hang_up()

    def _hung_up(self, wait_s: float) -> bool:
        """Wait `wait_s`, but notice at once when the client closes the connection."""
        readable, _, _ = select.select([self.connection], [], [], wait_s)
        if readable:
            try:
                closed = self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                closed = True
            if closed:
                self._noted_hang_up()
                return True
        return False

    def _noted_hang_up(self) -> None:
        with self.fake._lock:
            self.fake.disconnects.append(time.monotonic())
        self.close_connection = True


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


def stream_chunks(reply: Reply, body: Any) -> list[dict[str, Any] | None]:
    """The streamed form of `completion`: one chunk per word, then finish, usage and [DONE] (None)."""
    whole = completion(reply, body)
    text = whole["choices"][0]["message"]["content"]
    words = [w + " " for w in text.split(" ")]
    words[-1] = words[-1][:-1]
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": whole["created"]}
    base["model"] = whole["model"]

    def piece(delta: dict[str, str], finish: str | None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out: list[dict[str, Any] | None] = [piece({"role": "assistant", "content": w}, None) for w in words]
    out.append(piece({}, "stop"))
    if ((body or {}).get("stream_options") or {}).get("include_usage"):
        out.append({**base, "choices": [], "usage": whole["usage"]})
    out.append(None)
    return out


@contextmanager
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()
