"""ECL-SR: the objectives by hand, what serves, where the gradients go."""

from __future__ import annotations

import math

import pytest
import torch

from models.ecl_sr import ECLSR, ECLSRConfig
from tests.models.numpy_query import assert_numpy_query_is_the_torch_forward, perturbed

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(**changes: object) -> ECLSR:
    settings = {"n_items": 20, "dim": 8, "n_heads": 2, "max_len": 6, "contrastive_k": 2, **changes}
    return ECLSR(ECLSRConfig(**settings))  # type: ignore[arg-type]


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 20, (16, 7), generator=g)
    seqs[:8, :4] = -1
    return seqs[:, :-1], seqs[:, 1:]


def test_infonce_by_hand() -> None:
    model = _model(temperature=0.5)
    views = torch.eye(3)[:, None, :].expand(3, 2, 3).contiguous()  # orthonormal rows
    real = torch.ones(3, 2, dtype=torch.bool)
    # the same view twice: logit 1 / 0.5 = 2 on the diagonal, 0 elsewhere
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert model.invariance(views, views, real).item() == pytest.approx(expected, rel=1e-6)


def test_the_contrastive_mean_covers_the_real_items_among_the_last_k() -> None:
    model = _model(contrastive_k=2)
    hidden = torch.arange(12.0).view(2, 3, 2)  # rows of 3 positions
    real = torch.tensor([[True, True, True], [False, False, True]])
    mean = model.last_k_mean(hidden, real)
    assert mean.tolist() == [[3.0, 4.0], [10.0, 11.0]]  # positions 1-2; position 2 alone


def test_training_adds_the_weighted_terms_and_every_part_learns() -> None:
    model = _model().train()
    inputs, targets = _batch()
    pairs = model.training_pairs(inputs, targets, torch.Generator().manual_seed(1))
    assert set(pairs.extra) == {"contrastive", "generator", "discriminator"}
    assert all(v.item() > 0 for v in pairs.extra.values())
    real = (inputs >= 0) & (targets >= 0)
    assert len(pairs.targets) == int(real.sum()) and pairs.hidden.shape[1] == 8
    (pairs.hidden.sum() + sum(pairs.extra.values())).backward()
    for part in (model.embedding, model.encoder, model.generator, model.discriminator):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_zero_weights_leave_the_next_item_objective_alone() -> None:
    model = _model(contrastive_weight=0, discriminator_weight=0, generator_weight=0).train()
    inputs, targets = _batch()
    pairs = model.training_pairs(inputs, targets, torch.Generator().manual_seed(1))
    assert pairs.extra == {}
    pairs.hidden.sum().backward()
    assert all(p.grad is None for p in model.generator.parameters())


def test_only_the_encoder_serves() -> None:
    model = _model().eval()
    prefix = torch.tensor([[3, 4, 5], [-1, 7, 8]])
    with torch.no_grad():
        before = model.encode(prefix)
        for p in [*model.generator.parameters(), *model.discriminator.parameters()]:
            p.add_(1.0)
        after = model.encode(prefix)
        by_hand = model.sequence_output(model.window(prefix))[:, -1:]
    assert torch.equal(before, after) and torch.allclose(before, by_hand)
    assert model.item_vectors().shape == (20, 8)  # items only: not padding, not the mask


def test_a_bad_config_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="temperature"):
        ECLSRConfig(n_items=3, temperature=0.0)
    with pytest.raises(ValueError, match="generator_weight"):
        ECLSRConfig(n_items=3, generator_weight=-1.0)


@pytest.mark.parametrize("n_blocks", [1, 2])
def test_the_numpy_query_is_the_torch_forward(n_blocks: int) -> None:
    model = perturbed(_model(n_blocks=n_blocks).eval())
    state = assert_numpy_query_is_the_torch_forward(model)
    other = _model(n_blocks=n_blocks, seed=5).eval()  # new weights written in place
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        expected = other.encode(state[None].long())[0]
    torch.testing.assert_close(model.interests(state), expected, atol=1e-5, rtol=1e-5)
