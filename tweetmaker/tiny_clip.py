"""A tiny CLIP made offline: a byte-level BPE tokenizer learned from a small word list, and random weights.

Tests, benchmarks and the offline demo need a CLIP base without downloading one: ``write_tiny_clip`` writes a
randomly initialised ``CLIPModel`` with its tokenizer and image processor in the Hub checkpoint format, so the real
loading code (``tweetmaker.towers``) reads it exactly as it reads ``openai/clip-vit-base-patch32``.
"""

from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

# -- the tokenizer ----------------------------------------------------------------------------------------
# Common English and AI-tweet words get whole-word BPE merges so that short tweets stay well inside the tiny
# context; every other string still tokenizes, byte by byte, because all 256 byte symbols are in the vocabulary.
_TINY_WORDS = """
a an the and or but of to in on at for with from by about as into over under after before than then so if
is are was were be been being am do does did have has had will would can could should may might must shall
i you he she it we they me him her us them my your his its our their this that these those what which who
how why when where there here all any each every some no not one two three four five six seven eight nine
ten first new old big small good best better great more most less very just only also too now today tonight
time day week year back up down out off again still even really much many own same other such next last
look see watch read show make made build built use using learn learning train training test run think know
want need love like get got go going come take give find tell ask work working try call keep let put say
ai ml data model models neural network networks deep machine intelligence artificial learning vision
computer robot robots robotic android brain mind chip chips gpu gpus processor silicon rocket rockets space
launch cloud clouds server servers platform chart charts graph graphs dashboard metrics growth eye eyes
camera sensor light lightbulb bulb idea ideas bright glowing tech science research paper code open source
future art render wallpaper mood drop lab nobody asked thread news finally honestly wow lol cool hot take
red green blue yellow purple orange gray grey black white pink brown gold golden crimson scarlet emerald
lime navy cobalt violet lilac amber tangerine slate sunny plain clean minimal style soft gradient stripes
striped dots dotted polka background backdrop behind everywhere single lone pair twin trio quartet course
https http www com co org rt imo ngl vibes bold everything else behold sketching hello world stop
""".split()


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-level alphabet: every byte maps to a printable unicode character."""
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    mapping = {byte: chr(byte) for byte in visible}
    extra = 0
    for byte in range(256):
        if byte not in mapping:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return dict(sorted(mapping.items()))


def _learn_merges(words: Sequence[str]) -> list[tuple[str, str]]:
    """Plain BPE training until every word is one symbol; ties go to the smallest pair, so it is deterministic."""
    byte_map = _bytes_to_unicode()
    corpus = []
    for word in dict.fromkeys(words):
        symbols = [byte_map[byte] for byte in word.encode("utf-8")]
        symbols[-1] += "</w>"
        corpus.append(symbols)
    merges: list[tuple[str, str]] = []
    while True:
        counts = Counter(pair for symbols in corpus for pair in zip(symbols, symbols[1:]))
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for index, symbols in enumerate(corpus):
            merged, position = [], 0
            while position < len(symbols):
                if position + 1 < len(symbols) and (symbols[position], symbols[position + 1]) == best:
                    merged.append(best[0] + best[1])
                    position += 2
                else:
                    merged.append(symbols[position])
                    position += 1
            corpus[index] = merged


@functools.lru_cache(maxsize=1)
def _tiny_vocab_and_merges() -> tuple[dict[str, int], list[str]]:
    """A byte-level BPE vocabulary in CLIP's layout: bytes, bytes + ``</w>``, merges of common words, specials."""
    pairs = _learn_merges(_TINY_WORDS)
    alphabet = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for symbol in alphabet + [symbol + "</w>" for symbol in alphabet] + [left + right for left, right in pairs]:
        vocab.setdefault(symbol, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return vocab, [f"{left} {right}" for left, right in pairs]


def tiny_tokenizer(workdir: str | Path | None = None) -> Any:
    """A ``CLIPTokenizer`` built offline from a small ``vocab.json`` + ``merges.txt``; any text tokenizes."""
    from transformers import CLIPTokenizer

    vocab, merges = _tiny_vocab_and_merges()
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
        return CLIPTokenizer.from_pretrained(tmp)


TINY_DEFAULTS: dict[str, Any] = {
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "projection_dim": 64,
    "max_position_embeddings": 77,
    "logit_scale_init_value": 2.6592,
    "seed": 0,
    # Tweet images come in every aspect ratio; squashing to a square keeps every motif in view, where CLIP's
    # shortest-edge resize + centre crop would cut the sides of wide pictures. The tiny model learns much faster so.
    "center_crop": False,
}


def write_tiny_clip(output_dir: str | Path, **overrides: Any) -> Path:
    """Write a tiny random CLIP base (config, safetensors, tokenizer, image processor) like a Hub checkpoint.

    ``overrides`` may change any key of ``TINY_DEFAULTS`` (the same sizes serve both towers).
    """
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPProcessor

    unknown = sorted(set(overrides) - set(TINY_DEFAULTS))
    if unknown:
        raise TypeError(f"write_tiny_clip got unknown options {unknown}; known: {sorted(TINY_DEFAULTS)}")
    options = {**TINY_DEFAULTS, **overrides}
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    shared = {
        "hidden_size": options["hidden_size"],
        "intermediate_size": options["intermediate_size"],
        "num_hidden_layers": options["num_hidden_layers"],
        "num_attention_heads": options["num_attention_heads"],
        "projection_dim": options["projection_dim"],
    }
    config = CLIPConfig(
        text_config={
            **shared,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": options["max_position_embeddings"],
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={**shared, "image_size": options["image_size"], "patch_size": options["patch_size"]},
        projection_dim=options["projection_dim"],
        logit_scale_init_value=options["logit_scale_init_value"],
    )
    # A private RNG stream: the same seed gives the same weights, and callers' random state is left alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(options["seed"]))
        model = CLIPModel(config)
    model.save_pretrained(output, safe_serialization=True)
    size = int(options["image_size"])
    if options["center_crop"]:
        image_processor = CLIPImageProcessorPil(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    else:
        image_processor = CLIPImageProcessorPil(
            size={"height": size, "width": size}, do_center_crop=False, crop_size={"height": size, "width": size}
        )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(output)
    return output


