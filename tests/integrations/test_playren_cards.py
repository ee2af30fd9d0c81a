"""PlayRen games as cards: `tagd link playren`, `tagd deck write --from playren --dry-run` (with the warning for a game
cached on no server), and a card's text running the game's launcher through the exec core."""

from __future__ import annotations

import asyncio
import json
import sys

from servers import PLAYREN_KEY, PlayRen, Serving, make_game
from test_cli_services import tagd, write_config

from tagd.daemon.config import Config
from tagd.daemon.service import Daemon


async def test_link_then_dry_run_lists_launcher_cards_and_warns_about_uncached_games(tmp_path):
    config = write_config(tmp_path)
    server = PlayRen([make_game("garden-of-forking-paths", "The Garden of Forking Paths"),
                      make_game("nowhere-yet", "Nowhere Yet", cached=0)])
    async with Serving(server.app()) as s:
        base = s.url + "/api/partners"
        rc, out, err = await tagd("link", "playren", "--base-url", base, stdin="wrong-key\n", config=config)
        assert rc != 0 and "Invalid API key" in err and "wrong-key" not in err
        rc, out, err = await tagd("link", "playren", "--base-url", base, stdin=PLAYREN_KEY + "\n", config=config)
        assert rc == 0, err
        rc, out, err = await tagd("deck", "write", "--from", "playren", "--dry-run", config=config)
        assert rc == 0, err
        rc2, out2, _ = await tagd("deck", "write", "--from", "playren", "--dry-run", "--search", "garden",
                                  "--template", "**launch.playren:{slug}", config=config)
    assert out.splitlines() == ["  The Garden of Forking Paths\tGardenOfForkingPaths-1698234567/garden-of-forking-paths.sh",
                                "  Nowhere Yet\tNowhereYet-1698234567/nowhere-yet.sh"]
    assert "Nowhere Yet is not cached on any PlayRen server yet" in err
    assert "Garden" not in err.split("warning")[-1]
    assert out2.splitlines() == ["  The Garden of Forking Paths\t**launch.playren:garden-of-forking-paths"]
    assert PLAYREN_KEY not in out + err + out2


async def test_a_playren_card_runs_its_launcher_through_the_exec_core(tmp_path):
    record = tmp_path / "argv.json"
    script = f"import json, sys; json.dump(sys.argv[1:], open({str(record)!r}, 'w'))"
    config = Config.model_validate({
        "readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"},
        "core": [{"type": "exec", "argv": [sys.executable, "-c", script, "{text}"]}]})
    d = Daemon(config, tmp_path / "config.toml")
    await d.start()
    try:
        from tagd.token import Token

        card = "GardenOfForkingPaths-1698234567/garden-of-forking-paths.sh"
        assert await d.pipeline.run_token(Token(type="NTAG", uid="04aa", text=card))
    finally:
        await d.stop()
    await asyncio.sleep(0)
    assert json.loads(record.read_text()) == [card]
