"""Adagrad with momentum, as the official GRU4Rec (``IndexedAdagradM``) applies it.

Per element: ``acc += g^2``; ``v = momentum * v - lr * g / sqrt(acc + eps)``;
``p += v`` (plain Adagrad when momentum is 0). Item tables (output weights,
biases, input embeddings) are updated row-wise: only the rows the mini-batch
touched change, accumulators and velocities included, so an item's momentum
waits until the item is seen again. The dense GRU weights are updated as a
whole with multi-tensor (``_foreach``) kernels.
"""

from __future__ import annotations

import torch


class AdagradMomentum:
    def __init__(
        self,
        dense: list[torch.Tensor],
        tables: list[torch.Tensor],
        lr: float,
        momentum: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        self.dense = list(dense)
        self.lr, self.momentum, self.eps = float(lr), float(momentum), float(eps)
        self.dense_acc = [torch.zeros_like(p) for p in self.dense]
        self.dense_mom = [torch.zeros_like(p) for p in self.dense] if momentum > 0 else []
        self.table_acc = {id(t): torch.zeros_like(t) for t in tables}
        self.table_mom = {id(t): torch.zeros_like(t) for t in tables} if momentum > 0 else {}

    @torch.no_grad()
    def step_dense(self) -> None:
        params = [p for p in self.dense if p.grad is not None]
        if not params:
            return
        index = [i for i, p in enumerate(self.dense) if p.grad is not None]
        grads = [p.grad for p in params]
        accs = [self.dense_acc[i] for i in index]
        torch._foreach_addcmul_(accs, grads, grads)
        denom = torch._foreach_add(accs, self.eps)
        torch._foreach_sqrt_(denom)
        if self.momentum > 0:
            moms = [self.dense_mom[i] for i in index]
            torch._foreach_mul_(moms, self.momentum)
            torch._foreach_addcdiv_(moms, grads, denom, value=-self.lr)
            torch._foreach_add_(params, moms)
        else:
            torch._foreach_addcdiv_(params, grads, denom, value=-self.lr)

    @torch.no_grad()
    def step_rows(self, table: torch.Tensor, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``table[rows]`` with their gradient ``grad``; ``rows`` must be unique."""
        acc_all = self.table_acc[id(table)]
        acc = acc_all.index_select(0, rows).addcmul_(grad, grad)
        acc_all.index_copy_(0, rows, acc)
        step = grad / acc.add_(self.eps).sqrt_()
        if self.momentum > 0:
            mom_all = self.table_mom[id(table)]
            mom = mom_all.index_select(0, rows).mul_(self.momentum).add_(step, alpha=-self.lr)
            mom_all.index_copy_(0, rows, mom)
            table.index_add_(0, rows, mom)
        else:
            table.index_add_(0, rows, step, alpha=-self.lr)
