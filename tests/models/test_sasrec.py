"""SASRec's network: what the contract suite cannot see (causality, masking, the input form)."""

from __future__ import annotations

import math

import pytest
import torch

from models.sasrec import SASRec, SASRecConfig
from tests.models.numpy_query import assert_numpy_query_is_the_torch_forward, perturbed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**changes: object) -> SASRec:
    settings = {"n_items": 11, "dim": 8, "n_heads": 2, "max_len": 6, "dropout": 0.0, **changes}
    return SASRec(SASRecConfig(**settings)).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("layer_norm", ["pre", "post"])
def test_a_position_never_sees_a_later_click(layer_norm: str) -> None:
    model = _model(layer_norm=layer_norm)
    a = torch.tensor([[-1, 2, 5, 7, 1, 3]])
    b = a.clone()
    b[0, -1] = 9  # only the last click differs
    with torch.no_grad():
        out_a, out_b = model.sequence_output(a), model.sequence_output(b)
    assert torch.allclose(out_a[:, :-1], out_b[:, :-1], atol=1e-6)
    assert not torch.allclose(out_a[:, -1], out_b[:, -1], atol=1e-3)


def test_padding_is_masked_out_of_the_attention() -> None:
    """Padded keys take no attention weight: a left-padded window gives its real positions
    what the blocks give those clicks alone (same positions, causal attention among them)."""
    model = _model()
    window = torch.tensor([[-1, -1, -1, 4, 0, 6]])
    with torch.no_grad():
        padded = model.sequence_output(window)[:, 3:]
        alone = model.embedding(window[:, 3:] + 1) * math.sqrt(8) + model.positions.weight[3:]
        future = torch.ones(3, 3, dtype=torch.bool).triu(1).repeat(2, 1, 1)  # 2 heads
        for block in model.blocks:
            alone = block(alone, future)
        alone = model.last_norm(alone)
    assert torch.allclose(padded, alone, atol=1e-5)


def test_without_blocks_the_query_is_the_normed_scaled_embedding_plus_position() -> None:
    """By hand: LayerNorm(sqrt(d) * E[item + 1] + P[L - 1]) for the last click."""
    model = _model(n_blocks=0)
    with torch.no_grad():
        query = model.encode(torch.tensor([[3, 8]]))[0, 0]
        x = math.sqrt(8) * model.embedding.weight[8 + 1] + model.positions.weight[5]
        expected = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-8)
        expected = expected * model.last_norm.weight + model.last_norm.bias
    assert torch.allclose(query, expected, atol=1e-5)


def test_output_and_input_share_one_item_embedding() -> None:
    model = _model()
    assert model.item_vectors().data_ptr() == model.embedding.weight[1:].data_ptr()
    assert model.item_vectors().shape == (11, 8)
    assert torch.equal(model.embedding.weight[0], torch.zeros(8))  # row 0: no item


def test_dropout_acts_in_training_only() -> None:
    model = _model(dropout=0.5).train()
    window = torch.tensor([[1, 2, 3, 4, 5, 6]])
    assert not torch.allclose(model.sequence_output(window), model.sequence_output(window))
    model.eval()
    assert torch.equal(model.sequence_output(window), model.sequence_output(window))


@pytest.mark.parametrize(
    "bad",
    [{"dim": 10, "n_heads": 3}, {"dropout": 1.0}, {"layer_norm": "middle"}, {"max_len": 0}],
)
def test_a_bad_config_says_what_is_wrong(bad: dict) -> None:
    with pytest.raises(ValueError, match="SASRec"):
        SASRecConfig(n_items=5, **bad)


@pytest.mark.parametrize("layer_norm", ["pre", "post"])
def test_columns_of_padding_are_cut_without_changing_any_output(layer_norm: str) -> None:
    """A batch of short windows is cut to its longest one; each row's output is what it is
    beside a full-length row (nothing cut), padded positions included."""
    model = _model(layer_norm=layer_norm)
    short = torch.tensor([[-1, -1, -1, -1, 4, 0], [-1, -1, -1, 2, 9, 9]])
    full = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        alone = model.sequence_output(short)
        beside = model.sequence_output(torch.cat([short, full]))[:2]
        narrow = model.sequence_output(short[:, 3:])  # a window narrower than max_len
    assert torch.allclose(alone, beside, atol=1e-6)
    assert torch.allclose(narrow, beside[:, 3:], atol=1e-6)


def test_a_window_wider_than_max_len_is_refused() -> None:
    with pytest.raises(ValueError, match="exceed max_len"):
        _model().sequence_output(torch.zeros(1, 7, dtype=torch.long))


@pytest.mark.parametrize(
    ("layer_norm", "n_blocks", "n_heads"), [("pre", 1, 1), ("pre", 3, 2), ("post", 2, 4)]
)
def test_the_numpy_query_is_the_torch_forward(layer_norm: str, n_blocks: int, n_heads: int) -> None:
    model = _model(layer_norm=layer_norm, n_blocks=n_blocks, n_heads=n_heads, max_len=6)
    state = assert_numpy_query_is_the_torch_forward(perturbed(model))
    model.train()  # in training (dropout) the torch forward runs
    assert model.interests(state).shape == (1, 8)


def test_the_numpy_query_follows_weights_written_in_place() -> None:
    """Its transposed copies are rebuilt after ``load_state_dict`` (the best epoch's weights
    restored at the end of training, a hot reload), which writes into the same storage."""
    model, other = _model(max_len=6), _model(max_len=6, seed=7)
    state = model.step(model.step(model.init_state(), 3), 1)
    before = model.interests(state)
    model.load_state_dict(other.state_dict())
    after = model.interests(state)
    with torch.no_grad():
        expected = other.encode(state[None].long())[0]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, atol=1e-5, rtol=1e-5)
