"""Building and loading the optional native row codec: it is used only when it matches its
source, and a machine without a compiler gets a clear message and the Python path."""

from __future__ import annotations

import logging

import pytest

from ingestion.cdc import rowcodec


@pytest.fixture(autouse=True)
def _fresh_load_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowcodec, "_loaded", [])


def _require_compiler() -> None:
    if rowcodec.compiler() is None:
        pytest.skip("no C compiler here: the build cannot be exercised")


def test_build_is_idempotent_and_the_module_loads() -> None:
    _require_compiler()
    usable, _ = rowcodec.build()
    assert usable
    usable, message = rowcodec.build()
    assert usable and "up to date" in message
    module = rowcodec.load()
    assert module is not None and rowcodec.source_hash() == module.SOURCE_HASH


def test_a_module_built_from_another_source_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture,
                                                        ) -> None:
    _require_compiler()
    assert rowcodec.build()[0]
    monkeypatch.setattr(rowcodec, "source_hash", lambda: "0" * 64)
    with caplog.at_level(logging.WARNING, logger=rowcodec.__name__):
        assert rowcodec.load() is None
    assert "built from another version" in caplog.text
    assert "bootstrap.py setup" in caplog.text


def test_without_a_compiler_the_build_says_so_and_keeps_the_python_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rowcodec, "compiler", lambda: None)
    usable, message = rowcodec.build(force=True)
    assert not usable
    assert "no C compiler" in message and "pure-Python" in message


def test_a_compile_error_is_reported_with_the_compiler_output(
        monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    _require_compiler()
    broken = tmp_path / "rowcodec.c"  # type: ignore[operator]
    broken.write_text("this is not C\n")
    monkeypatch.setattr(rowcodec, "SOURCE", broken)
    usable, message = rowcodec.build(force=True)
    assert not usable
    assert "building the native row codec failed" in message and "error" in message
    assert not rowcodec.target().exists()  # nothing half-built is left where load() looks


def test_check_exit_code_tells_whether_the_relay_uses_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(rowcodec, "load", lambda: None)
    assert rowcodec.main(["--check"]) == 1
    assert "not in use" in capsys.readouterr().out
    monkeypatch.setattr(rowcodec, "load", lambda: object())
    assert rowcodec.main(["--check"]) == 0
    assert "in use" in capsys.readouterr().out


def test_quiet_prints_only_what_changed(capsys: pytest.CaptureFixture[str]) -> None:
    _require_compiler()
    assert rowcodec.main([]) == 0  # built or up to date: says which
    assert "native row codec" in capsys.readouterr().out
    assert rowcodec.main(["--quiet"]) == 0  # up to date now: nothing to say
    assert capsys.readouterr().out == ""
