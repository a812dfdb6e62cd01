"""Load benchmark of the HTTP service with wrk (``make bench-api``).

Run as ``python -m tests.bench.api --model-dir DIR [options]`` on an otherwise idle
machine (see ``tests/bench/README.md``).

One uvicorn worker serves a checkpoint of the benchmark catalog with Redis
sessions; wrk drives ``GET /healthz`` (the bare-endpoint baseline), ``GET
.../recommendations`` over real test sessions and ``POST /v1/events``, all in
the same run, so the ratios compare like with like. In-process figures: the
recall@20 of the approximate index against exact search on the queries of real
sessions, raw search throughput, and Redis memory per live session.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
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
from tests.bench.service import Server, free_port
from training.checkpoint import current_version, load_checkpoint
from training.data import load_dataset
from training.data.errors import DataError
from training.report import environment, record, write_json

console = Console()
app = program()

_LATENCY = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_ERRORS = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)|Socket errors: (.*)")
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, script: Path | None, connections: int, threads: int, seconds: int) -> dict:
    """wrk's figures, and the cores wrk itself took meanwhile (it shares the machine)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script is not None:
        cmd[1:1] = ["-s", str(script)]
    cpu, t0 = _children_cpu_seconds(), time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    load_cores = (_children_cpu_seconds() - cpu) / (time.perf_counter() - t0)
    latency = {f"p{q}_ms": float(v) * _UNIT[u] for q, v, u in _LATENCY.findall(out)}
    errors = [m.group(0) for m in _ERRORS.finditer(out)]
    rps = _RPS.search(out)
    if rps is None:
        raise RuntimeError(f"could not read wrk output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        **latency,
        "errors": errors,
        "load_generator_cores": round(load_cores, 2),
    }


def _lua_get(n_sessions: int, n: int) -> str:
    return (
        "request = function()\n"
        f"  local s = math.random(0, {n_sessions - 1})\n"
        f'  return wrk.format("GET", "/v1/sessions/b" .. s .. "/recommendations?n={n}")\n'
        "end\n"
    )


def _lua_post(item_ids: list[str]) -> str:
    items = ",".join(json.dumps(json.dumps(str(i))) for i in item_ids)  # JSON strings in Lua
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local items = {{{items}}}\n"
        "request = function()\n"
        "  local s = math.random(0, 99999)\n"
        "  local i = items[math.random(1, #items)]\n"
        "  local body = '{\"session_id\":\"e' .. s .. '\",\"item_id\":' .. i .. '}'\n"
        '  return wrk.format(nil, "/v1/events", nil, body)\n'
        "end\n"
    )


def search_figures(
    vectors: np.ndarray, queries: np.ndarray, probes: np.ndarray, m: int, ef: int, efc: int
) -> dict:
    """Recall@20 of the served HNSW index against exact search, and queries/s of both.

    The HNSW index is built as the service builds it (``hnsw_metric=auto``: the form
    that finds more for the model's ``probes``); the other form's recall on the same
    session queries is reported beside it. Single queries run on one core (FAISS
    does not split a query); batches of 32 both on one core (``_1thread``) and on
    all cores (FAISS's OpenMP threads share a batch's queries), so the endpoint can
    be held against either.
    """
    import faiss

    from app.serving.item_index import ItemIndex, exact_top, recall_at

    def hnsw_index(**form: Any) -> ItemIndex:
        return ItemIndex(
            vectors, kind="hnsw", hnsw_m=m, hnsw_ef_construction=efc, hnsw_ef_search=ef,
            device="cpu", **form,
        )  # fmt: skip

    flat = ItemIndex(vectors, device="cpu")
    t0 = time.perf_counter()
    hnsw = hnsw_index(probes=probes)  # as the service builds it
    build = time.perf_counter() - t0
    exact = exact_top(vectors, queries, 20)
    other = next(f for f in ("inner-product", "euclidean-transform") if f != hnsw.metric)
    other_index = hnsw_index(hnsw_metric=other)
    out: dict[str, Any] = {
        "recall@20": recall_at(hnsw.search(queries, 20)[1], exact),
        "hnsw_metric": hnsw.metric,
        "probe_recall@20": hnsw.recall,
        f"recall@20_{other}": recall_at(other_index.search(queries, 20)[1], exact),
        "hnsw_build_s (both forms)": round(build, 2),
    }
    all_threads = faiss.omp_get_max_threads()
    runs = ((1, 1, ""), (32, 1, "_1thread"), (32, all_threads, ""))
    try:
        for name, index in (("flat", flat), ("hnsw", hnsw)):
            for batch, threads, suffix in runs:
                faiss.omp_set_num_threads(threads)
                n = min(len(queries), 2000 if name == "flat" and threads == 1 else 8000)
                t0 = time.perf_counter()
                for s in range(0, n, batch):
                    index.search(queries[s : s + batch], 20)
                out[f"{name}_qps_batch{batch}{suffix}"] = round(n / (time.perf_counter() - t0), 1)
    finally:
        faiss.omp_set_num_threads(all_threads)
    out["search_threads_all"] = all_threads
    return out


