"""Recipes: how each of the course's models is trained, as one typed, frozen object.

A :class:`Recipe` says everything that decides a trained model besides the data and the seed:
the model and its options, the loss, the optimiser, the rate, the weight decay, the batch, the
number of epochs and the early-stopping rule, and where those values were chosen. The chapters,
``benchmarks/quality.py`` and the peer benchmarks all read the same recipes from
:data:`RECIPES`, so "the course's defaults" is one thing by construction::

    from recs_course.protocols import full_ranking
    from recs_course.recipes import RECIPES, run, tune

    protocol = full_ranking(ratings)
    runs = run(RECIPES["full/LightGCN"], protocol, seeds=[0, 1, 2])  # 3 training runs
    runs.metrics                        # one Metrics (per-user values inside) per seed
    compare(runs.metrics, other.metrics, "NDCG@20")                 # recs_course.compare

    best, grid = tune(RECIPES["full/BPR-MF"], protocol, {"lr": [1e-3, 3e-3, 1e-2]})

A recipe is frozen: a variant is a new object (``recipe.replace(lr=1e-2)``,
``recipe.with_options(dim=32)``), and two runs of one recipe with one seed on one machine
give the same model.

Training follows one rule for every model: seed everything with the training seed
(:func:`recs_course.training.seed_everything`), build the model on ``protocol.train``, train
it with :func:`recs_course.training.fit` while watching ``protocol.monitor`` on the validation
set (the best epoch's weights are kept), then, if ``refit`` is set, build and train it again
on training and validation data for that best number of epochs (for models whose *input* is
the data, such as AutoRec: without a refit the validation ratings would be missing from their
input at test time). Models fitted in closed form (EASE, ItemKNN, ALS, Popularity) are built
on the training data (or, with ``refit``, on training and validation data) and not trained.
"""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from .data import Batches, InstanceBatches, NegativeSampler, to_tensors
from .metrics import Metrics
from .protocols import Protocol
from .training import History, fit, seed_everything
from .utils import check_flag, check_non_negative_int, check_positive_int, get_device

__all__ = ["Recipe", "Trained", "Runs", "RECIPES", "train", "run", "tune"]

_LOSSES = ("mse", "bce", "bpr", "masked_mse", None)
_OPTIMIZERS = ("adam", "adamw", "sgd", "adagrad")
_DECAY = ("all", "embeddings")
# Models with no gradient training: built from the interactions in closed form or by counting.
_CLOSED_FORM = ("Popularity", "EASE", "ItemKNN", "ALS")
# Models whose constructor needs the training interactions (built by from_interactions).
_FROM_INTERACTIONS = ("NGCF", "LightGCN", "AutoRec", *_CLOSED_FORM)
_PROTOCOL_NAMES = ("explicit", "sampled", "full", "cold")


def _frozen_options(options: object) -> tuple[tuple[str, Any], ...]:
    if isinstance(options, Mapping):
        items = list(options.items())
    else:
        try:
            items = [tuple(pair) for pair in options]  # type: ignore[union-attr]
        except TypeError:
            raise ValueError(
                f"options must be a mapping of option name to value, got {options!r}"
            ) from None
    out = []
    for pair in items:
        if len(pair) != 2 or not isinstance(pair[0], str):
            raise ValueError(f"options must map option names (str) to values, got {pair!r}")
        key, value = pair
        if isinstance(value, list):
            value = tuple(value)
        out.append((key, value))
    return tuple(sorted(out))


