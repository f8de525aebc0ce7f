"""Hybrid models: collaborative filtering with side information (item and user features).

- :class:`HybridMF`, a factorisation in the manner of LightFM (Kula, "Metadata embeddings for
  user and item cold-start recommendations", 2015): a user (an item) is the *sum* of the
  embedding of its id and the embeddings of its features, ``p_u = e_u + sum_f w_uf e_f``, and
  likewise its bias, so ``s_ui = p_u . q_i + b_u + b_i + b``. An item without interactions is
  still somewhere: at the sum of its genres' and its year's embeddings, which every item of those
  genres trained. Its id embedding, never trained, is left out (``from_interactions`` marks
  such ids *unknown*; :meth:`HybridMF.score_new_items` scores items that had no id at all).
- :class:`PretrainedHybrid`, the hybrid of the tutorial the course follows (Collie's
  ``HybridPretrainedModel``): a trained :class:`~recs_course.models.MF`'s user and item
  embeddings and biases, plus a metadata network; the embeddings are frozen while the new
  layers learn, then unfrozen (:meth:`PretrainedHybrid.freeze`,
  :meth:`PretrainedHybrid.unfreeze`) to fine-tune everything at a lower rate.

Features come as :class:`recs_course.data.features.FeatureBags` (padded index bags and their
weights), one row per user or item index, consumed by ``nn.EmbeddingBag(mode="sum")``. The bags
are persistent buffers: the state dict, hence a checkpoint, holds everything scoring needs.
``config()`` is the plain data that rebuilds an empty model of the same shape (sizes, options,
bags) before ``load_checkpoint`` fills it::

    save_checkpoint(path, model, hybrid=model.config(), items=item_encoder.to_dict())
    stored = read_checkpoint(path)                 # the extras, read with weights_only=True
    model = HybridMF.from_config(stored["hybrid"])
    load_checkpoint(path, model)
    item_encoder = FeatureEncoder.from_dict(stored["items"])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from ..utils import check_flag
from ._interactions import interaction_csr
from .base import (
    Recommender,
    check_layers,
    check_non_negative,
    check_positive_int,
    check_probability,
    check_y_range,
    concat_mlp_scores,
    model_device,
    scale_to_range,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..data.features import FeatureBags

__all__ = ["HybridMF", "PretrainedHybrid"]

_HYBRID_FORMAT = "recs_course.HybridMF/1"
_PRETRAINED_FORMAT = "recs_course.PretrainedHybrid/1"


def _check_bags(name: str, bags: object, n_rows: int, side: str) -> FeatureBags | None:
    """``bags`` as :class:`FeatureBags` with one row per index, or ``None``."""
    if bags is None:
        return None
    from ..data.features import FeatureBags

    if not isinstance(bags, FeatureBags):
        raise ValueError(
            f"{name} must be FeatureBags (FeatureEncoder.transform(frame, ids=...)) or None, "
            f"got {type(bags).__name__}"
        )
    if bags.n_rows != n_rows:
        raise ValueError(
            f"{name} has {bags.n_rows} rows but n_{side}s = {n_rows}: transform the metadata "
            f"with ids=IdEncoder.{side}_ids, one bag per {side} index"
        )
    return bags


def _feature_table(n_features: int, dim: int, std: float) -> nn.EmbeddingBag:
    """``EmbeddingBag(n_features + 1, dim)`` summing weighted rows, the last row the padding
    (zero, never trained), the others ``N(0, std)``."""
    bag = nn.EmbeddingBag(n_features + 1, dim, mode="sum", padding_idx=n_features)
    with torch.no_grad():
        nn.init.normal_(bag.weight, std=std)
        bag.weight[n_features].zero_()
    return bag


def _bags_of(module: nn.Module, side: str) -> FeatureBags | None:
    """The :class:`FeatureBags` a model holds for ``side`` (its buffers and names), or None."""
    info = module._bag_info.get(side)
    if info is None:
        return None
    from ..data.features import FeatureBags

    names, fields = info
    return FeatureBags(
        getattr(module, f"{side}_feature_indices").detach().cpu().clone(),
        getattr(module, f"{side}_feature_weights").detach().cpu().float().clone(),
        len(names),
        names,
        fields,
    )


def _check_config(config: object, fmt: str, cls: str) -> Mapping:
    if not isinstance(config, Mapping) or config.get("format") != fmt:
        raise ValueError(
            f"not a {cls} config (a dict written by {cls}.config(), format {fmt!r}): "
            f"{str(config)[:80]}"
        )
    return config


class HybridMF(Recommender):
    """Matrix factorisation whose users and items are sums of id and feature embeddings.

    ``q_i = k_i e_i + sum_f w_if g_f`` and ``b_i = k_i c_i + sum_f w_if h_f`` (and likewise
    ``p_u``, ``b_u``): ``e_i``/``c_i`` the item's id embedding and bias, ``g_f``/``h_f`` the
    embedding and bias of feature ``f``, ``w_if`` the bag's weights (per field the mean of its
    features), ``k_i`` 1 for a *known* id and 0 for a cold one (``item_known``). The score is
    ``s_ui = p_u . q_i + b_u + b_i + b`` (a logit, or a rating through ``y_range``), as
    LightFM's. Without features on a side the side is plain MF's; with ``item_ids=False`` the
    items are their features only (a pure content model on that side).

    Args:
        n_users, n_items: sizes.
        dim: embedding size ``d``.
        user_features, item_features: :class:`~recs_course.data.features.FeatureBags` with one
            row per user (item) index, or ``None``.
        user_ids, item_ids: give each user (item) an id embedding (and an id bias).
        biases: id and feature biases and a global bias.
        y_range: ``None`` or ``(low, high)``, the scaled sigmoid of :class:`MF`.
        init_std: standard deviation of the normal initialisation of every embedding (the
            biases start at 0).

    Options after ``dim`` are keyword-only. Buffers: ``user_known``/``item_known`` (bool, all
    ``True`` here; :meth:`from_interactions` sets the ids without interactions to ``False``,
    :meth:`set_known` sets them by hand), ``{side}_feature_indices``/``_weights`` (the bags).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        user_features: FeatureBags | None = None,
        item_features: FeatureBags | None = None,
        user_ids: bool = True,
        item_ids: bool = True,
        biases: bool = True,
        y_range: tuple[float, float] | None = None,
        init_std: float = 0.01,
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        self.biases = check_flag("biases", biases)
        self.user_ids = check_flag("user_ids", user_ids)
        self.item_ids = check_flag("item_ids", item_ids)
        self.y_range = check_y_range(y_range)
        init_std = check_non_negative("init_std", init_std)
        self._bag_info: dict[str, tuple[tuple[str, ...], tuple]] = {}
        self.n_user_features = self._build_side(
            "user", self.n_users, user_features, self.user_ids, init_std
        )
        self.n_item_features = self._build_side(
            "item", self.n_items, item_features, self.item_ids, init_std
        )
        if self.biases:
            self.global_bias = nn.Parameter(torch.zeros(()))

    def _build_side(
        self, side: str, n: int, bags: object, ids: bool, init_std: float
    ) -> int | None:
        bags = _check_bags(f"{side}_features", bags, n, side)
        if not ids and bags is None:
            raise ValueError(
                f"{side}_ids=False needs {side}_features: a {side} would have no representation"
            )
        if ids:
            table = nn.Embedding(n, self.dim)
            nn.init.normal_(table.weight, std=init_std)
            self.add_module(f"{side}_embedding", table)
            if self.biases:
                bias = nn.Embedding(n, 1)
                nn.init.zeros_(bias.weight)
                self.add_module(f"{side}_bias", bias)
            self.register_buffer(f"{side}_known", torch.ones(n, dtype=torch.bool))
        if bags is None:
            return None
        self.add_module(
            f"{side}_feature_embedding", _feature_table(bags.n_features, self.dim, init_std)
        )
        if self.biases:
            self.add_module(f"{side}_feature_bias", _feature_table(bags.n_features, 1, 0.0))
        self.register_buffer(f"{side}_feature_indices", bags.indices.clone())
        self.register_buffer(f"{side}_feature_weights", bags.weights.clone().float())
        self._bag_info[side] = (tuple(bags.names), tuple(tuple(f) for f in bags.fields))
        return bags.n_features

    @classmethod
    def from_interactions(
        cls,
        users: object,
        items: object,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        user_features: FeatureBags | None = None,
        item_features: FeatureBags | None = None,
        drop_cold_ids: bool = True,
        user_ids: bool = True,
        item_ids: bool = True,
        biases: bool = True,
        y_range: tuple[float, float] | None = None,
        init_std: float = 0.01,
    ) -> HybridMF:
        """A hybrid whose users and items without a training interaction are *cold*.

        With ``drop_cold_ids`` (the default) a user or item absent from ``users``/``items``
        gets ``known = False``: its id embedding and id bias, which training never reaches,
        are left out of its representation, so it is scored from its features alone (rather
        than from features plus an untrained random vector). Other arguments as in the
        constructor.
        """
        matrix = interaction_csr(users, items, n_users, n_items)
        model = cls(
            n_users,
            n_items,
            dim,
            user_features=user_features,
            item_features=item_features,
            user_ids=user_ids,
            item_ids=item_ids,
            biases=biases,
            y_range=y_range,
            init_std=init_std,
        )
        if check_flag("drop_cold_ids", drop_cold_ids):
            model.set_known(
                users=np.diff(matrix.indptr) > 0,
                items=np.bincount(matrix.indices, minlength=model.n_items) > 0,
            )
        return model

    def set_known(self, *, users: object = None, items: object = None) -> HybridMF:
        """Set which ids count (bool masks ``(n_users,)`` / ``(n_items,)``; ``None`` leaves a
        side as it is). A ``False`` id is represented by its features only. Returns ``self``."""
        for side, mask, n in (("user", users, self.n_users), ("item", items, self.n_items)):
            if mask is None:
                continue
            if not getattr(self, f"{side}_ids"):
                raise ValueError(f"this HybridMF has no {side} ids ({side}_ids=False)")
            if isinstance(mask, Tensor):
                mask = mask.detach().cpu().numpy()
            array = np.asarray(mask)
            if array.dtype != bool or array.shape != (n,):
                raise ValueError(
                    f"{side}s must be a bool mask of shape ({n},) (True: the id counts), got "
                    f"{array.dtype} of shape {array.shape}"
                )
            getattr(self, f"{side}_known").copy_(torch.from_numpy(array))
        return self

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, dim={self.dim}, user_features={self.n_user_features}, "
            f"item_features={self.n_item_features}, user_ids={self.user_ids}, "
            f"item_ids={self.item_ids}, biases={self.biases}, y_range={self.y_range}"
        )

    # -- representations ----------------------------------------------------------------------
    def _represent(self, side: str, idx: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """``(vectors (n, d), biases (n,) or None)`` of rows ``idx`` (``None``: all rows)."""
        vec: Tensor | None = None
        bias: Tensor | None = None
        table = self._modules.get(f"{side}_embedding")
        if table is not None:
            known = getattr(self, f"{side}_known")
            if idx is not None:
                known = known[idx]
            rows = table.weight if idx is None else table(idx)
            keep = known.to(rows.dtype)
            vec = rows * keep.unsqueeze(-1)
            if self.biases:
                id_bias = self._modules[f"{side}_bias"]
                b = id_bias.weight if idx is None else id_bias(idx)
                bias = b.squeeze(-1) * keep
        bag = self._modules.get(f"{side}_feature_embedding")
        if bag is not None:
            ind = getattr(self, f"{side}_feature_indices")
            w = getattr(self, f"{side}_feature_weights")
            if idx is not None:
                ind, w = ind[idx], w[idx]
            feat = bag(ind, per_sample_weights=w.to(bag.weight.dtype))
            vec = feat if vec is None else vec + feat
            if self.biases:
                fb = self._modules[f"{side}_feature_bias"]
                feat_bias = fb(ind, per_sample_weights=w.to(fb.weight.dtype)).squeeze(-1)
                bias = feat_bias if bias is None else bias + feat_bias
        return vec, bias

    def _item_table(self) -> tuple[Tensor, Tensor | None]:
        """Every item's vector and bias, once per scoring pass."""
        return self._pass_value("items", lambda: self._represent("item", None))

    def user_vectors(self, users: object = None) -> Tensor:
        """``(B, d)`` the users' representations ``p_u`` (``None``: every user)."""
        return self._represent("user", None if users is None else self._users(users))[0]

    def item_vectors(self, items: object = None) -> Tensor:
        """``(B, d)`` the items' representations ``q_i`` (``None``: every item), e.g. for
        "more like this" by cosine similarity."""
        return self._represent("item", None if items is None else self._items(items))[0]

    def _combine(self, user_part, item_part, outer: bool) -> Tensor:
        (u, bu), (i, bi) = user_part, item_part
        if outer:
            score = u @ i.T
            if self.biases:
                score = score + bu.unsqueeze(1) + bi.unsqueeze(0) + self.global_bias
        else:
            score = (u * i).sum(-1)
            if self.biases:
                score = score + bu + bi + self.global_bias
        return scale_to_range(score, self.y_range)

    @contextlib.contextmanager
    def scoring_pass(self) -> Iterator[None]:
        """Every item's representation is computed once per evaluation (see the base class)."""
        with self._sharing_pass():
            yield

    # -- the contract -------------------------------------------------------------------------
    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` scores."""
        users, items = self._pairs(users, items)
        if self._sharing():
            table, table_bias = self._item_table()
            item_part = (table[items], None if table_bias is None else table_bias[items])
        else:
            item_part = self._represent("item", items)
        return self._combine(self._represent("user", users), item_part, outer=False)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)`` with one matrix product."""
        users = self._users(users)
        return self._combine(self._represent("user", users), self._item_table(), outer=True)

    def score_new_items(self, users: object, item_features: FeatureBags) -> Tensor:
        """``(B, n_new)``: scores of items that had no id in training, from their features.

        ``item_features`` are the new items' bags, made by the encoder that made this model's
        (same features, in the same order; e.g. ``encoder.transform(frame, ids=new_raw_ids)``).
        A new item is what an item marked unknown is: ``q = sum_f w_f g_f``, ``b = sum_f w_f
        h_f``.
        """
        users = self._users(users)
        if self.n_item_features is None:
            raise ValueError("this HybridMF has no item features: it cannot score new items")
        from ..data.features import FeatureBags

        if not isinstance(item_features, FeatureBags):
            raise ValueError(
                f"item_features must be FeatureBags, got {type(item_features).__name__}"
            )
        names, _ = self._bag_info["item"]
        if tuple(item_features.names) != names:
            raise ValueError(
                f"item_features has {item_features.n_features} features, not this model's "
                f"{len(names)} (or not in the same order): transform the new items with the "
                "encoder the model's item features came from"
            )
        bag = self.item_feature_embedding
        device, dtype = bag.weight.device, bag.weight.dtype
        ind = item_features.indices.to(device)
        w = item_features.weights.to(device, dtype)
        vec = bag(ind, per_sample_weights=w)
        bias = None
        if self.biases:
            bias = self.item_feature_bias(ind, per_sample_weights=w).squeeze(-1)
        return self._combine(self._represent("user", users), (vec, bias), outer=True)

    # -- rebuilding ---------------------------------------------------------------------------
    def config(self) -> dict:
        """Plain data (and the bags' tensors) from which :meth:`from_config` builds a model of
        the same shape: store it beside the weights, e.g.
        ``save_checkpoint(path, model, hybrid=model.config())``."""
        user_bags, item_bags = _bags_of(self, "user"), _bags_of(self, "item")
        return {
            "format": _HYBRID_FORMAT,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "user_ids": self.user_ids,
            "item_ids": self.item_ids,
            "biases": self.biases,
            "y_range": None if self.y_range is None else list(self.y_range),
            "user_features": None if user_bags is None else user_bags.to_dict(),
            "item_features": None if item_bags is None else item_bags.to_dict(),
        }

    @classmethod
    def from_config(cls, config: Mapping) -> HybridMF:
        """A model built as :meth:`config` says (fresh weights, all ids known: load the
        checkpoint's state into it)."""
        from ..data.features import FeatureBags

        config = _check_config(config, _HYBRID_FORMAT, "HybridMF")
        try:
            bags = {
                side: None
                if config[f"{side}_features"] is None
                else FeatureBags.from_dict(config[f"{side}_features"])
                for side in ("user", "item")
            }
            return cls(
                config["n_users"],
                config["n_items"],
                config["dim"],
                user_features=bags["user"],
                item_features=bags["item"],
                user_ids=config["user_ids"],
                item_ids=config["item_ids"],
                biases=config["biases"],
                y_range=config["y_range"],
            )
        except KeyError as exc:
            raise ValueError(f"HybridMF.from_config: the config lacks {exc}") from exc


class PretrainedHybrid(Recommender):
    """A trained MF's embeddings and biases, plus a network on the item metadata.

    ``m_i = LeakyReLU(W_1 x_i + c_1)`` (then more layers of ``metadata_layers``), where ``x_i``
    is the item's weighted multi-hot feature row (``W_1 x_i`` is an ``EmbeddingBag`` over the
    item's bag); ``z = [p_u ; q_i ; m_i]`` goes through ``combined_layers`` (Linear,
    LeakyReLU, dropout) to one output, and
    ``s_ui = f(z) + b_u + b_i`` (the output layer's bias starts at MF's global bias). Collie's
    ``HybridPretrainedModel``; the tutorial's settings are its defaults (``metadata_layers=(8,)``,
    ``combined_layers=(16,)``; learning rate 1e-2 frozen, then 1e-4 unfrozen, 10 epochs each,
    on an MF of dimension 30).

    Build it with :meth:`from_mf`. Frozen (the default), the user and item embeddings do not
    train (``requires_grad=False``; give the optimiser the trainable parameters only,
    ``[p for p in model.parameters() if p.requires_grad]``); the biases do, as in the
    tutorial, unless ``freeze(biases=True)``.

    Args:
        n_users, n_items: sizes; dim: the MF's embedding size.
        item_features: :class:`~recs_course.data.features.FeatureBags`, one row per item.
        metadata_layers: sizes of the metadata network (at least one).
        combined_layers: hidden sizes of the combined network (at least one: without a
            nonlinearity the user's part of the score would not depend on the item).
        dropout: after each hidden activation.
        biases: user and item biases.
        frozen: start with the embeddings frozen.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 32,
        *,
        item_features: FeatureBags,
        metadata_layers: Sequence[int] = (8,),
        combined_layers: Sequence[int] = (16,),
        dropout: float = 0.0,
        biases: bool = True,
        frozen: bool = True,
    ) -> None:
        super().__init__(n_users, n_items)
        self.dim = check_positive_int("dim", dim)
        bags = _check_bags("item_features", item_features, self.n_items, "item")
        if bags is None:
            raise ValueError("item_features is required: the metadata network reads it")
        self.metadata_layers = check_layers("metadata_layers", metadata_layers)
        # At least one hidden layer: a linear map of [p_u ; q_i ; m_i] is a sum of a user term
        # and an item term, the same ranking for every user (the user term cancels in BPR).
        self.combined_layers = check_layers("combined_layers", combined_layers)
        self.dropout = check_probability("dropout", dropout)
        self.biases = check_flag("biases", biases)
        self.user_embedding = nn.Embedding(self.n_users, self.dim)
        self.item_embedding = nn.Embedding(self.n_items, self.dim)
        nn.init.normal_(self.user_embedding.weight, std=0.01)
        nn.init.normal_(self.item_embedding.weight, std=0.01)
        if self.biases:
            self.user_bias = nn.Embedding(self.n_users, 1)
            self.item_bias = nn.Embedding(self.n_items, 1)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
        n_features, first = bags.n_features, self.metadata_layers[0]
        # Xavier-normal, as a Linear(n_features, first) would be
        std = (2.0 / (n_features + first)) ** 0.5
        self.metadata_input = _feature_table(n_features, first, std)
        self.metadata_input_bias = nn.Parameter(torch.zeros(first))
        layers: list[nn.Module] = [nn.LeakyReLU(), nn.Dropout(self.dropout)]
        for a, b in pairwise(self.metadata_layers):
            layers += [_xavier(nn.Linear(a, b)), nn.LeakyReLU(), nn.Dropout(self.dropout)]
        self.metadata_network = nn.Sequential(*layers)
        sizes = [2 * self.dim + self.metadata_layers[-1], *self.combined_layers, 1]
        self.combined_input = _xavier(nn.Linear(sizes[0], sizes[1]))
        rest: list[nn.Module] = []
        for a, b in pairwise(sizes[1:]):
            rest += [nn.LeakyReLU(), nn.Dropout(self.dropout), _xavier(nn.Linear(a, b))]
        self.combined_network = nn.Sequential(*rest)
        self.register_buffer("item_feature_indices", bags.indices.clone())
        self.register_buffer("item_feature_weights", bags.weights.clone().float())
        self._bag_info = {"item": (tuple(bags.names), tuple(tuple(f) for f in bags.fields))}
        if check_flag("frozen", frozen):
            self.freeze()

    @classmethod
    def from_mf(
        cls,
        mf: nn.Module,
        item_features: FeatureBags,
        *,
        metadata_layers: Sequence[int] = (8,),
        combined_layers: Sequence[int] = (16,),
        dropout: float = 0.0,
        frozen: bool = True,
    ) -> PretrainedHybrid:
        """The hybrid on a trained :class:`~recs_course.models.MF` (an implicit one: no
        ``y_range``): copies of its embeddings and biases (the MF is not changed), its global
        bias in the output layer's bias, on the MF's device."""
        from .mf import MF

        if not isinstance(mf, MF):
            raise ValueError(f"mf must be a trained recs_course MF, got {type(mf).__name__}")
        if mf.y_range is not None:
            raise ValueError(
                "mf has a y_range (a rating model): the pretrained hybrid scores logits; "
                "pretrain an MF without y_range (BPR or BCE)"
            )
        model = cls(
            mf.n_users,
            mf.n_items,
            mf.dim,
            item_features=item_features,
            metadata_layers=metadata_layers,
            combined_layers=combined_layers,
            dropout=dropout,
            biases=mf.biases,
            frozen=frozen,
        ).to(model_device(mf))
        with torch.no_grad():
            model.user_embedding.weight.copy_(mf.user_embedding.weight)
            model.item_embedding.weight.copy_(mf.item_embedding.weight)
            if mf.biases:
                model.user_bias.weight.copy_(mf.user_bias.weight)
                model.item_bias.weight.copy_(mf.item_bias.weight)
                model._output_layer().bias.copy_(mf.global_bias.detach().reshape(1))
        return model

    def _output_layer(self) -> nn.Linear:
        return self.combined_network[-1]

    def freeze(self, *, biases: bool = False) -> PretrainedHybrid:
        """Stop the user and item embeddings (and, with ``biases=True``, the biases) from
        training. Returns ``self``."""
        frozen = [self.user_embedding.weight, self.item_embedding.weight]
        if check_flag("biases", biases) and self.biases:
            frozen += [self.user_bias.weight, self.item_bias.weight]
        for p in frozen:
            p.requires_grad_(False)
        return self

    def unfreeze(self) -> PretrainedHybrid:
        """Let every parameter train (fine-tune the embeddings, at a lower rate). Returns
        ``self``; build a new optimiser on ``model.parameters()``."""
        for p in self.parameters():
            p.requires_grad_(True)
        return self

    @property
    def frozen(self) -> bool:
        """Whether the embeddings are frozen."""
        return not self.user_embedding.weight.requires_grad

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, dim={self.dim}, item_features="
            f"{len(self._bag_info['item'][0])}, metadata_layers={self.metadata_layers}, "
            f"combined_layers={self.combined_layers}, dropout={self.dropout}, "
            f"biases={self.biases}"
        )

    # -- the network --------------------------------------------------------------------------
    def _metadata(self, items: Tensor | None) -> Tensor:
        ind, w = self.item_feature_indices, self.item_feature_weights
        if items is not None:
            ind, w = ind[items], w[items]
        bag = self.metadata_input
        x = bag(ind, per_sample_weights=w.to(bag.weight.dtype)) + self.metadata_input_bias
        return self.metadata_network(x)

    def _bias(self, users: Tensor, items: Tensor | None) -> Tensor | int:
        if not self.biases:
            return 0
        if items is None:
            return self.user_bias(users) + self.item_bias.weight.T  # (B, I)
        return self.user_bias(users).squeeze(-1) + self.item_bias(items).squeeze(-1)

    @contextlib.contextmanager
    def scoring_pass(self) -> Iterator[None]:
        """Every item's half of the network is computed once per evaluation."""
        with self._sharing_pass():
            yield

    def _item_half(self) -> Tensor:
        """``(I, d + h)``: ``[q_i ; m_i]`` of every item, once per scoring pass."""
        return self._pass_value(
            "items", lambda: torch.cat([self.item_embedding.weight, self._metadata(None)], 1)
        )

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """``users (B,)``, ``items (B,)`` -> ``(B,)`` logits."""
        users, items = self._pairs(users, items)
        if self._sharing():
            item_half = self._item_half()[items]
        else:
            item_half = torch.cat([self.item_embedding(items), self._metadata(items)], 1)
        z = torch.cat([self.user_embedding(users), item_half], 1)
        out = self.combined_network(self.combined_input(z)).squeeze(-1)
        return out + self._bias(users, items)

    def score_all(self, users: Tensor) -> Tensor:
        """``users (B,)`` -> ``(B, n_items)``: the first combined layer is applied per user and
        per item rather than per pair (with dropout in training mode, through ``forward``)."""
        if self.training and self.dropout > 0:
            return super().score_all(users)
        users = self._users(users)
        scores = concat_mlp_scores(
            self.user_embedding(users),
            self._item_half(),
            self.combined_input,
            self.combined_network,
        ).squeeze(-1)
        return scores + self._bias(users, None)

    # -- rebuilding ---------------------------------------------------------------------------
    def config(self) -> dict:
        """Plain data (and the bags' tensors) that :meth:`from_config` rebuilds from."""
        return {
            "format": _PRETRAINED_FORMAT,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "metadata_layers": list(self.metadata_layers),
            "combined_layers": list(self.combined_layers),
            "dropout": self.dropout,
            "biases": self.biases,
            "frozen": self.frozen,
            "item_features": _bags_of(self, "item").to_dict(),
        }

    @classmethod
    def from_config(cls, config: Mapping) -> PretrainedHybrid:
        """A model built as :meth:`config` says (fresh weights: load the checkpoint into it)."""
        from ..data.features import FeatureBags

        config = _check_config(config, _PRETRAINED_FORMAT, "PretrainedHybrid")
        try:
            return cls(
                config["n_users"],
                config["n_items"],
                config["dim"],
                item_features=FeatureBags.from_dict(config["item_features"]),
                metadata_layers=config["metadata_layers"],
                combined_layers=config["combined_layers"],
                dropout=config["dropout"],
                biases=config["biases"],
                frozen=config["frozen"],
            )
        except KeyError as exc:
            raise ValueError(f"PretrainedHybrid.from_config: the config lacks {exc}") from exc


def _xavier(linear: nn.Linear) -> nn.Linear:
    """Xavier-normal weights and zero biases (Collie's initialisation of its layers)."""
    nn.init.xavier_normal_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear
