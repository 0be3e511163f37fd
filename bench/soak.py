"""`make bench`, last part: is the memory of web and worker flat over a 10-minute run?

Runs the pipeline at a steady 500 events/s (BENCH_SOAK_RATE) for 10 minutes
(BENCH_SOAK_MINUTES), samples each process tree's resident memory every 30 s, then checks
that every accepted event was stored once. The first minute is warm-up (pools, caches,
allocator arenas fill); "growth" is the last sample against the one at one minute.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from bench.pipeline import APP_ID, bench_environment, pipeline, tree_rss_mb
from lvd import loadtest

MINUTES = float(os.environ.get("BENCH_SOAK_MINUTES", "10"))
RATE = float(os.environ.get("BENCH_SOAK_RATE", "500"))
SAMPLE_SECONDS = 30.0
WARM_UP_SECONDS = 60.0


def main() -> None:
    with (
        bench_environment() as (env, database_url, logs),
        pipeline(env, logs) as (
            url,
            worker,
            web,
        ),
    ):
        samples: list[tuple[float, float, float]] = []
        stop = threading.Event()

        def sample() -> None:
            started = time.monotonic()
            while True:
                elapsed = time.monotonic() - started
                samples.append((elapsed, tree_rss_mb(web.pid), tree_rss_mb(worker.pid)))
                print(
                    f"  {elapsed:5.0f} s: web {samples[-1][1]:.1f} MiB,"
                    f" worker {samples[-1][2]:.1f} MiB",
                    flush=True,
                )
                if stop.wait(SAMPLE_SECONDS):
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        report = asyncio.run(
            loadtest.send_load(url, APP_ID, RATE, MINUTES * 60, progress=False, connections=64)
        )
        stop.set()
        sampler.join()
        samples.append((MINUTES * 60, tree_rss_mb(web.pid), tree_rss_mb(worker.pid)))
        asyncio.run(loadtest.verify_storage(report, database_url, APP_ID, drain_limit=120))
        summary = report.summary()

    warm = next((s for s in samples if s[0] >= WARM_UP_SECONDS), samples[-1])
    last = samples[-1]
    print("\n" + "=" * 100)
    print(f"soak: {RATE:.0f} events/s for {MINUTES:g} min, memory sampled every 30 s")
    for index, name in ((1, "web"), (2, "worker")):
        values = [s[index] for s in samples]
        print(
            f"{name:<7} start {values[0]:.1f} MiB, at 1 min {warm[index]:.1f} MiB,"
            f" end {last[index]:.1f} MiB, max {max(values):.1f} MiB,"
            f" growth after warm-up {last[index] - warm[index]:+.1f} MiB"
        )
    latency = summary["latency_ms"]
    print(
        f"requests {summary['responses']}, answers {summary['status_counts']},"
        f" p50 {latency['p50']} ms, p99 {latency['p99']} ms;"
        f" stored once {summary['stored_once']}, lost {summary['lost']},"
        f" doubled {summary['doubled']}"
    )


if __name__ == "__main__":
    main()