@dataclass(frozen=True)
class Recipe:
    """How one model is trained (all fields are keyword arguments; the object is frozen).

    Attributes:
        label: the model's name in tables (``"LightGCN"``).
        model: the class name in :mod:`recs_course.models` (``"LightGCN"``, ``"MF"``, ...).
        protocol: the protocol it was chosen on: ``"explicit"``, ``"sampled"``, ``"full"`` or ``"cold"``.
        options: the model's keyword arguments besides the sizes (``{"dim": 64}``); kept as a
            sorted tuple of pairs, read back as a dict with :attr:`model_options`.
        loss: ``"mse"``, ``"bce"`` (pointwise, ``n_neg`` sampled negatives per positive),
            ``"bpr"`` (pairs, one negative), ``"masked_mse"`` (autoencoders, one batch of item
            rows) or ``None`` for closed-form models.
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` or ``"adagrad"``.
        lr: learning rate (the peak rate with ``schedule="onecycle"``).
        weight_decay: the optimiser's weight decay.
        decay: ``"all"`` parameters, or only the ``"embeddings"`` (biases and the rest not
            shrunk).
        betas: Adam's and AdamW's betas.
        batch_size: training rows (ratings, instances, pairs or item rows) per step.
        n_neg: negatives per positive for ``loss="bce"``.
        epochs: the most epochs (exactly this many without ``patience``).
        patience: stop after this many epochs without a better validation ``monitor``;
            ``None`` trains all ``epochs`` (the best epoch's weights are kept either way).
        schedule: ``None`` or ``"onecycle"`` (warm-up then annealing over all ``epochs``).
        refit: after training, train again on training and validation data for the best
            number of epochs (closed-form models: build on both).
        chosen: where the values come from (a grid and the file that records it, a paper).
    """

    label: str
    model: str
    protocol: str
    options: Any = ()
    loss: str | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    decay: str = "all"
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 256
    n_neg: int = 1
    epochs: int = 20
    patience: int | None = None
    schedule: str | None = None
    refit: bool = False
    chosen: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "options", _frozen_options(self.options))
        from . import models

        if not isinstance(self.model, str) or not isinstance(
            getattr(models, self.model, None), type
        ):
            raise ValueError(f"model must name a class of recs_course.models, got {self.model!r}")
        if self.protocol not in _PROTOCOL_NAMES:
            raise ValueError(f"protocol must be one of {_PROTOCOL_NAMES}, got {self.protocol!r}")
        closed = self.model in _CLOSED_FORM
        if closed and self.loss is not None:
            raise ValueError(f"{self.model} is fitted in closed form: its loss must be None")
        if not closed and self.loss not in _LOSSES[:-1]:
            raise ValueError(
                f"loss must be one of {_LOSSES[:-1]} for {self.model}, got {self.loss!r}"
            )
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if self.decay not in _DECAY:
            raise ValueError(f"decay must be one of {_DECAY}, got {self.decay!r}")
        if self.schedule not in (None, "onecycle"):
            raise ValueError(f"schedule must be None or 'onecycle', got {self.schedule!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
            set_(self, name, float(value))
        for name in ("batch_size", "n_neg", "epochs"):
            set_(self, name, check_positive_int(name, getattr(self, name)))
        if self.patience is not None:
            set_(self, "patience", check_positive_int("patience", self.patience))
        set_(self, "betas", tuple(float(b) for b in self.betas))

    @property
    def model_options(self) -> dict[str, Any]:
        """The model's options as a dict (a copy)."""
        return dict(self.options)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed (``recipe.replace(lr=1e-2, chosen="...")``)."""
        return dataclasses.replace(self, **changes)

    def with_options(self, **options: Any) -> Recipe:
        """A copy with some model options changed or added."""
        return self.replace(options={**self.model_options, **options})

    def summary(self) -> dict[str, Any]:
        """The recipe as one flat dict (model options inline), for tables."""
        out: dict[str, Any] = {"label": self.label, "model": self.model}
        out.update(self.model_options)
        if self.loss is not None:
            out.update(
                loss=self.loss,
                optimizer=self.optimizer,
                lr=self.lr,
                weight_decay=self.weight_decay,
                batch_size=self.batch_size,
                epochs=self.epochs,
                patience=self.patience,
            )
            if self.loss == "bce":
                out["n_neg"] = self.n_neg
            if self.schedule:
                out["schedule"] = self.schedule
        if self.refit:
            out["refit"] = True
        out["chosen"] = self.chosen
        return out


@dataclass
class Trained:
    """One trained model: the recipe, the training seed, the model, its history, the time."""

    recipe: Recipe
    seed: int
    model: nn.Module
    history: History | None
    seconds: float


@dataclass
class Runs:
    """Several training runs of one recipe on one protocol, each evaluated on one part.

    ``metrics`` holds one :class:`recs_course.metrics.Metrics` per seed (per-user values
    inside): pass it (or the ``Runs`` itself) to :func:`recs_course.compare.compare`.
    ``epochs`` (the epochs kept), ``seconds`` and ``histories`` (the training curves; ``None``
    for closed-form models) have one entry per seed too, ``models`` with ``keep_models=True``.
    """

    recipe: Recipe
    protocol: str
    part: str
    seeds: list[int]
    metrics: list[Metrics]
    epochs: list[int | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    histories: list[History | None] = field(default_factory=list)
    models: list[nn.Module] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.recipe.label

    def table(self) -> pd.DataFrame:
        """One row per seed: the metrics, the epochs kept and the training time."""
        frame = pd.DataFrame(
            [dict(m) for m in self.metrics], index=pd.Index(self.seeds, name="seed")
        )
        frame["epochs"] = self.epochs
        frame["seconds"] = self.seconds
        return frame

    def mean(self) -> dict[str, float]:
        """Each metric's mean over the seeds."""
        return {
            k: float(sum(m[k] for m in self.metrics) / len(self.metrics)) for k in self.metrics[0]
        }


def _check_protocol(recipe: Recipe, protocol: object) -> Protocol:
    if not isinstance(protocol, Protocol):
        raise ValueError(
            "protocol must be a recs_course.protocols.Protocol (explicit_ratings(...), "
            f"sampled_ranking(...) or full_ranking(...)), got {type(protocol).__name__}"
        )
    if protocol.name != recipe.protocol:
        raise ValueError(
            f"the recipe {recipe.label!r} was made for the {recipe.protocol!r} protocol, not "
            f"{protocol.name!r}: use recipe.replace(protocol={protocol.name!r}) to say you mean it"
        )
    return protocol


def _build(recipe: Recipe, protocol: Protocol, data: pd.DataFrame, seed: int) -> nn.Module:
    from . import models

    cls = getattr(models, recipe.model)
    options = recipe.model_options
    n_users, n_items = protocol.n_users, protocol.n_items
    if recipe.model in _FROM_INTERACTIONS:
        users, items = data["user_id"].to_numpy(), data["item_id"].to_numpy()
        if recipe.model == "AutoRec":
            options["ratings"] = data["rating"].to_numpy()
        if recipe.model == "ALS":
            options.setdefault("generator", seed)
        return cls.from_interactions(users, items, n_users, n_items, **options)
    return cls(n_users, n_items, **options)


def _optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.decay == "embeddings" and recipe.weight_decay:
        embedding_ids = {
            id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
        }
        # A bias stored as a one-column embedding is not shrunk either.
        embedding_ids -= {
            id(m.weight)
            for m in model.modules()
            if isinstance(m, nn.Embedding) and m.embedding_dim == 1
        }
        decayed = [p for p in params if id(p) in embedding_ids]
        rest = [p for p in params if id(p) not in embedding_ids]
        groups: Any = [
            {"params": decayed, "weight_decay": recipe.weight_decay},
            {"params": rest, "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": params, "weight_decay": recipe.weight_decay}]
    if recipe.optimizer == "adam":
        return torch.optim.Adam(groups, lr=recipe.lr, betas=recipe.betas)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr, betas=recipe.betas)
    if recipe.optimizer == "adagrad":
        return torch.optim.Adagrad(groups, lr=recipe.lr)
    return torch.optim.SGD(groups, lr=recipe.lr)


