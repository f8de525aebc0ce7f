"""The course's benchmarks (not part of the tests), run from the repository root.

In the course's environment (``.venv``), each writes JSON under ``benchmarks/results/``::

    python -m benchmarks.bench_sampling      # one epoch of negative sampling vs a Python loop
    python -m benchmarks.bench_evaluation    # full-ranking and sampled evaluation vs a loop
    python -m benchmarks.bench_neumf_epoch   # one NeuMF epoch, per-sample DataLoader vs the course
    python -m benchmarks.bench_scoring_pass  # evaluate_full with one graph propagation vs one a batch
    python -m benchmarks.bench_sparse        # MF with sparse gradients (SparseAdam, Adagrad) vs Adam
    python -m benchmarks.quality             # the course's default recipes, pass/fail targets
    python -m benchmarks.peers               # side by side with scikit-surprise and RecBole

``benchmarks.peers`` runs the peers in their own environments (made by
``benchmarks/surprise_env.sh`` and ``benchmarks/recbole_env.sh``) as
``python -m benchmarks.surprise_run`` and ``python -m benchmarks.recbole_run``. Those
environments have no ``recs_course``: this package, ``benchmarks.common`` and the peers' modules
(``surprise_run``, ``recbole_run``, ``recbole_settings``, ``recbole_split``) import nothing
outside the standard library at import time.
"""
