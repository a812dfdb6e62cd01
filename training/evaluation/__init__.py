"""The three evaluation protocols of the design: next-item, multi-interest, rating."""

from training.evaluation.multi_interest import (
    Holdout,
    UserSplit,
    diversity,
    holdout,
    split_from_file,
    split_users,
    topn_metrics,
)
from training.evaluation.next_item import (
    NextItemTask,
    PrefixBatch,
    PrefixScorer,
    evaluate_next_item,
)
from training.evaluation.ranking import TIE_MODES, RankMetrics, TieMode, target_ranks
from training.evaluation.rating import rating_metrics

__all__ = [
    "TIE_MODES",
    "Holdout",
    "NextItemTask",
    "PrefixBatch",
    "PrefixScorer",
    "RankMetrics",
    "TieMode",
    "UserSplit",
    "diversity",
    "evaluate_next_item",
    "holdout",
    "rating_metrics",
    "split_from_file",
    "split_users",
    "target_ranks",
    "topn_metrics",
]
