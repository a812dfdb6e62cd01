"""A retrain and a model swap under load, optionally with the API killed (``make bench-swap``).

Run as ``python -m tests.bench.swap [options]`` on an otherwise idle machine (see
``tests/bench/README.md``).

Set-up: a GRU4Rec trained on the dataset's train part is active; the service
runs on Redis (``nextitem-server serve``, one uvicorn worker) with
``nextitem-server worker`` beside it; the event log is preloaded with real
visits. Then ``tests.bench.loadgen`` replays
real visits for ``--seconds`` (click, recommendations, click...), and at
``--retrain-at`` seconds an admin asks for a retrain through the API. The
record says how many requests were sent and failed, latency before / during /
after the swap (the swap is the first answer from the new model), and, with
``--kill-at``, the API process is killed with SIGKILL, restarted, and the
events the service acknowledged are compared with the events in the log.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from tests.bench.program import program, run
from tests.bench.service import Server, free_port, start_worker
from training.report import environment, write_json

console = Console()
app = program()


def _visits(dataset: str, n: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """(visits to replay under load, visits to preload the log with), from the test part."""
    from training.data import load_dataset

    ds = load_dataset(dataset)
    test = ds.parts["test"]
    order = np.random.default_rng(seed).permutation(test.n_sessions)
    ids = ds.items.ids.astype(str)
    visits = [ids[test.session(int(s))].tolist() for s in order]
    n = min(n, len(visits) // 2)
    return visits[:n], visits[n:]


def _preload(url: str, visits: list[list[str]]) -> int:
    import httpx

    events = [
        {"session_id": f"pre{i}", "item_id": item}
        for i, clicks in enumerate(visits)
        for item in clicks
    ]
    with httpx.Client(base_url=url, timeout=60) as c:
        for lo in range(0, len(events), 1000):
            r = c.post("/v1/events/batch", json={"events": events[lo : lo + 1000]})
            r.raise_for_status()
    return len(events)


def _phase(samples: dict[str, np.ndarray], mask: np.ndarray, seconds: float) -> dict[str, Any]:
    lat = samples["latency"][mask] * 1e3
    ok = (samples["status"][mask] >= 200) & (samples["status"][mask] < 300)
    out: dict[str, Any] = {"requests": int(mask.sum()), "failed": int((~ok).sum())}
    if mask.any():
        out["rps"] = round(float(mask.sum() / max(seconds, 1e-9)), 1)
        for kind_i, kind in enumerate(("event", "rec")):
            k = samples["kind"][mask] == kind_i
            if k.any():
                out[f"{kind}_p50_ms"] = round(float(np.percentile(lat[k], 50)), 2)
                out[f"{kind}_p99_ms"] = round(float(np.percentile(lat[k], 99)), 2)
    return out


def _logged_event_ids(client: Any, prefix: str, model_dir: Path) -> set[str]:
    """Event ids of the load's clicks in the log: its archive (what retrains moved) + stream."""
    import pandas as pd

    from app.events.archive import EventArchive
    from app.events.log import stream_key
    from app.events.snapshot import read_stream

    parts = [
        EventArchive(model_dir / "event-archive").read(),
        read_stream(client, stream_key(prefix)),
    ]
    ids = pd.concat([p["event_id"] for p in parts if p is not None]).dropna()
    return {e for e in ids if e.startswith("lg")}


def _plot(samples: dict[str, np.ndarray], marks: dict[str, float], t0: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = samples["start"] - t0
    second = np.floor(t).astype(int)
    n = int(second.max()) + 1 if len(second) else 0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), dpi=100, sharex=True)
    for kind_i, kind in enumerate(("event", "rec")):
        k = samples["kind"] == kind_i
        p99 = [
            np.percentile(samples["latency"][k & (second == s)] * 1e3, 99)
            if (k & (second == s)).any()
            else np.nan
            for s in range(n)
        ]
        ax1.plot(np.arange(n) + 0.5, p99, label=f"{kind} p99")
    ok = (samples["status"] >= 200) & (samples["status"] < 300)
    ax2.plot(np.arange(n) + 0.5, np.bincount(second[ok], minlength=n), label="answered / s")
    ax2.plot(np.arange(n) + 0.5, np.bincount(second[~ok], minlength=n), label="failed / s")
    for name, at in marks.items():
        for ax in (ax1, ax2):
            ax.axvline(at - t0, color="grey", ls=":", lw=1)
        ax1.text(at - t0, ax1.get_ylim()[1] * 0.95, name, rotation=90, va="top", fontsize=8)
    ax1.set_ylabel("latency p99 (ms), per second")
    ax1.set_yscale("log")
    ax2.set_ylabel("requests per second")
    ax2.set_xlabel("seconds into the run")
    ax1.legend(loc="upper right")
    ax2.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@app.command()