def _train_data(recipe: Recipe, protocol: Protocol, data: pd.DataFrame, model, generator):
    if recipe.loss == "mse":
        return Batches(*to_tensors(data), batch_size=recipe.batch_size, generator=generator)
    if recipe.loss == "masked_mse":
        rows = model.n_items if getattr(model, "based", "item") == "item" else model.n_users
        return Batches(torch.arange(rows), batch_size=recipe.batch_size, generator=generator)
    sampler = NegativeSampler.from_ratings(data, protocol.n_items, n_users=protocol.n_users)
    kind = "pointwise" if recipe.loss == "bce" else "pairwise"
    return InstanceBatches(
        data,
        protocol.n_items,
        kind,
        n_neg=recipe.n_neg if kind == "pointwise" else 1,
        batch_size=recipe.batch_size,
        generator=generator,
        positives=sampler,
    )


def _fit(recipe, protocol, data, seed, epochs, *, evaluate, device, progress):
    generator = seed_everything(seed)
    model = _build(recipe, protocol, data, seed)
    if recipe.model in _CLOSED_FORM:
        return model, None
    batches = _train_data(recipe, protocol, data, model, generator)
    optimizer = _optimizer(recipe, model)
    scheduler = None
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=epochs * len(batches)
        )
    history = fit(
        model,
        batches,
        recipe.loss,
        optimizer,
        epochs,
        scheduler=scheduler,
        evaluate=evaluate,
        monitor=protocol.monitor if evaluate else None,
        patience=recipe.patience if evaluate else None,
        device=device,
        progress=progress,
    )
    return model, history


