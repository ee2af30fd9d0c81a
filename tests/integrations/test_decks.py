"""Card decks: items from a catalog through a template, the tag rules, progress, labels — and `tagd deck write` on an
emulated PN532, killed with -9 in the middle and run again: every card written once, none lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import make_rom
from service_helpers import DAEMON_TESTS  # noqa: F401  (puts tests/daemon on the path)
from test_e2e import Proc  # noqa: I001

from tagd.integrations import decks, labels, romm
from tagd.integrations.playren import _game
from tagd.integrations.store import IntegrationStore

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def catalog_rows(n: int) -> list[dict]:
    return [decks_row(romm.parse_rom(make_rom(i, name=f"Game {i}"))) for i in range(1, n + 1)]


def decks_row(rom: romm.Rom) -> dict:
    from tagd.integrations.catalog import rom_row

    return rom_row(rom)


def test_romm_items_launch_by_zaparoo_system_and_title_and_templates_are_checked():
    items = decks.romm_items(catalog_rows(2))
    assert items[0] == {"item": "romm:1", "title": "Game 1", "subtitle": "Super Nintendo", "text": "@SNES/Game 1",
                        "cover_url": ""}
    assert decks.romm_items(catalog_rows(1), "**launch:{platform}/{fs_name}")[0]["text"] == "**launch:snes/Game 1.sfc"
    with pytest.raises(decks.TemplateError, match="unknown template field {nmae}"):
        decks.romm_items(catalog_rows(1), "@{system}/{nmae}")


def test_playren_items_run_the_launcher():
    from servers import make_game

    (item,) = decks.playren_items([_game(make_game("garden-of-forking-paths", "The Garden"))])
    assert item["text"] == "GardenOfForkingPaths-1698234567/garden-of-forking-paths.sh"
    assert item["item"] == "playren:garden-of-forking-paths"


def test_judge_writes_blank_tags_recognises_its_own_card_and_refuses_another_items():
    cards = [{"item": "romm:1", "title": "Game 1", "text": "@SNES/Game 1", "uid": "04aa"},
             {"item": "romm:2", "title": "Game 2", "text": "@SNES/Game 2", "uid": ""}]
    game2 = cards[1]
    assert decks.judge(game2, "04bb", "", cards, False).action == "write"
    assert decks.judge(game2, "04bb", "@SNES/Game 2", cards, False).action == "already"
    refused = decks.judge(game2, "04cc", "@SNES/Game 1", cards, False)
    assert refused.action == "refuse" and "Game 1" in refused.reason
    assert decks.judge(game2, "04aa", "something else", cards, False).action == "refuse"
    assert decks.judge(game2, "04aa", "@SNES/Game 1", cards, True).action == "write"


def test_progress_counts_and_estimates_from_this_sitting():
    p = decks.Progress(total=10, done=4, now=0.0)
    assert p.line(0.0) == "[ 4/10]  40%"
    p.card_done()
    assert p.line(12.0) == "[ 5/10]  50%  ETA 1m00s"


def test_the_deck_table_keeps_written_cards_when_planned_again(tmp_path):
    store = IntegrationStore(tmp_path / "tagd.db")
    items = decks.romm_items(catalog_rows(3))
    store.plan_deck("d", items)
    store.card_written("d", "romm:2", "04bb")
    store.plan_deck("d", items)
    rows = store.deck("d")
    assert [r["item"] for r in rows] == ["romm:1", "romm:2", "romm:3"]
    assert [bool(r["written_at"]) for r in rows] == [False, True, False]
    assert store.card_on_tag("04bb")["title"] == "Game 2"  # type: ignore[index]
    store.close()


def test_labels_are_a_pdf_with_eight_cr80_cards_an_a4_page(tmp_path):
    items = decks.romm_items(catalog_rows(25))
    bad_cover = tmp_path / "cover.png"
    bad_cover.write_bytes(b"not an image")
    pages = labels.render(items, tmp_path / "labels.pdf", covers={"romm:1": str(bad_cover)})
    assert pages == 4
    data = (tmp_path / "labels.pdf").read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") >= 4
    assert labels.grid((210, 297), (85.6, 54), 8, 4) == (2, 4)
    with pytest.raises(ValueError, match="unknown card size"):
        labels.render(items, tmp_path / "x.pdf", size="huge")


# --- tagd deck write on an emulated PN532 -----------------------------------------------------------------------


def blank(tmp_path: Path, uid: str) -> Path:
    from tagd.ndef import dumps, type2

    image = type2.blank_image("ntag215", bytes.fromhex(uid))
    path = tmp_path / f"blank-{uid}.nfc"
    dump = dumps.type2_dump(image, type2.TYPE2_KINDS["ntag215"].version)
    dump.kind = "ntag215"
    dumps.save(dump, path)
    return path


@pytest.fixture
def sim(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", "--link", str(tmp_path / "pn532")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    proc.stdout.readline()

    def send(cmd: str) -> None:
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
    yield send
    proc.kill()
    proc.wait()


class DeckWrite(Proc):
    """`tagd deck write --from romm` on the emulated reader; ``wait(text)`` is the next stdout line containing it."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__([sys.executable, "-m", "tagd", "deck", "write", "--from", "romm", "--config",
                          str(tmp_path / "config.toml"), "--reader", f"pn532uart:{tmp_path / 'pn532'}"], env=ENV)

    def wait(self, text: str) -> str:
        return self.wait_line(lambda line: text in line, timeout=20)


