"""The benchmark's figures, one module per group; each figure function returns ``Figure`` records.

Every figure compares a path of the project with the bare minimum the hardware needs for the same work,
measured in the same process run (interleaved where both sides can be called alternately).

- ``latency``: 1, the text -> image and image -> hashtags handlers (fp32, and the chosen backend) against the bare
  fp32 tower forward + exact top-k
- ``chroma``: 2, Chroma's HNSW against exact search (latency and recall), at chosen and default settings
- ``indexing``: 3, ``build_index`` (chosen backend) against plain fp32 tower forwards
- ``serving``: 4, the running app through gradio_client and REST, serial and with 1, 4 and 8 concurrent clients,
  against the handler
- ``training``: 5, ``tweetmaker.training.train`` against a bare PyTorch loop
- ``cold_start``: 6, app start to first answer against loading the towers alone
- ``quality``: 7, retrieval quality after against before fine-tuning
- ``backends``: 8, every inference backend's tower latency against fp32 torch, and its agreement with fp32
- ``sharding``: 9, ``torchrun`` sharded index builds, 2 processes against 1
- ``memory``: 10, the app's resident memory per backend against the fp32 torch app

Every figure has a stable ``id`` (``group.what.variant``); a figure that needs a feature the library does not have
yet is returned by ``Figure.not_available`` with the reason (``benchmarks.capabilities`` asks the library).

A new group is a new module here and one ``attempt(...)`` line in ``benchmarks/run.py``; the app process and its
clients live in ``benchmarks.harness``, shared inputs in ``benchmarks.context``.
"""
