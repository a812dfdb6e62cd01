"""BERT4Rec's network and cloze task: what the contract suite cannot see."""

from __future__ import annotations

import pytest
import torch

from models.bert4rec import BERT4Rec, BERT4RecConfig
from tests.models.numpy_query import assert_numpy_query_is_the_torch_forward, perturbed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**changes: object) -> BERT4Rec:
    settings = {"n_items": 11, "dim": 8, "n_heads": 2, "max_len": 6, "dropout": 0.0, **changes}
    return BERT4Rec(BERT4RecConfig(**settings)).eval()  # type: ignore[arg-type]


def test_attention_is_bidirectional() -> None:
    model = _model(attention_dropout=0.0)
    a = torch.tensor([[-1, 2, 5, 7, 1, 3]])
    b = a.clone()
    b[0, -1] = 9  # only the last click differs: every position sees it
    with torch.no_grad():
        out_a, out_b = model.sequence_output(a), model.sequence_output(b)
    assert not torch.allclose(out_a[:, 1], out_b[:, 1], atol=1e-4)


def test_padding_is_masked_and_cut() -> None:
    model = _model(attention_dropout=0.0)
    short = torch.tensor([[-1, -1, -1, 4, 0, 10]])
    with torch.no_grad():
        alone = model.sequence_output(short)
        beside = model.sequence_output(torch.cat([short, torch.tensor([[1, 2, 3, 4, 5, 6]])]))
        narrow = model.sequence_output(short[:, 3:])
    assert torch.allclose(alone[:, 3:], beside[:1, 3:], atol=1e-6)
    assert torch.allclose(narrow, alone[:, 3:], atol=1e-6)
    assert (alone[:, :3] == 0).all()  # the cut columns come back as zeros


def test_serving_appends_the_mask_token_to_the_last_clicks() -> None:
    model = _model()
    prefix = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])  # longer than the state
    with torch.no_grad():
        query = model.encode(prefix)[:, -1]
        by_hand = model.sequence_output(torch.tensor([[3, 4, 5, 6, 7, 11]]))[:, -1]
    assert model.state_len == 5 and model.init_state().shape == (5,)
    assert torch.allclose(query[:, :-1], by_hand) and query[0, -1] == 1.0
    scores = query @ model.item_vectors().T
    expected = by_hand @ model.embedding.weight[1:12].T + model.output_bias
    assert torch.allclose(scores, expected, atol=1e-6)


def test_the_cloze_task_hides_items_and_asks_for_them_back() -> None:
    model = _model(mask_prob=0.3, max_len=6)
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 11, (400, 7))
    seqs[:200, :3] = -1  # some short rows
    inputs, targets = seqs[:, :-1], seqs[:, 1:]
    pairs = model.training_pairs(inputs, targets, g)
    hidden, hid, windows = pairs.hidden, pairs.targets, pairs.windows
    window = seqs[:, -6:]
    assert hidden.shape == (len(hid), 9) and (hidden[:, -1] == 1).all()
    assert windows.shape == (len(hid), 6)
    # every target is an item of its own window, and every row hides at least one
    assert ((windows == hid[:, None]).any(1)).all() and (hid >= 0).all()
    real = int((window >= 0).sum())
    assert len(hid) >= len(seqs)
    assert 0.25 < len(hid) / real < 0.4  # about mask_prob of the real items


def test_a_bad_config_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="mask_prob"):
        BERT4RecConfig(n_items=3, mask_prob=0.0)
    with pytest.raises(ValueError, match="max_len"):
        BERT4RecConfig(n_items=3, max_len=1)


@pytest.mark.parametrize("n_blocks", [0, 1, 3])
def test_the_numpy_query_is_the_torch_forward(n_blocks: int) -> None:
    assert_numpy_query_is_the_torch_forward(perturbed(_model(n_blocks=n_blocks)))
