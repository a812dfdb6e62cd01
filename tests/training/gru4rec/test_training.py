"""GRU4Rec training: session-parallel batches, the sample store, the optimizer, the loop."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from models.gru4rec import GRU4Rec
from models.gru4rec_loss import sampled_loss
from models.registry import build_model
from tests.conftest import needs_shared_data
from training.checkpoint import current_version, load_checkpoint
from training.data.sessions import Dataset, ItemTable, Sessions
from training.evaluation import NextItemTask, evaluate_next_item
from training.gru4rec import fused_adagrad
from training.gru4rec.batching import build_schedule
from training.gru4rec.evaluate import evaluate_sessions
from training.gru4rec.export import export_model
from training.gru4rec.optimizer import AdagradMomentum
from training.gru4rec.params import GRU4RecParams, load_params
from training.gru4rec.sampling import SampleStore, guide_table, guided_search
from training.gru4rec.train import train
from training.params import ParamError, bundled_names

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sessions(rows: list[list[int]], first_times: list[float] | None = None) -> Sessions:
    offsets = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    times = None
    if first_times is not None:
        times = np.concatenate(
            [t + np.arange(len(r)) for r, t in zip(rows, first_times, strict=True)]
        )
    return Sessions(items=np.concatenate(rows).astype(np.int32), offsets=offsets, times=times)


def test_session_parallel_schedule_hand_made() -> None:
    # A = 0 1 2, B = 3 4, C = 5 6 7, in this time order; two slots.
    sched = build_schedule(_sessions([[0, 1, 2], [3, 4], [5, 6, 7]], [0.0, 1.0, 2.0]), 2)
    # slot 0 runs A for two steps; slot 1 runs B for one step, then C (reset) for two;
    # at step 2 slot 0 has no session left and drops out.
    assert sched.inputs[:, 1].tolist() == [3, 5, 6]
    assert sched.targets[:, 1].tolist() == [4, 6, 7]
    assert sched.inputs[:2, 0].tolist() == [0, 1]
    assert sched.targets[:2, 0].tolist() == [1, 2]
    assert sched.keep[:, :, 0].tolist() == [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    assert sched.active.tolist() == [[True, True], [True, True], [False, True]]
    assert sched.n_full == 2 and sched.n_events == 5


def test_schedule_orders_sessions_by_first_event_time() -> None:
    # C starts before B, so C takes the second slot first; length-1 sessions are skipped.
    # A and C end together: B goes to the lower slot.
    sched = build_schedule(_sessions([[0, 1, 2], [3, 4], [9], [5, 6, 7]], [0.0, 5.0, 0.5, 1.0]), 2)
    assert sched.inputs[:, 0].tolist() == [0, 1, 3]
    assert sched.inputs[:2, 1].tolist() == [5, 6]
    assert sched.keep[:, 0, 0].tolist() == [0.0, 1.0, 0.0]
    assert sched.active[2].tolist() == [True, False]
    assert sched.n_events == 5
    file_order = build_schedule(
        _sessions([[0, 1, 2], [3, 4], [5, 6, 7]], [0.0, 5.0, 1.0]), 2, time_sort=False
    )
    assert file_order.inputs[0].tolist() == [0, 3]


def test_hidden_state_resets_when_a_slot_takes_a_new_session() -> None:
    # Train one step with lr ~ 0 and compare the states the loop would carry against
    # clicking each session alone from a zero state.
    torch.manual_seed(0)
    model = GRU4Rec(n_items=8, layers=(4,)).eval()
    sched = build_schedule(_sessions([[0, 1, 2], [3, 4], [5, 6, 7]], [0.0, 1.0, 2.0]), 2)
    hidden = [torch.zeros(2, 4)]
    seen = []
    for t in range(sched.n_steps):
        hidden = [h * sched.keep[t] for h in hidden]
        _, hidden = model.hidden_step(model.input_table[sched.inputs[t]].detach(), hidden)
        seen.append(hidden[0].detach().clone())
    # slot 1 at step 1 clicked 5 as the first item of C: equal to a fresh session's state
    fresh = model.step(model.init_state(), 5)
    torch.testing.assert_close(seen[1][1], fresh)
    fresh = model.step(fresh, 6)
    torch.testing.assert_close(seen[2][1], fresh)


def test_sample_store_distribution_and_refill() -> None:
    support = np.array([1.0, 4.0, 0.0, 9.0])  # alpha 0.5 -> weights 1 : 2 : 0 : 3
    gen = torch.Generator().manual_seed(1)
    store = SampleStore(support, n_sample=100, alpha=0.5, store_size=2_000, generator=gen)
    draws = torch.cat([store.next() for _ in range(600)])
    assert store.refills == 30  # 20 rows per refill, never one draw per step
    freq = np.bincount(draws.numpy(), minlength=4) / len(draws)
    assert freq[2] == 0.0
    np.testing.assert_allclose(freq, [1 / 6, 2 / 6, 0.0, 3 / 6], atol=0.01)
    uniform = SampleStore(support, n_sample=50, alpha=0.0, store_size=100_000, generator=gen)
    freq0 = np.bincount(uniform.next().numpy(), minlength=4)
    assert freq0[2] == 0  # unseen items are never drawn, even when uniform


def test_guided_search_hand_checked() -> None:
    # weights 1 : 2 : 0 : 3 -> cdf 1/6, 3/6, 3/6, 1; 4 items -> 32 buckets
    cdf = torch.tensor([1 / 6, 0.5, 0.5, 1.0], dtype=torch.float64)
    bits, guide = guide_table(cdf)
    assert bits == 5
    assert guide[:6].tolist() == [0, 0, 0, 0, 0, 0]  # 5/32 < 1/6 <= 6/32
    assert guide[6].item() == 1 and guide[16].item() == 3  # u = 1/2 lands past item 2 (zero weight)
    u = torch.tensor([0.0, 0.1, 1 / 6, 0.17, 0.49, 0.5, 0.75, 1 - 2**-53], dtype=torch.float64)
    assert guided_search(cdf, guide, bits, u).tolist() == [0, 0, 1, 1, 1, 3, 3, 3]


@settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.sampled_from([0.0, 0.001, 0.5, 1.0, 3.0, 1000.0]), min_size=1, max_size=60),
    seed=st.integers(0, 2**31 - 1),
)
def test_guided_search_equals_binary_search(weights: list[float], seed: int) -> None:
    w = np.asarray(weights)
    if w.sum() == 0:
        w[0] = 1.0
    cdf = np.cumsum(w) / w.sum()
    cdf[-1] = 1.0
    cdf_t = torch.from_numpy(cdf)
    bits, guide = guide_table(cdf_t)
    g = torch.Generator().manual_seed(seed)
    edges = torch.arange(1 << bits, dtype=torch.float64) / (1 << bits)  # every bucket's left edge
    inner = cdf_t[:-1][cdf_t[:-1] < 1.0]  # the CDF steps themselves (rounding can reach 1)
    u = torch.cat([torch.rand(2_000, dtype=torch.float64, generator=g), edges, inner])
    expected = torch.searchsorted(cdf_t, u, right=True, out_int32=True)
    assert torch.equal(guided_search(cdf_t, guide, bits, u), expected)


@pytest.mark.parametrize("fused", [True, False], ids=["kernels", "torch-ops"])
def test_adagrad_momentum_hand_checked(fused: bool) -> None:
    p = torch.nn.Parameter(torch.tensor([1.0]))
    table = torch.nn.Parameter(torch.zeros(3, 1))
    opt = AdagradMomentum([p], [table], lr=0.1, momentum=0.5, fused=fused)
    for _ in range(2):
        p.grad = torch.tensor([2.0])
        opt.step_dense()
    # step 1: acc 4, v = -0.1*2/2 = -0.1; step 2: acc 8, v = -0.05 - 0.2/sqrt(8) = -0.120711
    assert p.item() == pytest.approx(1.0 - 0.1 - 0.120711, abs=1e-5)
    opt.step_rows(table, torch.tensor([0, 2]), torch.tensor([[2.0], [1.0]]))
    opt.step_rows(table, torch.tensor([0]), torch.tensor([[2.0]]))
    # row 0 as above; row 2 one step: -0.1*1/1; row 1 untouched; row 2's momentum waits
    assert table[:, 0].tolist() == pytest.approx([-0.220711, 0.0, -0.1], abs=1e-5)


@pytest.mark.parametrize("fused", [True, False], ids=["kernels", "torch-ops"])
def test_adagrad_without_momentum_hand_checked(fused: bool) -> None:
    p = torch.nn.Parameter(torch.tensor([[1.0, -1.0]]))
    bias = torch.nn.Parameter(torch.zeros(4))  # a 1-D table, as the output biases
    opt = AdagradMomentum([p], [bias], lr=0.5, momentum=0.0, fused=fused)
    for _ in range(2):
        p.grad = torch.tensor([[3.0, 0.0]])
        opt.step_dense()
    # acc 9 then 18: 1 - 0.5*3/3 - 0.5*3/sqrt(18) = 0.146447; a zero gradient moves nothing
    assert p.detach()[0].tolist() == pytest.approx([0.146447, -1.0], abs=1e-5)
    opt.step_rows(bias, torch.tensor([1, 3]), torch.tensor([4.0, -2.0]))
    assert bias.tolist() == pytest.approx([0.0, -0.5, 0.0, 0.5], abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    width=st.integers(1, 70),
    n_rows=st.integers(1, 40),
    momentum=st.sampled_from([0.0, 0.15, 0.9]),
    steps=st.integers(1, 4),
)
def test_adagrad_kernels_match_torch_ops(
    seed: int, width: int, n_rows: int, momentum: float, steps: int
) -> None:
    """The one-pass kernels and PyTorch's ops apply the same update, to float32 rounding."""
    g = torch.Generator().manual_seed(seed)
    n_items = 50

    def tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        torch.manual_seed(seed)
        return torch.randn(width, 3), torch.randn(n_items, width), torch.randn(n_items)

    a, b = tensors(), tensors()
    opts = [
        AdagradMomentum([t[0]], [t[1], t[2]], lr=0.07, momentum=momentum, fused=fused)
        for t, fused in ((a, True), (b, False))
    ]
    for _ in range(steps):
        rows = torch.randperm(n_items, generator=g)[:n_rows]  # distinct, unsorted
        grads = (torch.randn(width, 3, generator=g), torch.randn(n_rows, width, generator=g))
        bias_grad = torch.randn(n_rows, generator=g) * 10
        for (dense, table, bias), opt in zip((a, b), opts, strict=True):
            dense.grad = grads[0].clone()
            opt.step_dense()
            opt.step_rows(table, rows, grads[1])
            opt.step_rows(bias, rows, bias_grad)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_adagrad_falls_back_to_torch_ops_where_kernels_cannot_write() -> None:
    """Non-contiguous or float64 tensors take PyTorch's ops: numpy views would copy them."""
    base = torch.zeros(3, 4)
    view = base.T  # non-contiguous: a numpy reshape of it would write into a copy
    doubles = torch.zeros(4, 2, dtype=torch.float64)
    opt = AdagradMomentum([view], [doubles], lr=1.0, momentum=0.0)
    view.grad = torch.ones(4, 3)
    opt.step_dense()
    opt.step_rows(doubles, torch.tensor([2]), torch.ones(1, 2, dtype=torch.float64))
    assert torch.allclose(base, torch.full((3, 4), -1.0), atol=1e-5)
    assert doubles[2].tolist() == pytest.approx([-1.0, -1.0], abs=1e-5)
    assert doubles.abs().sum().item() == pytest.approx(2.0, abs=1e-5)
    # a tensor off the CPU (as on a GPU) never reaches the kernels
    assert not opt._uses_kernels(torch.empty(4, 2, device="meta"))
    assert opt._uses_kernels(torch.empty(4, 2)) and not opt._uses_kernels(view)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_updates_with_torch_ops_after_the_parent_ran_the_kernels() -> None:
    """numba's OpenMP layer would end such a child at its first kernel call."""
    table = torch.zeros(20, 8)
    opt = AdagradMomentum([], [table], lr=0.5, momentum=0.5)
    opt.step_rows(table, torch.arange(10), torch.ones(10, 8))  # the parent runs the kernels
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its update went through and is right
        ok = False
        try:
            opt.step_rows(table, torch.arange(10), torch.ones(10, 8))
            # step 1: acc 1, v = -0.5; step 2: acc 2, v = -0.25 - 0.5/sqrt(2): -1.10355 in all
            ok = abs(float(table[3, 5]) + 1.103553) < 1e-5 and not fused_adagrad.usable_here()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fused_adagrad.usable_here()


