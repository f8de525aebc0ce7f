"""The course's data layer: MovieLens loading, encoding, splits, sampling and batching.

One schema everywhere: a ratings ``DataFrame`` with ``user_id`` (int64), ``item_id`` (int64),
``rating`` (float32) and ``timestamp`` (int64, seconds). Loaders return raw ids;
:class:`IdEncoder` maps them to contiguous 0-based indices, fitted on training data only.

Inputs are checked, vectorised, by one set of rules (``recs_course.data._common``): ids are
integers that int64 holds exactly, timestamps are numbers or datetime64 (no NaN/NaT), ratings
are finite where used, the splits and the interaction matrix need unique (user, item) pairs
(:func:`drop_duplicate_pairs` keeps one row per pair), and encoded indices lie in
``[0, n)``; anything else is a ``ValueError`` saying what and where. Malformed dataset files
are a :class:`DatasetNotAvailable` naming the file and the line.

Side information (:mod:`.features`): :class:`FeatureEncoder` turns item or user metadata into
index bags (:class:`FeatureBags`) for ``nn.EmbeddingBag``, fitted on training data, with one
shared unknown feature per field for unseen or missing values.

Typical use::

    from recs_course.data import (load_movielens, leave_one_out, IdEncoder,
                                  pointwise_instances, ranking_candidates, Batches)

    ml = load_movielens("ml-100k")
    train, test = leave_one_out(ml.ratings)
    enc = IdEncoder().fit(train)
    train, test = enc.transform(train), enc.transform(test, unknown="drop")
    users, items, labels = pointwise_instances(train, enc.n_items, n_neg=4, generator=g)
    for u, i, y in Batches(users, items, labels, batch_size=256, generator=g): ...
    eval_users, candidates = ranking_candidates(test, enc.n_items, n_neg=99, exclude=train,
                                                generator=0)
"""

from .batches import Batches, to_tensors
from .encoding import IdEncoder
from .features import (
    AGE_EDGES,
    YEAR_EDGES,
    FeatureBags,
    FeatureEncoder,
    movielens_item_encoder,
    movielens_user_encoder,
)
from .movielens import (
    REGISTRY,
    Archive,
    DatasetNotAvailable,
    MovieLens,
    cache_dir,
    load_movielens,
)
from .sampling import (
    InstanceBatches,
    NegativeSampler,
    pairwise_instances,
    pointwise_instances,
    ranking_candidates,
    sample_negatives,
)
from .sparse import interaction_matrix
from .splits import (
    chronological_split,
    drop_duplicate_pairs,
    leave_one_out,
    random_split,
    stratified_split,
    to_implicit,
)
from .synthetic import movielens_shaped, subsample_users, synthetic_ratings

__all__ = [
    "AGE_EDGES",
    "Archive",
    "Batches",
    "DatasetNotAvailable",
    "FeatureBags",
    "FeatureEncoder",
    "IdEncoder",
    "InstanceBatches",
    "MovieLens",
    "NegativeSampler",
    "REGISTRY",
    "cache_dir",
    "chronological_split",
    "drop_duplicate_pairs",
    "interaction_matrix",
    "leave_one_out",
    "load_movielens",
    "movielens_shaped",
    "movielens_item_encoder",
    "movielens_user_encoder",
    "pairwise_instances",
    "pointwise_instances",
    "random_split",
    "ranking_candidates",
    "sample_negatives",
    "stratified_split",
    "subsample_users",
    "synthetic_ratings",
    "to_tensors",
    "to_implicit",
    "YEAR_EDGES",
]
