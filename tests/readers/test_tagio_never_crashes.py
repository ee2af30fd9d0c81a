"""Issue 14, item 3: a reader never crashes on a tag. Whatever a tag answers (short, long, refusals), tagio's
read gives a token or the reason, never another exception, and never loops waiting for bytes."""

from hypothesis import given, strategies as st

from tagd.ndef import classic
from tagd.readers import tagio

BUDGET = 3000  # commands; a read of a whole 4K card with every key failing stays far below


class RandomTag:
    """A TagIO whose every answer is drawn by hypothesis: bytes of any length, or a refusal."""

    def __init__(self, data) -> None:
        self.data, self.calls = data, 0

    def _answer(self) -> bytes:
        self.calls += 1
        if self.calls > BUDGET:
            raise tagio.TagLeft("budget spent: the read does not end")
        if self.data.draw(st.integers(0, 9)) == 0:
            raise tagio.CommandFailed("refused")
        return self.data.draw(st.binary(max_size=70))

    def thru(self, cmd: bytes) -> bytes:
        return self._answer()

    def read_block(self, block: int) -> bytes:
        return self._answer()

    def auth(self, block: int, key: bytes) -> bool:
        self.calls += 1
        return self.data.draw(st.booleans())

    def write_page(self, page: int, data: bytes) -> None:
        self._answer()

    def write_block(self, block: int, data: bytes) -> None:
        self._answer()

    def reselect(self) -> None:
        self.calls += 1


@given(st.sampled_from([0x00, 0x08, 0x09, 0x18, 0x88]), st.data())
def test_a_tag_answering_anything_gives_a_token_or_the_reason_never_another_exception(sak, data):
    tag = RandomTag(data)
    decoded, read = tagio.read_or_uid(tag, bytes.fromhex("04a1b2c3d4e5f6"), sak, [])
    assert decoded.uid == "04a1b2c3d4e5f6" and tag.calls <= BUDGET
    if read is None:
        assert decoded.errors[0].startswith("read failed: ")
    elif classic.kind_from_sak(sak):
        assert len(read.memory) == classic.SIZES[classic.kind_from_sak(sak)]


def test_a_short_read_answer_is_a_refusal_not_shifted_memory():
    class Short(RandomTag):
        def __init__(self) -> None:
            self.calls = 0

        def thru(self, cmd: bytes) -> bytes:
            raise tagio.CommandFailed("no GET_VERSION")

        def read_block(self, block: int) -> bytes:
            return bytes(8)

    decoded, read = tagio.read_or_uid(Short(), bytes.fromhex("04a1b2c3d4e5f6"), 0x00, [])
    assert read is None and decoded.errors == ["read failed: READ 0: 8 bytes, expected 16"]
