"""`tagd link | unlink | sessions | romm` as a user runs them (subprocesses), against the loopback servers; and no
token ever shows up in what tagd prints, logs, or keeps outside its 0600 files."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

from servers import ROMM_CLIENT_TOKEN, RETROSHELF_CLIENT, Retroshelf, Romm, Serving, make_rom

from tagd.integrations.sessions import Session
from tagd.integrations.store import IntegrationStore

ROOT = Path(__file__).resolve().parents[2]


async def tagd(*args: str, stdin: str = "", config: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tagd", "-v", *args, "--config", str(config), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f'database = "{tmp_path / "data" / "tagd.db"}"\n[api]\nlisten = "127.0.0.1:9"\n')
    return config


async def link_retroshelf(tmp_path: Path, answers: list[str]) -> tuple[Retroshelf, int, str, str]:
    """`tagd link retroshelf` against a server whose polls answer ``answers`` (then the token), 1 s apart."""
    server = Retroshelf()
    server.interval = 1
    server.poll_script = answers
    async with Serving(server.app()) as s:
        rc, out, err = await tagd("link", "retroshelf", "--client-id", RETROSHELF_CLIENT, "--base-url", s.url,
                                  config=write_config(tmp_path))
    return server, rc, out, err


async def test_link_retroshelf_shows_code_url_and_qr_then_stores_the_token_0600(tmp_path):
    server, rc, out, err = await link_retroshelf(tmp_path, ["authorization_pending"])
    assert rc == 0, err
    assert "483921" in out and "https://retroshelf.example/link" in out
    assert "█" in out or "▀" in out or "▄" in out  # the QR code
    cred = tmp_path / "data" / "credentials" / "retroshelf.json"
    assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and stat.S_IMODE(cred.parent.stat().st_mode) == 0o700
    assert server.access_token in cred.read_text()
    assert server.access_token not in out + err and server.device_code not in out + err


async def test_link_retroshelf_denied_says_so_and_stores_nothing(tmp_path):
    _, rc, out, err = await link_retroshelf(tmp_path, ["access_denied"])
    assert rc != 0 and "refused" in err
    assert not (tmp_path / "data" / "credentials" / "retroshelf.json").exists()


async def test_sessions_list_failed_and_retry(tmp_path):
    config = write_config(tmp_path)
    store = IntegrationStore(tmp_path / "data" / "tagd.db")
    store.add_sessions([Session("Roms/SFC/Chrono Trigger.sfc", "Chrono Trigger", 5400, 1781229600, "snes"),
                        Session("bad.sfc", "Bad", 60, 1781229700, "snes")])
    bad = [r["id"] for r in store.pending(10) if r["rom_path"] == "bad.sfc"]
    store.mark_failed(bad, "retroshelf: romPath is not acceptable (HTTP 422)")
    store.close()
    rc, out, err = await tagd("sessions", config=config)
    assert rc == 0 and "Chrono Trigger" in out and "90m00s" in out and "pending 1, failed 1" in err
    rc, out, _ = await tagd("sessions", "--failed", config=config)
    assert "Bad" in out and "HTTP 422" in out and "Chrono" not in out
    rc, out, _ = await tagd("sessions", "retry", config=config)
    assert "1 session(s) back in the queue" in out
    rc, out, _ = await tagd("sessions", "--pending", "--json", config=config)
    assert out.count("\n") == 2


async def test_link_romm_with_a_client_token_then_search_and_unlink(tmp_path):
    config = write_config(tmp_path)
    server = Romm([make_rom(1, name="Chrono Trigger"), make_rom(2, name="Super Metroid"),
                   make_rom(3, (2, "gba", "Game Boy Advance"), name="Metroid Fusion")])
    async with Serving(server.app()) as s:
        rc, out, err = await tagd("link", "romm", "--url", s.url, stdin=ROMM_CLIENT_TOKEN + "\n", config=config)
        assert rc == 0, err
        rc, out, err = await tagd("romm", "search", "metroid", config=config)
        assert rc == 0 and "Super Metroid" in out and "Metroid Fusion" in out
        rc, out, err = await tagd("romm", "search", "metroid", "--platform", "gba", config=config)
        assert "Metroid Fusion" in out and "Super Metroid" not in out
        rc, out, err = await tagd("romm", "search", "zelda", config=config)
        assert rc == 1
        everything = out + err
    rc, out, err = await tagd("unlink", "romm", config=config)
    assert rc == 0 and not (tmp_path / "data" / "credentials" / "romm.json").exists()
    assert ROMM_CLIENT_TOKEN not in everything + out + err


async def test_link_romm_refuses_what_is_not_a_client_token(tmp_path):
    config = write_config(tmp_path)
    rc, _, err = await tagd("link", "romm", "--url", "http://127.0.0.1:9", stdin="hunter2\n", config=config)
    assert rc != 0 and "rmm_" in err and "hunter2" not in err
