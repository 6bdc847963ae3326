"""The three CLIP towers: built from a base CLIP, encoded, saved and loaded back; the tiny CLIP made offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tweetmaker import towers as towers_module
from tweetmaker.towers import (
    TOWER_NAMES,
    Towers,
    TowersError,
    build_towers_from_base,
    content_hash,
    load_towers,
    tiny_tokenizer,
    write_tiny_clip,
)


@pytest.fixture(scope="module")
def base_towers(tiny_clip_dir) -> Towers:
    return build_towers_from_base(str(tiny_clip_dir), device="cpu")


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (40 + 7 * i, 50, 3), dtype=np.uint8)) for i in range(4)]
    return pictures + [pictures[0].convert("L"), pictures[1].convert("RGBA")]


_TOKENIZER = tiny_tokenizer()
TEXTS = ["Three red robots on a striped background", "", "#AI #ml 🚀 https://t.co/x", "GPU chips, 4 of them!"]


def _assert_unit_rows(embeddings: np.ndarray, rows: int, dim: int) -> None:
    assert embeddings.dtype == np.float32
    assert embeddings.shape == (rows, dim)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_tiny_clip_is_a_hub_style_clip_checkpoint(tiny_clip_dir):
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    config = json.loads((Path(tiny_clip_dir) / "config.json").read_text())
    assert config["model_type"] == "clip"
    assert (Path(tiny_clip_dir) / "model.safetensors").is_file()
    assert not list(Path(tiny_clip_dir).glob("*.bin"))
    model = CLIPModel.from_pretrained(tiny_clip_dir, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_clip_dir)
    processor = AutoImageProcessor.from_pretrained(tiny_clip_dir)
    assert model.config.text_config.vocab_size == len(tokenizer)
    # CLIP pools the text at the first end-of-text token, so the config must agree with the tokenizer.
    assert model.config.text_config.eos_token_id == tokenizer.eos_token_id
    # Wide and tall pictures are squashed to the square input whole (no centre crop): nothing is cut off.
    assert processor(images=[Image.new("RGB", (64, 24))], return_tensors="pt")["pixel_values"].shape[-2:] == (32, 32)
    wide = Image.new("RGB", (90, 30), "white")
    wide.paste((255, 0, 0), (0, 0, 10, 30))  # a red strip at the far left edge survives
    pixels = processor(images=[wide], return_tensors="pt")["pixel_values"][0]
    assert pixels[0, :, 0].mean() > pixels[1, :, 0].mean() + 1


def test_tiny_clip_is_deterministic_and_configurable(tmp_path, tiny_clip_dir):
    again = write_tiny_clip(tmp_path / "again")
    assert content_hash(again) == content_hash(tiny_clip_dir)
    other = write_tiny_clip(tmp_path / "other", seed=1, hidden_size=32, projection_dim=16, image_size=24)
    assert content_hash(other) != content_hash(tiny_clip_dir)
    assert build_towers_from_base(other, device="cpu").embedding_dim == 16
    with pytest.raises(TypeError, match="unknown options"):
        write_tiny_clip(tmp_path / "bad", hidden=3)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60))
def test_tiny_tokenizer_covers_any_text(text):
    tokenizer = _TOKENIZER
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    # Byte-level BPE: every byte has a symbol, so nothing inside falls back to the unknown (= end-of-text) token.
    assert tokenizer.unk_token_id == tokenizer.eos_token_id
    assert tokenizer.eos_token_id not in ids[1:-1]


def test_tiny_tokenizer_keeps_words_hashtags_and_digits():
    tokens = _TOKENIZER.tokenize("Hello #AI world 2024, robots!")
    assert "robots</w>" in tokens and "#</w>" in tokens and "2</w>" in tokens
    assert _TOKENIZER.decode(_TOKENIZER("robots and chips")["input_ids"], skip_special_tokens=True) == (
        "robots and chips"
    )


def test_build_towers_splits_the_base_and_copies_the_text_tower(tiny_clip_dir, base_towers):
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(tiny_clip_dir, use_safetensors=True)
    torch.testing.assert_close(base_towers.image_model.visual_projection.weight, clip.visual_projection.weight)
    torch.testing.assert_close(base_towers.text_model.text_projection.weight, clip.text_projection.weight)
    # The hashtag tower starts equal to the text tower but owns separate parameters.
    hashtag_params = {id(p) for p in base_towers.hashtag_model.parameters()}
    assert not hashtag_params & {id(p) for p in base_towers.text_model.parameters()}
    np.testing.assert_allclose(base_towers.encode_texts(TEXTS), base_towers.encode_hashtags(TEXTS), atol=1e-6)
    identity = base_towers.identity
    assert identity["source"] == str(tiny_clip_dir) and identity["content_hash"] == content_hash(tiny_clip_dir)
    assert base_towers.logit_scale == pytest.approx(float(np.exp(2.6592)), rel=1e-4)


def test_encoders_return_unit_float32_rows_independent_of_batch_size(base_towers, images):
    dim = base_towers.embedding_dim
    image_embeddings = base_towers.encode_images(images, batch_size=4)
    _assert_unit_rows(image_embeddings, len(images), dim)
    np.testing.assert_allclose(image_embeddings, base_towers.encode_images(images, batch_size=1), atol=1e-5)
    text_embeddings = base_towers.encode_texts(TEXTS, batch_size=3)
    _assert_unit_rows(text_embeddings, len(TEXTS), dim)
    np.testing.assert_allclose(text_embeddings, base_towers.encode_texts(TEXTS, batch_size=64), atol=1e-5)
    _assert_unit_rows(base_towers.encode_hashtags(["#AI #ml", "#Robots"]), 2, dim)
    assert base_towers.encode_texts([]).shape == (0, dim)
    with pytest.raises(ValueError, match="batch_size"):
        base_towers.encode_texts(TEXTS, batch_size=0)


def test_long_text_is_truncated_to_the_context_length(base_towers):
    long_text = " ".join(["robots"] * 500)
    tokens = base_towers.tokenize([long_text, "short"])
    assert tokens["input_ids"].shape[1] == base_towers.max_text_length == 77
    _assert_unit_rows(base_towers.encode_texts([long_text]), 1, base_towers.embedding_dim)


def test_encoding_runs_without_gradients(base_towers, images):
    module = base_towers.as_module()
    assert module.image is base_towers.image_model
    pixel_values = base_towers.preprocess_images(images[:2])
    assert module(pixel_values=pixel_values)["image"].requires_grad
    base_towers.encode_images(images[:2])
    assert all(p.grad is None for p in base_towers.image_model.parameters())


def test_save_and_load_round_trip(tmp_path, base_towers, images):
    saved = base_towers.save(tmp_path / "towers", extra={"note": "test"})
    for name in TOWER_NAMES:
        assert (saved / name / "config.json").is_file() and list((saved / name).glob("*.safetensors"))
    assert {"processor_config.json", "preprocessor_config.json"} & {p.name for p in (saved / "image").iterdir()}
    assert (saved / "text" / "tokenizer.json").is_file() and (saved / "hashtag" / "tokenizer.json").is_file()
    manifest = json.loads((saved / "towers.json").read_text())
    assert manifest["embedding_dim"] == base_towers.embedding_dim and manifest["note"] == "test"
    assert manifest["base_model"]["content_hash"] == base_towers.identity["content_hash"]

    loaded = load_towers(str(saved), device="cpu")
    assert loaded.identity["kind"] == "towers"
    assert loaded.identity["content_hash"] == content_hash(saved, TOWER_NAMES)
    (saved / "checkpoints").mkdir()  # training leaves checkpoints beside the towers: not part of their identity
    (saved / "checkpoints" / "model.safetensors").write_bytes(b"x")
    assert load_towers(str(saved), device="cpu").identity["content_hash"] == loaded.identity["content_hash"]
    assert loaded.identity["base_model"] == manifest["base_model"]
    np.testing.assert_allclose(loaded.encode_images(images), base_towers.encode_images(images), atol=1e-6)
    np.testing.assert_allclose(loaded.encode_texts(TEXTS), base_towers.encode_texts(TEXTS), atol=1e-6)
    np.testing.assert_allclose(loaded.encode_hashtags(TEXTS), base_towers.encode_hashtags(TEXTS), atol=1e-6)


def test_load_towers_accepts_a_plain_clip_base(tiny_clip_dir):
    towers = load_towers(str(tiny_clip_dir), device="cpu")
    assert towers.identity["kind"] == "base"


def test_any_standard_clip_checkpoint_loads(tmp_path):
    """The older layout (preprocessor_config.json, vocab.json + merges.txt) with its own projection sizes."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    tokenizer = tiny_tokenizer()
    shared = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**shared, "vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id},
        vision_config={**shared, "image_size": 30, "patch_size": 2},
        projection_dim=24,
    )
    directory = tmp_path / "legacy"
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(directory)
    from tweetmaker.tiny_clip import _tiny_vocab_and_merges

    vocab, merges = _tiny_vocab_and_merges()
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    towers = build_towers_from_base(directory, device="cpu")
    assert towers.embedding_dim == 24
    _assert_unit_rows(towers.encode_images([Image.new("RGB", (31, 45), "red")]), 1, 24)
    _assert_unit_rows(towers.encode_texts(["hello"]), 1, 24)


