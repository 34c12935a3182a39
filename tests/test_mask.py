"""The streaming masker: equal to masking the whole stream at once, whatever the chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xtok.mask import MARK, Masker, patterns_for, redact


def reference(data: bytes, patterns: list[bytes]) -> bytes:
    """Mask the unchunked data: every occurrence, overlapping or touching ones merged."""
    spans = sorted(
        (s, s + len(p)) for p in patterns for s in range(len(data)) if data.startswith(p, s)
    )
    out, pos, end = bytearray(), 0, -1
    for s, e in spans:
        if s > end:  # touching occurrences (s == end) form one run
            out += data[pos:s] + MARK
        end = max(end, e)
        pos = max(pos, end)
    return bytes(out + data[pos:])


def stream(masker: Masker, chunks: list[bytes]) -> bytes:
    return b"".join(masker.feed(c) for c in chunks) + masker.flush()


def test_split_across_writes_and_byte_by_byte() -> None:
    data = b"password=hunter2-long!\n"
    for chunks in ([data[:12], data[12:]], [bytes([b]) for b in data]):
        assert stream(Masker([b"hunter2-long"]), chunks) == b"password=***!\n"


def test_repeating_prefix() -> None:
    # "aaab" arrives as "xaa" + "ab": a carried partial match must restart correctly.
    assert stream(Masker([b"aaab"]), [b"xaa", b"ab"]) == b"x***"
    assert stream(Masker([b"aaab"]), [b"xaaa", b"aaab"]) == b"xaaa***"
    assert stream(Masker([b"aaab"]), [b"xaaa", b"aa"]) == b"xaaaaa"


def test_overlapping_and_nested_secrets_mask_the_union() -> None:
    assert stream(Masker([b"abcdef", b"defghi"]), [b"<abcdefghi>"]) == b"<***>"
    assert stream(Masker([b"outer-SECRET-outer", b"SECRET"]), [b"[outer-SECRET-outer]"]) == b"[***]"


def test_text_that_cannot_start_a_secret_is_not_held() -> None:
    masker = Masker([b"hunter2-long"])
    assert masker.feed(b"Password: ") == b"Password: "
    assert masker.feed(b"hun") == b""
    assert masker.feed(b"gry\n") == b"hungry\n"


def test_short_values_are_not_patterns() -> None:
    assert patterns_for(b"abc") == []
    assert patterns_for(b"abcd") == [b"abcd"]


def test_redact() -> None:
    assert redact("value 'topsecret' is too long", [b"topsecret"]) == "value '***' is too long"


secrets_st = st.lists(st.binary(min_size=4, max_size=12), min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(
    patterns=secrets_st,
    noise=st.lists(st.binary(max_size=20), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=17), max_size=40),
    data_seed=st.randoms(use_true_random=False),
)
def test_any_chunking_equals_the_reference(
    patterns: list[bytes], noise: list[bytes], cuts: list[int], data_seed: object
) -> None:
    rnd = data_seed  # a hypothesis-controlled Random
    parts = []
    for piece in noise:
        parts.append(piece)
        parts.append(rnd.choice(patterns))  # type: ignore[attr-defined]
    data = b"".join(parts)
    chunks, pos = [], 0
    for n in cuts:
        chunks.append(data[pos : pos + n])
        pos += n
    chunks.append(data[pos:])
    out = stream(Masker(patterns), chunks)
    assert out == reference(data, patterns)
    for p in patterns:
        assert p not in out or p in MARK * len(p)