def train(
    recipe: Recipe,
    protocol: Protocol,
    seed: int = 0,
    *,
    epochs: int | None = None,
    device: Any = None,
    progress: bool = False,
) -> Trained:
    """Train ``recipe``'s model on ``protocol`` with training seed ``seed``.

    ``epochs`` overrides the recipe's (the quick mode of the chapters); ``device`` as in
    :func:`recs_course.training.fit`. See the module docstring for the rule.
    """
    protocol = _check_protocol(recipe, protocol)
    seed = check_non_negative_int("seed", seed)
    epochs = recipe.epochs if epochs is None else check_positive_int("epochs", epochs)
    start = time.perf_counter()
    evaluate = protocol.evaluator("valid", device=device)
    model, history = _fit(
        recipe,
        protocol,
        protocol.train,
        seed,
        epochs,
        evaluate=evaluate,
        device=device,
        progress=progress,
    )
    if recipe.refit:
        best = history.best_epoch if history is not None else epochs
        model, _ = _fit(
            recipe,
            protocol,
            protocol.train_valid,
            seed,
            best,
            evaluate=None,
            device=device,
            progress=progress,
        )
    if device is not None:
        from .models import place_model

        place_model(model, device)
    return Trained(recipe, seed, model, history, time.perf_counter() - start)


def _one_run(recipe, protocol, seed, part, epochs, device, threads, keep_model):
    """One seed of :func:`run`: train, evaluate; what comes back is plain data (and the model,
    on the CPU when it comes from a worker process, if asked for)."""
    if threads is not None:
        torch.set_num_threads(threads)
    trained = train(recipe, protocol, seed, epochs=epochs, device=device)
    metrics = protocol.evaluate(trained.model, part, device=device)
    h = trained.history
    model = None
    if keep_model:
        model = trained.model if threads is None else trained.model.cpu()
    kept = None if h is None else (h.best_epoch or h.epochs)
    return metrics, kept, trained.seconds, h, model


_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(n: int) -> ProcessPoolExecutor:
    """The worker processes of :func:`run`, started once and reused by later calls (a worker
    imports torch once, not once per call)."""
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE != n:
        _shutdown_pool()
        _POOL = ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("spawn"))
        _POOL_SIZE = n
    return _POOL