@app.command()
def bench_api(
    model_dir: Path = typer.Option(..., help="checkpoint directory with CURRENT (the catalog)"),
    dataset: str = typer.Option("diginetica", help="test sessions to replay (same catalog)"),
    redis_url: str = typer.Option("redis://127.0.0.1:6379/0", help="Redis for the sessions"),
    connections: int = typer.Option(32, min=1),
    threads: int = typer.Option(2, min=1, help="wrk threads"),
    seconds: int = typer.Option(10, min=1, help="duration of each wrk run"),
    sessions: int = typer.Option(2000, min=10, help="live sessions replayed from the test part"),
    n: int = typer.Option(20, min=1, help="recommendations per call"),
    index: str = typer.Option("hnsw", help="flat | hnsw"),
    hnsw_m: int = typer.Option(32),
    ef_search: int = typer.Option(128),
    ef_construction: int = typer.Option(200),
    search_batch_max: int = typer.Option(
        64, min=1, help="NEXTITEM_SEARCH_BATCH_MAX of the measured service"
    ),
    batching: bool = typer.Option(True, help="also measure recommendations without micro-batching"),
    route: bool = typer.Option(
        True, help="also measure recommendations through the FastAPI route (no fast path)"
    ),
    seed: int = typer.Option(0),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
) -> None:
    """Throughput and p99 of the service under wrk (32 connections, one worker), with Redis."""
    import redis
    import torch

    from app.serving.registry import probe_queries
    from models.registry import build_model

    if shutil.which("wrk") is None:
        raise DataError("wrk is not installed (Debian: apt-get install wrk)")
    version = current_version(model_dir)
    if version is None:
        raise DataError(f"no checkpoint is active in {model_dir}")
    ckpt = load_checkpoint(model_dir / version)
    model = build_model(ckpt.kind, ckpt.hyperparameters, ckpt.weights)
    ds = load_dataset(dataset)
    ids = ckpt.items["item_id"].to_numpy()
    if len(ids) != ds.n_items:
        raise DataError(f"checkpoint has {len(ids)} items, {dataset} {ds.n_items}")
    rng = np.random.default_rng(seed)
    test = ds.parts["test"]
    picked = rng.choice(test.n_sessions, size=min(sessions, test.n_sessions), replace=False)
    ext = ds.items.ids  # dataset row -> external id; the checkpoint maps external ids to rows
    row_of = {str(v): r for r, v in enumerate(ids)}
    replay = [[str(ext[i]) for i in test.session(int(s))] for s in picked]

    # In-process: queries of the replayed sessions, then recall and raw search speed.
    with torch.inference_mode():
        queries = []
        for clicks in replay:
            state = model.init_state()
            for c in clicks:
                state = model.step(state, row_of[c])
            queries.append(model.interests(state).numpy())
        vectors = model.item_vectors().detach().float().numpy()
    q = np.concatenate(queries).astype(np.float32)
    probes = probe_queries(model, ckpt.items["popularity"].to_numpy(np.float64))
    search = search_figures(vectors, q, probes, hnsw_m, ef_search, ef_construction)

    prefix = f"nextitem-bench:{uuid.uuid4().hex[:10]}"
    env = {
        "NEXTITEM_MODEL_DIR": str(model_dir),
        "NEXTITEM_REDIS_URL": redis_url,
        "NEXTITEM_KEY_PREFIX": prefix,
        "NEXTITEM_INDEX": index,
        "NEXTITEM_HNSW_M": str(hnsw_m),
        "NEXTITEM_HNSW_EF_SEARCH": str(ef_search),
        "NEXTITEM_HNSW_EF_CONSTRUCTION": str(ef_construction),
        "NEXTITEM_TORCH_THREADS": "1",
        "NEXTITEM_SEARCH_THREADS": "1",
    }
    client = redis.Redis.from_url(redis_url)
    results: dict[str, Any] = {}
    memory: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix="nextitem-bench-"))
    get_script, post_script = tmp / "get.lua", tmp / "post.lua"
    get_script.write_text(_lua_get(len(replay), n))
    post_script.write_text(_lua_post([str(v) for v in ids[rng.choice(len(ids), 1000)]]))
    runs = [("batched", {})]
    if batching:
        runs.append(("unbatched", {"NEXTITEM_SEARCH_BATCH_MAX": "1"}))
    if route:
        runs.append(("route", {"NEXTITEM_FAST_PATH": "false"}))
    try:
        for label, extra in runs:
            server = Server(
                {**env, "NEXTITEM_SEARCH_BATCH_MAX": str(search_batch_max), **extra}, free_port()
            )
            try:
                server.wait_ready()
                if label == "batched":
                    memory = _populate(server.url, replay, client, prefix, n)
                    results["healthz"] = run_wrk(
                        f"{server.url}/healthz", None, connections, threads, seconds
                    )
                results[f"recommendations_{label}"] = run_wrk(
                    server.url, get_script, connections, threads, seconds
                )
                if label == "batched":
                    results["events"] = run_wrk(
                        server.url, post_script, connections, threads, seconds
                    )
                    results["healthz_after"] = run_wrk(
                        f"{server.url}/healthz", None, connections, threads, seconds
                    )
            finally:
                server.stop()
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for s in range(0, len(keys), 1000):
            client.delete(*keys[s : s + 1000])
        shutil.rmtree(tmp, ignore_errors=True)

    base = results["healthz"]["rps"]
    table = Table(title=f"bench-api: {ckpt.kind} {version}, {dataset} catalog ({len(ids)} items)")
    for col in ("run", "req/s", "x healthz", "p50 ms", "p99 ms", "errors"):
        table.add_column(col)
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['rps']:.0f}",
            f"{r['rps'] / base:.2f}",
            f"{r.get('p50_ms', float('nan')):.2f}",
            f"{r.get('p99_ms', float('nan')):.2f}",
            "; ".join(r["errors"]) or "-",
        )
    console.print(table)
    console.print(f"search in-process ({len(q)} session queries, d={q.shape[1]}): {search}")
    in_process = _endpoint_against_search(search, index, len(queries[0]), results)
    console.print(
        f"endpoint against the same searches in-process (K={len(queries[0])} queries per "
        f"recommendation, wrk took {results['recommendations_batched']['load_generator_cores']} "
        f"cores): {in_process}"
    )
    console.print(f"Redis memory per live session: {memory}")
    setup = {
        "workers": 1,
        "connections": connections,
        "wrk_threads": threads,
        "seconds": seconds,
        "sessions": len(replay),
        "n": n,
        "index": index,
        "hnsw_m": hnsw_m,
        "ef_search": ef_search,
        "ef_construction": ef_construction,
        "search_batch_max": search_batch_max,
        "load_before": os.getloadavg(),
        "model": {"kind": ckpt.kind, "version": version, **ckpt.hyperparameters},
    }
    console.print(f"setup: {setup}; {environment()}")
    if json_out is not None:
        metrics = {"recall@20": search["recall@20"]}
        rec = record(
            f"service:{ckpt.kind}",
            ds,
            "bench-api",
            setup,
            metrics,
            seconds={},
            split={"part": "test", "seed": seed},
            http=results,
            search=search,
            in_process=in_process,
            redis_memory=memory,
        )
        write_json(json_out, rec)


