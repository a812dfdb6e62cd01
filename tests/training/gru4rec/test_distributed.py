"""Data-parallel GRU4Rec training: device choice, shards, the gradient average, whole runs.

A world of one process must train exactly the model the plain loop trains
(every collective is then an identity). Two gloo processes on the CPU must end
with identical weights, having trained on disjoint shards that together cover
every trainable session, although one rank runs out of steps before the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training import distributed
from training.data.sessions import Sessions
from training.distributed import StepSync, World, current_world
from training.gru4rec.params import GRU4RecParams
from training.gru4rec.train import shard_sessions, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_ITEMS = 20
PARAMS = GRU4RecParams(
    layers=(8,), batch_size=4, n_sample=6, n_epochs=2, learning_rate=0.1, momentum=0.2
)


def _sessions(lengths: list[int], seed: int = 0) -> Sessions:
    """Sessions in time order (session k starts at time k), random items."""
    rng = np.random.default_rng(seed)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    items = rng.integers(0, N_ITEMS, size=int(offsets[-1])).astype(np.int32)
    times = np.concatenate([k + 0.01 * np.arange(n) for k, n in enumerate(lengths)])
    return Sessions(items=items, offsets=offsets, times=times)


def _lopsided() -> Sessions:
    # Long and short sessions alternate, so rank 0 of two gets every long one
    # (6 events: 5 examples) and rank 1 every short one (2 events: 1 example).
    return _sessions([6, 2] * 12 + [1, 1])


def test_device_is_the_gpu_of_the_local_rank_when_there_is_one(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert distributed.default_device(3) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.default_device(3) == torch.device("cuda", 1)


def test_plain_runs_are_not_distributed(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.world_from_env() is None
    assert distributed.is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun --nproc_per_node 1
    assert distributed.world_from_env() is None
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_main_process()


def test_shards_take_every_nth_trainable_session_in_time_order() -> None:
    # Session 2 has one event (no example); session 3 starts first.
    s = Sessions(
        items=np.arange(9, dtype=np.int32),
        offsets=np.array([0, 2, 4, 5, 7, 9], dtype=np.int64),
        times=np.array([1, 1, 2, 2, 3, 0, 0, 4, 4], dtype=np.float64),
    )
    assert shard_sessions(s, True, 0, 2).tolist() == [3, 1]
    assert shard_sessions(s, True, 1, 2).tolist() == [0, 4]
    assert shard_sessions(s, False, 0, 2).tolist() == [0, 3]
    assert shard_sessions(s, True, 0, 1).tolist() == [3, 0, 1, 4]


def _init_single(rendezvous: Path) -> World:
    """A process group of one (a fresh rendezvous file per group, as gloo's file store wants)."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=0, world_size=1)
    world = current_world()
    assert world is not None and world.size == 1
    return world


def test_a_world_of_one_trains_the_plain_model(tmp_path) -> None:
    data = _sessions([5, 3, 2, 7, 1, 4] * 6)
    for i, params in enumerate(
        [
            PARAMS,
            PARAMS.replace(n_sample=0, loss="bpr-max", dropout_p_hidden=0.2),
            PARAMS.replace(constrained_embedding=False, embedding=5, logq=1.0),
        ]
    ):
        plain = train(data, N_ITEMS, params, progress=False)
        world = _init_single(tmp_path / f"rendezvous-{i}")
        try:
            ddp = train(data, N_ITEMS, params, progress=False, world=world)
        finally:
            dist.destroy_process_group()
        # Sum over one rank and division by 1 are exact: the very same floats.
        for name, value in plain.model.state_dict().items():
            torch.testing.assert_close(ddp.model.state_dict()[name], value, rtol=0, atol=0)
        assert [e.loss for e in ddp.epochs] == [e.loss for e in plain.epochs]
        assert [e.events for e in ddp.epochs] == [e.events for e in plain.epochs]


def _two_ranks(rank: int, out: str) -> None:
    """One of two gloo processes: a hand-made gradient average, then a whole run."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=2)
    try:
        world = current_world()
        assert world is not None
        dense = torch.zeros(2, requires_grad=True)
        table = torch.zeros(6, 1)
        sync = StepSync(world, [dense], [table])
        # rank 0: rows 1 and 3 with grads 1, 2 and dense grad (2, 0);
        # rank 1: rows 3 and 4 with grads 4, 8 and no dense grad (as if idle on the GRU).
        if rank == 0:
            dense.grad = torch.tensor([2.0, 0.0])
            rows, grads = torch.tensor([3, 1]), torch.tensor([[2.0], [1.0]])
        else:
            rows, grads = torch.tensor([3, 4]), torch.tensor([[4.0], [8.0]])
        union, mean = sync.reduce([rows], [grads])
        result = train(_lopsided(), N_ITEMS, PARAMS, progress=False, world=world)
        torch.save(
            {
                "union": union[0],
                "mean": mean[0],
                "dense": dense.grad.clone(),
                "weights": result.model.state_dict(),
                "shard": torch.from_numpy(shard_sessions(_lopsided(), True, rank, 2)),
                "events": torch.tensor([e.events for e in result.epochs]),
            },
            f"{out}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("two-ranks")
    mp.spawn(_two_ranks, args=(str(out),), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_two_ranks_average_dense_and_row_gradients(two_ranks) -> None:
    for res in two_ranks:
        assert res["union"].tolist() == [1, 3, 4]
        assert res["mean"].view(-1).tolist() == [0.5, 3.0, 4.0]  # (1+0)/2, (2+4)/2, (0+8)/2
        assert res["dense"].tolist() == [1.0, 0.0]


def test_two_ranks_end_with_the_same_model_from_disjoint_shards(two_ranks) -> None:
    data = _lopsided()
    a, b = (res["weights"] for res in two_ranks)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    shards = [set(res["shard"].tolist()) for res in two_ranks]
    assert not shards[0] & shards[1]
    assert shards[0] | shards[1] == set(np.flatnonzero(data.lengths >= 2).tolist())
    assert shards[0] == set(range(0, 24, 2))  # the long sessions: rank 0 ran 5x the steps
    # Each epoch counts every example of both shards: 12 x 5 + 12 x 1.
    for res in two_ranks:
        assert res["events"].tolist() == [72, 72]
    # It trained: the weights moved away from the seeded start.
    start = train(data, N_ITEMS, PARAMS.replace(n_epochs=0), progress=False).model
    assert not torch.equal(start.Wy, a["Wy"])