def test_clear_errors_for_wrong_sources(tmp_path, tiny_clip_dir):
    not_clip = tmp_path / "bert"
    not_clip.mkdir()
    (not_clip / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TowersError, match="not a CLIP checkpoint.*bert"):
        build_towers_from_base(not_clip)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TowersError, match="no config.json"):
        build_towers_from_base(empty)
    with pytest.raises(TowersError, match="neither trained towers"):
        load_towers(empty)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((Path(tiny_clip_dir) / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(TowersError, match="safetensors"):
        build_towers_from_base(pickled)
    with pytest.raises(TowersError, match="not a directory"):
        load_towers(str(tmp_path / "missing" / "dir" / "x"))


def test_unreachable_hub_repo_names_the_source(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TowersError, match="no-such-user/no-such-model"):
        build_towers_from_base("no-such-user/no-such-model")


def test_cli_writes_tiny_clip_and_prints_identity(tmp_path, capsys):
    output = tmp_path / "cli_tiny"
    assert towers_module.main(["tiny", "--output_dir", str(output), "--hidden_size", "32", "--center_crop"]) == 0
    assert json.loads((output / "processor_config.json").read_text())["image_processor"]["do_center_crop"]
    assert json.loads((output / "config.json").read_text())["text_config"]["hidden_size"] == 32
    assert towers_module.main(["info", str(output)]) == 0
    assert content_hash(output) in capsys.readouterr().out
