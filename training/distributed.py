"""Data-parallel training over several processes (``torchrun``), off unless launched so.

``torchrun --nproc_per_node N`` starts N copies of a command and tells each its
place through the environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``). ``world_from_env`` turns that into a process
group: NCCL on ``cuda:LOCAL_RANK`` when CUDA is available, gloo on the CPU
otherwise. A plain run (no ``WORLD_SIZE``, or 1) gets ``None`` and trains exactly
as before.

Each rank trains on its own shard of the data, and after every backward pass
the ranks average their gradients, so the weights stay identical everywhere,
as with ``torch.nn.parallel.DistributedDataParallel``. DDP itself fits loops
whose every parameter gets a dense ``.grad`` from ``module(...)``; the GRU4Rec
loop differs on both counts (it calls ``hidden_step`` and updates the item
tables row-wise from small gathered leaves), so ``StepSync`` does the same
averaging explicitly: the dense gradients in one all-reduce, and for each item
table the union of the rows the ranks touched, each row's gradient averaged.
"""

from __future__ import annotations

import atexit
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int
    size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 alone reports progress and writes files."""
        return self.rank == 0


def default_device(local_rank: int = 0) -> torch.device:
    """The GPU of this process when there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def launched_world_size() -> int:
    """Processes started together (``WORLD_SIZE`` set by ``torchrun``); 1 for a plain run."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def current_world() -> World | None:
    """The already initialised process group as a ``World`` (None when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    on_gpu = dist.get_backend() == "nccl"
    device = default_device(local_rank) if on_gpu else torch.device("cpu")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), device=device)


def world_from_env() -> World | None:
    """Join the process group ``torchrun`` described, once; None when not launched by it."""
    if launched_world_size() <= 1:
        return None
    world = current_world()
    if world is not None:
        return world
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = default_device(local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    atexit.register(_leave)
    return current_world()


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main_process() -> bool:
    """True unless this process is a rank > 0 of a distributed run (files: rank 0 only)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


def max_over_ranks(world: World, value: int) -> int:
    """The largest ``value`` any rank holds (e.g. the step count all ranks must run)."""
    t = torch.tensor([value], dtype=torch.int64, device=world.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def sum_over_ranks(world: World, values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum of ``values`` over the ranks (a new tensor, same on every rank)."""
    out = values.to(world.device, copy=True)
    dist.all_reduce(out)
    return out.to(values.device)


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Start every rank from rank 0's weights (as DDP does when it wraps a module)."""
    with torch.no_grad():
        for p in module.parameters():
            dist.broadcast(p.data, src=0)


class StepSync:
    """Averages one training step's gradients over the ranks: dense and row-wise.

    Three collectives per step, whatever the number of tables: the row counts,
    the row ids, then one all-reduce of a flat buffer holding the dense
    gradients followed by, per table, a block of the union's rows where each
    rank wrote its own rows' gradients (zeros elsewhere). A rank with nothing
    to train at a step still takes part, with empty rows and zero gradients:
    every rank must run the same number of steps or the collectives hang.
    The union is sorted (``torch.unique``) and the sum is one all-reduce, so
    every rank applies exactly the same update.
    """

    def __init__(self, world: World, dense: list[torch.Tensor], tables: list[torch.Tensor]):
        self.world = world
        self.dense = list(dense)
        self.tables = list(tables)

    def reduce(
        self, rows: list[torch.Tensor], grads: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Set each dense ``.grad`` to the rank mean; per table, the union rows and mean grads.

        ``rows[i]`` are this rank's distinct rows of ``tables[i]`` and ``grads[i]``
        their gradient (empty when the rank sat the step out).
        """
        size, device = self.world.size, self.world.device
        n_tables = len(self.tables)
        counts = torch.tensor([len(r) for r in rows], dtype=torch.int64, device=device)
        gathered = [torch.empty_like(counts) for _ in range(size)]
        dist.all_gather(gathered, counts)
        per_rank = torch.stack(gathered).tolist()
        longest = max(sum(c) for c in per_rank)
        own = torch.cat(rows) if rows else torch.empty(0, dtype=torch.int64, device=device)
        ids = torch.zeros(longest, dtype=torch.int64, device=device)
        ids[: len(own)] = own
        all_ids = [torch.empty_like(ids) for _ in range(size)]
        dist.all_gather(all_ids, ids)

        unions = []
        for i in range(n_tables):
            parts = []
            for r in range(size):
                start = sum(per_rank[r][:i])
                parts.append(all_ids[r][start : start + per_rank[r][i]])
            unions.append(torch.unique(torch.cat(parts)))

        pieces = [
            p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in self.dense
        ]
        for table, union, r, g in zip(self.tables, unions, rows, grads, strict=True):
            block = table.new_zeros((len(union), *table.shape[1:]))
            if len(r):
                block.index_copy_(0, torch.searchsorted(union, r), g)
            pieces.append(block.reshape(-1))
        flat = torch.cat(pieces)
        dist.all_reduce(flat)
        flat.div_(size)

        offset = 0
        for p in self.dense:
            p.grad = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        out = []
        for table, union in zip(self.tables, unions, strict=True):
            n = len(union) * math.prod(table.shape[1:])
            out.append(flat[offset : offset + n].view(len(union), *table.shape[1:]))
            offset += n
        return unions, out


def average_gradients(world: World, parameters: list[torch.Tensor]) -> None:
    """Set each ``.grad`` to its mean over the ranks: one all-reduce of a flat buffer.

    For loops whose parameters all get dense gradients (ComiRec, MIND with Adam),
    this is what DistributedDataParallel does after ``backward``; those loops
    score through several methods of the model rather than one ``forward``, which
    DDP's wrapper needs, so the average is explicit.
    """
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat.div_(world.size)
    offset = 0
    for p in parameters:
        p.grad = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
