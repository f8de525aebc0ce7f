"""The course's recommenders, all :class:`Recommender` subclasses with one contract.

- ``model(users (B,), items (B,)) -> (B,)`` scores: logits for implicit feedback (GMF, NCFMLP,
  NeuMF, NGCF, LightGCN, MF without ``y_range``), ratings for explicit feedback (MF with
  ``y_range``, EmbeddingMLP, AutoRec).
- ``model.score_all(users (B,)) -> (B, n_items)``.
- ``model.pair_scores(users, pos, neg) -> (pos_scores, neg_scores)`` for pairwise (BPR)
  training, ``neg`` of shape ``(B,)`` or ``(B, K)``.
- ``model.regularization(users, *items) -> scalar``: the penalty of the rows a batch touches,
  added by every pair loss of :mod:`recs_course.losses` (0 unless the model has a ``reg``).
- ``with model.scoring_pass():`` what every batch of an evaluation shares (a graph
  propagation, item-based AutoRec's reconstructions) is computed once inside.
- Models built on training data (NGCF, LightGCN, AutoRec, Popularity) share the constructor
  ``Model.from_interactions(users, items, n_users, n_items, ...)``.

Every public method that takes indices checks them (:func:`check_indices`: integer dtype,
shape, values in range, else a ``ValueError`` naming the argument); :func:`index_checks` sets
when the values of accelerator tensors are checked.

Modules: :mod:`.base` (the contract), :mod:`.mf` (MF, EmbeddingMLP), :mod:`.ncf` (GMF, NCFMLP,
NeuMF), :mod:`.graph` (normalized_adjacency, NGCF, LightGCN), :mod:`.autoencoder` (AutoRec),
:mod:`.baselines` (Popularity).
:mod:`.item_item`: EASE and ItemKNN, closed-form item-to-item models built by
``from_interactions`` (no training). :mod:`.hybrid`: HybridMF (ids plus features, LightFM's
sums; scores cold items from their features) and PretrainedHybrid (a trained MF plus a
metadata network, frozen then unfrozen).
"""

from __future__ import annotations

from .als import ALS
from .autoencoder import AutoRec, masked_mse
from .base import Recommender, check_indices, index_checks, model_device, place_model
from .baselines import Popularity
from .graph import NGCF, LightGCN, laplacian, normalized_adjacency
from .hybrid import HybridMF, PretrainedHybrid
from .item_item import EASE, ItemKNN
from .mf import MF, EmbeddingMLP
from .ncf import GMF, NCFMLP, NeuMF

__all__ = [
    "Recommender",
    "model_device",
    "place_model",
    "check_indices",
    "index_checks",
    "MF",
    "EmbeddingMLP",
    "GMF",
    "NCFMLP",
    "NeuMF",
    "Popularity",
    "normalized_adjacency",
    "laplacian",
    "NGCF",
    "LightGCN",
    "AutoRec",
    "masked_mse",
    "EASE",
    "ItemKNN",
    "ALS",
    "HybridMF",
    "PretrainedHybrid",
]