def _endpoint_against_search(
    search: dict[str, Any], index: str, k: int, results: dict[str, Any]
) -> dict[str, float]:
    """Recommendations/s the served index's searches alone allow in-process (K queries
    each), one query at a time, batched on one core, batched on all cores, and the
    endpoint's throughput as a fraction of each."""
    served = "hnsw" if index == "hnsw" else "flat"
    endpoint = results["recommendations_batched"]["rps"]
    out: dict[str, float] = {}
    for label, key in (
        ("single_one_core", "batch1"),
        ("batched_one_core", "batch32_1thread"),
        ("batched_all_cores", "batch32"),
    ):
        per_s = search[f"{served}_qps_{key}"] / k
        out[f"{label}_per_s"] = round(per_s, 1)
        out[f"endpoint_x_{label}"] = round(endpoint / per_s, 3)
    return out


KEYS = ("sess", "state")


def _populate(url: str, replay: list[list[str]], client: Any, prefix: str, n: int) -> dict:
    """Post the replayed sessions' clicks, ask each once (states written), measure memory."""
    import httpx

    with httpx.Client(base_url=url, timeout=30) as http:
        events = [{"session_id": f"b{s}", "item_id": c} for s, cl in enumerate(replay) for c in cl]
        for s in range(0, len(events), 1000):
            http.post("/v1/events/batch", json={"events": events[s : s + 1000]}).raise_for_status()
        for s in range(len(replay)):
            http.get(f"/v1/sessions/b{s}/recommendations", params={"n": n}).raise_for_status()
    # both keys of a session: the hash (items, counters) and the state string
    sizes = np.array(
        [
            sum(client.memory_usage(f"{prefix}:{kind}:b{s}", samples=0) or 0 for kind in KEYS)
            for s in range(len(replay))
        ]
    )
    lengths = np.array([len(c) for c in replay])
    return {
        "bytes_mean": float(sizes.mean()),
        "bytes_median": float(np.median(sizes)),
        "bytes_p95": float(np.percentile(sizes, 95)),
        "clicks_mean": float(lengths.mean()),
    }


if __name__ == "__main__":
    run(app)
