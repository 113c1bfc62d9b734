"""A TCP proxy between a worker and Redis that a test can cut: an asyncio server in a
thread of the test process.

* ``stall()``: a partition that heals. Bytes in flight stop in both directions and new
  connections wait; ``restore()`` lets everything through again, as TCP does when a
  link comes back before its retransmissions give up.
* ``drop()``: a partition that breaks connections. Every open connection is reset and
  new ones are closed at once, until ``restore()``.
"""

from __future__ import annotations

import asyncio
import threading

from cato_mq.fleet import launch

CHUNK = 65_536


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = launch.free_port()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._dropping = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._start())
        return self

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def _call(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._dropping:
            writer.transport.abort()
            return
        await self._flowing.wait()  # stalled: the connect hangs like a SYN into a dead link
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        self._writers -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()

    def stall(self) -> None:
        self._call(self._set(flowing=False, dropping=False))

    def drop(self) -> None:
        self._call(self._set(flowing=True, dropping=True))

    def restore(self) -> None:
        self._call(self._set(flowing=True, dropping=False))

    async def _set(self, flowing: bool, dropping: bool) -> None:
        self._dropping = dropping
        if dropping:
            for w in list(self._writers):
                w.transport.abort()  # a reset, as a broken link's next send gets
        (self._flowing.set if flowing else self._flowing.clear)()

    def close(self) -> None:
        async def stop() -> None:
            await self._set(flowing=True, dropping=True)
            if self._server is not None:
                self._server.close()

        self._call(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
