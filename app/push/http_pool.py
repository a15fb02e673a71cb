"""The one ``aiohttp`` session (a keep-alive pool) an HTTP/1.1 transport keeps for its life:
made at its first request, closed with the transport (``async with``)."""

import aiohttp


class PooledHttp:
    """A transport's session: subclasses say how it is made (``_new_session``)."""

    _session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        raise NotImplementedError

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._new_session()
        return self._session

    async def close(self):
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        await self.close()
