"""The benchmark's figures, one module per group; each figure function returns ``Figure`` records.

Every figure compares a path of the project with the bare minimum the hardware needs for the same work,
measured in the same process run (interleaved where both sides can be called alternately).

- ``latency``: 1, the text -> image handler against tokenize + text tower + exact top-k
- ``chroma``: 2, Chroma's HNSW against exact search (latency and recall), at chosen and default settings
- ``indexing``: 3, ``build_index`` against plain tower forwards
- ``serving``: 4, the running app through gradio_client and REST, serial and concurrent, against the handler
- ``training``: 5, ``train/finetune.py`` against a bare PyTorch loop
- ``cold_start``: 6, app start to first answer against loading the towers alone
- ``quality``: 7, retrieval quality after against before fine-tuning

A new group is a new module here and one ``attempt(...)`` line in ``benchmarks/run.py``; the app process and its
clients live in ``benchmarks.harness``, shared inputs in ``benchmarks.context``.
"""
