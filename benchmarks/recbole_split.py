"""The split files RecBole reads: its "benchmark" atomic files, made from the ml-100k mirror or
from a split written elsewhere (``--split-dir``). Runs in ``.venv-recbole``; pandas and numpy are
imported where they are used.
"""

from __future__ import annotations

from pathlib import Path

INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
# RecBole's Config always reads a dataset called "ml-100k" from the copy in its wheel,
# whatever data_path says, so the split files get another dataset name.
DATASET = "ml-100k-split"


def mirror_inter_file() -> Path:
    """The ml-100k interactions shipped in the recbole wheel."""
    import recbole

    return Path(recbole.__file__).parent / "dataset_example" / "ml-100k" / "ml-100k.inter"


def read_inter(path: Path):
    import pandas as pd

    df = pd.read_csv(path, sep="\t")
    df.columns = [c.split(":")[0] for c in df.columns]
    df = df[COLUMNS].copy()
    df["row"] = range(len(df))
    return df


def order_ratings(df, ties: str, per_user: bool):
    """Sort chronologically; equal timestamps are ordered by item_id or file row."""
    tie = "item_id" if ties == "item" else "row"
    if per_user:
        keys = ["user_id", "timestamp", tie]
    elif ties == "item":
        keys = ["timestamp", "user_id", "item_id"]
    else:
        keys = ["timestamp", "row"]
    return df.sort_values(keys, kind="mergesort")


def _n(frac: float, n):
    """Rows a fraction of ``n`` takes: round half up (``n`` may be an array)."""
    import numpy as np

    return np.floor(np.asarray(n) * frac + 0.5).astype(int)


def leave_one_out(df, ties: str, valid: bool):
    ordered = order_ratings(df, ties, per_user=True)
    from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    test = ordered[from_end == 0]
    if valid:
        return ordered[from_end >= 2], ordered[from_end == 1], test
    return ordered[from_end >= 1], None, test


def chronological(df, ties: str, scope: str, test_frac: float, valid_frac: float):
    import numpy as np

    if scope == "user":
        ordered = order_ratings(df, ties, per_user=True)
        size = ordered.groupby("user_id")["item_id"].transform("size").to_numpy()
        from_end = ordered.groupby("user_id").cumcount(ascending=False).to_numpy()
    else:
        ordered = order_ratings(df, ties, per_user=False)
        size = np.full(len(ordered), len(ordered))
        from_end = np.arange(len(ordered))[::-1]
    n_test = np.maximum(_n(test_frac, size), 1)
    n_valid = _n(valid_frac, size)
    test = ordered[from_end < n_test]
    valid = ordered[(from_end >= n_test) & (from_end < n_test + n_valid)]
    train = ordered[from_end >= n_test + n_valid]
    return train, (valid if valid_frac > 0 else None), test


def write_inter(df, path: Path) -> None:
    out = df[COLUMNS].sort_values(["user_id", "timestamp"], kind="mergesort")
    out.to_csv(path, sep="\t", index=False, header=INTER_HEADER)


def user_counts(train, test) -> dict:
    """Users in the training and test parts, and test users without a training rating."""
    return {
        "train": int(train["user_id"].nunique()),
        "test": int(test["user_id"].nunique()),
        "test_users_without_train": int((~test["user_id"].isin(train["user_id"])).sum()),
    }


def prepare_data(args, data_dir: Path) -> dict:
    """Write the split files for RecBole; return a description of the split."""
    src = Path(args.inter_file) if args.inter_file else mirror_inter_file()
    if args.protocol == "recbole":
        if args.inter_file or args.split_dir:
            raise SystemExit(
                "--inter-file and --split-dir apply to the ncf and temporal protocols only"
            )
        return {
            "method": "RecBole eval_args split RS [0.8, 0.1, 0.1], order RO, group_by user",
            "source": str(src),
        }
    ds_dir = data_dir / DATASET
    ds_dir.mkdir(parents=True)
    if args.split_dir:
        return given_split(Path(args.split_dir), ds_dir)
    df = read_inter(src)
    if args.protocol == "ncf":
        train, valid, test = leave_one_out(df, args.ties, valid=not args.no_valid)
        method = (
            "leave-one-out per user by (timestamp, "
            f"{'item_id' if args.ties == 'item' else 'row'}): latest -> test, "
            + ("second latest -> valid, " if not args.no_valid else "")
            + "rest -> train"
        )
    else:
        train, valid, test = chronological(
            df, args.ties, args.scope, args.test_frac, 0.0 if args.no_valid else args.valid_frac
        )
        method = (
            f"chronological ({'per user' if args.scope == 'user' else 'global'}), ties by "
            f"{'item_id' if args.ties == 'item' else 'row'}: latest {args.test_frac:g} -> test"
            + ("" if args.no_valid else f", the {args.valid_frac:g} before -> valid")
            + ", rest -> train (fractions of each user's ratings, rounded half up)"
        )
    write_inter(train, ds_dir / f"{DATASET}.train.inter")
    write_inter(test, ds_dir / f"{DATASET}.test.inter")
    write_inter(valid if valid is not None else test, ds_dir / f"{DATASET}.valid.inter")
    return {
        "method": method,
        "validation": "test file reused, evaluated after the last epoch only"
        if valid is None
        else "held out",
        "source": str(src),
        "ties": args.ties,
        "rows": {
            "train": len(train),
            "valid": 0 if valid is None else len(valid),
            "test": len(test),
        },
        "users": user_counts(train, test),
    }


def given_split(split_dir: Path, ds_dir: Path) -> dict:
    """Copy a split made elsewhere (``benchmarks.peers``) into RecBole's benchmark files."""
    import pandas as pd

    parts = {}
    for part in ("train", "valid", "test"):
        path = split_dir / f"{part}.tsv"
        if not path.exists():
            raise SystemExit(f"--split-dir: {path} is missing")
        df = pd.read_csv(path, sep="\t")
        missing = set(COLUMNS) - set(df.columns)
        if missing:
            raise SystemExit(f"--split-dir: {path} lacks the columns {sorted(missing)}")
        parts[part] = df
        write_inter(df, ds_dir / f"{DATASET}.{part}.inter")
    train, test = parts["train"], parts["test"]
    return {
        "method": f"given by --split-dir ({split_dir.name})",
        "validation": "held out",
        "source": str(split_dir),
        "rows": {part: len(df) for part, df in parts.items()},
        "users": user_counts(train, test),
    }
