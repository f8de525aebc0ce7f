"""The course package side by side with scikit-surprise and RecBole (``python -m benchmarks.peers``).

``__main__`` (the command line), ``run`` (a run of some sections, merged into ``peers.json``),
one module a section: ``explicit`` (with surprise), ``ranking`` (with RecBole), ``speed``,
``scaling``; ``shared`` (the course side's timing and the peers' subprocesses), ``report``
(``peers.md``, tables rendered by pandas / tabulate) and ``plots`` (the two figures).
``report`` and ``plots`` import neither torch nor ``recs_course``: ``--render-only`` needs neither.
"""

SECTIONS = ("explicit", "ranking", "speed", "scaling")
