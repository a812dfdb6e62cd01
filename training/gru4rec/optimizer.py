"""Adagrad with momentum, as the official GRU4Rec (``IndexedAdagradM``) applies it.

Per element: ``acc += g^2``; ``v = momentum * v - lr * g / sqrt(acc + eps)``;
``p += v`` (plain Adagrad when momentum is 0). Item tables (output weights,
biases, input embeddings) are updated row-wise: only the rows the mini-batch
touched change, accumulators and velocities included, so an item's momentum
waits until the item is seen again. The dense GRU weights are updated as a
whole.

Two implementations of the same arithmetic: on the CPU one-pass compiled
kernels (``fused_adagrad``), elsewhere (a GPU) PyTorch's own ops, multi-tensor
(``_foreach``) for the dense weights. ``fused=False`` forces the PyTorch ops.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from training.gru4rec import fused_adagrad as kernels


class AdagradMomentum:
    def __init__(
        self,
        dense: list[torch.Tensor],
        tables: list[torch.Tensor],
        lr: float,
        momentum: float = 0.0,
        eps: float = 1e-6,
        fused: bool = True,
    ) -> None:
        self.dense = list(dense)
        self.lr, self.momentum, self.eps = float(lr), float(momentum), float(eps)
        self.fused = fused
        self.dense_acc = [torch.zeros_like(p) for p in self.dense]
        self.dense_mom = [torch.zeros_like(p) for p in self.dense] if momentum > 0 else []
        self.table_acc = {id(t): torch.zeros_like(t) for t in tables}
        self.table_mom = {id(t): torch.zeros_like(t) for t in tables} if momentum > 0 else {}

    def _uses_kernels(self, t: torch.Tensor) -> bool:
        """CPU, float32 and contiguous only (numpy views), and not in a fork child (see kernels)."""
        return (
            self.fused
            and t.device.type == "cpu"
            and t.dtype == torch.float32
            and t.is_contiguous()
            and kernels.usable_here()
        )

    def _kernel_setup(self) -> tuple[np.float32, np.float32, np.float32]:
        """Threads and scalars for a kernel call.

        The kernels get as many threads as torch has (``--threads`` sets torch's),
        so side-by-side runs on one core each stay on one core; the scalars are
        float32, so the kernels' arithmetic stays float32.
        """
        numba.set_num_threads(min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
        return np.float32(self.lr), np.float32(self.momentum), np.float32(self.eps)

    @torch.no_grad()
    def step_dense(self) -> None:
        index = [i for i, p in enumerate(self.dense) if p.grad is not None]
        if not index:
            return
        if all(self._uses_kernels(self.dense[i]) for i in index):
            lr, momentum, eps = self._kernel_setup()
            for i in index:
                p = self.dense[i]
                flat = (p.detach().numpy().reshape(-1), self.dense_acc[i].numpy().reshape(-1))
                grad = p.grad.contiguous().numpy().reshape(-1)
                if self.momentum > 0:
                    mom = self.dense_mom[i].numpy().reshape(-1)
                    kernels.dense_adagrad_momentum(*flat, mom, grad, lr, momentum, eps)
                else:
                    kernels.dense_adagrad(*flat, grad, lr, eps)
            return
        params = [self.dense[i] for i in index]
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
        if self._uses_kernels(table):
            lr, momentum, eps = self._kernel_setup()
            shape = (len(rows), -1)  # biases are 1-D tables: one column
            t = table.detach().numpy().reshape(table.shape[0], -1)
            acc = acc_all.numpy().reshape(table.shape[0], -1)
            r, g = rows.numpy(), grad.contiguous().numpy().reshape(shape)
            if self.momentum > 0:
                mom = self.table_mom[id(table)].numpy().reshape(table.shape[0], -1)
                kernels.rows_adagrad_momentum(t, acc, mom, r, g, lr, momentum, eps)
            else:
                kernels.rows_adagrad(t, acc, r, g, lr, eps)
            return
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