def _shutdown_pool() -> None:
    global _POOL, _POOL_SIZE
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
    _POOL, _POOL_SIZE = None, 0


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _workers(workers: object, n_seeds: int, device: Any) -> int:
    if workers is not None:
        return check_positive_int("workers", workers)
    if device is not None and get_device(device).type != "cpu":
        return 1  # one accelerator: its runs go one after the other
    return max(1, min(n_seeds, _cpu_count()))


def run(
    recipe: Recipe,
    protocol: Protocol,
    seeds: Iterable[int] = (0, 1, 2),
    *,
    part: str = "test",
    epochs: int | None = None,
    device: Any = None,
    workers: int | None = None,
    keep_models: bool = False,
) -> Runs:
    """Train ``recipe`` once per training seed and evaluate each model on ``part``.

    The seeds are independent runs, so they run in ``workers`` processes at once (``None``: one
    per seed, at most one per CPU core, and one at a time on an accelerator), each with
    ``torch.get_num_threads() // workers`` threads (at least one). A run's result does not
    depend on where it ran: the same seed gives the same model in a worker or here. Closed-form
    models run here (they are quick). Workers are started with ``spawn``, which works in
    notebooks and on every platform; they are started at the first call that needs them and
    reused by later calls (each imports torch once, a second or two).

    ``keep_models=True`` keeps the trained models in ``Runs.models`` (one per seed; those
    trained in a worker come back on the CPU), to evaluate them otherwise or build on them.
    """
    keep_models = check_flag("keep_models", keep_models)
    seeds = [check_non_negative_int("seed", s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty: give at least one training seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds repeat: {seeds} (a repeated seed repeats the same run)")
    protocol = _check_protocol(recipe, protocol)
    if part not in ("valid", "test"):
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")
    n = 1 if recipe.model in _CLOSED_FORM else _workers(workers, len(seeds), device)
    if n == 1:
        results = [
            _one_run(recipe, protocol, s, part, epochs, device, None, keep_models) for s in seeds
        ]
    else:
        threads = max(1, torch.get_num_threads() // n)
        pool = _pool(n)
        try:
            futures = [
                pool.submit(
                    _one_run, recipe, protocol, s, part, epochs, device, threads, keep_models
                )
                for s in seeds
            ]
            results = [f.result() for f in futures]
        except BrokenProcessPool:
            _shutdown_pool()
            raise
    out = Runs(recipe, protocol.name, part, seeds, [])
    for metrics, epochs_kept, seconds, history, model in results:
        out.metrics.append(metrics)
        out.epochs.append(epochs_kept)
        out.seconds.append(seconds)
        out.histories.append(history)
        if keep_models:
            out.models.append(model)
    return out


def tune(
    recipe: Recipe,
    protocol: Protocol,
    grid: Mapping[str, Sequence[Any]],
    *,
    seed: int = 0,
    epochs: int | None = None,
    device: Any = None,
) -> tuple[Recipe, pd.DataFrame]:
    """Try every combination of ``grid`` on the validation set; return the best and the table.

    ``grid`` maps a recipe field (``"lr"``, ``"weight_decay"``, ...) or a model option
    (``"l2"``, ``"dim"``, ...) to the values to try. Every model of a comparison should get a
    grid of the same size. The best recipe's ``chosen`` says which grid chose it.
    """
    if not grid:
        raise ValueError("grid is empty: give at least one field with values to try")
    fields = {f.name for f in dataclasses.fields(Recipe)} - {"options", "label", "chosen"}
    names = list(grid)
    for name in names:
        if not isinstance(grid[name], Sequence) or isinstance(grid[name], str) or not grid[name]:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values")
    rows = []
    best: tuple[float, Recipe] | None = None
    sign = 1.0 if protocol.higher_is_better else -1.0
    for values in itertools.product(*(grid[n] for n in names)):
        changes = dict(zip(names, values, strict=True))
        candidate = recipe.replace(**{k: v for k, v in changes.items() if k in fields})
        options = {k: v for k, v in changes.items() if k not in fields}
        if options:
            candidate = candidate.with_options(**options)
        # scored before any refit: a refit model has seen the validation data
        trained = train(
            candidate.replace(refit=False), protocol, seed, epochs=epochs, device=device
        )
        score = protocol.evaluate(trained.model, "valid", device=device)
        h = trained.history
        rows.append(
            {
                **changes,
                **{f"valid {k}": v for k, v in score.items()},
                "best epoch": None if h is None else (h.best_epoch or h.epochs),
            }
        )
        value = score[protocol.monitor]
        if best is None or sign * value > sign * best[0]:
            best = (value, candidate)
    assert best is not None
    described = ", ".join(f"{n} in {list(grid[n])}" for n in names)
    chosen = (
        f"validation {protocol.monitor} of the {protocol.name} protocol over {described} "
        f"(training seed {seed})"
    )
    return best[1].replace(chosen=chosen), pd.DataFrame(rows)


def _recipes(*recipes: Recipe) -> dict[str, Recipe]:
    return {f"{r.protocol}/{r.label}": r for r in recipes}


_TUNED = "benchmarks/results/tuning.json (python -m benchmarks.tune)"
_NCF = dict(loss="bce", n_neg=4, optimizer="adam", batch_size=2048, epochs=20, patience=5)
_BPR = dict(loss="bpr", optimizer="adam", batch_size=2048, epochs=200, patience=10)

#: The course's recipes, by ``"<protocol>/<label>"``. Every chapter, ``benchmarks/quality.py``
#: and the peer benchmarks read these; ``chosen`` says where each value comes from.
RECIPES: dict[str, Recipe] = _recipes(
    # -- explicit ratings: RMSE ------------------------------------------------------------------
    Recipe(
        label="MF with biases",
        model="MF",
        protocol="explicit",
        options={"dim": 64, "biases": True, "y_range": (0.5, 5.5)},
        loss="mse",
        optimizer="adamw",
        lr=5e-3,
        weight_decay=0.5,
        decay="embeddings",
        betas=(0.9, 0.99),
        batch_size=256,
        epochs=8,
        schedule="onecycle",
        refit=True,
        chosen=_TUNED + "; AdamW with a one-cycle schedule, fastai's recipe for this model",
    ),
    Recipe(
        label="AutoRec",
        model="AutoRec",
        protocol="explicit",
        options={
            "hidden": 500,
            "based": "item",
            "activation": "sigmoid",
            "dropout": 0.05,
            "clip": (1.0, 5.0),
        },
        loss="masked_mse",
        optimizer="adam",
        lr=1e-3,
        weight_decay=3e-3,
        batch_size=256,
        epochs=150,
        patience=10,
        refit=True,
        chosen=_TUNED + "; 500 sigmoid units as Sedhain et al. 2015",
    ),
    # -- implicit, sampled ranking: HR@10 and NDCG@10 ----------------------------------------------
    Recipe(label="Popularity", model="Popularity", protocol="sampled", chosen="no parameter"),
    Recipe(
        label="GMF",
        model="GMF",
        protocol="sampled",
        options={"dim": 32},
        lr=3e-3,
        weight_decay=1e-5,
        chosen=_TUNED,
        **_NCF,
    ),
    Recipe(
        label="MLP",
        model="NCFMLP",
        protocol="sampled",
        options={"layers": (64, 32, 16, 8)},
        lr=1e-2,
        weight_decay=1e-5,
        chosen=_TUNED,
        **_NCF,
    ),
    Recipe(
        label="NeuMF",
        model="NeuMF",
        protocol="sampled",
        options={"dim": 32, "layers": (64, 32, 16, 8)},
        lr=1e-3,
        chosen=_TUNED,
        **_NCF,
    ),
    Recipe(
        label="MF (dot product)",
        model="MF",
        protocol="sampled",
        options={"dim": 32, "biases": True},
        lr=1e-2,
        weight_decay=1e-5,
        chosen=_TUNED,
        **_NCF,
    ),
    Recipe(label="EASE", model="EASE", protocol="sampled", options={"l2": 250.0}, chosen=_TUNED),
    Recipe(
        label="ItemKNN",
        model="ItemKNN",
        protocol="sampled",
        options={"k": 25, "shrink": 10.0},
        chosen=_TUNED,
    ),
    Recipe(
        label="ALS",
        model="ALS",
        protocol="sampled",
        options={"dim": 64, "reg": 10.0, "alpha": 1.0, "iterations": 15},
        chosen=_TUNED,
    ),
    # -- implicit, full ranking: recall@20 and NDCG@20 --------------------------------------------
    Recipe(label="Popularity", model="Popularity", protocol="full", chosen="no parameter"),
    Recipe(
        label="BPR-MF",
        model="MF",
        protocol="full",
        options={"dim": 64, "biases": False, "init_std": 0.1},
        lr=1e-3,
        weight_decay=1e-5,
        chosen=_TUNED,
        **_BPR,
    ),
    Recipe(
        label="NGCF",
        model="NGCF",
        protocol="full",
        options={
            "dim": 64,
            "layer_dims": (64, 64, 64),
            "node_dropout": 0.0,
            "message_dropout": 0.1,
            "reg": 1e-4,
        },
        lr=3e-3,
        chosen=_TUNED,
        **_BPR,
    ),
    Recipe(
        label="LightGCN",
        model="LightGCN",
        protocol="full",
        options={"dim": 64, "n_layers": 3, "reg": 1e-4},
        lr=1e-2,
        chosen=_TUNED,
        **_BPR,
    ),
    Recipe(label="EASE", model="EASE", protocol="full", options={"l2": 250.0}, chosen=_TUNED),
    Recipe(
        label="ItemKNN",
        model="ItemKNN",
        protocol="full",
        options={"k": 400, "shrink": 10.0},
        chosen=_TUNED,
    ),
    Recipe(
        label="ALS",
        model="ALS",
        protocol="full",
        options={"dim": 64, "reg": 10.0, "alpha": 0.25, "iterations": 15},
        chosen=_TUNED,
    ),
)


_NEURAL_GRID = {"lr": [1e-3, 3e-3, 1e-2], "weight_decay": [0.0, 1e-5]}
_GRAPH_GRID = {"lr": [1e-3, 3e-3, 1e-2], "reg": [1e-5, 1e-4]}
_ALS_GRID = {"reg": [1.0, 10.0, 100.0], "alpha": [0.25, 1.0]}
_EASE_GRID = {"l2": [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0]}
_KNN_GRID = {"k": [25, 50, 100, 200, 400, 800]}

#: The validation grid behind each recipe: six settings for every model of a protocol, so that
#: no model of a comparison is tuned harder than another. ``python -m benchmarks.tune`` runs
#: them (training seed 0) and writes ``benchmarks/results/tuning.json``; the tests check that
#: :data:`RECIPES` holds the best setting of each grid.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "explicit/MF with biases": {"epochs": [5, 8], "weight_decay": [0.1, 0.3, 0.5]},
    "explicit/AutoRec": {"lr": [1e-3, 3e-3], "weight_decay": [1e-3, 3e-3, 1e-2]},
    "sampled/GMF": _NEURAL_GRID,
    "sampled/MLP": _NEURAL_GRID,
    "sampled/NeuMF": _NEURAL_GRID,
    "sampled/MF (dot product)": _NEURAL_GRID,
    "sampled/EASE": _EASE_GRID,
    "sampled/ItemKNN": _KNN_GRID,
    "sampled/ALS": _ALS_GRID,
    "full/BPR-MF": _NEURAL_GRID,
    "full/NGCF": _GRAPH_GRID,
    "full/LightGCN": _GRAPH_GRID,
    "full/EASE": _EASE_GRID,
    "full/ItemKNN": _KNN_GRID,
    "full/ALS": _ALS_GRID,
}