def test_dry_run_lists_the_zapscripts(tmp_path):
    setup(tmp_path, 3)
    out = subprocess.run([sys.executable, "-m", "tagd", "deck", "write", "--from", "romm", "--dry-run", "--config",
                          str(tmp_path / "config.toml")], capture_output=True, text=True, env=ENV, timeout=60)
    assert out.returncode == 0 and out.stdout.splitlines() == [f"  Game {i}\t@SNES/Game {i}" for i in (1, 2, 3)]


def setup(tmp_path: Path, n: int) -> None:
    (tmp_path / "config.toml").write_text(f'database = "{tmp_path / "tagd.db"}"\n')
    store = IntegrationStore(tmp_path / "tagd.db")
    store.upsert_roms(romm.parse_rom(make_rom(i, name=f"Game {i}")) for i in range(1, n + 1))
    store.close()


@pytest.mark.parametrize("kill_after", [0.0, 0.05, 0.15])
def test_kill_9_while_writing_loses_nothing_and_duplicates_nothing(tmp_path, sim, kill_after):
    setup(tmp_path, 3)
    a, b, c = (blank(tmp_path, uid) for uid in ("04a1a2a3a4a5a6", "04b1b2b3b4b5b6", "04c1c2c3c4c5c6"))
    first = out = DeckWrite(tmp_path)
    out.wait("place a blank tag for Game 1")
    sim(f"place {a}")
    out.wait("written: Game 1")
    sim("remove")
    out.wait("place a blank tag for Game 2")
    sim(f"place {b}")  # and kill -9 while it is being written (or just before, or just after)
    time.sleep(kill_after)
    first.p.send_signal(signal.SIGKILL)
    first.p.wait()

    second = out = DeckWrite(tmp_path)  # tag B is still on the reader, written or not
    if "Game 2" in out.wait("place a blank tag for"):  # killed before the card was recorded: B is judged again
        assert "written: Game 2" in out.wait("written:")  # (written now, or found already written: not twice)
        sim("remove")
        out.wait("place a blank tag for Game 3")
    else:  # killed after: Game 2 is done, and B, lying there with its card, is not Game 3's
        out.wait("holds the card for Game 2")
        sim("remove")
    sim(f"place {a}")  # Game 1's card: refused
    out.wait("holds the card for Game 1")
    sim("remove")
    sim(f"place {c}")
    out.wait("written: Game 3")
    out.wait("the deck is complete")
    assert second.p.wait(10) == 0

    store = IntegrationStore(tmp_path / "tagd.db")
    rows = store.deck("romm")
    store.close()
    assert [(r["title"], r["uid"]) for r in rows] == [("Game 1", "04a1a2a3a4a5a6"), ("Game 2", "04b1b2b3b4b5b6"),
                                                       ("Game 3", "04c1c2c3c4c5c6")]
    DeckWrite(tmp_path).wait("all 3 cards of this deck are written")
