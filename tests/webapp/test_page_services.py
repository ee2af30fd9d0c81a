"""The Decks and Sessions pages and the API under them (decks.*, integrations.link/unlink), against `tagd run` with an
emulated PN532 and the RomM and retroshelf stand-ins (tests/integrations/servers.py, run standalone on one port).

A deck of 3 RomM games is written through the page, a blank tag placed for each card with the sim's ``place`` and
taken away with ``remove``; the retroshelf link shows its code, address and QR and completes. Each method is also
called directly, with bad params and the services' errors. Screenshots go to build/screenshots/."""

from __future__ import annotations

import asyncio
import base64
import json
import pathlib
import sys

import pytest
from procs import Proc, rpc, wait_until
from test_page import SHOTS, Stack as PageStack, browser, free_port, page, shot  # noqa: F401  (fixtures)

from tagd.integrations.credentials import Credentials, credentials_dir

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SERVERS = ROOT / "tests" / "integrations" / "servers.py"
sys.path.insert(0, str(SERVERS.parent))
from servers import RETROSHELF_CLIENT, ROMM_CLIENT_TOKEN, Retroshelf  # noqa: E402

SHELF = Retroshelf()  # the standalone server's token, to check it never reaches an answer
TITLES = {"Chrono Trigger", "Game 2", "Game 3"}


def blank(tmp: pathlib.Path, uid: str) -> pathlib.Path:
    from tagd.ndef import dumps, type2

    dump = dumps.type2_dump(type2.blank_image("ntag215", bytes.fromhex(uid)), type2.TYPE2_KINDS["ntag215"].version)
    dump.kind = "ntag215"
    path = tmp / f"blank-{uid}.nfc"
    dumps.save(dump, path)
    return path


class Stack(PageStack):
    """test_page's stack, with the service stand-ins on one port and RomM linked before the daemon starts."""

    def __init__(self, tmp: pathlib.Path) -> None:
        self.services_port = free_port()
        self.services = Proc([sys.executable, str(SERVERS), str(self.services_port)])
        self.services.wait_line(lambda line: line == "ready")
        self.services_url = f"http://127.0.0.1:{self.services_port}"
        Credentials(credentials_dir(tmp / "tagd.db")).save(
            "romm", {"url": self.services_url + "/romm", "access_token": ROMM_CLIENT_TOKEN, "auth": "client token"})
        super().__init__(tmp)

    def call(self, method: str, params=None) -> dict:
        return rpc(self.port, method, params)

    def result(self, method: str, params=None):
        answer = self.call(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, params=None) -> str:
        answer = self.call(method, params)
        assert "error" in answer, answer
        return answer["error"]["message"]

    def close(self) -> None:
        super().close()
        self.services.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("services"))
    yield s
    s.close()


# --- the API -------------------------------------------------------------------------------------------


def test_preview_lists_the_catalogs_cards_with_their_zapscript(stack) -> None:
    items = stack.result("decks.preview", {"from": "romm", "platform": "snes"})["items"]
    assert {i["title"] for i in items} == TITLES
    chrono = next(i for i in items if i["title"] == "Chrono Trigger")
    assert chrono == {"key": "romm:1", "title": "Chrono Trigger", "platform": "Super Nintendo",
                      "zapscript": "@SNES/Chrono Trigger", "written": False}
    one = stack.result("decks.preview", {"from": "romm", "search": "chrono", "template": "**launch.search:{name}"})
    assert [i["zapscript"] for i in one["items"]] == ["**launch.search:Chrono Trigger"]


@pytest.mark.parametrize("params, message", [
    (None, "invalid params: from is required"),
    ({"from": "steam"}, "invalid params: from:"),
    ({"from": "romm", "search": 5}, "invalid params: search:"),
    ({"from": "romm", "template": "@{system}/{nmae}"}, "invalid params: template: unknown template field {nmae}"),
    ({"from": "romm", "search": "no such game"}, "no games match"),
    ({"from": "playren"}, "PlayRen is not linked"),
])
def test_preview_says_what_is_wrong(stack, params, message) -> None:
    assert message in stack.error("decks.preview", params)


def test_labels_are_a_pdf_and_a_bad_size_is_named(stack) -> None:
    r = stack.result("decks.labels", {"from": "romm"})
    assert r["filename"].endswith(".pdf") and base64.b64decode(r["pdf"]).startswith(b"%PDF")
    assert "unknown card size" in stack.error("decks.labels", {"from": "romm", "size": "poster"})
    assert "invalid params: page:" in stack.error("decks.labels", {"from": "romm", "page": "a3"})


def test_a_deck_job_pauses_resumes_and_cancels_and_only_one_runs(stack) -> None:
    assert stack.result("decks.status")["state"] in ("idle", "done", "cancelled")
    assert "no connected write-capable reader nope" in stack.error("decks.write", {"from": "romm", "readerId": "nope"})
    started = stack.result("decks.write", {"from": "romm", "search": "Game 2"})
    assert started["total"] == 1 and started["done"] == 0
    wait_until(lambda: stack.result("decks.status")["state"] == "waiting", 10)
    assert stack.result("decks.status")["current"] == {"title": "Game 2"}
    assert "a deck is already being written" in stack.error("decks.write", {"from": "romm"})
    assert stack.result("decks.pause")["state"] == "paused"
    assert stack.result("decks.resume")["state"] in ("writing", "waiting")
    assert "not paused" in stack.error("decks.resume")
    wait_until(lambda: stack.result("decks.status")["state"] == "waiting", 10)
    stack.result("decks.cancel")
    wait_until(lambda: stack.result("decks.status")["state"] == "cancelled", 10)
    assert "no deck is being written" in stack.error("decks.pause")
    assert stack.result("decks.status")["done"] == 0


