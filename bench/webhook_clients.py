"""Signed webhook POSTs per second to a local receiver, through aiohttp and through httpx:
the measurement behind the webhook transport's client (app/push/webhook.py).

    .venv/bin/python bench/webhook_clients.py [--requests 5000] [--concurrency 100]

The receiver (aiohttp.web, answering 204) runs in its own process; each client keeps its
connections alive (HTTP/1.1) and signs each body as the transport does.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import time

import aiohttp
import httpx
from aiohttp import web

from app.push.webhook import new_signing_secret, signed_headers


def serve(port: int):
    async def hook(request):
        await request.read()
        return web.Response(status=204)

    application = web.Application()
    application.router.add_post("/hook", hook)
    web.run_app(application, host="127.0.0.1", port=port, print=None, access_log=None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bodies(count: int):
    secret = new_signing_secret()
    for index in range(count):
        delivery_id = f"00000000-0000-4000-8000-{index:012d}"
        payload = json.dumps({"type": "notification", "delivery_id": delivery_id,
                              "title": "Hi", "body": "Your order shipped", "data": {}})
        yield payload.encode(), signed_headers(secret, delivery_id, payload, time.time())


async def run_aiohttp(url, items, concurrency):
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def post(body, headers):
            async with session.post(url, data=body, headers=headers,
                                    allow_redirects=False) as response:
                await response.read()
                return response.status
        return await in_parallel(post, items, concurrency)


async def run_httpx(url, items, concurrency):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, follow_redirects=False) as client:
        async def post(body, headers):
            response = await client.post(url, content=body, headers=headers)
            return response.status_code
        return await in_parallel(post, items, concurrency)


async def in_parallel(post, items, concurrency):
    queue = iter(items)
    statuses = []

    async def lane():
        for body, headers in queue:
            statuses.append(await post(body, headers))

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return statuses


def measure(name, runner, url, count, concurrency):
    items = list(bodies(count))
    started = time.perf_counter()
    statuses = asyncio.run(runner(url, items, concurrency))
    elapsed = time.perf_counter() - started
    assert statuses.count(204) == count, set(statuses)
    print(f"{name:8} {count / elapsed:8.0f} POST/s  ({count} in {elapsed:.2f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    receiver = multiprocessing.Process(target=serve, args=(port,), daemon=True)
    receiver.start()
    time.sleep(1.0)
    url = f"http://127.0.0.1:{port}/hook"
    try:
        for name, runner in (("aiohttp", run_aiohttp), ("httpx", run_httpx)):
            measure(name, runner, url, args.requests, args.concurrency)
    finally:
        receiver.terminate()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
