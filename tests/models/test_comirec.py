"""ComiRec-SA, ComiRec-DR and MIND: hand-checked pieces, the model contract, batched aggregation."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.aggregators import diversity_greedy
from models.batched_aggregators import batched_greedy, exact_candidates
from models.comirec import (
    ComiRecDR,
    ComiRecSA,
    MultiInterestConfig,
    MultiInterestModel,
    dynamic_routing,
    squash,
)
from models.mind import MIND
from models.registry import build_model
from training.comirec.data import TrainingSampler, left_padded_tails
from training.comirec.train import (
    draw_negatives,
    log_expected_count,
    sampled_softmax_loss,
)
from training.data.sessions import Dataset, Sessions
from training.data.textio import offsets_from_lengths

KINDS = [ComiRecSA, ComiRecDR, MIND]


def small(cls: type[MultiInterestModel], **kw: float) -> MultiInterestModel:
    cfg = {"n_items": 30, "dim": 8, "n_interests": 3, "max_len": 5, "seed": 7, **kw}
    return cls(MultiInterestConfig(**cfg)).eval()


def test_squash_by_hand() -> None:
    # z = (3, 4): |z|^2 = 25, so squash = 25/26 * (0.6, 0.8)
    out = squash(torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(out, torch.tensor([[25 / 26 * 0.6, 25 / 26 * 0.8]]))
    assert squash(torch.zeros(1, 2)).abs().max() == 0


def test_attention_masks_padding_to_zero_weight() -> None:
    m = small(ComiRecSA, n_interests=2, max_len=4)
    with torch.no_grad():
        m.w2.weight.zero_()  # all logits equal: uniform weights over the real positions
    items = torch.tensor([[0, 0, 5, 7], [1, 2, 3, 4]])
    mask = torch.tensor([[False, False, True, True], [True, True, True, True]])
    a = m.attention(items, mask)
    torch.testing.assert_close(a[0], torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.5, 0.5], [0.5, 0.5]]))
    torch.testing.assert_close(a[1], torch.full((4, 2), 0.25))


def test_attention_weights_are_a_softmax_over_real_positions_only() -> None:
    m = small(ComiRecSA, max_len=4)
    items = torch.tensor([[9, 9, 5, 7]])
    mask = torch.tensor([[False, False, True, True]])
    a = m.attention(items, mask)[0]
    h = m.embedding(items)[0] + m.position
    logits = m.w2(torch.tanh(m.w1(h)))
    expected = torch.softmax(logits[2:], dim=0)
    torch.testing.assert_close(a[2:], expected)
    assert (a[:2] == 0).all()
    # the padded positions' content does not matter
    other = m.attention(torch.tensor([[1, 2, 5, 7]]), mask)[0]
    torch.testing.assert_close(a, other)


def test_routing_logits_get_no_gradient_and_only_the_last_iteration_backpropagates() -> None:
    torch.manual_seed(0)
    predictions = torch.randn(2, 3, 4, 5, requires_grad=True)
    logits = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    out = dynamic_routing(predictions, mask, logits, iterations=3)
    weights = torch.randn_like(out)
    (out * weights).sum().backward()
    assert logits.grad is None
    # Redo the routing with everything detached, then back-propagate only the final
    # weighted sum: the gradient must be the same.
    with torch.no_grad():
        b = logits.clone()
        keep = mask[:, None, :].float()
        for _ in range(2):
            u = squash(torch.einsum("bkl,bkld->bkd", torch.softmax(b, 1) * keep, predictions))
            b = b + torch.einsum("bkld,bkd->bkl", predictions, u)
        coupling = torch.softmax(b, 1) * keep
    p2 = predictions.detach().clone().requires_grad_(True)
    (squash(torch.einsum("bkl,bkld->bkd", coupling, p2)) * weights).sum().backward()
    torch.testing.assert_close(predictions.grad, p2.grad)
    assert (predictions.grad[0, :, 3] == 0).all()  # a padded behaviour gets nothing


def test_readout_picks_the_interest_with_the_largest_inner_product() -> None:
    m = small(ComiRecSA, dim=2)
    interests = torch.tensor(
        [[[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], [[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]]
    )
    active = torch.ones(2, 3, dtype=torch.bool)
    # target (1, 0.1): products 1, 0.1, 2.2 -> interest 2; target (1, -5): 1, -5, -8 -> interest 0
    target = torch.tensor([[1.0, 0.1], [1.0, -5.0]])
    out = m.readout(interests, active, target)
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0], [1.0, 0.0]]))


def test_mind_label_aware_attention_by_hand() -> None:
    m = small(MIND, dim=2, n_interests=2)
    interests = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    target = torch.tensor([[1.0, 1.0]])  # products 1 and 2; p = 1: softmax(1, 2)
    w = 1 / (1 + math.e)
    out = m.readout(interests, torch.ones(1, 2, dtype=torch.bool), target)
    torch.testing.assert_close(out, torch.tensor([[w, 2 * (1 - w)]]))
    only_first = m.readout(interests, torch.tensor([[True, False]]), target)
    torch.testing.assert_close(only_first, torch.tensor([[1.0, 0.0]]))


@pytest.mark.parametrize(("n", "k"), [(1, 1), (2, 1), (3, 1), (4, 2), (7, 2), (8, 3), (16, 4)])
def test_mind_interest_count_follows_log2_of_history(n: int, k: int) -> None:
    m = small(MIND, n_interests=4, max_len=20)
    mask = torch.arange(20)[None, :] >= 20 - n
    assert m.active_interests(mask).sum().item() == k


@pytest.mark.parametrize("cls", KINDS)
def test_only_the_last_l_items_matter_and_empty_state_is_finite(cls: type) -> None:
    m = small(cls)
    a = m.encode(torch.tensor([[1, 2, 3, 4, 5, 6, 7]]))
    b = m.encode(torch.tensor([[9, 9, 3, 4, 5, 6, 7]]))
    torch.testing.assert_close(a, b)
    assert torch.isfinite(m.interests(m.init_state())).all()


def test_routing_std_defaults_to_normal_for_dr_and_mind() -> None:
    assert small(ComiRecDR).hyperparameters()["routing_std"] == 1.0
    assert small(MIND).hyperparameters()["routing_std"] == 1.0
    assert small(ComiRecDR, routing_std=0.5).hyperparameters()["routing_std"] == 0.5
    assert (small(ComiRecDR, routing_std=0.0).routing_logits == 0).all()
    assert small(ComiRecDR).routing_logits.std() > 0.5


def test_dr_routing_from_zeros_is_deterministic_in_training_too() -> None:
    m = small(ComiRecDR, routing_std=0.0).train()
    prefix = torch.tensor([[1, 2, 3, 4, 5]])
    torch.testing.assert_close(m.encode(prefix), m.encode(prefix))


def test_dr_routing_with_routing_std_is_random_in_training_and_fixed_in_evaluation() -> None:
    m = small(ComiRecDR, routing_std=1.0)
    prefix = torch.tensor([[1, 2, 3, 4, 5]])
    torch.testing.assert_close(m.encode(prefix), m.encode(prefix))
    m.train()
    assert not torch.allclose(m.encode(prefix), m.encode(prefix))


def test_dr_window_is_realigned_oldest_first() -> None:
    items = torch.tensor([[0, 0, 5, 7], [1, 2, 3, 4], [0, 0, 0, 0]])
    mask = torch.tensor([[False, False, True, True], [True] * 4, [False] * 4])
    aligned, keep = ComiRecDR.oldest_first(items, mask)
    assert aligned.tolist() == [[5, 7, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]]
    assert keep.tolist() == [[True, True, False, False], [True] * 4, [False] * 4]


def test_dr_maps_one_matrix_per_position_and_interest() -> None:
    m = small(ComiRecDR, dim=2, n_interests=2, max_len=3, routing_std=0.0)
    with torch.no_grad():
        m.embedding.weight[4] = torch.tensor([1.0, 2.0])
        m.embedding.weight[6] = torch.tensor([3.0, -1.0])
        m.position_maps.zero_()
        m.position_maps[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # identity
        m.position_maps[0, 1] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # swap
        m.position_maps[1, 0] = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # 2 x first coordinate
        m.position_maps[1, 1] = torch.tensor([[0.0, 0.0], [1.0, 1.0]])  # (0, sum)
    p = m.predictions(torch.tensor([[4, 6, 0]]))[0]  # [K, L, d]
    torch.testing.assert_close(p[0, 0], torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(p[1, 0], torch.tensor([2.0, 1.0]))
    torch.testing.assert_close(p[0, 1], torch.tensor([6.0, 0.0]))
    torch.testing.assert_close(p[1, 1], torch.tensor([0.0, 2.0]))
    # Zero logits, one iteration: couplings 1/K = 0.5 at the two real positions (the third
    # is padding), so interest k is squash(0.5 * (p[k, 0] + p[k, 1])).
    window = torch.tensor([[-1, 4, 6]])  # left-padded: realigned to (4, 6, pad)
    one_pass = ComiRecDR(replace(m.config, routing_iterations=1)).eval()
    one_pass.load_state_dict(m.state_dict())
    with torch.no_grad():
        one_pass.position_maps[2] = 100.0  # the padded position's map must not matter
    got = one_pass.encode(window)[0]
    expected = squash(torch.tensor([[3.5, 1.0], [1.0, 1.5]]))
    torch.testing.assert_close(got, expected)


def test_an_old_shared_map_dr_checkpoint_fails_with_a_clear_error() -> None:
    m = small(ComiRecDR)
    weights = m.checkpoint_weights()
    weights["maps"] = torch.zeros(3, 8, 8)
    del weights["position_maps"]
    with pytest.raises(ValueError, match="earlier form"):
        build_model("comirec-dr", m.hyperparameters(), weights)


def test_sampled_softmax_by_hand() -> None:
    # Two items with P = (0.75, 0.25); a draw of n = 1 sample. The loss of a user that
    # scores the target 2 and the sampled negative 1 is -log softmax over the corrected
    # logits (2 - log(P_t), 1 - log(P_s)).
    probs = torch.tensor([0.75, 0.25])
    user = torch.tensor([[2.0, 1.0]])
    items = torch.eye(2)
    gen = torch.Generator().manual_seed(3)
    sampled = torch.multinomial(
        probs, 1, replacement=True, generator=torch.Generator().manual_seed(3)
    )
    loss = sampled_softmax_loss(user, torch.tensor([0]), items, 1, probs, gen)
    if sampled.item() == 0:  # an accidental hit is masked out: the loss is zero
        assert loss.item() == pytest.approx(0.0, abs=1e-6)
    else:
        t, s = 2 - math.log(0.75), 1 - math.log(0.25)
        assert loss.item() == pytest.approx(-t + math.log(math.exp(t) + math.exp(s)), rel=1e-5)


def test_distinct_negatives_by_hand() -> None:
    # Two items, two distinct draws: both rows come out, in order of first appearance,
    # and the tries are the draws up to the second one's first appearance.
    probs = torch.tensor([0.75, 0.25])
    for seed in range(20):
        rows, tries = draw_negatives(probs, 2, True, torch.Generator().manual_seed(seed))
        stream = torch.multinomial(
            probs, 4, replacement=True, generator=torch.Generator().manual_seed(seed)
        ).tolist()
        assert sorted(rows.tolist()) == [0, 1]
        assert rows[0].item() == stream[0]
        if 1 - stream[0] in stream:  # both within the first chunk of 2n = 4 draws
            assert tries == stream.index(1 - stream[0]) + 1
        else:
            assert tries > 4


def test_expected_counts_by_hand() -> None:
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    # with replacement: n p
    assert torch.exp(log_expected_count(p, 2, 2)).tolist() == pytest.approx([1.5, 0.5])
    # two distinct rows found in three tries: 1 - (1 - p)^3
    assert torch.exp(log_expected_count(p, 2, 3)).tolist() == pytest.approx(
        [1 - 0.25**3, 1 - 0.75**3]
    )


@settings(max_examples=30, deadline=None)
@given(
    n_items=st.integers(2, 60),
    share=st.floats(0.01, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_distinct_negatives_are_distinct(n_items: int, share: float, seed: int) -> None:
    probs = torch.log1p(1.0 / torch.arange(1, n_items + 1, dtype=torch.float64)).float()
    probs /= probs.sum()
    n = max(1, int(share * n_items))
    rows, tries = draw_negatives(probs, n, True, torch.Generator().manual_seed(seed))
    assert len(rows) == n == len(set(rows.tolist()))
    assert rows.min() >= 0 and rows.max() < n_items
    assert tries >= n


def test_too_many_distinct_negatives_fail_clearly() -> None:
    with pytest.raises(ValueError, match="distinct"):
        draw_negatives(torch.tensor([0.5, 0.5]), 3, True, torch.Generator())


def test_sampled_softmax_with_distinct_negatives_by_hand() -> None:
    # Both items drawn; the target's own draw is an accidental hit and masked out, so
    # the loss is the softmax over (2 - log Q_0, 1 - log Q_1), Q = 1 - (1 - p)^tries.
    probs = torch.tensor([0.75, 0.25])
    user = torch.tensor([[2.0, 1.0]])
    _, tries = draw_negatives(probs, 2, True, torch.Generator().manual_seed(5))
    loss = sampled_softmax_loss(
        user, torch.tensor([0]), torch.eye(2), 2, probs, torch.Generator().manual_seed(5), True
    )
    t = 2 - math.log(1 - 0.25**tries)
    s = 1 - math.log(1 - 0.75**tries)
    assert loss.item() == pytest.approx(-t + math.log(math.exp(t) + math.exp(s)), rel=1e-5)


def test_sampler_cut_and_window() -> None:
    seqs = Sessions(
        items=np.arange(16, dtype=np.int32), offsets=offsets_from_lengths(np.array([6, 10]))
    )
    tails = left_padded_tails(seqs, np.array([2, 9]), np.array([0, 1]), 4)
    assert tails.tolist() == [[-1, -1, 0, 1], [11, 12, 13, 14]]
    sampler = TrainingSampler(seqs, np.array([0, 1]), max_len=4, seed=0)
    for _ in range(20):
        inputs, targets = sampler.batch(2)
        for row, t in zip(inputs, targets, strict=True):
            user_start = 0 if t < 6 else 6
            k = t - user_start
            assert 4 <= k <= (5 if user_start == 0 else 9)
            expected = [x for x in range(t - 4, t) if x >= user_start]
            assert [x for x in row if x >= 0] == expected


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(1, 4),
    k=st.integers(1, 3),
    n_items=st.integers(3, 25),
    per_interest=st.integers(1, 8),
    lam=st.sampled_from([0.0, 0.1, 0.5, 2.0]),
)
def test_batched_greedy_equals_the_per_user_aggregator(
    seed: int, users: int, k: int, n_items: int, per_interest: int, lam: float
) -> None:
    rng = np.random.default_rng(seed)
    # small integer scores make ties common, which tests the tie-breaking
    scores = rng.integers(0, 4, size=(users, k, n_items)).astype(np.float32)
    cats = rng.integers(-1, 3, size=n_items)
    n = int(rng.integers(1, n_items + 1))
    cand = exact_candidates(torch.from_numpy(scores), per_interest)
    lists = batched_greedy(cand, n, torch.from_numpy(cats), lam).numpy()
    for u in range(users):
        top = np.argsort(-scores[u], axis=1, kind="stable")[:, :per_interest]
        expected = diversity_greedy(np.take_along_axis(scores[u], top, 1), top, n, cats, lam).items
        got = lists[u][lists[u] >= 0]
        assert got.tolist() == expected.tolist()


@pytest.mark.parametrize("cls", [ComiRecSA, ComiRecDR, MIND])
def test_training_runs_on_the_chosen_device_and_returns_to_the_cpu(cls, one_torch_thread) -> None:
    """The device path (inputs, sampled negatives, routing draws, evaluation) on the CPU.

    On a GPU machine the same code picks ``cuda``; here an explicit ``cpu`` must
    give the very same model as the default choice.
    """
    from training.comirec.data import prepare
    from training.comirec.train import TrainConfig, train
    from training.data.demo import demo_dataset

    ds = demo_dataset()
    seq = Dataset(name="demo", kind="sequence", items=ds.items, parts={"all": ds.parts["train"]})
    data = prepare(seq, seed=0, min_count=5)
    cfg = TrainConfig(max_iter=6, eval_every=3, batch_size=16, seed=0)
    models = []
    for device in (None, "cpu"):
        model = cls(MultiInterestConfig(n_items=data.n_items, dim=8, n_interests=2, max_len=5))
        result = train(model, data, cfg, progress=False, device=device)
        assert result.iterations == 6
        models.append(model)
    a, b = (m.state_dict() for m in models)
    for name in a:
        assert a[name].device.type == "cpu"
        assert torch.equal(a[name], b[name]), name


def test_sa_numpy_interests_follow_the_weights_and_match_the_batched_pass() -> None:
    """The serving fast path of ComiRec-SA reads views of the parameters, never a stale copy."""
    model = ComiRecSA(MultiInterestConfig(n_items=30, dim=8, n_interests=3, max_len=5)).eval()
    state = model.init_state()
    assert torch.equal(model.interests(state), torch.zeros(3, 8))  # no click yet
    for item in (4, 9, 4, 17, 2, 11):  # more clicks than the window holds
        state = model.step(state, item)
    batched = model.encode(torch.tensor([[4, 9, 4, 17, 2, 11]]))[0]
    torch.testing.assert_close(model.interests(state), batched, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        model.w1.weight.mul_(-2.0)  # an in-place update, as training does
    batched = model.encode(torch.tensor([[4, 9, 4, 17, 2, 11]]))[0]
    torch.testing.assert_close(model.interests(state), batched, atol=1e-6, rtol=1e-5)


def test_validation_on_a_fixed_user_sample(monkeypatch) -> None:
    """``valid_users`` caps validation to one random subset, the same at every evaluation."""
    from training.comirec import train as train_module
    from training.comirec.data import prepare
    from training.comirec.train import TrainConfig, train
    from training.data.demo import demo_dataset

    ds = demo_dataset()
    seq = Dataset(name="demo", kind="sequence", items=ds.items, parts={"all": ds.parts["train"]})
    data = prepare(seq, seed=0, min_count=5)
    seen: list[list[int]] = []
    real = train_module.evaluate_users

    def spy(model, data, users, *args, **kwargs):
        seen.append(sorted(users.tolist()))
        return real(model, data, users, *args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate_users", spy)
    model = ComiRecSA(MultiInterestConfig(n_items=data.n_items, dim=8, n_interests=2, max_len=5))
    train(model, data, TrainConfig(max_iter=4, eval_every=2, valid_users=7, seed=3), progress=False)
    assert len(seen) == 2 and seen[0] == seen[1] and len(seen[0]) == 7
    assert set(seen[0]) <= set(data.split.valid.tolist())
    seen.clear()
    train(model, data, TrainConfig(max_iter=2, eval_every=2), progress=False)  # 0 = all
    assert seen == [sorted(data.split.valid.tolist())]
    with pytest.raises(ValueError):
        TrainConfig(valid_users=-1)
