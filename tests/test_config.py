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
