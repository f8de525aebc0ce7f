"""RecBole 1.2.1's settings for the reference runs: models, protocols, notes.

Read by ``benchmarks.recbole_run`` (in ``.venv-recbole``) and by ``benchmarks.peers`` (in the
course's environment, which gives its own models the same settings), so standard library only.
"""

from __future__ import annotations

NCF_COMMON = {
    "learning_rate": 0.001,
    "train_batch_size": 256,
    "weight_decay": 0.0,
}
NEUMF_COMMON = {
    **NCF_COMMON,
    "mf_embedding_size": 32,
    "mlp_embedding_size": 32,
    "mlp_hidden_size": [64, 32, 16, 8],
    "dropout_prob": 0.0,  # the NCF paper's; RecBole's default is 0.1
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 4},
}
# Full-ranking models keep RecBole's defaults (lr 0.001, batch 2048, 1 negative), so
# they need many epochs; the per-model "epochs" keep each run to a few minutes on one
# CPU thread (about 0.25, 2.5 and 1.7 s an epoch for BPR, NGCF and LightGCN).
FULL_COMMON = {
    "learning_rate": 0.001,
    "train_batch_size": 2048,
    "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
}

# name -> (RecBole model class, config overrides).  Anything not listed is the
# RecBole default of that model (recbole/properties/model/<Model>.yaml).
MODELS = {
    "ncf": {
        # Pop counts the items of the training rows: no negatives must be sampled.
        "Pop": ("Pop", {"train_neg_sample_args": None}),
        "BPR": (
            "BPR",
            {
                **NCF_COMMON,
                "embedding_size": 32,
                "train_neg_sample_args": {"distribution": "uniform", "sample_num": 1},
            },
        ),
        "GMF": ("NeuMF", {**NEUMF_COMMON, "mf_train": True, "mlp_train": False}),
        "MLP": ("NeuMF", {**NEUMF_COMMON, "mf_train": False, "mlp_train": True}),
        "NeuMF": ("NeuMF", {**NEUMF_COMMON, "mf_train": True, "mlp_train": True}),
    },
    "temporal": {
        "BPR": ("BPR", {**FULL_COMMON, "embedding_size": 64, "epochs": 300}),
        # RecBole defaults: embedding 64, hidden [64, 64, 64], message dropout 0.1.
        "NGCF": ("NGCF", {**FULL_COMMON, "epochs": 80}),
        # RecBole's default is n_layers=2; 3 is the LightGCN paper's setting.
        "LightGCN": (
            "LightGCN",
            {**FULL_COMMON, "embedding_size": 64, "n_layers": 3, "epochs": 120},
        ),
    },
}
MODELS["recbole"] = {k: MODELS["temporal"][k] for k in ("BPR", "LightGCN")}

