"""The model contract (DESIGN.md s.3), held for every kind in the table of model kinds.

Each kind plugs in a tiny builder below (``TINY``: kind -> variant -> ``build(seed)``);
a kind added to the table without one fails ``test_every_kind_has_a_tiny_model``.
Every variant then runs the same checks: shapes, batched ``encode`` == one click at a
time through ``step``, the state through bytes as the session store keeps it, the
checkpoint round trip through the one publish path and the registry, and
determinism with a seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from models.bert4rec import BERT4Rec, BERT4RecConfig
from models.cf.serving import FactorSessionModel, KnnSessionModel
from models.cl4srec import CL4SRec, CL4SRecConfig
from models.comirec import MultiInterestConfig
from models.contract import SequenceModel, max_scores, pack_state, unpack_state
from models.ecl_sr import ECLSR, ECLSRConfig
from models.gru4rec import GRU4Rec
from models.registry import KINDS, build_model, kind_names, model_kind
from models.sasrec import SASRec, SASRecConfig
from training.checkpoint import current_version, load_checkpoint
from training.params import bundled_file
from training.publish import Trained, publish

pytestmark = pytest.mark.usefixtures("one_torch_thread")

Build = Callable[[int], SequenceModel]
#: sessions as item rows: one click, a few, and more than a multi-interest window (L = 5)
SESSIONS = [[3, 1, 4, 1, 5], [9, 2], [6], [7, 0, 12, 3, 3, 8, 15, 2, 11]]
N_ITEMS = 17


def _gru4rec(**mode: object) -> Build:
    def build(seed: int) -> SequenceModel:
        torch.manual_seed(seed)
        model = GRU4Rec(n_items=N_ITEMS, layers=(8, 5), **mode)  # type: ignore[arg-type]
        with torch.no_grad():  # non-zero biases, so that the bias folding is exercised
            model.By.normal_()
            for cell in model.cells:
                cell.bias_ih.normal_(0, 0.1)
                cell.bias_hh.normal_(0, 0.1)
        return model.eval()

    return build


def _multi_interest(kind: str) -> Build:
    def build(seed: int) -> SequenceModel:
        config = MultiInterestConfig(n_items=N_ITEMS, dim=8, n_interests=3, max_len=5, seed=seed)
        return model_kind(kind).model_class()(config).eval()

    return build


def _sasrec(layer_norm: str) -> Build:
    def build(seed: int) -> SequenceModel:
        config = SASRecConfig(
            n_items=N_ITEMS,
            dim=8,
            n_heads=2,
            max_len=5,
            dropout=0.2,
            layer_norm=layer_norm,
            seed=seed,
        )
        return SASRec(config).eval()

    return build


def _bert4rec(seed: int) -> SequenceModel:
    config = BERT4RecConfig(
        n_items=N_ITEMS, dim=8, n_heads=2, max_len=5, dropout=0.2, mask_prob=0.3, seed=seed
    )
    model = BERT4Rec(config).eval()
    with torch.no_grad():  # a bias that is not zero, so that its column in the scores counts
        model.output_bias.copy_(torch.linspace(-1, 1, N_ITEMS))
    return model


def _cl4srec(augmentations: str) -> Build:
    def build(seed: int) -> SequenceModel:
        sizes = {"dim": 8, "n_heads": 2, "max_len": 5, "dropout": 0.2}
        config = CL4SRecConfig(N_ITEMS, **sizes, seed=seed, augmentations=augmentations)
        model = CL4SRec(config)
        if augmentations == "coserec":  # its item similarity: a training aid, not checkpointed
            offsets = np.cumsum([0] + [len(s) for s in SESSIONS])
            model.set_training_sequences(np.concatenate(SESSIONS), offsets)
        return model.eval()

    return build


def _ecl_sr(seed: int) -> SequenceModel:
    config = ECLSRConfig(n_items=N_ITEMS, dim=8, n_heads=2, max_len=5, contrastive_k=3, seed=seed)
    return ECLSR(config).eval()


def _cf_factors(seed: int) -> SequenceModel:
    g = torch.Generator().manual_seed(seed)
    q, y = torch.randn(N_ITEMS, 4, generator=g), torch.randn(N_ITEMS, 4, generator=g)
    return FactorSessionModel(q, torch.randn(N_ITEMS, generator=g), y)


def _cf_knn(seed: int) -> SequenceModel:
    v = torch.randn(N_ITEMS, 5, generator=torch.Generator().manual_seed(seed))
    v = v / v.norm(dim=1, keepdim=True)
    return KnnSessionModel(v @ v.T)


TINY: dict[str, dict[str, Build]] = {
    "gru4rec": {
        "shared": _gru4rec(constrained_embedding=True),
        "separate": _gru4rec(constrained_embedding=False, embedding=6),
        "onehot": _gru4rec(constrained_embedding=False, embedding=0),
    },
    "comirec-sa": {"": _multi_interest("comirec-sa")},
    "comirec-dr": {"": _multi_interest("comirec-dr")},
    "mind": {"": _multi_interest("mind")},
    "sasrec": {"pre": _sasrec("pre"), "post": _sasrec("post")},
    "bert4rec": {"": _bert4rec},
    "cl4srec": {"cl4srec": _cl4srec("cl4srec"), "coserec": _cl4srec("coserec")},
    "ecl-sr": {"": _ecl_sr},
    "cf-factors": {"": _cf_factors},
    "cf-knn": {"": _cf_knn},
}
CASES = [
    pytest.param(kind, build, id=f"{kind}-{variant}" if variant else kind)
    for kind in kind_names()
    for variant, build in TINY.get(kind, {}).items()
]


def left_padded(sessions: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, sessions))
    prefix = torch.tensor([[-1] * (width - len(s)) + s for s in sessions])
    return prefix, torch.tensor([len(s) for s in sessions])


def clicked(model: SequenceModel, session: list[int]) -> torch.Tensor:
    state = model.init_state()
    for item in session:
        state = model.step(state, item)
    return state


def scores(model: SequenceModel, state: torch.Tensor) -> torch.Tensor:
    """Max-score over the interests of one state: what the service ranks by."""
    return (model.interests(state) @ model.item_vectors().T).max(0).values


def hyperparameters(model: SequenceModel) -> dict:
    return model.hyperparameters() if hasattr(model, "hyperparameters") else {}


def assert_batched_equals_incremental(model: SequenceModel, sessions: list[list[int]]) -> None:
    """``encode`` of a batch == ``init_state`` / ``step`` / ``interests`` per session."""
    prefix, lengths = left_padded(sessions)
    with torch.no_grad():
        batched = model.encode(prefix, lengths)
        batched_scores = max_scores(model, prefix, lengths)
    for row, session in enumerate(sessions):
        state = clicked(model, session)
        torch.testing.assert_close(model.interests(state), batched[row], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(scores(model, state), batched_scores[row], atol=1e-5, rtol=1e-5)


def test_every_kind_has_a_tiny_model() -> None:
    assert set(TINY) == set(kind_names())
    assert all(TINY.values())


def test_the_table_names_each_kind_once_with_an_importable_class_and_its_parameter_file() -> None:
    assert len(set(kind_names())) == len(KINDS)
    for kind in KINDS:
        assert isinstance(kind.model_class(), type)
        assert kind.family in ("session", "multi-interest", "attention", "cf") and kind.description
        assert kind.params or not kind.retrainable  # a retrain starts from the kind's file
        if kind.params:
            assert bundled_file(kind.params).is_file()


@pytest.mark.parametrize(("kind", "build"), CASES)
def test_shapes(kind: str, build: Build) -> None:
    model = build(0)
    assert isinstance(model, SequenceModel) and isinstance(model, model_kind(kind).model_class())
    vectors = model.item_vectors()
    assert vectors.dtype == torch.float32 and vectors.shape[0] == N_ITEMS and vectors.ndim == 2
    k, d = model.n_interests, vectors.shape[1]
    state = model.init_state()
    assert state.dtype == torch.float32 and state.ndim == 1
    assert torch.isfinite(model.interests(state)).all()  # a visit before its first click
    state = model.step(state, 3)
    assert state.dtype == torch.float32 and state.shape == model.init_state().shape
    assert model.interests(state).shape == (k, d)
    prefix, lengths = left_padded(SESSIONS)
    assert model.encode(prefix, lengths).shape == (len(SESSIONS), k, d)


@pytest.mark.parametrize(("kind", "build"), CASES)
def test_batched_equals_incremental(kind: str, build: Build) -> None:
    assert_batched_equals_incremental(build(0), SESSIONS)


@pytest.mark.parametrize(("kind", "build"), CASES)
def test_state_round_trip_through_bytes(kind: str, build: Build) -> None:
    model = build(0)
    state = clicked(model, SESSIONS[0])
    data = pack_state(state)
    assert isinstance(data, bytes) and len(data) == 4 * state.numel()
    again = unpack_state(data)
    torch.testing.assert_close(again, state)
    torch.testing.assert_close(model.interests(again), model.interests(state))
    torch.testing.assert_close(model.step(again, 8), model.step(state, 8))


@pytest.mark.parametrize(("kind", "build"), CASES)
def test_checkpoint_round_trip(kind: str, build: Build, tmp_path: Path) -> None:
    model = build(0)
    trained = Trained(
        kind=kind,
        model=model,
        hyperparameters=hyperparameters(model),
        item_ids=np.arange(100, 100 + N_ITEMS),
        popularity=np.ones(N_ITEMS),
    )
    path = publish(trained, tmp_path, activate=True)
    assert current_version(tmp_path) == path.name
    ckpt = load_checkpoint(path)
    assert ckpt.kind == kind and ckpt.items["item_id"].tolist() == list(range(100, 117))
    rebuilt = build_model(ckpt.kind, ckpt.hyperparameters, ckpt.weights)
    assert type(rebuilt) is type(model)
    prefix, lengths = left_padded(SESSIONS)
    torch.testing.assert_close(rebuilt.item_vectors(), model.item_vectors())
    with torch.no_grad():
        torch.testing.assert_close(
            max_scores(rebuilt, prefix, lengths), max_scores(model, prefix, lengths)
        )
    torch.testing.assert_close(clicked(rebuilt, SESSIONS[3]), clicked(model, SESSIONS[3]))


@pytest.mark.parametrize(("kind", "build"), CASES)
def test_determinism_with_a_seed(kind: str, build: Build) -> None:
    a, b, other = build(5), build(5), build(6)
    wa, wb, wo = a.checkpoint_weights(), b.checkpoint_weights(), other.checkpoint_weights()
    assert wa.keys() == wb.keys() == wo.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=0, rtol=0)
    assert any(not torch.equal(wa[name], wo[name]) for name in wa)
    prefix, lengths = left_padded(SESSIONS)
    with torch.no_grad():
        torch.testing.assert_close(
            max_scores(a, prefix, lengths), max_scores(b, prefix, lengths), atol=0, rtol=0
        )
