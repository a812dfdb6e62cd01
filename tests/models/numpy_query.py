"""What the windowed models' numpy query tests share: weights off their initial values, and
the numpy query held equal to the torch forward for visits of several lengths."""

from __future__ import annotations

import torch

from models.windowed import WindowedModel

#: no click, one, a few, and more than a small test window holds
VISITS = ([], [3], [3, 1, 4], [1, 5, 9, 2, 6, 5, 3])


def perturbed(model: WindowedModel) -> WindowedModel:
    """Biases and norms off their initial 0 and 1, where a wrong formula would still agree."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def assert_numpy_query_is_the_torch_forward(model: WindowedModel) -> torch.Tensor:
    """For every visit of ``VISITS``, ``interests`` (numpy) equals ``encode`` (torch); the
    last visit's state is returned."""
    for clicks in VISITS:
        state = model.init_state()
        for item in clicks:
            state = model.step(state, item)
        fast = model.interests(state)
        with torch.no_grad():
            slow = model.encode(state[None].long())[0]
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    return state