PROTOCOLS = {
    "ncf": {
        "text": "leave-one-out by time (latest -> test, second latest -> valid), "
        "100 sampled negatives (uni100), HR@10 and NDCG@10",
        "metrics": ["Hit", "NDCG"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "mode": "uni100",
        "epochs": 20,
        "stopping_step": 5,
    },
    "temporal": {
        "text": "chronological split (each user's latest 20% -> test, the 10% before -> "
        "valid), full ranking with training items masked, recall@k and NDCG@k",
        "metrics": ["Recall", "NDCG"],
        "topk": [10, 20],
        "valid_metric": "NDCG@20",
        "mode": "full",
        "epochs": 300,
        # RecBole's default patience (10) stops LightGCN on a plateau of its
        # validation curve (epochs 30-60 here) long before it converges.
        "stopping_step": 30,
    },
}
# RecBole's own default for ml-100k, ranked and stopped as the temporal protocol.
PROTOCOLS["recbole"] = {
    **PROTOCOLS["temporal"],
    "text": "RecBole's default ml-100k protocol: random 8:1:1 split per user (RS, RO), "
    "full ranking with training items masked, recall@k and NDCG@k",
}

NOTES = [
    "Every rating is an implicit positive (no threshold); ml-100k has no duplicate pairs.",
    "train_s is RecBole's training epoch including its data loader's negative sampling.",
    "RecBole's train_batch_size counts rows after negative sampling: pointwise with 4 "
    "negatives and batch 256 gives 51 positives x 5 rows = 255 rows a batch.",
    "uni100: 100 negatives drawn uniformly with replacement among items the user never "
    "rated (train, valid or test), re-drawn at every evaluation; test is evaluated once. "
    "Scores are scattered into a (users, items) matrix, so a negative drawn twice counts "
    "once: a few users rank slightly fewer than 101 distinct candidates.",
    "Ranking ties (many for Pop) are broken by torch.topk over the item-id columns, i.e. "
    "by RecBole's internal item index, neither for nor against the held-out item.",
    "With benchmark_filename set, RecBole ignores eval_args.split (it still shows the "
    "default RS entry in resolved_config); order/group_by are unused too.",
    "Full ranking masks the user's training items (and validation items at test time).",
    "Test metrics are those of the checkpoint of the best validation epoch (RecBole's "
    "load_best_model); with --no-valid, of the last epoch.",
]


# ------------------------------------------------------------------ the course's recipes
# ``benchmarks.quality`` gives RecBole the course recipe's hyper-parameters where RecBole has
# them: the recipe arrives as a plain dict (``recipe_fields`` there), and ``from_recipe`` says
# which RecBole model and ``config_dict`` it becomes. Standard library only, like the rest.
RECIPE_MODELS = {  # course model class (and loss) -> RecBole model class
    "GMF": "NeuMF",  # NeuMF with mlp_train off: RecBole's GMF
    "NeuMF": "NeuMF",
    "MF": "BPR",  # a dot product of embeddings, trained with BPR pairs
    "NGCF": "NGCF",
    "LightGCN": "LightGCN",
}


def from_recipe(recipe: dict) -> tuple[str, dict, list[str]]:
    """RecBole's (model class, config overrides, notes) for a course recipe.

    ``recipe`` holds the :class:`recs_course.recipes.Recipe` fields (``model``, ``options`` as
    a dict, ``loss``, ``optimizer``, ``lr``, ``weight_decay``, ``decay``, ``batch_size``,
    ``n_neg``, ``epochs``, ``patience``, ``schedule``). Mapped: the sizes, dropouts and graph
    regularisation, Adam's rate and weight decay (RecBole's ``weight_decay`` is Adam's, on
    every parameter: the recipe's ``decay="all"``), the batch in rows (negatives included on
    both sides), the negatives, the epochs and the patience (RecBole's ``stopping_step``,
    evaluating every epoch as the course does). The notes say what is not the same.
    """
    model = recipe["model"]
    if model not in RECIPE_MODELS:
        raise ValueError(f"no RecBole counterpart for the course's {model}")
    options = dict(recipe.get("options") or {})
    if recipe.get("optimizer") != "adam":
        raise ValueError(f"RecBole's learner here is Adam; the recipe uses {recipe['optimizer']}")
    if recipe.get("schedule") or recipe.get("decay", "all") != "all":
        raise ValueError("RecBole has no one-cycle schedule nor per-group weight decay")
    notes = []
    loss = recipe["loss"]
    n_neg = recipe.get("n_neg", 1) if loss == "bce" else 1
    config = {
        "learner": "adam",
        "learning_rate": recipe["lr"],
        "weight_decay": recipe["weight_decay"],
        "train_batch_size": recipe["batch_size"],
        "train_neg_sample_args": {"distribution": "uniform", "sample_num": n_neg},
        "epochs": recipe["epochs"],
        "stopping_step": recipe["patience"] if recipe.get("patience") else recipe["epochs"],
        "eval_step": 1,
    }
    cls = RECIPE_MODELS[model]
    if model in ("GMF", "NeuMF"):
        if loss != "bce":
            raise ValueError("RecBole's NeuMF trains with binary cross-entropy only")
        layers = list(options.get("layers", (64, 32, 16, 8)))
        config.update(
            mf_embedding_size=options.get("dim", 32),
            mlp_embedding_size=layers[0] // 2,
            mlp_hidden_size=layers[1:],
            dropout_prob=options.get("dropout", 0.0),
            mf_train=True,
            mlp_train=model == "NeuMF",
            use_pretrain=False,
        )
        notes.append(
            "RecBole's NeuMF initialises its embeddings and layers N(0, 0.01) (the course: "
            "its own init); RecBole's GMF is its NeuMF with the MLP half off."
        )
    elif model == "MF":
        config.update(embedding_size=options.get("dim", 64))
        if loss != "bpr":
            notes.append(
                f"the course's MF trains with {loss} ({recipe.get('n_neg', 1)} negatives a "
                "positive) and biases; RecBole's BPR is a dot product trained with BPR pairs"
            )
            config["train_neg_sample_args"] = {"distribution": "uniform", "sample_num": 1}
        if options.get("biases"):
            notes.append("RecBole's BPR has no biases")
        notes.append("RecBole's BPR initialises with Xavier normal (the course: N(0, init_std))")
    elif model == "NGCF":
        config.update(
            embedding_size=options.get("dim", 64),
            hidden_size_list=list(options.get("layer_dims", (64, 64, 64))),
            node_dropout=options.get("node_dropout", 0.0),
            message_dropout=options.get("message_dropout", 0.1),
            reg_weight=options.get("reg", 1e-5),
        )
    else:  # LightGCN
        config.update(
            embedding_size=options.get("dim", 64),
            n_layers=options.get("n_layers", 3),
            reg_weight=options.get("reg", 1e-4),
            # EmbLoss with require_pow: the squared norms / 2 / batch, the course's penalty
            require_pow=True,
        )
    if model == "NGCF":
        notes.append(
            "NGCF's reg_weight: the course penalises the squared norms of the batch's ego "
            "embeddings / 2 / batch, RecBole's NGCF the norms (not squared) of its propagated "
            "embeddings / batch: the same weight, another penalty"
        )
    return cls, config, notes
