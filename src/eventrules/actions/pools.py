"""Webhook connections pooled per destination: (scheme, host name, port, vetted address).

The executor connects to a vetted IP address and names the host in SNI and ``Host``. httpx pools
connections by the URL's origin, which is then the IP: a connection opened (and its certificate
verified) for ``evil.test`` would be reused for ``victim.test`` on the same address, carrying
the victim's signed body to whoever holds evil.test's certificate. Here each host name gets pools
of its own, so every connection's certificate was verified for the host it carries requests for.
"""

from __future__ import annotations

import ssl
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Final, cast

import certifi
import httpx

__all__ = ["DestinationPools", "tls_context"]

_MAX_DESTINATIONS: Final = 256
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Destination = tuple[str, str, int, str]


def tls_context(ca_location: str | None = None) -> ssl.SSLContext:
    """Certificate and host name verification against ``ca_location`` (default: certifi)."""
    context = ssl.create_default_context(cafile=ca_location or certifi.where())
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class DestinationPools(httpx.AsyncBaseTransport):
    """Routes each request to the pool of its destination; at most ``max_destinations`` pools
    are kept, the least recently used idle one closed first."""

    def __init__(
        self,
        *,
        context: ssl.SSLContext | None = None,
        max_destinations: int = _MAX_DESTINATIONS,
        limits: httpx.Limits | None = None,
    ) -> None:
        self._context = context or tls_context()
        self._max = max_destinations
        self._limits = limits or httpx.Limits(max_connections=20, max_keepalive_connections=5)
        self._pools: OrderedDict[Destination, httpx.AsyncHTTPTransport] = OrderedDict()
        self._in_flight: dict[Destination, int] = {}

    @staticmethod
    def destination(request: httpx.Request) -> Destination:
        """The host name the request is for (its SNI when it names one) and where it goes."""
        url = request.url
        sni = request.extensions.get("sni_hostname")
        name = sni if isinstance(sni, str) and sni else url.host
        port = url.port or _DEFAULT_PORTS.get(url.scheme, 0)
        return url.scheme, name.lower(), port, url.host

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = self.destination(request)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(
                verify=self._context, limits=self._limits, trust_env=False
            )
            await self._evict()
        self._pools.move_to_end(key)
        self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            response = await pool.handle_async_request(request)
        except BaseException:
            self._in_flight[key] -= 1
            raise
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Released(cast(httpx.AsyncByteStream, response.stream), self, key),
            extensions=response.extensions,
        )

    def _released(self, key: Destination) -> None:
        self._in_flight[key] -= 1

    async def _evict(self) -> None:
        # only idle pools: closing one would break a response still being read
        for key in list(self._pools):
            if len(self._pools) <= self._max:
                return
            if self._in_flight.get(key, 0) == 0:
                self._in_flight.pop(key, None)
                await self._pools.pop(key).aclose()

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.aclose()

    def __len__(self) -> int:
        return len(self._pools)


class _Released(httpx.AsyncByteStream):
    """A response body that tells the pools when it is done with (read or closed)."""

    def __init__(self, inner: httpx.AsyncByteStream, pools: DestinationPools, key: Destination):
        self._inner = inner
        self._pools = pools
        self._key: Destination | None = key

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if self._key is not None:
                self._pools._released(self._key)
                self._key = None
