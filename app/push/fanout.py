"""Sending a batch over a pool of streams: ``workers`` coroutines take items in turn."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence


async def in_order(send: Callable[..., Awaitable], items: Sequence[tuple], workers: int
                   ) -> list:
    """``await send(*item)`` for every item, at most ``workers`` at once; results in item
    order."""
    results: list = [None] * len(items)
    indexes = iter(range(len(items)))

    async def worker():
        for index in indexes:
            results[index] = await send(*items[index])

    await asyncio.gather(*(worker() for _ in range(min(len(items), workers))))
    return results
