"""Figure 3: ``build_index`` images/s (towers served by the chosen backend) against plain batched fp32 PyTorch tower
forwards on ready tensors."""

from __future__ import annotations

import contextlib
import io
import shutil
import time
from typing import Any

from benchmarks import capabilities
from benchmarks.context import Context
from benchmarks.stats import Figure, Stats, median, rotated


def indexing_throughput(ctx: Context) -> list[Figure]:
    """Figure 3: ``build_index`` images/s vs plain batched fp32 tower forwards on ready tensors.

    The build runs with the chosen backend's towers (what ``tweetmaker.index build --backend`` does by default);
    the references are fp32 eager PyTorch. Two references: the image tower alone (an earlier issue's) and the same
    embedding work the build does (image, text and hashtag towers: issue 13's ">= 1.0x"), so the figure separates
    the build's overhead from the text towers' necessary cost.
    """
    import torch

    from tweetmaker.index import DEFAULT_BATCH_SIZE, build_index

    profile = ctx.profile
    towers = ctx.speed_towers(capabilities.TORCH)  # the references' fp32 modules
    served = ctx.speed_towers(ctx.chosen_backend)
    backend = getattr(served, "backend", capabilities.TORCH)
    train = ctx.twin["train"]
    count = min(profile.index_images, len(train) - 8)
    rows = train.select(range(count))
    images = list(rows["image"])
    pixel_values = towers.preprocess_images(images)
    # Tokenized as Towers.encode_texts batches them (64 a batch), so padding matches the build's.
    text_batches = [towers.tokenize(list(rows["text"])[start:start + 64]) for start in range(0, count, 64)]
    tag_batches = [towers.tokenize(list(rows["hashtags"])[start:start + 64]) for start in range(0, count, 64)]

    def forward(batch_size: int) -> float:
        began = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, count, batch_size):
                towers.image_model(pixel_values=pixel_values[start:start + batch_size])
        return time.perf_counter() - began

    def forward_all(batch_size: int) -> None:
        forward(batch_size)
        with torch.inference_mode():
            for model, batches in ((towers.text_model, text_batches), (towers.hashtag_model, tag_batches)):
                for tokens in batches:
                    model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])

    # The reference is the best the hardware does: the fastest batch size of a short sweep.
    forward(profile.forward_batch_sizes[0])  # warm-up (allocator, kernels)
    sweep = {size: count / min(forward(size) for _ in range(profile.forward_repeats))
             for size in profile.forward_batch_sizes}
    best = max(sweep, key=sweep.get)

    def build(i: int) -> None:
        target = ctx.workdir / "build-bench"
        shutil.rmtree(target, ignore_errors=True)
        build_index(rows, served, target, source=f"benchmark-{count}", progress=False)

    with _quiet_logs():
        warm = ctx.workdir / "build-warm"
        shutil.rmtree(warm, ignore_errors=True)
        build_index(train.select(range(count, count + 8)), served, warm, source="benchmark-warmup", progress=False)
        shutil.rmtree(warm, ignore_errors=True)
        build_times, image_times, all_times = rotated(
            [build, lambda i: forward(best), lambda i: forward_all(best)], repeats=profile.build_repeats, warmup=0)
    shutil.rmtree(ctx.workdir / "build-bench", ignore_errors=True)
    stages = _build_stages(served, rows, images, pixel_values)
    build_rates = [count / seconds for seconds in build_times]
    image_rates = [count / seconds for seconds in image_times]
    all_rates = [count / seconds for seconds in all_times]
    described = (f"tweetmaker.index.build_index over {count} twin rows, towers served by {backend}: decode, "
                 f"preprocess, image + text + hashtag embeddings, stored JPEG copies, Chroma upserts (batches of "
                 f"{DEFAULT_BATCH_SIZE} rows)")
    details = {"backend": backend, "forward_images_per_s_by_batch": {str(k): v for k, v in sweep.items()},
               "build_stage_seconds_per_image": stages, "images": count}
    return [
        Figure(
            id="indexing.build_vs_image_tower",
            number=3,
            name=f"Indexing throughput: build_index ({backend}) vs plain fp32 image-tower forward",
            value=median(build_rates),
            reference=median(image_rates),
            unit="images/s",
            description=described,
            reference_description=f"fp32 image tower forward (PyTorch eager) on ready pixel tensors, batch {best} "
                                  f"(fastest of {list(profile.forward_batch_sizes)})",
            target=(">=", 0.85),
            value_stats=Stats.of(build_rates, "images/s"),
            reference_stats=Stats.of(image_rates, "images/s"),
            details=details,
            notes="Twin images are small (about 300 px); real tweet images decode slower.",
        ),
        Figure(
            id="indexing.build_vs_three_towers",
            number=3,
            name=f"Indexing throughput: build_index ({backend}) vs the same three fp32 tower forwards",
            value=median(build_rates),
            reference=median(all_rates),
            unit="images/s",
            description=described,
            reference_description="fp32 PyTorch image tower (batch as above) + text and hashtag towers on ready token "
                                  "tensors (batches of 64, as encode_texts pads them): the embedding work the build "
                                  "must do",
            target=(">=", 1.0),
            value_stats=Stats.of(build_rates, "images/s"),
            reference_stats=Stats.of(all_rates, "rows/s"),
            details={"backend": backend, "images": count},
        ),
    ]


def _build_stages(towers: Any, rows: Any, images: list[Any], pixel_values: Any) -> dict[str, float]:
    """Seconds per image of each stage of an index build, measured one by one on the same rows."""
    import torch

    from tweetmaker.data import decode_image

    count = len(images)
    raw = rows.cast_column("image", type(rows.features["image"])(decode=False))["image"]
    stages: dict[str, float] = {}
    began = time.perf_counter()
    decoded = [decode_image(item.get("bytes") or item.get("path")) for item in raw]
    stages["decode"] = (time.perf_counter() - began) / count
    began = time.perf_counter()
    towers.preprocess_images(decoded)
    stages["preprocess (image processor)"] = (time.perf_counter() - began) / count
    began = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, count, 32):  # the served backend's image tower (an ONNX session takes the same call)
            towers.image_model(pixel_values=pixel_values[start:start + 32])
    stages["image tower forward (batch 32)"] = (time.perf_counter() - began) / count
    began = time.perf_counter()
    towers.encode_texts(list(rows["text"]))
    towers.encode_hashtags(list(rows["hashtags"]))
    stages["text + hashtag towers"] = (time.perf_counter() - began) / count
    began = time.perf_counter()
    for image in decoded:
        _stored_copy(image)
    stages["stored JPEG copy"] = (time.perf_counter() - began) / count
    return stages


@contextlib.contextmanager
def _quiet_logs():
    import logging

    logger = logging.getLogger("tweetmaker")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _stored_copy(image: Any) -> None:
    """The copy of an image a build stores for the app (long side ``IMAGE_MAX_SIDE``, JPEG), written to memory so
    the stage leaves the disk out."""
    from tweetmaker.index import IMAGE_MAX_SIDE

    copy = image.copy()
    copy.thumbnail((IMAGE_MAX_SIDE, IMAGE_MAX_SIDE))
    copy.save(io.BytesIO(), format="JPEG", quality=88)
