"""Figure 10: the app's memory with ViT-B/32-shaped towers, per inference backend: the resident set (current RSS,
not the peak) of ``python app.py --backend B`` right after its first answer, against the fp32 torch app's.

Backends the app cannot be started with yet (no ``--backend``), or whose runtime is missing, are recorded as not
available, with the reason; the fp32 torch app (the app's default) is always measured.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import capabilities
from benchmarks.context import Context, log
from benchmarks.harness import App
from benchmarks.stats import Figure

MIB = 2**20
TORCH = capabilities.TORCH


def app_memory(ctx: Context, index_dir: Path, measured: dict[str, float] | None = None) -> list[Figure]:
    """``measured``: MiB already read from an app of that backend after its first answer (the cold-start app), so
    that app is not started again."""
    rss = dict(measured or {})
    reasons: dict[str, str] = {}
    flag_missing = capabilities.app_backend_missing()
    texts = ctx.query_texts
    for number, backend in enumerate(capabilities.backends()):
        reason = capabilities.backend_unusable(backend) or (flag_missing if backend != TORCH else "")
        if reason:
            reasons[backend] = reason
            continue
        if backend in rss:
            continue
        if not flag_missing:
            ctx.wait_for_exports()  # an export is made before, not during, an app's start
        app = App(ctx, index_dir, None if flag_missing else backend)
        try:
            app.first_answer(texts[(17 * number + 9) % len(texts)])
            rss[backend] = app.rss_bytes() / MIB
        finally:
            app.close()
        log(f"app memory with {backend}: {rss[backend]:.0f} MiB")
    figures = []
    for backend in capabilities.backends():
        figure_id, name = f"memory.app_rss.{backend}", f"App memory after the first answer: {backend} vs fp32 torch"
        if backend not in rss or TORCH not in rss:
            reason = reasons.get(backend) or reasons.get(TORCH, "the fp32 torch app could not be measured")
            figures.append(Figure.not_available(figure_id, 10, name, "MiB", reason))
            continue
        figures.append(Figure(
            id=figure_id,
            number=10,
            name=name,
            value=rss[backend],
            reference=rss[TORCH],
            unit="MiB",
            description=f"VmRSS of `python app.py{'' if flag_missing else ' --backend ' + backend}` (ViT-B/32-shaped "
                        "towers, the first latency size's index) right after its first text→image answer",
            reference_description="the same for the fp32 torch app",
            details={"chosen": backend == ctx.chosen_backend},
        ))
    return figures
