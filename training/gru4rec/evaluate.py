"""Next-item evaluation of GRU4Rec by walking whole test sessions.

The hidden state starts from zero for every test session, and each session is
run once through the network (O(events) GRU steps, instead of re-encoding
every prefix); the query after event j scores ALL items for target j + 1.
The figures equal the prefix-batch protocol of ``training.evaluation`` (a test
holds them equal); ranks and metrics come from that package.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from tqdm import tqdm

from models.gru4rec import GRU4Rec
from training.evaluation import NextItemTask
from training.evaluation.ranking import ByRepeat, RankMetrics, TieMode, target_ranks


@torch.no_grad()
def session_outputs(model: GRU4Rec, items: torch.Tensor) -> torch.Tensor:
    """Right-padded sessions [S, L] (-1 after the end) -> top-layer output after each event."""
    hidden = [torch.zeros(items.shape[0], h) for h in model.layers]
    table = model.input_table
    outs = []
    for t in range(items.shape[1]):
        top, hidden = model.hidden_step(table[items[:, t].clamp(min=0)], hidden)
        outs.append(top)
    return torch.stack(outs, dim=1)


@torch.no_grad()
def evaluate_sessions(
    model: GRU4Rec,
    task: NextItemTask,
    ks: tuple[int, ...] = (20,),
    ties: TieMode = "standard",
    sessions_per_batch: int = 256,
    score_batch: int = 256,
    progress: bool = True,
    by_repeat: bool = False,
) -> tuple[dict[str, float], float]:
    """Recall@k and MRR@k over the task's targets; returns (metrics, seconds).

    ``by_repeat`` adds the same metrics over the targets clicked earlier in
    their session (``<metric>_repeat``) and over the rest (``<metric>_new``),
    and their share (``repeat_share``): see ``NextItemTask.repeats``.
    """
    model.eval()
    start = time.perf_counter()
    sess = task.sessions
    of_target = np.searchsorted(sess.offsets, task.targets, side="right") - 1
    position = task.targets - sess.offsets[of_target]  # >= 1: the prefix is events [0, position)
    needed = np.unique(of_target)
    # Sessions sorted by length keep the padding small.
    needed = needed[np.argsort(sess.lengths[needed], kind="stable")]
    items = torch.from_numpy(sess.items.astype(np.int64))
    vectors = model.item_vectors()
    metrics = RankMetrics(ks)
    split = ByRepeat(task.repeats(), ks) if by_repeat else None
    order = np.argsort(of_target, kind="stable")
    sorted_sessions = of_target[order]
    with tqdm(
        total=len(task), desc="evaluate", unit="pred", disable=not progress, leave=False
    ) as bar:
        for lo in range(0, len(needed), sessions_per_batch):
            chunk = needed[lo : lo + sessions_per_batch]
            lengths = sess.lengths[chunk]
            width = int(lengths.max())
            idx = sess.offsets[chunk][:, None] + np.arange(width)[None, :]
            valid = np.arange(width)[None, :] < lengths[:, None]
            padded = torch.where(
                torch.from_numpy(valid), items[torch.from_numpy(np.where(valid, idx, 0))], -1
            )
            outputs = session_outputs(model, padded)  # [C, width, d]
            # Targets of this chunk's sessions.
            left = np.searchsorted(sorted_sessions, chunk, side="left")
            right = np.searchsorted(sorted_sessions, chunk, side="right")
            rows = np.repeat(np.arange(len(chunk)), right - left)
            picked = np.concatenate([order[a:b] for a, b in zip(left, right, strict=True)])
            query_pos = position[picked] - 1
            queries = outputs[torch.from_numpy(rows), torch.from_numpy(query_pos)]
            queries = torch.cat([queries, queries.new_ones((len(queries), 1))], dim=1)
            targets = items[torch.from_numpy(task.targets[picked])]
            for s in range(0, len(queries), score_batch):
                scores = queries[s : s + score_batch] @ vectors.T
                ranks = target_ranks(scores, targets[s : s + score_batch], ties)
                metrics.add(ranks)
                if split is not None:
                    split.add(ranks, torch.from_numpy(picked[s : s + score_batch]))
            bar.update(len(picked))
    result = metrics.result()
    if split is not None:
        result.update(split.result())
    return result, time.perf_counter() - start