def _cyclic_data(n_items: int = 12, n_sessions: int = 120, seed: int = 0) -> Sessions:
    """Sessions walking i -> i+1 (mod n): a next item a trained GRU4Rec must get right."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_sessions):
        start, length = rng.integers(n_items), rng.integers(3, 7)
        rows.append([(start + k) % n_items for k in range(length)])
    return _sessions(rows, list(np.arange(n_sessions, dtype=float)))


TINY = dict(layers=(16,), batch_size=8, n_sample=6, n_epochs=4, learning_rate=0.1)


@pytest.mark.parametrize(
    "extra",
    [
        dict(loss="cross-entropy", logq=1.0, sample_alpha=0.5),
        dict(loss="bpr-max", elu_param=1.0, bpreg=0.5, momentum=0.3, dropout_p_embed=0.1),
        dict(loss="top1-max", constrained_embedding=False, embedding=8),
        dict(loss="bpr", constrained_embedding=False, embedding=0, n_sample=0),
        dict(loss="top1", layers=(12, 12), dropout_p_hidden=0.1),
        dict(loss="cross-entropy", smoothing=0.1, constrained_embedding=False, embedding=8),
    ],
)
def test_training_learns_a_simple_pattern(extra: dict) -> None:
    data = _cyclic_data()
    params = GRU4RecParams(**{**TINY, **extra})
    result = train(data, 12, params, progress=False)
    task = NextItemTask.from_sessions(_cyclic_data(seed=1))
    metrics, _ = evaluate_sessions(result.model, task, ks=(1, 3), progress=False)
    assert metrics["recall@3"] > 0.9, metrics
    assert result.epochs[-1].loss < result.epochs[0].loss


def test_fixed_seed_repeats_the_run() -> None:
    data = _cyclic_data()
    params = GRU4RecParams(**TINY, dropout_p_hidden=0.2, momentum=0.2)
    a = train(data, 12, params, progress=False)
    b = train(data, 12, params, progress=False)
    assert a.step_losses == b.step_losses
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(v, b.model.state_dict()[k], atol=0, rtol=0)
    c = train(data, 12, params.replace(seed=7), progress=False)
    assert c.step_losses != a.step_losses


def test_session_walk_evaluation_equals_prefix_protocol() -> None:
    data = _cyclic_data()
    result = train(data, 12, GRU4RecParams(**{**TINY, "n_epochs": 1}), progress=False)
    task = NextItemTask.from_sessions(_cyclic_data(seed=2))
    walked, _ = evaluate_sessions(result.model, task, ks=(1, 5), progress=False)
    prefixed, _ = evaluate_next_item(result.model, task, ks=(1, 5), progress=False)
    assert walked == pytest.approx(prefixed, abs=1e-9)


def test_metrics_by_repeat_split_the_whole() -> None:
    """The repeat and new groups partition the targets: their weighted means are the whole."""
    data = _cyclic_data()
    result = train(data, 12, GRU4RecParams(**{**TINY, "n_epochs": 1}), progress=False)
    walks = _cyclic_data(seed=2)
    # Each walk, then its first item again: one re-click per session.
    rows = [[*walks.session(i).tolist(), int(walks.session(i)[0])] for i in range(40)]
    task = NextItemTask.from_sessions(_sessions(rows, list(np.arange(40, dtype=float))))
    whole, _ = evaluate_sessions(result.model, task, ks=(1, 5), progress=False)
    split, _ = evaluate_sessions(result.model, task, ks=(1, 5), progress=False, by_repeat=True)
    share = split["repeat_share"]
    assert share == pytest.approx(task.repeats().mean()) and 0 < share < 1
    for key, value in whole.items():
        assert split[key] == value
        mixed = share * split[f"{key}_repeat"] + (1 - share) * split[f"{key}_new"]
        assert mixed == pytest.approx(value, abs=1e-12)


def test_params_files_and_validation() -> None:
    assert {"diginetica_bprmax_shared_best", "yoochoose_xe_shared_best"} <= set(bundled_names())
    assert len(bundled_names()) >= 6
    p = load_params("diginetica_bprmax_shared_best", "layers=[100],n_epochs=3")
    assert p.layers == (100,) and p.n_epochs == 3 and p.loss == "bpr-max"
    assert p.activation == "elu-1" and p.bpreg == 0.9 and p.momentum == 0.15
    assert load_params("layers=100/100,embedding=layersize").embedding == 100
    with pytest.raises(ParamError, match="unknown gru4rec parameter"):
        load_params("hidden=3")
    with pytest.raises(ParamError, match="unknown loss"):
        load_params("loss=hinge")
    with pytest.raises(ParamError, match="smoothing"):
        load_params("loss=bpr-max,smoothing=0.1")


def test_train_and_export_writes_a_servable_checkpoint(tmp_path) -> None:
    data = _cyclic_data()
    ds = Dataset(
        name="cyclic",
        kind="session",
        items=ItemTable(ids=np.arange(100, 112)),
        parts={"train": data, "test": _cyclic_data(seed=3)},
    )
    out = export_model(ds, tmp_path, GRU4RecParams(**TINY), activate=True, progress=False, ks=(3,))
    assert current_version(tmp_path) == out.path.name
    ckpt = load_checkpoint(out.path)
    assert ckpt.kind == "gru4rec" and (out.path / "training.png").stat().st_size > 1000
    assert ckpt.items["popularity"].sum() == data.n_events
    model = build_model(ckpt.kind, ckpt.hyperparameters, ckpt.weights)
    task = NextItemTask.from_dataset(ds)
    again, _ = evaluate_sessions(model, task, ks=(3,), progress=False)
    assert again == pytest.approx(out.metrics) and out.metrics["recall@3"] > 0.9
    assert [e["epoch"] for e in ckpt.manifest["training"]["epochs"]] == [1, 2, 3, 4]


def _reference_steps(model: GRU4Rec, p: GRU4RecParams, batches: list) -> None:
    """The textbook form of the official step: autograd through the full tables, then
    Adagrad + momentum on every dense weight and on the touched rows of each table."""
    params = dict(model.named_parameters())
    acc = {k: torch.zeros_like(v) for k, v in params.items()}
    mom = {k: torch.zeros_like(v) for k, v in params.items()}
    hidden = [torch.zeros(len(batches[0][0]), h) for h in model.layers]
    for x, y in batches:
        top, hidden = model.hidden_step(model.input_table[x], hidden)
        scores = top @ model.Wy[y].T + model.By[y]
        loss = sampled_loss(p.loss, scores, final_act=p.activation, bpreg=p.bpreg) / p.batch_size
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
        hidden = [h.detach() for h in hidden]
        touched = {"Wy": torch.unique(y), "By": torch.unique(y)}
        input_name = next(k for k, v in params.items() if v is model.input_table)
        touched[input_name] = torch.unique(torch.cat([x, touched.get(input_name, x)]))
        with torch.no_grad():
            for k, w in params.items():
                rows = touched.get(k, torch.arange(w.shape[0]))
                g = grads[k][rows]
                acc[k][rows] += g * g
                mom[k][rows] = p.momentum * mom[k][rows] - p.learning_rate * g / torch.sqrt(
                    acc[k][rows] + 1e-6
                )
                w[rows] += mom[k][rows]


@pytest.mark.parametrize(
    "embedding",
    [{}, {"constrained_embedding": False, "embedding": 5}, {"constrained_embedding": False}],
    ids=["shared", "separate", "one-hot"],
)
def test_train_step_equals_the_textbook_step(embedding: dict) -> None:
    from training.gru4rec.train import TrainStep

    p = GRU4RecParams(
        loss="bpr-max",
        layers=(6,),
        batch_size=4,
        momentum=0.4,
        learning_rate=0.2,
        n_sample=5,
        **embedding,
    )
    torch.manual_seed(5)
    fast = GRU4Rec(9, p.layers, p.embedding, p.constrained_embedding)
    slow = GRU4Rec(9, p.layers, p.embedding, p.constrained_embedding)
    slow.load_state_dict(fast.state_dict())
    gen = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(3):  # repeated items inside a step on purpose (inputs, targets, samples)
        x = torch.randint(0, 9, (4,), generator=gen)
        batches.append((x, torch.randint(0, 9, (9,), generator=gen)))
    step = TrainStep(fast, p, np.ones(9))
    hidden = [torch.zeros(4, 6)]
    for x, y in batches:
        _, hidden = step(x, y, hidden)
    _reference_steps(slow, p, batches)
    # float32 sums in another order: Adagrad's 1/sqrt(acc) magnifies them on rarely touched rows
    for k, v in slow.state_dict().items():
        torch.testing.assert_close(fast.state_dict()[k], v, atol=1e-5, rtol=1e-4)


def test_merge_rows_sums_a_rows_gradients_into_one_entry_hand_checked() -> None:
    from training.gru4rec.train import _merge_rows

    table, bias = torch.zeros(6, 2), torch.zeros(6)
    out_grad = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    merged = _merge_rows(
        [
            (table, torch.tensor([1, 3, 5]), out_grad),
            (table, torch.tensor([0, 3]), torch.tensor([[10.0, 20.0], [30.0, 40.0]])),
            (bias, torch.tensor([1]), torch.tensor([7.0])),
            (table, torch.tensor([5]), torch.tensor([[0.5, 0.5]])),  # only a row held already
        ]
    )
    assert [(t is table, r.tolist()) for t, r, _ in merged] == [
        (True, [1, 3, 5]),
        (True, [0]),
        (False, [1]),
    ]
    assert merged[0][2].tolist() == [[1.0, 1.0], [32.0, 42.0], [3.5, 3.5]]
    assert merged[1][2].tolist() == [[10.0, 20.0]]


def test_search_spaces_are_the_official_ones() -> None:
    from training.gru4rec.tune import load_space

    bpr = {d.name: d for d in load_space("gru4rec_bprmax")}
    assert set(bpr) == {
        "layers", "batch_size", "learning_rate", "dropout_p_embed", "dropout_p_hidden",
        "momentum", "sample_alpha", "bpreg", "elu_param",
    }  # fmt: skip
    assert (bpr["layers"].low, bpr["layers"].high, bpr["layers"].step) == (64, 512, 32)
    assert bpr["elu_param"].values == (0.5, 1.0, 0.0)
    assert {d.name for d in load_space("gru4rec_xe")} == set(bpr) - {"bpreg", "elu_param"}
    with pytest.raises(ParamError, match="no search space"):
        load_space("nope")


def _cyclic_dataset() -> Dataset:
    """Cyclic training sessions; the test part would score 0, so a search must never read it."""
    return Dataset(
        name="cyclic",
        kind="session",
        items=ItemTable(ids=np.arange(12)),
        parts={"train": _cyclic_data(n_sessions=200), "test": _sessions([[11, 11, 11]])},
    )


def _tune_cyclic(
    n_epochs: int, n_trials: int, low: float = 0.05, step: float | None = 0.05, **options
):
    """The search over learning_rate in [low, 0.2] on the cyclic data; ``options`` go to tune."""
    from training.gru4rec.tune import Dimension, tune

    space = [Dimension("learning_rate", "float", low, 0.2, step)]
    options.setdefault("metric", "mrr@20")  # recall@20 is 1 for any ranking of 12 items
    return tune(_cyclic_dataset(), space, {**TINY, "n_epochs": n_epochs}, n_trials, **options)


def test_tune_searches_on_a_split_of_the_training_data() -> None:
    seen = []
    study, how = _tune_cyclic(n_epochs=2, n_trials=2, on_trial=lambda *a: seen.append(a))
    assert "last 10%" in how and len(seen) == 2
    assert study.best_value > 0.5 and 0.05 <= study.best_params["learning_rate"] <= 0.2


def test_tune_runs_queued_points_first_and_keeps_each_trials_best_epoch() -> None:
    epochs = []
    study, _ = _tune_cyclic(
        n_epochs=3,
        n_trials=2,
        enqueue=[{"learning_rate": 0.15}, {"learning_rate": 0.05}],
        on_epoch=lambda number, stats: epochs.append((number, stats.epoch, stats.metrics)),
    )
    assert [t.params["learning_rate"] for t in study.trials] == [0.15, 0.05]
    assert [(n, e) for n, e, _ in epochs] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    for trial in study.trials:
        curve = trial.user_attrs["curve"]
        assert curve == [m for n, _, m in epochs if n == trial.number]
        best = trial.user_attrs["n_epochs"]
        assert trial.value == curve[best - 1]["mrr@20"] == max(m["mrr@20"] for m in curve)
        assert trial.user_attrs["metrics"] == curve[best - 1]


def test_best_epoch_is_the_earliest_maximum() -> None:
    from training.gru4rec.tune import best_epoch

    curve = [{"mrr@20": 0.1}, {"mrr@20": 0.3}, {"mrr@20": 0.2}, {"mrr@20": 0.3}]
    assert best_epoch(curve, "mrr@20") == 2
    assert best_epoch(curve[:1], "mrr@20") == 1


def test_a_queued_point_outside_the_space_is_refused() -> None:
    from training.gru4rec.tune import Dimension, check_enqueued

    space = [Dimension("learning_rate", "float", 0.05, 0.2, 0.05)]
    check_enqueued(space, [{"learning_rate": 0.1}])
    with pytest.raises(ParamError, match=r"n_sample.*--fixed"):
        check_enqueued(space, [{"learning_rate": 0.1, "n_sample": 64}])


@needs_shared_data
def test_train_command_writes_checkpoint_and_record(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from training.cli import app

    out = tmp_path / "models"
    args = [
        "train", "gru4rec", "--dataset", "yoochoose-100k",
        "--params", "yoochoose_xe_shared_best", "--params", "layers=[16],n_sample=32,n_epochs=1",
        "--out", str(out), "--activate", "--json", str(tmp_path / "r.json"),
        "--seed", "3", "--threads", "1", "--no-progress",
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "r.json").read_text())
    assert rec["model"] == "gru4rec" and rec["params"]["seed"] == 3
    assert 0.1 < rec["metrics"]["recall@20"] <= 1.0 and rec["training"]["events_per_second"] > 0
    ckpt = load_checkpoint(out / current_version(out))
    assert ckpt.hyperparameters["layers"] == [16] and "training.png" in ckpt.manifest["files"]


def test_service_bootstrap_function_returns_an_active_checkpoint(tmp_path) -> None:
    from training.gru4rec.export import export_model

    ds = Dataset(
        name="cyclic",
        kind="session",
        items=ItemTable(ids=np.arange(12)),
        parts={"train": _cyclic_data(), "test": _cyclic_data(seed=4)},
    )
    params = "n_epochs=1,layers=[8],n_sample=4,batch_size=8"
    path = export_model(ds, tmp_path, params, activate=True).path
    assert path.parent == tmp_path and current_version(tmp_path) == path.name
    ckpt = load_checkpoint(path)
    assert ckpt.hyperparameters["n_sample"] == 4 and "recall@20" in ckpt.manifest["metrics"]


@pytest.mark.parametrize(
    "loss, extra",
    [("bpr-max", dict(final_act="elu-1", bpreg=0.9)), ("cross-entropy", dict(smoothing=0.1))],
)
def test_compiled_loss_equals_the_eager_loss(loss: str, extra: dict) -> None:
    from training.gru4rec.compiled_loss import CompiledLoss

    with_log_q = loss == "cross-entropy"

    def eager(scores: torch.Tensor, log_q: torch.Tensor | None) -> torch.Tensor:
        return sampled_loss(loss, scores, log_q=log_q, **extra)

    compiled = CompiledLoss(eager, (6, 14), torch.device("cpu"), with_log_q)
    graph = compiled.compiled
    assert graph is not None
    calls: list[tuple[int, ...]] = []

    def counted(scores: torch.Tensor, log_q: torch.Tensor | None) -> torch.Tensor:
        calls.append(tuple(scores.shape))
        return graph(scores, log_q)

    compiled.compiled = counted
    gen = torch.Generator().manual_seed(0)
    for shape in [(6, 14), (4, 12)]:  # the full shape is compiled, a tail batch is eager
        scores = torch.randn(shape, generator=gen, requires_grad=True)
        log_q = torch.randn(shape[1], generator=gen) if with_log_q else None
        calls.clear()
        got = compiled(scores, log_q)
        (g_got,) = torch.autograd.grad(got, scores)
        assert calls == ([shape] if shape == (6, 14) else [])
        want = sampled_loss(loss, scores, log_q=log_q, **extra)
        (g_want,) = torch.autograd.grad(want, scores)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_got, g_want, rtol=1e-5, atol=1e-6)


def test_compiled_loss_falls_back_to_eager_when_compiling_fails(monkeypatch) -> None:
    from training.gru4rec import compiled_loss

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(compiled_loss.torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        loss = compiled_loss.CompiledLoss(
            lambda s, q: sampled_loss("bpr", s), (4, 9), torch.device("cpu"), False
        )
    scores = torch.randn(4, 9)
    assert loss.compiled is None
    assert float(loss(scores, None)) == float(sampled_loss("bpr", scores))


def test_training_with_the_compiled_loss_follows_the_eager_run() -> None:
    data = _cyclic_data()
    params = GRU4RecParams(
        **{**TINY, "n_epochs": 1}, loss="bpr-max", elu_param=1.0, bpreg=0.5, momentum=0.2
    )
    eager = train(data, 12, params, progress=False)
    fast = train(data, 12, params, progress=False, compile_loss=True)
    np.testing.assert_allclose(fast.step_losses, eager.step_losses, rtol=1e-4, atol=1e-6)
    for k, v in eager.model.state_dict().items():
        torch.testing.assert_close(fast.model.state_dict()[k], v, rtol=1e-4, atol=1e-5)


def test_tune_command_writes_trials_curves_and_their_plot(tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from training.cli import app, gru4rec_cmd

    monkeypatch.setattr(gru4rec_cmd, "load_dataset", lambda name: _cyclic_dataset())
    space = tmp_path / "space.toml"
    space.write_text('[learning_rate]\ntype = "float"\nlow = 0.05\nhigh = 0.2\nstep = 0.05\n')
    out = tmp_path / "tune.json"
    args = [
        "tune", "gru4rec", "--dataset", "cyclic", "--space", str(space),
        "--fixed", "layers=[16],batch_size=8,n_sample=6,n_epochs=2",
        "--enqueue", "learning_rate=0.1", "--trials", "1", "--no-compile",
        "--threads", "1", "--json", str(out),
    ]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "trial 0 epoch 2" in res.output
    rec = json.loads(out.read_text())
    (trial,) = rec["trials"]
    assert trial["params"] == {"learning_rate": 0.1} and len(trial["curve"]) == 2
    assert rec["params"]["n_epochs"] == trial["n_epochs"] in (1, 2)
    assert rec["metrics"] == trial["curve"][trial["n_epochs"] - 1]
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    refused = CliRunner().invoke(app, [*args[:-2], "--enqueue", "n_sample=8"])
    assert isinstance(refused.exception, ParamError) and "--fixed" in str(refused.exception)


@pytest.mark.parametrize("prune_after", [1, 2])
def test_a_trial_below_the_median_stops_at_the_pruning_epoch(prune_after) -> None:
    import optuna

    from training.gru4rec.tune import make_study

    study, _ = _tune_cyclic(
        n_epochs=3,
        n_trials=2,
        low=1e-6,
        step=None,
        enqueue=[{"learning_rate": 0.15}, {"learning_rate": 1e-6}],  # the second barely moves
        study=make_study(seed=0, prune_after=prune_after),
    )
    learned, frozen = study.trials
    assert learned.state == optuna.trial.TrialState.COMPLETE
    assert len(learned.user_attrs["curve"]) == 3 and learned.value > 0.5
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert len(frozen.user_attrs["curve"]) == prune_after and "n_epochs" not in frozen.user_attrs


def test_a_stored_study_keeps_an_interrupted_trials_epochs_and_resumes(tmp_path) -> None:
    import optuna

    from training.gru4rec.tune import make_study

    storage = f"sqlite:///{tmp_path / 'tune.db'}"

    def interrupt(number, stats) -> None:
        if number == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _tune_cyclic(
            n_epochs=2,
            n_trials=2,
            metric="recall@20",
            enqueue=[{"learning_rate": 0.15}],
            on_epoch=interrupt,
            study=make_study(seed=0, storage=storage, name="s"),
        )
    stored = optuna.load_study(study_name="s", storage=storage)
    done, cut = stored.trials
    assert done.state == optuna.trial.TrialState.COMPLETE and len(done.user_attrs["curve"]) == 2
    assert cut.state == optuna.trial.TrialState.FAIL and len(cut.user_attrs["curve"]) == 1

    study, _ = _tune_cyclic(
        n_epochs=2,
        n_trials=1,
        metric="recall@20",
        enqueue=[{"learning_rate": 0.15}],  # already run: not queued again
        study=make_study(seed=0, storage=storage, name="s"),
    )
    assert len(study.trials) == 3 and study.trials[2].state == optuna.trial.TrialState.COMPLETE
    assert study.best_trial.number in (0, 2)
