"""CF models in the session form: the SVD++ fold-in, every algorithm's served form, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from models.cf.recommend import recommend, similar_items, top_n
from tests.conftest import needs_shared_data
from tests.models.test_contract import assert_batched_equals_incremental
from tests.training.cf.test_factor import random_ratings
from training.cf.baseline_fit import BaselineConfig, fit_baseline
from training.cf.export import session_model
from training.cf.factor_fit import SVDConfig, SVDppConfig, fit_svd, fit_svdpp
from training.cf.knn_fit import KNNConfig, fit_knn
from training.cf.rbm_fit import RBMConfig, fit_rbm
from training.checkpoint import load_checkpoint
from training.cli import app


def fitted_models():
    r = random_ratings(0)
    return r, [
        fit_baseline(r, BaselineConfig()),
        fit_svd(r, SVDConfig(n_factors=4, n_epochs=3)),
        fit_svdpp(r, SVDppConfig(n_factors=4, n_epochs=3)),
        fit_knn(r, KNNConfig(), user_based=False),
        fit_knn(r, KNNConfig(similarity="cosine"), user_based=True),
        fit_rbm(r, RBMConfig(n_hidden=4, n_epochs=2), seed=0),
        fit_svd(r, SVDConfig(n_factors=4, n_epochs=3, reg=0.1, method="als")),
    ]


def test_top_n_breaks_ties_by_index_and_excludes():
    assert top_n(np.array([1.0, 3.0, 3.0, 2.0]), 3).tolist() == [1, 2, 3]
    assert top_n(np.array([1.0, 3.0, 3.0, 2.0]), 3, exclude=np.array([2])).tolist() == [1, 3, 0]


def test_recommend_and_similar_items_leave_out_the_known():
    r, models = fitted_models()
    seen = r.items[r.users == 1]
    for m in models:
        assert not set(recommend(m, 1, 5, seen)) & set(seen.tolist())
        assert 3 not in similar_items(m, 3, 5)


def test_svdpp_session_scores_are_the_fold_in_prediction():
    _, models = fitted_models()
    svdpp = models[2]
    _, served = session_model(svdpp)
    clicks = [3, 7, 11]
    state = served.init_state()
    for item in clicks:
        state = served.step(state, item)
    scores = (served.interests(state) @ served.item_vectors().T)[0].numpy()
    implicit = svdpp.Y[clicks].sum(0) / np.sqrt(len(clicks))
    assert scores == pytest.approx(svdpp.bi + svdpp.Q @ implicit, abs=1e-5)


def test_every_fitted_model_keeps_the_contract_in_its_session_form():
    """The contract suite's check, on the session form of each CF algorithm as fitted."""
    _, models = fitted_models()
    for m in models:
        _, served = session_model(m)
        assert_batched_equals_incremental(served, [[3, 4], [5, 6, 7, 5]])


@needs_shared_data
def test_cli_trains_reports_and_exports(tmp_path):
    out = tmp_path / "rec.json"
    result = CliRunner().invoke(
        app,
        ["train", "itemknn", "--dataset", "ml-100k", "--folds", "u1..u2", "--json", str(out),
         "--out", str(tmp_path / "models"), "--recommend", "0", "--similar", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rec = json.loads(out.read_text())
    assert rec["protocol"] == "rating" and rec["model"] == "itemknn"
    assert set(rec["folds"]) == {"u1", "u2"}
    # Surprise 1.1.5 KNNBaseline (item, pearson_baseline, defaults) on u1: 0.93589
    assert rec["folds"]["u1"]["rmse"] == pytest.approx(0.93589, abs=1e-4)
    assert rec["metrics"]["rmse"] == pytest.approx(
        np.mean([rec["folds"][f]["rmse"] for f in ("u1", "u2")])
    )
    (ck,) = [p for p in (tmp_path / "models").iterdir()]
    assert load_checkpoint(ck).kind == "cf-knn"


@needs_shared_data
def test_cli_rejects_unknown_folds_and_parameters():
    from training.params import ParamError

    runner = CliRunner()
    bad_fold = runner.invoke(app, ["train", "svd", "--fold", "u9"])
    assert isinstance(bad_fold.exception, ParamError)
    bad_param = runner.invoke(app, ["train", "svd", "--fold", "u1", "--params", "factors=3"])
    assert isinstance(bad_param.exception, ParamError)
