"""A local webhook receiver for the push benchmark: answers 204 to every POST, on any
path, over HTTP/1.1 keep-alive (aiohttp.web); prints ``{"url": …}`` once it listens.

POSTs to ``/receipts`` are read as receipt batches and counted: ``GET /stats`` answers the
batches and events received, the distinct delivery ids among them, the batches seen again
(the same ``webhook-id``), the span from the first batch to the last, and the lag from each
event's outcome (its ``at``) to its arrival, p50 and p99.

    .venv/bin/python -m bench.webhook_sink
"""

import asyncio
import json
import socket
import sys
import time
from datetime import datetime

from aiohttp import web


class Receipts:
    def __init__(self):
        self.batches = 0
        self.batch_ids: set[str] = set()
        self.repeated = 0
        self.delivery_ids: set[str] = set()
        self.events = 0
        self.lags: list[float] = []
        self.first = self.last = None

    def take(self, webhook_id: str, body: dict) -> None:
        arrived = time.time()
        self.first = self.first or arrived
        self.last = arrived
        self.batches += 1
        self.repeated += webhook_id in self.batch_ids
        self.batch_ids.add(webhook_id)
        for event in body["events"]:
            self.events += 1
            self.delivery_ids.add(event["delivery_id"])
            self.lags.append(arrived - datetime.fromisoformat(event["at"]).timestamp())

    def stats(self) -> dict:
        lags = sorted(self.lags)
        return {"batches": self.batches, "events": self.events,
                "distinct_deliveries": len(self.delivery_ids), "repeated_batches": self.repeated,
                "span_s": (self.last - self.first) if self.first else 0.0,
                "lag_p50_s": _percentile(lags, 0.5), "lag_p99_s": _percentile(lags, 0.99),
                "lag_max_s": lags[-1] if lags else None}


def _percentile(values, fraction):
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else None


async def main():
    receipts = Receipts()

    async def answer(request):
        await request.read()
        return web.Response(status=204)

    async def receipt(request):
        receipts.take(request.headers["webhook-id"], await request.json())
        return web.Response(status=204)

    async def stats(request):
        return web.json_response(receipts.stats())

    application = web.Application()
    application.router.add_post("/receipts", receipt)
    application.router.add_get("/stats", stats)
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
