"""Read-only arrays (what pandas >= 3 returns for ``df[col].to_numpy()``) work without warnings.

torch warns when it wraps a non-writable numpy array; the package copies such inputs instead,
so a chapter that passes ``frame.user_id.to_numpy()`` prints nothing on stderr.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from recs_course.data import Batches, interaction_matrix
from recs_course.evaluation import evaluate_full, evaluate_ratings
from recs_course.metrics import mae, rmse
from recs_course.models import LightGCN, Popularity, normalized_adjacency


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.array([0, 0, 1, 1, 2], dtype=np.int64),
            "item_id": np.array([0, 1, 1, 2, 3], dtype=np.int64),
            "rating": np.array([4.0, 3.0, 5.0, 1.0, 2.0], dtype=np.float32),
        }
    )


def _read_only(values: np.ndarray) -> np.ndarray:
    out = values.copy()
    out.flags.writeable = False
    return out


def test_read_only_arrays_raise_no_warning_and_give_the_same_results():
    frame = _frame()
    users = _read_only(frame.user_id.to_numpy())
    items = _read_only(frame.item_id.to_numpy())
    ratings = _read_only(frame.rating.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        assert rmse(ratings, ratings) == 0.0 and mae(ratings + 1, ratings) == 1.0
        (batch,) = list(Batches(users, items, ratings, batch_size=5, shuffle=False))
        torch.testing.assert_close(batch[0], torch.tensor([0, 0, 1, 1, 2]))
        pop = Popularity.from_interactions(users, items, 3, 4)
        torch.testing.assert_close(pop.counts, torch.tensor([1.0, 2.0, 1.0, 1.0]))
        scores = evaluate_ratings(pop, users, items, ratings)
        assert scores["RMSE"] > 0
        graph = LightGCN(3, 4, normalized_adjacency(users, items, 3, 4), dim=2)
        train = interaction_matrix(frame.iloc[:3], 3, 4, values="ones")
        test = interaction_matrix(frame.iloc[3:], 3, 4, values="ones")
        result = evaluate_full(graph, train, test, ks=(2,), users=_read_only(np.arange(3)))
        assert 0.0 <= result["recall@2"] <= 1.0
    # the inputs were copied, not modified
    np.testing.assert_array_equal(users, frame.user_id.to_numpy())
