"""Benchmark the web server: how fast a warm ``POST /api/compose`` answers over real HTTP.

Starts ``emomusic serve``'s app with uvicorn on a free local port (in this process), then
times requests with httpx over TCP, the way the page or a script calls it:

* cold: the first compose (loads the checkpoint and the estimator);
* warm: ``--n`` composes of ``--bars`` bars with different seeds, one at a time: median, p90
  and max seconds from request to complete JSON answer (compose + MIDI and WAV written +
  attributes and emotion measured; MusicXML waits for its first download), and the CPU
  seconds the process spent per request (server and client share this process): on a
  shared machine the wall time mostly measures the other jobs, the CPU time does not;
* download: fetching the WAV the answer points to;
* parallel: ``--workers`` clients at once against ``--workers`` worker threads (seconds per
  request, wall time for the batch).

The target: a warm 8-bar compose answers in under 1 s on a laptop CPU. Prints a Markdown
table (``--json`` for a machine-readable result)::

    python benchmarks/web.py
    python benchmarks/web.py --bars 16 --n 30 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=8)
    ap.add_argument("--n", type=int, default=20, help="warm requests to time")
    ap.add_argument("--workers", type=int, default=2, help="worker threads (and parallel clients)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import httpx
    import uvicorn

    from emomusic.web.config import Settings
    from emomusic.web.main import create_app

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="emomusic-bench-web-") as work:
        app = create_app(Settings(port=port, workers=args.workers, work_dir=work, max_queue=64))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        t = threading.Thread(target=server.run, daemon=True)
        t.start()
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=120) as c:
                cpu: list[float] = []

                def compose(seed: int) -> tuple[float, dict]:
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = c.post("/api/compose", json={"valence": 0.6, "arousal": -0.4, "bars": args.bars, "seed": seed})
                    dt = time.perf_counter() - t0
                    cpu.append(time.process_time() - c0)
                    r.raise_for_status()
                    return dt, r.json()

                cold, _ = compose(10_000)
                compose(10_001)  # second warm-up (first-call caches in the writers)
                warm = []
                cpu.clear()
                last = None
                for i in range(args.n):
                    dt, last = compose(i)
                    warm.append(dt)
                t0 = time.perf_counter()
                wav = c.get(last["files"]["wav"])
                dl = time.perf_counter() - t0
                wav.raise_for_status()

            per_request: list[float] = []

            def client(seed: int) -> None:
                with httpx.Client(base_url=base, timeout=120) as cc:
                    t0 = time.perf_counter()
                    cc.post("/api/compose", json={"valence": -0.5, "arousal": 0.5, "bars": args.bars, "seed": seed}).raise_for_status()
                    per_request.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client, args=(100 + k,)) for k in range(args.workers)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            batch = time.perf_counter() - t0
        finally:
            server.should_exit = True
            t.join(30)

    warm.sort()
    result = {
        "bars": args.bars, "n": args.n, "workers": args.workers, "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2), "cold_s": round(cold, 3),
        "warm_median_s": round(statistics.median(warm), 3), "warm_p90_s": round(warm[int(0.9 * (len(warm) - 1))], 3),
        "warm_max_s": round(warm[-1], 3), "warm_cpu_median_s": round(statistics.median(cpu), 3), "wav_download_s": round(dl, 4), "wav_bytes": len(wav.content),
        "parallel_per_request_s": round(statistics.median(per_request), 3), "parallel_batch_s": round(batch, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"| `POST /api/compose`, {args.bars} bars ({result['cores']} cores, load {result['load_avg_1min']:.1f}, "
              f"{args.workers} workers) | seconds |")
        print("|---|---|")
        print(f"| cold (first request: loads checkpoint + estimator) | {result['cold_s']:.2f} |")
        print(f"| warm, median of {args.n} | **{result['warm_median_s']:.2f}** |")
        print(f"| warm, p90 / max | {result['warm_p90_s']:.2f} / {result['warm_max_s']:.2f} |")
        print(f"| warm, CPU seconds per request (median) | {result['warm_cpu_median_s']:.2f} |")
        print(f"| WAV download ({result['wav_bytes'] / 1e6:.1f} MB) | {result['wav_download_s']:.3f} |")
        print(f"| {args.workers} clients at once: per request (median) / whole batch | "
              f"{result['parallel_per_request_s']:.2f} / {result['parallel_batch_s']:.2f} |")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
