"""The /ui run page under long runs, in Debian's Chromium (headless, via Playwright).

1. Time to first paint of the run page of a finished 10,000-event run, opened cold (a new
   tab, the token already in sessionStorage): first contentful paint, the moment the run's
   header shows, and the moment the whole log is replayed and drawn (the last sequence
   number applied). Baseline in the same run: a 100-event run. Median of --runs.
2. Memory after following a long run live: JS heap (after a forced GC) and DOM nodes, and
   the browser's total RSS, before and after following a run that streams for
   --follow-seconds (the issue asks for 30 minutes; the default here is 180 s, scaled down
   to fit a 2-core machine shared with other jobs — the growth per 1,000 events is what
   extrapolates).

    PYTHONPATH=src .venv/bin/python -m bench.ui_bench [--runs 5] [--follow-seconds 180]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psutil  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from tests.fakes.hub import FakeHub  # noqa: E402
from tests.fakes.llm import FakeLLM, Reply  # noqa: E402
from tests.harness import ServerProcess, wait_status  # noqa: E402
from tests.ui_support import CHROMIUM, CHROMIUM_ARGS  # noqa: E402


def make_run(client: httpx.Client, llm: FakeLLM, deltas: int, delay: float = 0.0) -> tuple[str, int]:
    """A run whose answer arrives in `deltas` text deltas (one event each)."""
    words = [f"w{i} " + ("\n\n" if i % 40 == 39 else "") for i in range(deltas)]
    llm.push(Reply(text="".join(words), chunks=deltas, chunk_delay=delay))
    rid = client.post("/v1/responses", json={"input": "long run", "background": True}).json()["id"]
    return rid, deltas


def last_seq(client: httpx.Client, rid: str) -> int:
    text = client.get(f"/v1/responses/{rid}/events").text
    return max(int(line[4:]) for line in text.splitlines() if line.startswith("id: "))


def open_run(browser, base: str, token: str, rid: str, final_seq: int) -> dict[str, float]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('mlagent.hfToken', {token!r})")
    page = context.new_page()
    page.set_default_timeout(120_000)
    start = time.perf_counter()
    page.goto(f"{base}/ui/#/runs/{rid}")
    page.locator("[data-status]").wait_for()
    header = time.perf_counter() - start
    page.locator(f"main[data-last-seq='{final_seq}'][data-conn='ended']").wait_for(state="attached")
    page.locator("[data-status='completed']").wait_for()
    replayed = time.perf_counter() - start
    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {startTime: NaN}).startTime")
    context.close()
    return {"fcp_ms": fcp, "header_ms": header * 1000, "replayed_ms": replayed * 1000}


def browser_rss(pid: int) -> float:
    proc = psutil.Process(pid)
    procs = [proc, *proc.children(recursive=True)]
    return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20


def heap(page, cdp) -> dict[str, float]:
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {"js_heap_mb": metrics["JSHeapUsedSize"] / 2**20, "dom_nodes": metrics["Nodes"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events", type=int, default=12_000, help="text deltas of the big run (the fake LLM merges some: 10,000+ events)")
    ap.add_argument("--follow-seconds", type=float, default=180)
    args = ap.parse_args()

    llm, hub = FakeLLM().start(), FakeHub().start()
    data = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    server = ServerProcess(data, {"HF_ENDPOINT": hub.url, "MLAGENT_INFERENCE_BASE_URL": llm.url,
                                  "MLAGENT_LLM_MAX_RETRIES": "0", "MLAGENT_LOG_LEVEL": "warning"}).start(timeout=120)
    token = hub.user_token("bench")
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
            runs = {}
            for n in (100, args.events):
                rid, _ = make_run(c, llm, n)
                assert wait_status(c, rid, {"completed"}, timeout=300)["status"] == "completed"
                runs[n] = (rid, last_seq(c, rid))
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                results: dict[int, list[dict[str, float]]] = {n: [] for n in runs}
                open_run(browser, server.url, token, *runs[100])  # warm-up (server caches, browser start)
                for _ in range(args.runs):
                    for n, (rid, seq) in runs.items():
                        results[n].append(open_run(browser, server.url, token, rid, seq))
                print(f"run page, cold open, median of {args.runs} (events = the run's whole log):")
                for n, (_rid, seq) in runs.items():
                    med = {k: statistics.median(r[k] for r in results[n]) for k in results[n][0]}
                    print(f"  {seq + 1:>6} events: first contentful paint {med['fcp_ms']:.0f} ms, "
                          f"header shown {med['header_ms']:.0f} ms, whole log replayed and drawn {med['replayed_ms']:.0f} ms")
                big = statistics.median(r["replayed_ms"] for r in results[args.events])
                small = statistics.median(r["replayed_ms"] for r in results[100])
                print(f"  replay ratio {args.events}-event run / 100-event run: {big / small:.1f}x")

                if args.follow_seconds <= 0:
                    browser.close()
                    return
                # Follow a long run live.
                delay = 0.05
                deltas = int(args.follow_seconds / delay)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(f"sessionStorage.setItem('mlagent.hfToken', {token!r})")
                page = context.new_page()
                page.set_default_timeout(int(args.follow_seconds * 1000 * 3 + 60_000))
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                rid, _ = make_run(c, llm, deltas, delay)
                page.goto(f"{server.url}/ui/#/runs/{rid}")
                page.locator("main[data-conn='live']").wait_for(state="attached")
                before, rss_before = heap(page, cdp), browser_rss(browser_pid())
                started = time.perf_counter()
                page.locator("[data-status='completed']").wait_for(timeout=args.follow_seconds * 3000 + 60_000)
                followed = time.perf_counter() - started
                seq = last_seq(c, rid)
                page.locator(f"main[data-last-seq='{seq}']").wait_for(state="attached")
                after, rss_after = heap(page, cdp), browser_rss(browser_pid())
                print(f"following a live run for {followed:.0f} s ({seq + 1} events, {deltas} text deltas at "
                      f"{1 / delay:.0f}/s; scaled down from the issue's 30 minutes):")
                print(f"  JS heap {before['js_heap_mb']:.1f} -> {after['js_heap_mb']:.1f} MiB, DOM nodes "
                      f"{before['dom_nodes']:.0f} -> {after['dom_nodes']:.0f}, browser RSS (all processes) "
                      f"{rss_before:.0f} -> {rss_after:.0f} MiB")
                growth = (after["js_heap_mb"] - before["js_heap_mb"]) / max(1, seq) * 1000
                print(f"  JS heap growth {growth:.3f} MiB per 1,000 events")
                context.close()
                browser.close()
    finally:
        server.stop()
        llm.stop()
        hub.stop()


def browser_pid() -> int:
    """Chromium's main process: the newest `chromium` child of this process tree."""
    me = psutil.Process()
    found = [p for p in me.children(recursive=True) if "chrom" in p.name() and "--type=" not in " ".join(p.cmdline())]
    return max(found, key=lambda p: p.create_time()).pid


if __name__ == "__main__":
    main()
