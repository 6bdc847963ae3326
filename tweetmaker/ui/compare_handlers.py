"""The ``/compare`` endpoint: one query answered by the main model and the model it is compared with.

``CompareHandler.compare`` returns plain JSON (what an API or MCP client wants); ``CompareHandler.galleries`` turns
that answer into the Compare tab's two galleries, hashtags and agreement line. How much the two lists agree comes
from ``tweetmaker.evaluation.compare_results`` (overlap@k, each result's rank in the other list).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tweetmaker.data import format_hashtags
from tweetmaker.evaluation import compare_results
from tweetmaker.search import QueryLimits
from tweetmaker.ui.boundary import user_errors
from tweetmaker.ui.handlers import DEFAULT_K, MAX_K

if TYPE_CHECKING:
    from tweetmaker.resources import LoadedModel, Resources

SIDES = ("main", "compare")
EMPTY_AGREEMENT = "*Run a query to see how much the two models agree.*"


class CompareHandler:
    """``/compare`` over the two loaded models, each under the app's query limits."""

    def __init__(self, resources: Resources) -> None:
        if resources.compare is None:
            raise ValueError("Comparing needs a second model (--compare_towers).")
        limits = QueryLimits(max_text_chars=resources.settings.max_text_chars, max_k=MAX_K)
        self.models: dict[str, LoadedModel] = {"main": resources.main, "compare": resources.compare}
        self.recommenders = {side: model.recommender.with_limits(limits) for side, model in self.models.items()}

    @user_errors
    def compare(self, text: str, image: str | None = None, k: int = DEFAULT_K) -> dict[str, Any]:
        """Answer one draft with both models and say how much their image lists agree.

        Args:
            text: The draft tweet. May be empty when an image is given.
            image: Optional image file to search with; with a text too, both count half.
            k: How many images each model returns, from 1 to 50.

        Returns:
            ``{"labels": {"main": ..., "compare": ...}, "k": k, "overlap": overlap@k in [0, 1], "main": [...],
            "compare": [...], "hashtags": {"main": [...], "compare": [...]}}``. Each result list holds, best first,
            ``{"id", "score", "text", "hashtags", "image", "rank_in_other"}``; ``rank_in_other`` is the result's
            1-based rank in the other model's list, or null when the other model did not return it.
        """
        answers = {side: recommender.combined(text, image, text_weight=0.5, k=k)
                   for side, recommender in self.recommenders.items()}
        ids = {side: [result.id for result in answer.tweets] for side, answer in answers.items()}
        agreement = compare_results(ids["main"], ids["compare"])
        ranks = {"main": agreement.ranks_in_other, "compare": agreement.other_ranks_in_this}
        response: dict[str, Any] = {
            "labels": {side: model.label for side, model in self.models.items()},
            "k": len(ids["main"]) or len(ids["compare"]),
            "overlap": round(agreement.overlap, 6),
        }
        for side, answer in answers.items():
            response[side] = [
                {"id": result.id, "score": round(float(result.score), 6), "text": result.text,
                 "hashtags": result.hashtags, "image": str(result.metadata.get("image") or ""), "rank_in_other": rank}
                for result, rank in zip(answer.tweets, ranks[side])
            ]
        response["hashtags"] = {side: [tag.tag for tag in answer.hashtags] for side, answer in answers.items()}
        return response

    def galleries(self, response: dict[str, Any] | None) -> tuple[Any, ...]:
        """The tab's outputs for a ``compare`` answer: per side a gallery and its hashtags, then the agreement."""
        if not response:
            return [], "", [], "", EMPTY_AGREEMENT
        outputs: list[Any] = []
        for side in SIDES:
            index = self.models[side].index
            items = []
            for rank, item in enumerate(response.get(side, []), start=1):
                path = index.image_path({"image": item["image"]})
                if path is not None:
                    items.append((str(path), compare_caption(rank, item)))
            outputs += [items, format_hashtags(response.get("hashtags", {}).get(side, []))]
        return (*outputs, agreement_markdown(response))


def compare_caption(rank: int, item: dict[str, Any]) -> str:
    """``#1 · 0.812 · #3 there | text | #tags``: the rank here, the score, and where the other model put it
    (``new``: it did not return it; ``same``: at the same rank), first, so a cut caption still says what moved."""
    other = item.get("rank_in_other")
    moved = "new" if other is None else ("same" if other == rank else f"#{other} there")
    text = item.get("text") or "(no text)"
    text = text if len(text) <= 100 else text[:97] + "..."
    tags = " ".join(f"#{tag}" for tag in item.get("hashtags", []))
    return " | ".join(part for part in (f"#{rank} · {item['score']:.3f} · {moved}", text, tags) if part)


def agreement_markdown(response: dict[str, Any]) -> str:
    """One line on how much the lists agree, and how many results each model alone returned."""
    labels = response.get("labels", {})
    shared = sum(1 for item in response.get("main", []) if item.get("rank_in_other") is not None)
    only = {side: sum(1 for item in response.get(side, []) if item.get("rank_in_other") is None) for side in SIDES}
    return (f"**overlap@{response.get('k', 0)}: {response.get('overlap', 0.0):.2f}** — {shared} image(s) in both "
            f"lists; {only['main']} only from `{labels.get('main', 'main')}`, {only['compare']} only from "
            f"`{labels.get('compare', 'compare')}`. Each caption says where the other model ranked that image.")
