"""SKNN, V-SKNN and STAN: scores worked out by hand, and the batch scorer against a slow one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.session_knn import (
    SKNN,
    STAN,
    VSKNN,
    SessionKNN,
    SKNNConfig,
    STANConfig,
    VSKNNConfig,
)

# Four past sessions, oldest first, over items a b c d e = 0 1 2 3 4:
#   n0 = a b,  n1 = c a d,  n2 = b c e,  n3 = d c
PAST = [[0, 1], [2, 0, 3], [1, 2, 4], [3, 2]]
ITEMS = np.array([i for s in PAST for i in s], np.int32)
OFFSETS = np.r_[0, np.cumsum([len(s) for s in PAST])].astype(np.int64)
# The current session: c then a, left-padded as the evaluation hands it over.
PREFIX = np.array([[-1, 2, 0]])
E = math.exp(1.0)


def fitted(model: SessionKNN, clock: np.ndarray | None = None) -> SessionKNN:
    return model.fit(ITEMS, OFFSETS, 5, clock)


def test_sknn_by_hand() -> None:
    # s = {c, a}; cosine |s ∩ n| / sqrt(|s| |n|):
    #   n0: 1 / sqrt(2 * 2) = 0.5    n1: 2 / sqrt(2 * 3)    n2: 1 / sqrt(6)    n3: 1 / 2 = 0.5
    # k = 2: n1, then n0 and n3 tie at 0.5 and the more recent n3 wins.
    # a: n1;  c: n1 + n3;  d: n1 + n3;  b, e: nothing.
    model = fitted(SKNN(SKNNConfig(k=2, sample_size=0)))
    n1 = 2 / math.sqrt(6)
    assert model.raw_scores(PREFIX)[0] == pytest.approx([n1, 0, n1 + 0.5, n1 + 0.5, 0])


def test_sknn_sample_keeps_the_most_recent_sessions() -> None:
    # All four sessions share an item with s; sample_size = 2 keeps n2 and n3 only:
    # n2 (b c e) 1 / sqrt(6), n3 (d c) 0.5, and k = 2 keeps both.
    model = fitted(SKNN(SKNNConfig(k=2, sample_size=2)))
    n2 = 1 / math.sqrt(6)
    assert model.raw_scores(PREFIX)[0] == pytest.approx([0, n2, n2 + 0.5, 0.5, n2])


def test_the_sample_follows_the_clock_not_the_row_order() -> None:
    # The clock makes n0 the newest session: a sample of one keeps n0 (a b) alone.
    model = fitted(SKNN(SKNNConfig(k=5, sample_size=1)), clock=np.array([9.0, 1.0, 2.0, 3.0]))
    assert model.raw_scores(PREFIX)[0] == pytest.approx([0.5, 0.5, 0, 0, 0])


def test_vsknn_by_hand() -> None:
    # Positions in s = (c, a): c at 1 of 2, a at 2 of 2; "div" weights c 1/2, a 1.
    # sim = weighted overlap / |s| (= 2):
    #   n0 (a b): 1/2    n1 (c a d): 1.5/2 = 3/4    n2 (b c e): 1/4    n3 (d c): 1/4
    # k = 3: n1, n0, then n2 and n3 tie and the more recent n3 wins.
    # Step decay ("div", 1 / step): n1 and n0 hold a, the last click (step 1); n3 holds
    # only c, one click further back (step 2): 1/2.
    # Before IDF: a = 3/4 + 1/2;  b = 1/2;  c = 3/4 + 1/4 * 1/2;  d = 3/4 + 1/8;  e = 0.
    # IDF = log(4 sessions / clicks): a, b, d are clicked twice (log 2), c three times.
    model = fitted(VSKNN(VSKNNConfig(k=3, sample_size=0)))
    ln2, ln43 = math.log(2), math.log(4 / 3)
    expected = [1.25 * (1 + ln2), 0.5 * (1 + ln2), 0.875 * (1 + ln43), 0.875 * (1 + ln2), 0]
    assert model.raw_scores(PREFIX)[0] == pytest.approx(expected)


def test_vsknn_without_idf_and_with_flat_weights_is_overlap_counting() -> None:
    # weighting "same", no step decay, no IDF: sim = |s ∩ n| / |s|; k = 4 keeps all.
    # n0 1/2, n1 1, n2 1/2, n3 1/2.  a = 1/2 + 1;  b = 1/2 + 1/2;  c = 1 + 1/2 + 1/2;
    # d = 1 + 1/2;  e = 1/2.
    cfg = VSKNNConfig(k=4, sample_size=0, weighting="same", weighting_score="same", idf_weighting=0)
    model = fitted(VSKNN(cfg))
    assert model.raw_scores(PREFIX)[0] == pytest.approx([1.5, 1.0, 2.0, 1.5, 0.5])


def test_stan_by_hand() -> None:
    # λ1 = λ2 = λ3 = 1; clock (days) 0, 1, 2, 3, so T = 3.
    # w1: c at 1 of 2: exp(-1); a at 2 of 2: 1.
    # sim = Σ w1 / sqrt(|s| |n|) * exp(-(3 - t_n)):
    #   n0 (a b):   1 / 2 * e^-3                     = 0.0249
    #   n1 (c a d): (1 + e^-1) / sqrt(6) * e^-2      = 0.0756
    #   n2 (b c e): e^-1 / sqrt(6) * e^-1            = 0.0553
    #   n3 (d c):   e^-1 / 2 * 1                     = 0.1839
    # k = 2: n3 and n1.
    # n3 = d c: the last click on an item of s is c at 2; d (at 1) gets e^-1, c gets 1.
    # n1 = c a d: the last shared click is a at 2; c (1) and d (3) get e^-1, a gets 1.
    cfg = STANConfig(k=2, sample_size=0, lambda_1=1.0, lambda_2=1.0, lambda_3=1.0)
    model = fitted(STAN(cfg), clock=np.arange(4.0))
    sim3 = 1 / E / 2
    sim1 = (1 + 1 / E) / math.sqrt(6) / E**2
    expected = [sim1, 0, sim3 + sim1 / E, sim3 / E + sim1 / E, 0]
    assert model.raw_scores(PREFIX)[0] == pytest.approx(expected)


def test_stan_defaults_are_the_published_decays() -> None:
    cfg = STAN().config
    assert (cfg.k, cfg.sample_size, cfg.lambda_1, cfg.lambda_2, cfg.lambda_3) == (
        100,
        5000,
        1.02,
        5.0,
        2.05,
    )


def test_score_breaks_ties_by_popularity_below_every_real_score() -> None:
    # SKNN, k = 2 (see above): c and d tie, a follows, b and e are held by no neighbour.
    # Clicks: c 3, d 2, b 2, a 2, e 1: c above d; b above e; both below a.
    model = fitted(SKNN(SKNNConfig(k=2, sample_size=0)))
    scores = model.score(torch.from_numpy(PREFIX), torch.tensor([2]))[0]
    assert scores.argsort(descending=True).tolist() == [2, 3, 0, 1, 4]
    raw = model.raw_scores(PREFIX)[0]
    assert np.allclose(scores.numpy(), raw, rtol=1e-8, atol=1e-8)


def test_a_prefix_of_unknown_items_scores_popularity_only() -> None:
    model = SKNN().fit(ITEMS, OFFSETS, 6)  # item 5 was never clicked in training
    scores = model.score(torch.tensor([[5]]), torch.tensor([1]))[0]
    assert model.raw_scores(np.array([[5]])).sum() == 0
    assert scores.argmax().item() == 2 and scores[5] == 0  # c, the most clicked


def test_fit_does_not_touch_the_training_arrays() -> None:
    items = ITEMS.copy()
    items.flags.writeable = False  # as loaded datasets are
    for model in (SKNN(), VSKNN(), STAN()):
        model.fit(items, OFFSETS, 5)
    assert np.array_equal(items, ITEMS)


@pytest.mark.parametrize(
    ("cls", "bad"),
    [
        (SKNNConfig, {"k": 0}),
        (SKNNConfig, {"sample_size": -1}),
        (VSKNNConfig, {"idf_weighting": -1.0}),
        (STANConfig, {"lambda_2": 0.0}),
    ],
)
def test_configs_refuse_impossible_values(cls: type, bad: dict) -> None:
    with pytest.raises(ValueError):
        cls(**bad)


# The slow, obviously correct reference: one prefix, one past session at a time.


def selection_key(x: float) -> float:
    """Similarities to 40 significant bits, as the model compares them."""
    mantissa, exponent = math.frexp(x)
    return math.ldexp(round(mantissa * 2.0**40), exponent - 40)


def position_weight(kind: str, p: int, length: int) -> float:
    return {"same": 1.0, "div": p / length, "quadratic": (p / length) ** 2}[kind]


def step_weight(kind: str, step: int) -> float:
    return {"same": 1.0, "div": 1 / step, "quadratic": 1 / step**2}[kind]


def reference(
    model: str, cfg: SKNNConfig, past: list[list[int]], clock: list[float], n_items: int, s: list
) -> np.ndarray:
    last = {item: p for p, item in enumerate(s, 1)}  # the position of each item's last click
    length, mine = len(s), set(s)
    # Oldest first by the clock (ties by row); the sample is the tail of the sharing ones.
    by_age = sorted(range(len(past)), key=lambda n: (clock[n], n))
    sharing = [n for n in by_age if mine & set(past[n])]
    sample = sharing[-cfg.sample_size :] if cfg.sample_size else sharing
    sims = {}
    for n in sample:
        theirs = set(past[n])
        shared = mine & theirs
        if model == "sknn":
            sims[n] = len(shared) / math.sqrt(len(mine) * len(theirs))
        elif model == "vsknn":
            weights = [position_weight(cfg.weighting, last[i], length) for i in shared]
            sims[n] = sum(weights) / len(mine)
        else:
            weights = [math.exp((last[i] - length) / cfg.lambda_1) for i in shared]
            decay = math.exp(-(max(clock) - clock[n]) / cfg.lambda_2)
            sims[n] = sum(weights) / math.sqrt(len(mine) * len(theirs)) * decay
    recency = {n: r for r, n in enumerate(sample)}
    best = sorted(sample, key=lambda n: (-selection_key(sims[n]), -recency[n]))[: cfg.k]
    scores = np.zeros(n_items)
    clicks = np.bincount([i for p in past for i in p], minlength=n_items)
    for n in best:
        theirs = past[n]
        if model == "sknn":
            for i in set(theirs):
                scores[i] += sims[n]
        elif model == "vsknn":
            step = next(b for b, i in enumerate(reversed(s), 1) if i in set(theirs))
            for i in set(theirs):
                scores[i] += sims[n] * step_weight(cfg.weighting_score, step)
        else:
            anchor = max(p for p, i in enumerate(theirs, 1) if i in mine)
            last_in_n = {i: p for p, i in enumerate(theirs, 1)}
            for i, p in last_in_n.items():
                scores[i] += sims[n] * math.exp(-abs(p - anchor) / cfg.lambda_3)
    if model == "vsknn":
        for i in range(n_items):
            if clicks[i]:
                scores[i] *= 1 + cfg.idf_weighting * math.log(len(past) / clicks[i])
    return scores


@st.composite
def cases(draw: st.DrawFn) -> tuple:
    n_items = draw(st.integers(1, 6))
    item = st.integers(0, n_items - 1)
    past = draw(st.lists(st.lists(item, min_size=1, max_size=6), min_size=1, max_size=8))
    clock = draw(st.lists(st.integers(0, 3), min_size=len(past), max_size=len(past)))
    prefixes = draw(st.lists(st.lists(item, min_size=1, max_size=5), min_size=1, max_size=4))
    model = draw(st.sampled_from(["sknn", "vsknn", "stan"]))
    k, m = draw(st.integers(1, 4)), draw(st.integers(0, 5))
    lam = st.floats(0.5, 3.0)
    if model == "sknn":
        cfg = SKNNConfig(k=k, sample_size=m)
    elif model == "vsknn":
        weighting = st.sampled_from(["same", "div", "quadratic"])
        cfg = VSKNNConfig(
            k=k,
            sample_size=m,
            weighting=draw(weighting),
            weighting_score=draw(weighting),
            idf_weighting=draw(st.sampled_from([0.0, 1.0, 2.5])),
        )
    else:
        cfg = STANConfig(
            k=k, sample_size=m, lambda_1=draw(lam), lambda_2=draw(lam), lambda_3=draw(lam)
        )
    return model, cfg, past, [float(c) for c in clock], n_items, prefixes


@settings(max_examples=300, deadline=None)
@given(cases())
def test_batch_scores_equal_the_slow_reference(case: tuple) -> None:
    model_name, cfg, past, clock, n_items, prefixes = case
    cls = {"sknn": SKNN, "vsknn": VSKNN, "stan": STAN}[model_name]
    items = np.array([i for s in past for i in s], np.int32)
    offsets = np.r_[0, np.cumsum([len(s) for s in past])].astype(np.int64)
    model = cls(cfg).fit(items, offsets, n_items, np.array(clock))
    width = max(len(s) for s in prefixes)
    padded = np.array([[-1] * (width - len(s)) + s for s in prefixes])
    got = model.raw_scores(padded)
    for row, s in enumerate(prefixes):
        want = reference(model_name, cfg, past, clock, n_items, s)
        assert np.allclose(got[row], want, rtol=1e-9, atol=1e-12), (row, s)
