"""Issue 13 item 3 (daemon side): one small request gets a small answer — tokens.history pages (Core's 25 by
default, at most 100, ending early at HISTORY_PAGE_BYTES) and history keeps a launch's text up to a stated size."""

from __future__ import annotations

import json

from test_api import daemon  # noqa: F401 (fixture)
from tagd.daemon.api.methods import HISTORY_PAGE, HISTORY_PAGE_BYTES
from tagd.daemon.store import HISTORY_DATA_MAX, HISTORY_TEXT_MAX, TRUNCATED
from tagd.token import Token

BIG = 100_000


def fill(store, n, size=BIG):
    for i in range(n):
        store.add_history(Token(uid=f"04{i:04x}", text=f"{i:03d}" + "x" * size, data="ab" * size), True)


async def call(d, method, params=None, n=1):
    msg = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        msg["params"] = params
    text = json.dumps([dict(msg, id=i) for i in range(n)] if n > 1 else msg)
    return await d.api.dispatcher.handle_text(text)


async def test_a_batch_of_history_requests_over_huge_entries_answers_a_bounded_size(daemon):
    """100 launches of 60 KB each, then a batch of 5: was 100 whole entries per answer (30 MB; the issue's 100 KB
    texts and 20 requests made 205 MB), must be one bounded page each."""
    fill(daemon.store, 100, size=20_000)
    answers = await call(daemon, "tokens.history", {"limit": 100}, n=5)
    assert len(answers) == 5
    total = len(json.dumps(answers))
    per_page_cap = HISTORY_PAGE_BYTES + HISTORY_TEXT_MAX + HISTORY_DATA_MAX + 4096
    assert total <= 5 * per_page_cap, total
    for a in answers:
        assert a["result"]["entries"] and a["result"]["pagination"]["hasNextPage"] is True


async def test_stored_history_text_and_data_are_capped_at_the_documented_size(daemon):
    fill(daemon.store, 1)
    [entry] = daemon.store.history(1)
    assert len(entry.text.encode()) <= HISTORY_TEXT_MAX and entry.text.endswith(TRUNCATED)
    assert entry.text.startswith("000xxx")
    assert len(entry.data) <= HISTORY_DATA_MAX and entry.data.endswith(TRUNCATED)


async def test_history_text_within_the_cap_is_kept_whole(daemon):
    text = "é" * (HISTORY_TEXT_MAX // 2)  # exactly HISTORY_TEXT_MAX bytes of UTF-8
    daemon.store.add_history(Token(uid="04aa", text=text, data="00" * (HISTORY_DATA_MAX // 2)), True)
    [entry] = daemon.store.history(1)
    assert entry.text == text and len(entry.data) == HISTORY_DATA_MAX


async def test_history_pages_through_every_entry_once_with_core_cursors(daemon):
    fill(daemon.store, 60, size=10)
    seen, cursor = [], None
    while True:
        params = {"limit": 25} | ({"cursor": cursor} if cursor else {})
        result = (await call(daemon, "tokens.history", params))["result"]
        seen += [e["text"][:3] for e in result["entries"]]
        if not result["pagination"]["hasNextPage"]:
            break
        cursor = result["pagination"]["nextCursor"]
    assert seen == [f"{i:03d}" for i in reversed(range(60))]


async def test_history_default_page_is_cores_25_newest_first(daemon):
    fill(daemon.store, 30, size=10)
    result = (await call(daemon, "tokens.history"))["result"]
    assert len(result["entries"]) == HISTORY_PAGE == 25 and result["entries"][0]["text"].startswith("029")
    assert set(result) == {"entries"}  # as the API document (and Core) answer; pagination is for paging callers


async def test_a_plain_history_request_is_bounded_too(daemon):
    fill(daemon.store, 100, size=20_000)
    answer = await call(daemon, "tokens.history")
    assert len(json.dumps(answer)) <= HISTORY_PAGE_BYTES + HISTORY_TEXT_MAX + HISTORY_DATA_MAX + 4096


async def test_history_refuses_a_bad_limit_or_cursor_naming_it(daemon):
    for params, word in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "%%%"}, "cursor"),
                         ({"cursor": "eyJsYXN0SWQiOiAtMX0="}, "cursor")):  # {"lastId": -1}
        error = (await call(daemon, "tokens.history", params))["error"]
        assert error["message"].startswith("invalid params: " + word), error
