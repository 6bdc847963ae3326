"""The cards (README.md with YAML front matter) that go with what TweetMaker pushes to the Hub, and their tables.

One module for the data set, model and index cards so they share one way of writing a markdown table and of naming
where a thing came from; each card says what the artefact is, how it was made and how to load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tweetmaker.sources import is_local_source

if TYPE_CHECKING:
    import datasets

    from tweetmaker.convert import ConversionReport
    from tweetmaker.index import Manifest


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of dicts as a markdown table, the first row's keys as the header."""
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row.get(name, "")) for name in header) + " |" for row in rows]
    return "\n".join(lines)


def dataset_card(dataset: datasets.DatasetDict, report: ConversionReport, repo_id: str | None = None) -> str:
    """A Hub dataset card (README.md): splits, row counts, columns, source, and how the copy was made."""
    columns = "\n".join(f"| `{name}` | `{feature}` |" for name, feature in _feature_rows(dataset))
    splits = "\n".join(f"| {name} | {part.num_rows} |" for name, part in dataset.items())
    config_files = "\n".join(
        f"  - split: {name}\n    path: data/{name}-*.parquet" for name in dataset
    )
    title = repo_id or "TweetMaker tweets"
    return f"""---
license: other
task_categories:
- image-to-text
- text-to-image
tags:
- tweets
- hashtags
- clip
- tweetmaker
configs:
- config_name: default
  data_files:
{config_files}
---

# {title}

A Hugging Face copy of the Kaggle "AI Tweets" data (tweet text, hashtags, image and metadata), made by
TweetMaker's `train/prepare_dataset.py` for training and searching multimodal tweet recommendations.
Images are embedded as bytes, so this copy is self-contained.

## Splits

| split | rows |
|---|---|
{splits}

## Columns

| column | type |
|---|---|
{columns}

`hashtag_list` holds the distinct hashtags of a tweet (compared case-insensitively, first spelling kept).
Columns starting with `attr_` exist only in the synthetic twin: the latent attributes each tweet was drawn from.

## Source and how it was made

- Source directory: `{Path(report.source_dir).name}` (Kaggle layout: `train.csv`, `test.csv`, `images/`).
- Rows read: {report.rows_read}; kept: {report.kept}; skipped: {len(report.skipped)} (missing, unreadable,
  truncated, non-image or oversized images, unsafe paths), listed with reasons in `conversion_report.json`.
- Empty text or hashtags are kept as empty strings.

Load it with `tweetmaker.data.load_tweets("{title}")` or `datasets.load_dataset("{title}")`.
"""


def _feature_rows(dataset: datasets.DatasetDict) -> list[tuple[str, str]]:
    first = next(iter(dataset.values()))
    rows = []
    for name, feature in first.features.items():
        kind = getattr(feature, "dtype", None) or type(feature).__name__
        rows.append((name, "list[string]" if name == "hashtag_list" else str(kind)))
    return rows


def metrics_table(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> str:
    lines = ["| direction | metric | before | after |", "| --- | --- | ---: | ---: |"]
    for direction, values in after.items():
        for name, value in values.items():
            lines.append(f"| {direction} | {name} | {before[direction][name]:.4f} | {value:.4f} |")
    return "\n".join(lines)


def model_card(results: dict[str, Any], hub_model_id: str | None) -> str:
    """The README.md pushed with the towers: what they are, what they were trained on, how well, how to load."""
    base = results["base_model"]
    dataset = results["dataset"]
    repo = hub_model_id or "path/to/output_dir"
    hub_base = None if is_local_source(base["source"]) else base["source"]
    hub_dataset = None if is_local_source(dataset["source"]) else dataset["source"]
    front = ["---", "library_name: transformers", "pipeline_tag: zero-shot-image-classification",
             "tags:", "- clip", "- tweetmaker", "- multimodal-retrieval"]
    if hub_base:
        front.append(f"base_model: {hub_base}")
    if hub_dataset:
        front += ["datasets:", f"- {hub_dataset}"]
    front.append("---")
    train = results["train"]
    return "\n".join(front) + f"""

# TweetMaker towers

Three CLIP towers fine-tuned together for TweetMaker, a tweet-writing helper that recommends images, hashtags and
similar tweets: an **image** tower (`CLIPVisionModelWithProjection`), a **text** tower for the tweet text and a
**hashtag** tower for the hashtag string (both `CLIPTextModelWithProjection`; the hashtag tower starts as a copy of
the text tower). Their L2-normalised embeddings share one space, so a tweet's text and hashtags land near its image.

- Base model: `{base["source"]}` (revision `{base.get("revision")}`, weights `{base.get("content_hash")}`)
- Data set: `{dataset["source"]}` (revision `{dataset.get("revision")}`, rows {_total_rows(dataset.get("num_rows"))})
- Loss: multiple-negatives ranking (InfoNCE) for text->image and hashtag->image{
    " plus the symmetric directions" if results["args"]["model"]["symmetric_loss"] else ""}, logit scale
  {train["logit_scale"]:.2f}, negatives gathered across {train["world_size"]} process(es)
- Training: {train["optimizer_steps"]} optimizer steps, {train["epochs"]} epoch(s), global batch
  {train["global_batch_size"]}, learning rate {results["args"]["train"]["learning_rate"]}, seed
  {results["args"]["train"]["seed"]}

## Evaluation on the `{results["args"]["data"]["eval_split"]}` split

Exact pairs: each query has one relevant document, the other modality of the same tweet (recall@k, MRR, ranks).
`precision@k` counts documents sharing the query's `{results["args"]["data"]["relevance_column"]}` when the data
set carries it.

{metrics_table(results["before"], results["after"])}

## How to use

```python
from tweetmaker.towers import load_towers

towers = load_towers("{repo}")
image_vectors = towers.encode_images([pil_image])            # (n, {train["embedding_dim"]}) float32, unit length
text_vectors = towers.encode_texts(["New GPU chips are here"])
hashtag_vectors = towers.encode_hashtags(["#AI #Hardware"])
scores = text_vectors @ image_vectors.T                      # cosine similarity
```

Each tower is also a plain transformers model: `CLIPVisionModelWithProjection.from_pretrained("{repo}",
subfolder="image")`, `CLIPTextModelWithProjection.from_pretrained("{repo}", subfolder="text")`.
"""


def index_card(repo_id: str, manifest: Manifest) -> str:
    """The README.md pushed with a built index: what it holds, which towers and data made it, how to fetch it."""
    from tweetmaker.index import describe_towers
    from tweetmaker.index import short_hash as _short

    return (
        "---\ntags:\n- tweetmaker\n- chroma\n- embeddings\n---\n\n"
        f"# {repo_id}\n\nA TweetMaker retrieval index: one Chroma collection per modality (image, text, hashtag), "
        "cosine HNSW, plus downscaled copies of the tweets' images.\n\n"
        f"- towers: {describe_towers(manifest.towers)}\n- embedding size: {manifest.embedding_dim}\n"
        f"- data set: {manifest.dataset.get('source')} ({manifest.num_rows} tweets, content "
        f"{_short(manifest.dataset.get('content_hash'))})\n- HNSW: {manifest.hnsw}\n- built: {manifest.built_at}\n\n"
        "Fetch it with `python -m tweetmaker.index pull --repo_id "
        f"{repo_id} --index_dir DIR`; the app refuses it unless its towers match.\n"
    )


def _total_rows(num_rows: Any) -> Any:
    """A data set identity's row count: per split (``dataset_identity``) or one total (older results files)."""
    return sum(num_rows.values()) if isinstance(num_rows, dict) else num_rows
