"""An in-memory transport for driving an HTTP protocol object in tests without a socket."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MemoryTransport"]


class MemoryTransport(asyncio.Transport):
    """An open connection from 127.0.0.1:40000 to 127.0.0.1:8000 whose writes are kept in memory, in
    order, in ``written`` (one item per ``write`` call); ``close()`` only marks it closing."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass
