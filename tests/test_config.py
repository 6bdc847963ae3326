"""Settings: flags over environment variables over defaults, with clear errors."""

from __future__ import annotations

import pytest

from tweetmaker.config import AppSettings, parse_settings


def test_defaults_bind_to_loopback():
    settings = parse_settings([], environ={})
    assert settings == AppSettings()
    assert settings.host == "127.0.0.1" and settings.port == 7860 and not settings.demo


def test_environment_then_flags():
    environ = {"TWEETMAKER_TOWERS": "me/towers", "TWEETMAKER_PORT": "8100", "TWEETMAKER_DEMO": "true",
               "GRADIO_SERVER_NAME": "0.0.0.0", "TWEETMAKER_MAX_FILE_SIZE_MB": "2.5"}
    settings = parse_settings([], environ=environ)
    assert (settings.towers, settings.port, settings.demo, settings.host) == ("me/towers", 8100, True, "0.0.0.0")
    assert settings.max_file_size_mb == 2.5
    settings = parse_settings(["--towers", "local/dir", "--port", "9000", "--index_dir", "idx"], environ=environ)
    assert (settings.towers, settings.port, settings.index_dir) == ("local/dir", 9000, "idx")


@pytest.mark.parametrize(("argv", "environ", "message"), [
    (["--port", "0"], {}, "port"),
    ([], {"TWEETMAKER_PORT": "eighty"}, "TWEETMAKER_PORT"),
    (["--max_concurrency", "0"], {}, "max_concurrency"),
])
def test_bad_settings_are_clear_errors(argv, environ, message):
    with pytest.raises(ValueError, match=message):
        parse_settings(argv, environ=environ)


def test_compare_towers_are_off_by_default_and_set_by_flag_or_environment():
    assert parse_settings([], environ={}).compare_towers is None
    settings = parse_settings(["--compare_towers", "base"], environ={})
    assert (settings.compare_towers, settings.compare_towers_revision) == ("base", None)
    settings = parse_settings([], environ={"TWEETMAKER_COMPARE_TOWERS": "me/old-towers",
                                           "TWEETMAKER_COMPARE_TOWERS_REVISION": "v1"})
    assert (settings.compare_towers, settings.compare_towers_revision) == ("me/old-towers", "v1")
    assert parse_settings(["--compare_towers", " "], environ={}).compare_towers is None


@pytest.mark.parametrize("argv", [["--compare_towers_revision", "v1"],
                                  ["--compare_towers", "base", "--compare_towers_revision", "v1"]])
def test_a_compare_revision_needs_compare_towers_it_applies_to(argv):
    with pytest.raises(ValueError, match="--compare_towers_revision needs --compare_towers"):
        parse_settings(argv, environ={})


def test_the_backend_is_checked_at_start_and_read_from_the_environment():
    assert parse_settings([], environ={}).backend == "auto"  # the measured best: ONNX on a CPU, torch on a GPU
    assert parse_settings(["--backend", "torch"], environ={}).backend == "torch"  # fp32 PyTorch stays selectable
    assert parse_settings([], environ={"TWEETMAKER_BACKEND": "onnx"}).backend == "onnx"
    with pytest.raises(ValueError, match="choose one of torch, torch-int8, onnx, onnx-int8"):
        parse_settings(["--backend", "tensorrt"], environ={})