@pytest.mark.parametrize("params, message", [
    (None, "invalid params: service is required"),
    ({"service": "steam"}, "invalid params: service:"),
    ({"service": "romm"}, "run tagd link romm"),
    ({"service": "retroshelf"}, "clientId is required"),
    ({"service": "retroshelf", "clientId": "x", "baseUrl": "ftp://nope"}, "invalid params: baseUrl:"),
])
def test_link_says_what_is_wrong(stack, params, message) -> None:
    assert message in stack.error("integrations.link", params)


def test_link_with_a_client_retroshelf_does_not_know_is_its_error(stack) -> None:
    msg = stack.error("integrations.link", {"service": "retroshelf", "clientId": "unknown", "baseUrl": stack.services_url})
    assert msg.startswith("retroshelf:") and "invalid_client" in msg


def test_link_answers_the_code_announces_each_change_and_unlink_forgets(stack) -> None:
    import aiohttp

    async def link() -> tuple[dict, list[dict]]:
        changes: list[dict] = []
        async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{stack.port}/api") as ws:
            answer = stack.call("integrations.link", {"service": "retroshelf", "clientId": RETROSHELF_CLIENT,
                                                      "baseUrl": stack.services_url})
            while not changes or changes[-1]["state"] == "waiting":
                msg = json.loads((await ws.receive(timeout=20)).data)
                if msg.get("method") == "integrations.changed":
                    changes.append(msg["params"])
        return answer, changes

    answer, changes = asyncio.run(link())
    r = answer["result"]
    assert r["userCode"] == "483921" and r["verificationUri"] == "https://retroshelf.example/link"
    assert r["expiresIn"] == 1800 and r["interval"] == 5 and r["qrSvg"].startswith("<svg")
    assert changes == [{"service": "retroshelf", "state": "waiting", "linked": False},
                       {"service": "retroshelf", "state": "linked", "linked": True}]
    status = stack.result("integrations")["retroshelf"]
    assert status["linked"] and status["clientId"] == RETROSHELF_CLIENT
    assert SHELF.access_token not in json.dumps(answer) + json.dumps(status)
    assert stack.result("integrations.unlink", {"service": "retroshelf"}) == {"unlinked": True}
    assert stack.result("integrations")["retroshelf"]["state"] == "unlinked"
    assert stack.result("integrations.unlink", {"service": "playren"}) == {"unlinked": False}


# --- the page -------------------------------------------------------------------------------------------


def test_a_deck_of_three_is_written_through_the_page(stack, page, tmp_path) -> None:
    page.goto(stack.url + "#decks")
    page.fill("#deck-platform", "snes")
    page.click("#deck-preview")
    page.wait_for_selector("#deck-items tr:nth-child(3)")
    shot(page, "decks-preview")
    page.click("#deck-write")
    uids = ["04d1d2d3d4d5d1", "04d1d2d3d4d5d2", "04d1d2d3d4d5d3"]
    for n, uid in enumerate(uids, 1):
        page.wait_for_selector("#deck-status:has-text('place a blank tag for')", timeout=15000)
        if n == 2:
            shot(page, "decks-writing")
        stack.sim.send(f"place {blank(tmp_path, uid)}")
        page.wait_for_selector(f"#deck-status strong:text-is('{n}/3')", timeout=15000)
        stack.sim.send("remove")
    page.wait_for_selector("#deck-status:has-text('deck written')", timeout=15000)
    assert page.eval_on_selector("#deck-progress", "p => [p.value, p.max]") == [3, 3]
    page.wait_for_selector("#deck-items td.ok >> nth=2")  # the preview again: all three written
    shot(page, "decks-written")
    assert stack.runs() == []  # the blank tags placed for the cards were cards, not taps: nothing launched
    items = stack.result("decks.preview", {"from": "romm", "platform": "snes"})["items"]
    assert all(i["written"] for i in items)
    with page.expect_download() as download:
        page.click("#deck-labels")
    assert download.value.suggested_filename.endswith(".pdf")


def test_the_retroshelf_link_shows_code_url_and_qr_and_completes(stack, page) -> None:
    page.goto(stack.url + "#sessions")
    page.fill("#link-client-id", RETROSHELF_CLIENT)
    page.fill("#link-base-url", stack.services_url)
    page.click("#link-go")
    page.wait_for_selector("#link-code:text-is('483921')")
    assert page.get_attribute("#link-url", "href") == "https://retroshelf.example/link"
    assert page.locator("#link .qr svg").count() == 1
    shot(page, "sessions-link")
    page.wait_for_selector("#link-state:text-is('linked')", timeout=20000)
    page.wait_for_selector("[data-service='retroshelf']:text-is('linked')")
    shot(page, "sessions-linked")
    page.click("#unlink-retroshelf")
    page.wait_for_selector("[data-service='retroshelf']:text-is('unlinked')")
    assert stack.result("integrations")["retroshelf"]["state"] == "unlinked"