def bench_swap(
    dataset: str = typer.Option("yoochoose-100k", help="catalog, first model and replayed visits"),
    seconds: int = typer.Option(60, min=10, help="duration of the load"),
    connections: int = typer.Option(32, min=1, help="concurrent visitors"),
    retrain_at: float = typer.Option(15, help="second of the run at which the retrain is asked"),
    kill_at: float | None = typer.Option(
        None, help="SIGKILL the API process at this second, then restart it"
    ),
    preload: int = typer.Option(3000, min=10, help="visits logged before the run"),
    epochs: int = typer.Option(1, min=1, help="epochs of the first model and of the retrain"),
    redis_url: str = typer.Option("redis://127.0.0.1:6379/0"),
    out: Path = typer.Option(Path("runs/bench-swap"), help="result JSON, plot, models"),
    seed: int = typer.Option(0),
) -> None:
    """Requests sent and failed, and p99 before / during / after a hot swap under load."""
    import httpx
    import redis

    from training.gru4rec.export import DEFAULT_PARAMS, export_model
    from training.gru4rec.params import load_params

    label = f"{'kill' if kill_at is not None else 'swap'}-{time.strftime('%Y%m%dT%H%M%S')}"
    run_dir = out / label
    model_dir = run_dir / "models"
    console.print(f"training the first model on {dataset} ({epochs} epoch(s))")
    params = load_params(DEFAULT_PARAMS, {"n_epochs": epochs})
    first = export_model(dataset, model_dir, params, activate=True, progress=False).path.name
    replay, rest = _visits(dataset, 5000, seed)
    prefix = f"nextitem-bench:{uuid.uuid4().hex[:10]}"
    token = secrets.token_urlsafe(16)
    env = {
        "NEXTITEM_MODEL_DIR": str(model_dir),
        "NEXTITEM_REDIS_URL": redis_url,
        "NEXTITEM_KEY_PREFIX": prefix,
        "NEXTITEM_ADMIN_TOKEN": token,
        "NEXTITEM_TORCH_THREADS": "1",
        "NEXTITEM_SEARCH_THREADS": "1",
        "NEXTITEM_MODEL_POLL_SECONDS": "1",
    }
    auth = {"Authorization": f"Bearer {token}"}
    port = free_port()
    server = Server(env, port)
    worker = start_worker(env)
    client = redis.Redis.from_url(redis_url)
    marks: dict[str, float] = {}
    job: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="nextitem-swap-"))
    try:
        server.wait_ready()
        preloaded = _preload(server.url, rest[:preload])
        spec = {"url": server.url, "visits": replay, "seconds": seconds, "connections": connections}
        (tmp / "spec.json").write_text(json.dumps(spec))
        console.print(
            f"{preloaded:,} events preloaded; load for {seconds} s with {connections} visitors"
        )
        loadgen = [sys.executable, "-m", "tests.bench.loadgen", str(tmp / "spec.json")]
        load = subprocess.Popen([*loadgen, str(tmp / "s.npz")])
        t0 = time.time()
        with httpx.Client(base_url=server.url, timeout=30, headers=auth) as admin:
            events = sorted(
                [("retrain", retrain_at)] + ([("kill", kill_at)] if kill_at is not None else []),
                key=lambda e: e[1],
            )
            job_id = None
            for name, at in events:
                time.sleep(max(0.0, t0 + at - time.time()))
                if name == "retrain":
                    marks["retrain asked"] = time.time()
                    # gate_ratio 0: the gate is computed and recorded, but this run must swap
                    body = {"params": {"n_epochs": epochs}, "gate_ratio": 0.0}
                    job_id = admin.post("/admin/retrain", json=body)
                    job_id = job_id.json()["job_id"]
                else:
                    marks["API killed"] = time.time()
                    server.proc.kill()
                    server.proc.wait()
                    server = Server(env, port)
                    server.wait_ready()
                    marks["API back"] = time.time()
            while job_id and time.time() < t0 + seconds + 600:
                try:
                    job = admin.get(f"/admin/jobs/{job_id}").json()
                except httpx.HTTPError:
                    job = {}
                if job.get("state") in ("succeeded", "rejected", "failed"):
                    break
                time.sleep(0.5)
        load.wait()
        data = np.load(tmp / "s.npz")
        samples = {k: data[k] for k in ("start", "latency", "kind", "status", "version")}
        versions = data["versions"].tolist()
        acked = set(data["acked"].tolist())
        logged = _logged_event_ids(client, prefix, model_dir)
    finally:
        worker.terminate()
        server.stop()
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        keys += list(client.scan_iter(match=f"rq:*{prefix}*", count=1000))
        if job.get("job_id"):
            keys += [f"rq:job:{job['job_id']}", f"rq:results:{job['job_id']}"]
        if keys:
            client.delete(*keys)
        client.srem("rq:queues", f"rq:queue:{prefix}:retrain")

    new = job.get("version") if job.get("activated") else None
    is_new = samples["version"] == (versions.index(new) if new in versions else -2)
    swap_at = float(samples["start"][is_new].min()) if is_new.any() else None
    if job.get("activated"):
        marks["new model active"] = float(job["finished"])
    if swap_at is not None:
        marks["first answer of the new model"] = swap_at
    end = float(samples["start"].max())
    start = marks["retrain asked"]
    after = swap_at if swap_at is not None else end + 1  # no swap: nothing is "after"
    phases = {
        "before": _phase(samples, samples["start"] < start, start - t0),
        "during": _phase(
            samples,
            (samples["start"] >= start) & (samples["start"] < after),
            min(after, end) - start,
        ),
        "after": _phase(samples, samples["start"] >= after, max(end - after, 0.0)),
        "all": _phase(samples, np.ones(len(samples["start"]), bool), end - t0),
    }
    if "API killed" in marks:
        killed, back, start_t = marks["API killed"], marks["API back"], samples["start"]
        # requests sent while the API was down, and those in flight when it was killed
        cut = (start_t < killed) & (start_t + samples["latency"] >= killed)
        down = ((start_t >= killed) & (start_t < back)) | (cut & (samples["status"] == 0))
        phases["API down"] = _phase(samples, down, back - killed)
        ok = (samples["status"] >= 200) & (samples["status"] < 300)
        phases["all"]["failed_while_up"] = int((~ok & ~down).sum())
    old = samples["version"] == (versions.index(first) if first in versions else -2)
    old_after = int((old & (samples["start"] > after + 2)).sum())
    result: dict[str, Any] = {
        "benchmark": "swap under load",
        "dataset": dataset,
        "seconds": seconds,
        "connections": connections,
        "first_model": first,
        "job": {
            k: job.get(k) for k in ("job_id", "state", "version", "activated", "metrics", "error")
        },
        "phases": phases,
        "answers_from_old_model_2s_after_swap": old_after,
        "events": {
            "acknowledged": len(acked),
            "in_log": len(logged),
            "acknowledged_not_in_log": len(acked - logged),
            "in_log_not_acknowledged": len(logged - acked),
        },
        "marks": {k: round(v - t0, 3) for k, v in marks.items()},
        "environment": environment(),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "result.json", result)
    _plot(samples, marks, t0, run_dir / "latency.png")
    table = Table(title=f"hot swap under load ({label}): {dataset}, {connections} visitors")
    for col in ("phase", "requests", "failed", "rps", "event p99 ms", "rec p99 ms"):
        table.add_column(col, justify="right")
    for name, p in phases.items():
        table.add_row(
            name,
            f"{p['requests']:,}",
            str(p["failed"]),
            str(p.get("rps", "")),
            str(p.get("event_p99_ms", "")),
            str(p.get("rec_p99_ms", "")),
        )
    console.print(table)
    console.print(
        f"setup: {dataset}, {seconds} s of load, {connections} visitors, {preloaded:,} events "
        f"preloaded, first model {first} ({epochs} epoch(s)); {result['environment']}, "
        f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    console.print(f"job: {result['job']['state']} -> {result['job']['version']}")
    console.print(f"events: {result['events']}; marks (s): {result['marks']}")
    console.print(f"wrote {run_dir / 'result.json'} and {run_dir / 'latency.png'}")


if __name__ == "__main__":
    run(app)
