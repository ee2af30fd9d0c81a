"""Default file places by the XDG Base Directory rules (tagd.daemon.config.paths)."""

from __future__ import annotations

from pathlib import Path

from tagd.daemon.config import default_config_path, paths
from tagd.daemon.config.schema import default_database_path


def test_xdg_homes_are_used_when_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert paths.user_config_dir() == tmp_path / "cfg" / "tagd"
    assert default_database_path() == tmp_path / "data" / "tagd" / "tagd.db"


def test_unset_or_relative_xdg_homes_fall_back_to_the_spec_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # the spec: a relative path is ignored
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert paths.user_config_dir() == Path(tmp_path) / ".config" / "tagd"
    assert paths.user_data_dir() == Path(tmp_path) / ".local" / "share" / "tagd"


def test_the_default_config_is_config_toml_in_the_config_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert default_config_path() == tmp_path / "tagd" / "config.toml"
