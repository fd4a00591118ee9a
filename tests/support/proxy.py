"""A TCP proxy in front of a real Redis that can lose a reply, to reproduce "the connection broke
after the command was sent": armed with a command name, it forwards that command to the server
(which runs it), then cuts the client's connection instead of passing the answer back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class ReplyCutter:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.armed: bytes | None = None  # the RESP bulk string of the command whose reply is lost
        self.cut = asyncio.Event()  # set once a reply was lost
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self, command: str) -> None:
        self.armed = f"${len(command)}\r\n{command}\r\n".encode()
        self.cut.clear()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        lose_reply = asyncio.Event()

        async def up() -> None:
            while data := await client_r.read(65536):
                if self.armed is not None and self.armed in data.upper():
                    self.armed = None
                    lose_reply.set()
                server_w.write(data)
                await server_w.drain()

        async def down() -> None:
            while data := await server_r.read(65536):
                if lose_reply.is_set():  # the server ran the command; its answer never arrives
                    client_w.transport.abort()
                    self.cut.set()
                    return
                client_w.write(data)
                await client_w.drain()

        pipes = [asyncio.create_task(up()), asyncio.create_task(down())]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for w in (client_w, server_w):
                w.close()

    def _track(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._handle(client_r, client_w))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ReplyCutter]:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"
