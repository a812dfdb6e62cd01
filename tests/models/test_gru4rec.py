"""GRU4Rec network and losses: hand-checked loss values, the input modes, the serving fast path.

The model contract (batched == incremental, checkpoints) is held in ``test_contract.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from models.gru4rec import GRU4Rec
from models.gru4rec_loss import (
    bpr,
    bpr_max,
    cross_entropy,
    final_activation,
    sampled_loss,
    top1,
    top1_max,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Two sessions (rows), their targets on the diagonal, one extra sample (column 2).
SCORES = torch.tensor([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]])


def test_cross_entropy_hand_checked() -> None:
    # row 0: log(e^1 + e^0 + e^2) - 1 = 2.40760 - 1; row 1: log(e^.5 + e^-1 + 1) + 1 = 1.10412 + 1
    assert cross_entropy(SCORES).item() == pytest.approx(1.40760 + 2.10412, abs=1e-4)


def test_cross_entropy_logq_subtracts_log_proposal() -> None:
    # logQ with proposal probabilities (2, 1, 4) (unnormalised, as the official support counts)
    log_q = torch.log(torch.tensor([2.0, 1.0, 4.0]))
    corrected = SCORES - log_q  # row 0: (0.30685, 0, 0.61371); row 1: (-0.19315, -1, -1.38629)
    row0 = math.log(math.exp(0.30685) + 1 + math.exp(0.61371)) - 0.30685
    row1 = math.log(math.exp(-0.19315) + math.exp(-1) + math.exp(-1.38629)) + 1
    assert cross_entropy(SCORES, log_q).item() == pytest.approx(row0 + row1, abs=1e-4)
    assert cross_entropy(SCORES, log_q).item() == pytest.approx(cross_entropy(corrected).item())


def test_cross_entropy_label_smoothing() -> None:
    s, n = 0.3, 3
    logp = torch.log_softmax(SCORES, dim=1)
    expected = sum(
        (1 - n / (n - 1) * s) * -logp[i, i] + s / (n - 1) * -logp[i].sum() for i in range(2)
    )
    assert cross_entropy(SCORES, smoothing=s).item() == pytest.approx(float(expected), abs=1e-5)


def test_bpr_max_hand_checked() -> None:
    # row 0: negatives (0, 2), softmax weights (0.11920, 0.88080);
    #   -log(0.11920*sig(1) + 0.88080*sig(-1)) = 1.12696, reg 0.5*(0.88080*4) = 1.76159
    # row 1: negatives (0.5, 0), weights (0.62246, 0.37754);
    #   -log(0.62246*sig(-1.5) + 0.37754*sig(-1)) = 1.53666, reg 0.5*(0.62246*0.25) = 0.07781
    expected = 1.12696 + 1.76159 + 1.53666 + 0.07781
    assert bpr_max(SCORES, bpreg=0.5).item() == pytest.approx(expected, abs=2e-4)


def test_bpr_max_with_elu_final_activation() -> None:
    act = final_activation("elu-1")
    assert sampled_loss("bpr-max", SCORES, final_act="elu-1", bpreg=0.5).item() == pytest.approx(
        bpr_max(act(SCORES), 0.5).item()
    )
    # elu-1 maps -1 to e^-1 - 1
    assert act(torch.tensor([-1.0])).item() == pytest.approx(math.exp(-1) - 1)


def test_top1_bpr_top1max_hand_checked() -> None:
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    s = SCORES.tolist()
    exp_top1 = 0.0
    exp_bpr = 0.0
    for i in range(2):
        t = s[i][i]
        exp_top1 += sum(sig(v - t) + sig(v * v) for v in s[i]) / 3 - sig(t * t) / 3
        exp_bpr += sum(-math.log(sig(t - v)) for v in s[i]) / 3
    assert top1(SCORES).item() == pytest.approx(exp_top1, abs=1e-5)
    assert bpr(SCORES).item() == pytest.approx(exp_bpr, abs=1e-5)
    w0 = [1 / (1 + math.e**2), math.e**2 / (1 + math.e**2)]
    row0 = w0[0] * (sig(0 - 1) + sig(0)) + w0[1] * (sig(2 - 1) + sig(4))
    w1 = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]
    row1 = w1[0] * (sig(0.5 + 1) + sig(0.25)) + w1[1] * (sig(0 + 1) + sig(0))
    assert top1_max(SCORES).item() == pytest.approx(row0 + row1, abs=1e-5)


@pytest.mark.parametrize(
    "name", ["linear", "relu", "tanh", "leaky-0.1", "elu-0.5", "selu-1.05-1.67"]
)
def test_final_activations(name: str) -> None:
    x = torch.tensor([-2.0, 0.0, 3.0])
    got = final_activation(name)(x)
    expected = {
        "linear": [-2.0, 0.0, 3.0],
        "relu": [0.0, 0.0, 3.0],
        "tanh": [math.tanh(-2), 0.0, math.tanh(3)],
        "leaky-0.1": [-0.2, 0.0, 3.0],
        "elu-0.5": [0.5 * (math.exp(-2) - 1), 0.0, 3.0],
        "selu-1.05-1.67": [1.05 * 1.67 * (math.exp(-2) - 1), 0.0, 1.05 * 3.0],
    }[name]
    assert got.tolist() == pytest.approx(expected, abs=1e-6)


def test_unknown_activation_and_loss_fail() -> None:
    with pytest.raises(ValueError, match="final activation"):
        final_activation("elu-x")
    with pytest.raises(ValueError, match="unknown loss"):
        sampled_loss("hinge", SCORES)


MODES = {
    "shared": dict(constrained_embedding=True),
    "separate": dict(constrained_embedding=False, embedding=6),
    "onehot": dict(constrained_embedding=False, embedding=0),
}


def _model(mode: str, layers: tuple[int, ...] = (8, 5)) -> GRU4Rec:
    torch.manual_seed(3)
    model = GRU4Rec(n_items=17, layers=layers, **MODES[mode])
    with torch.no_grad():  # non-zero biases so that the bias folding is exercised
        model.By.normal_()
        for cell in model.cells:
            cell.bias_ih.normal_(0, 0.1)
            cell.bias_hh.normal_(0, 0.1)
    return model.eval()


@pytest.mark.parametrize("mode", ["shared", "separate"])
def test_numpy_step_follows_the_weights_as_they_change(mode: str) -> None:
    """The serving fast path reads views of the parameters, never a stale copy."""
    import copy

    model = _model(mode)
    state = model.step(model.init_state(), 3)
    with torch.no_grad():
        reference = model.hidden_step(
            model.input_table[torch.tensor([4])], model.split_state(state.view(1, -1))
        )[1]
    torch.testing.assert_close(model.step(state, 4), torch.cat(reference, 1).view(-1))
    with torch.no_grad():
        model.cells[0].weight_hh.mul_(0.5)  # an in-place update, as training does
        model.input_table[4].add_(1.0)
        expected = torch.cat(
            model.hidden_step(
                model.input_table[torch.tensor([4])], model.split_state(state.view(1, -1))
            )[1],
            1,
        ).view(-1)
    torch.testing.assert_close(model.step(state, 4), expected)
    twin = copy.deepcopy(model)  # new storage: the views are rebuilt
    with torch.no_grad():
        twin.cells[-1].bias_hh.add_(1.0)
    assert not torch.allclose(twin.step(state, 4), model.step(state, 4))


def test_bias_is_folded_into_the_inner_product() -> None:
    model = _model("shared", layers=(8,))
    state = model.step(model.step(model.init_state(), 2), 7)
    h = state[-8:]
    direct = h @ model.Wy.detach().T + model.By.detach()
    torch.testing.assert_close((model.interests(state) @ model.item_vectors().T)[0], direct)


def test_onehot_layer_applies_reset_before_the_hidden_matmul() -> None:
    model = _model("onehot", layers=(4,))
    cell = model.onehot
    h = torch.randn(1, 4)
    item = 5
    vx = cell.Wx0[item] + cell.Bh0
    r, z = torch.sigmoid(vx[4:] + h @ cell.Wrz0).chunk(2, dim=1)
    n = torch.tanh((r * h) @ cell.Wh0 + vx[:4])
    expected = (1 - z) * h + z * n
    torch.testing.assert_close(cell(cell.Wx0[[item]], h), expected)


def test_init_scales_follow_the_official_fan() -> None:
    model = GRU4Rec(n_items=1000, layers=(50,), constrained_embedding=True)
    assert model.Wy.abs().max().item() <= math.sqrt(6 / (1000 + 50))
    assert model.Wy.abs().max().item() > 0.9 * math.sqrt(6 / (1000 + 50))
    w = model.cells[0].weight_ih
    assert w.abs().max().item() <= math.sqrt(6 / (50 + 50))
    assert model.By.abs().sum().item() == 0.0 and model.cells[0].bias_hh.abs().sum().item() == 0.0


def test_bad_layers_fail() -> None:
    with pytest.raises(ValueError, match="layers"):
        GRU4Rec(n_items=5, layers=())
    assert np.isfinite(GRU4Rec(n_items=5, layers=(3,)).item_vectors().numpy()).all()


def test_dropout_keeps_the_expectation_and_drops_the_asked_share() -> None:
    from models.gru4rec import dropout

    torch.manual_seed(0)
    x = torch.ones(400, 500)
    out = dropout(x, 0.3)
    values = torch.unique(out).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7)
    assert abs(float((out == 0).float().mean()) - 0.3) < 0.005
    assert abs(float(out.mean()) - 1.0) < 0.01
    grad = torch.ones(3, 4, requires_grad=True)
    dropout(grad, 0.5).sum().backward()  # the mask scales the gradient too
    assert set(torch.unique(grad.grad).tolist()) <= {0.0, 2.0}
