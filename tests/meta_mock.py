"""aioresponses standing in for Meta, made to work with aiohttp 3.14.

aioresponses 0.7.9 builds responses without the ``stream_writer`` argument that aiohttp 3.14
requires (pnuckowski/aioresponses#289, fix pending in #288): a response class that supplies
a stub until a fixed release is out.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aioresponses import aioresponses
from yarl import URL


class _NoStreamWriter:
    output_size = 0


class _CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoStreamWriter())
        super().__init__(method, url, **kwargs)


class MetaMock(aioresponses):
    def add(self, url: Any, method: str = "GET", **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("response_class", _CompatResponse)
        super().add(url, method, **kwargs)
