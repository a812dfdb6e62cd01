"""Data-parallel ComiRec training: a world of one is the plain run; two ranks stay in step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models.comirec import ComiRecSA, MultiInterestConfig
from training.comirec.train import TrainConfig, train
from training.distributed import average_gradients, current_world

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CFG = TrainConfig(max_iter=6, eval_every=3, batch_size=8, seed=0)


def _data():
    from training.comirec.data import prepare
    from training.data.demo import demo_dataset
    from training.data.sessions import Dataset

    ds = demo_dataset()
    seq = Dataset(name="demo", kind="sequence", items=ds.items, parts={"all": ds.parts["train"]})
    return prepare(seq, seed=0, min_count=5)


def _model(n_items: int) -> ComiRecSA:
    return ComiRecSA(MultiInterestConfig(n_items=n_items, dim=8, n_interests=2, max_len=5))


def test_a_world_of_one_trains_the_plain_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    data = _data()
    plain = _model(data.n_items)
    train(plain, data, CFG, progress=False)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/r", rank=0, world_size=1)
    try:
        ddp = _model(data.n_items)
        train(ddp, data, CFG, progress=False, world=current_world())
    finally:
        dist.destroy_process_group()
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(ddp.state_dict()[name], value, rtol=0, atol=0)


def _two_ranks(rank: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/r", rank=rank, world_size=2)
    try:
        world = current_world()
        assert world is not None
        # the average by hand: rank 0 holds (2, 0), rank 1 (4, 6) and no grad for q
        p, q = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
        p.grad = torch.tensor([2.0, 0.0]) if rank == 0 else torch.tensor([4.0, 6.0])
        q.grad = torch.tensor([3.0]) if rank == 0 else None
        average_gradients(world, [p, q])
        data = _data()
        torch.manual_seed(rank)  # different starts: rank 0's weights must be broadcast
        model = _model(data.n_items)
        result = train(model, data, CFG, progress=False, world=world)
        torch.save(
            {"p": p.grad, "q": q.grad, "weights": model.state_dict(), "it": result.iterations},
            f"{out}/rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_two_ranks_average_gradients_and_end_with_the_same_model(tmp_path: Path) -> None:
    mp.spawn(_two_ranks, args=(str(tmp_path),), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    for res in (a, b):
        assert res["p"].tolist() == [3.0, 3.0] and res["q"].tolist() == [1.5]
        assert res["it"] == CFG.max_iter
    for name in a["weights"]:
        torch.testing.assert_close(a["weights"][name], b["weights"][name], rtol=0, atol=0)
