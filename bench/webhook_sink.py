"""A local webhook receiver for the push benchmark: answers 204 to every POST, on any
path, over HTTP/1.1 keep-alive (aiohttp.web); prints ``{"url": …}`` once it listens.

    .venv/bin/python -m bench.webhook_sink
"""

import asyncio
import json
import socket
import sys

from aiohttp import web


async def answer(request):
    await request.read()
    return web.Response(status=204)


async def main():
    application = web.Application()
    application.router.add_post("/{tail:.*}", answer)
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(json.dumps({"url": f"http://127.0.0.1:{port}"}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
