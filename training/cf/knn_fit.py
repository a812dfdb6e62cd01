"""Fitting item- and user-based kNN: ALS baselines, then the similarity matrix.

Defaults are Surprise's KNNBaseline (k=40, min_k=1, pearson_baseline with
shrinkage 100, baselines by 10 ALS epochs with reg_u=15, reg_i=10, and no
shrinkage of the weighted average: ``den_shrinkage=0``), so a side-by-side run
compares like with like; the settings tuned on a validation split are in
``training/model_params/cf_itemknn_*.toml`` and ``cf_userknn_*.toml``.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.cf.baseline import Baseline
from models.cf.knn import CENTERS, KNN, SIMILARITIES, build_knn
from models.cf.ratings import Ratings
from training.cf.baseline_fit import als_biases, als_scaled_biases
from training.params import ParamError


@dataclass(frozen=True)
class KNNConfig:
    similarity: str = "pearson_baseline"
    k: int = 40
    min_k: int = 1
    shrinkage: float = 100.0
    min_support: int = 1
    center: str = "baseline"
    bsl_epochs: int = 10
    bsl_reg_u: float = 15.0
    bsl_reg_i: float = 10.0
    den_shrinkage: float = 0.0  # lambda in sum s v / (lambda + sum s); 0 = Surprise
    # baseline mu + b_u + c_u b_i (Koren 2009) instead of mu + b_u + b_i; c_u ridged to 1
    bsl_user_scale: bool = False
    bsl_reg_c: float = 3.0

    def __post_init__(self) -> None:
        if self.similarity not in SIMILARITIES:
            raise ParamError(f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        if self.center not in CENTERS:
            raise ParamError(f"center must be one of {CENTERS}, got {self.center!r}")
        if self.k < 1 or self.min_k < 0:
            raise ParamError("k must be at least 1 and min_k at least 0")
        if self.den_shrinkage < 0:
            raise ParamError("den_shrinkage must be at least 0")
        if self.bsl_reg_c <= 0:
            raise ParamError("bsl_reg_c must be positive")


def fit_knn(r: Ratings, c: KNNConfig, user_based: bool) -> KNN:
    mu = r.mean
    if c.bsl_user_scale:
        bu, bi, cu = als_scaled_biases(r, mu, c.bsl_epochs, c.bsl_reg_u, c.bsl_reg_i, c.bsl_reg_c)
        baseline = Baseline(mu, bu, bi, cu=cu)
    else:
        bu, bi = als_biases(r, mu, c.bsl_epochs, c.bsl_reg_u, c.bsl_reg_i)
        baseline = Baseline(mu, bu, bi)
    return build_knn(
        r.users, r.items, r.values, r.n_users, r.n_items, baseline,
        similarity=c.similarity, user_based=user_based, k=c.k, min_k=c.min_k,
        shrinkage=c.shrinkage, center=c.center, min_support=c.min_support,
        den_shrinkage=c.den_shrinkage,
    )  # fmt: skip
