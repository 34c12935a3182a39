"""The streaming masker: what it must catch, equal to masking the whole stream at once
whatever the chunking, with each matcher (Hyperscan, Aho-Corasick, pure Python)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtok.run.mask import MARK, Masker, Patterns, redact
from xtok.run.matcher import AhoCorasickMatcher, HyperscanMatcher, Matcher, PythonMatcher
from xtok.run.variants import MIN_LINE_LEN, patterns_for

MATCHERS = [HyperscanMatcher, AhoCorasickMatcher, PythonMatcher]
SECRET = b"hunter2-Sup3r/Secret+Value"


@pytest.fixture(params=MATCHERS, ids=lambda m: m.name)
def matcher(request: pytest.FixtureRequest) -> type[Matcher]:
    return request.param  # type: ignore[no-any-return]


def mask(data: bytes, secrets: list[bytes], matcher: type[Matcher], chunk: int = 0) -> bytes:
    compiled = Patterns([p for s in secrets for p in patterns_for(s)], matcher)
    masker = Masker(compiled)
    if not chunk:
        return masker.feed(data) + masker.flush()
    parts = [masker.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(parts) + masker.flush()


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


def leaks(out: bytes, encoded: bytes, n: int = 6) -> list[bytes]:
    """Runs of `n` characters of `encoded` (line breaks ignored) still present in `out`."""
    flat = encoded.replace(b"\n", b"")
    text = out.replace(b"\n", b"")
    return [flat[i : i + n] for i in range(len(flat) - n + 1) if flat[i : i + n] in text]


# 1-3: chunking, repeated prefixes, overlaps


def test_split_across_writes_and_byte_by_byte(matcher: type[Matcher]) -> None:
    data = b"password=" + SECRET + b"!\n"
    for size in (1, 5, 12, 64):
        assert mask(data, [SECRET], matcher, size) == b"password=***!\n"


def test_repeating_prefix(matcher: type[Matcher]) -> None:
    # "aaab" arrives as "xaa" + "ab": a carried partial match must restart correctly.
    for chunks, expected in (
        ([b"xaa", b"ab"], b"x***"),
        ([b"xaaa", b"aaab"], b"xaaa***"),
        ([b"xaaa", b"aa"], b"xaaaaa"),
    ):
        masker = Masker(Patterns([b"aaab"], matcher))
        assert b"".join(masker.feed(c) for c in chunks) + masker.flush() == expected


def test_overlapping_and_nested_secrets_mask_the_union(matcher: type[Matcher]) -> None:
    both = Masker(Patterns([b"abcdef", b"defghi"], matcher))
    assert both.feed(b"<abcdefghi>") + both.flush() == b"<***>"
    nested = Masker(Patterns([b"outer-SECRET-outer", b"SECRET"], matcher))
    assert nested.feed(b"[outer-SECRET-outer]") + nested.flush() == b"[***]"


# 4: base64


@pytest.mark.parametrize("prefix", [b"", b"u", b"user:"], ids=["offset0", "offset1", "offset2"])
@pytest.mark.parametrize("urlsafe", [False, True], ids=["std", "urlsafe"])
@pytest.mark.parametrize("suffix", [b"", b"\n", b"?!", b"xyz\n"])
def test_base64_at_every_offset(
    matcher: type[Matcher], prefix: bytes, urlsafe: bool, suffix: bytes
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    for padded in (True, False):
        encoded = encode(prefix + SECRET + suffix)
        if not padded:
            encoded = encoded.rstrip(b"=")
        out = mask(b"Authorization: Basic " + encoded + b"\n", [SECRET], matcher, 7)
        core = encode(b"\0" * len(prefix) + SECRET)  # the part that depends on SECRET
        assert MARK in out
        assert not leaks(out, core[len(prefix) * 2 : len(core) - 4])


def test_base64_wrapped_at_76_columns(matcher: type[Matcher]) -> None:
    long_secret = bytes(range(32, 127)) * 2  # 190 bytes: its base64 spans several lines
    for prefix in (b"", b"k", b"key:", b"x" * 40):
        wrapped = base64.encodebytes(prefix + long_secret)  # 76 columns, like `base64`
        out = mask(b"-----\n" + wrapped + b"-----\n", [long_secret], matcher, 50)
        assert not leaks(
            out, base64.b64encode(b"\0" * len(prefix) + long_secret)[len(prefix) * 2 : -4], n=8
        )


# 5: URL, JSON, shell

QUOTEY = b'it\'s a "quoted" p@ss/w0rd & more\\'


@pytest.mark.parametrize(
    "form",
    [
        quote(QUOTEY, safe="").encode(),
        quote(QUOTEY, safe="").lower().encode(),
        quote_plus(QUOTEY).encode(),
        json.dumps(QUOTEY.decode()).encode(),
        json.dumps(QUOTEY.decode()).replace("/", "\\/").encode(),
        json.dumps("pässwörd-ünicode").encode(),
    ],
    ids=["url", "url-lower", "url-plus", "json", "json-slash", "json-unicode"],
)
def test_url_and_json_forms(matcher: type[Matcher], form: bytes) -> None:
    value = QUOTEY if b"p\\u00e4" not in form else "pässwörd-ünicode".encode()
    out = mask(b'{"password": ' + form + b"}\n", [value], matcher, 3)
    assert MARK in out and form.strip(b'"') not in out


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_shell_trace_quoting(matcher: type[Matcher], shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    secret = "it's sec'ret\nline two"
    trace = subprocess.run(
        [shell, "-xc", 'echo "$V" >/dev/null; printf %s "$V" >/dev/null'],
        env={"V": secret, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
    ).stderr
    out = mask(trace, [secret.encode()], matcher, 9)
    assert b"sec" not in out and b"line two" not in out, out


# 6: multi-line secrets

PEM = (
    b"-----BEGIN PRIVATE KEY-----\n"
    b"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    b"{\n"
    b"kZ3rAnd0mL1neTw0ofTheKey/abc+def\n"
    b"}\n"
    b"-----END PRIVATE KEY-----\n"
)


def test_multiline_secret_whole_and_each_line(matcher: type[Matcher]) -> None:
    assert mask(b"key=" + PEM, [PEM], matcher, 11) == b"key=***"
    for line in PEM.splitlines():
        out = mask(b"log: " + line + b"\n", [PEM], matcher, 5)
        if len(line) >= MIN_LINE_LEN and not line.startswith(b"-----"):
            assert out == b"log: ***\n"
        else:  # armor lines and braces are public text: never patterns on their own
            assert out == b"log: " + line + b"\n"


# 7-10: short values, pauses, progress bars, binary


def test_short_values_are_not_patterns_and_do_not_blow_up(matcher: type[Matcher]) -> None:
    assert patterns_for(b"") == patterns_for(b"abc") == []
    data = b"abc " * 1000
    assert mask(data, [b"abc", b"a"], matcher, 13) == data


def test_pause_holds_only_a_possible_prefix(matcher: type[Matcher]) -> None:
    compiled = Patterns(patterns_for(SECRET), matcher)
    masker = Masker(compiled)
    assert masker.feed(b"Password: ") == b"Password: "  # a prompt comes out at once
    assert masker.feed(b"hunter2-Sup3r") == b""
    assert 0 < masker.held <= compiled.longest - 1
    assert masker.feed(b"ior\n") == b"hunter2-Sup3rior\n"
    assert masker.feed(SECRET[:10]) == b""
    assert masker.flush() == SECRET[:10]  # EOF: the rest comes out


def test_carriage_return_progress_stays_bounded(matcher: type[Matcher]) -> None:
    compiled = Patterns(patterns_for(SECRET), matcher)
    masker = Masker(compiled)
    total = 0
    for i in range(20_000):
        total += len(masker.feed(f"\r[{'#' * (i % 40):<40}] {i % 100}%".encode()))
        assert masker.held <= compiled.longest - 1
    out = masker.feed(b"\rtoken " + SECRET[:7]) + masker.feed(SECRET[7:] + b"\r") + masker.flush()
    assert out == b"\rtoken ***\r" and total > 900_000


def test_non_utf8_bytes_around_a_secret(matcher: type[Matcher]) -> None:
    data = b"\xff\xfe\x00" + SECRET + b"\x80\xc3(" + SECRET[:3]
    assert mask(data, [SECRET], matcher, 4) == b"\xff\xfe\x00***\x80\xc3(" + SECRET[:3]


def test_redact() -> None:
    assert redact("value 'topsecret' is too long", [b"topsecret"]) == "value '***' is too long"


# property: any chunking equals the reference


@pytest.mark.parametrize("matcher_cls", MATCHERS, ids=lambda m: m.name)
@settings(max_examples=150, deadline=None)
@given(
    secrets=st.lists(st.binary(min_size=4, max_size=12), min_size=1, max_size=3),
    noise=st.lists(st.binary(max_size=20), max_size=8),
    cuts=st.lists(st.integers(min_value=1, max_value=17), max_size=40),
    encode=st.booleans(),
    data=st.data(),
)
def test_any_chunking_equals_the_reference(
    matcher_cls: type[Matcher],
    secrets: list[bytes],
    noise: list[bytes],
    cuts: list[int],
    encode: bool,
    data: st.DataObject,
) -> None:
    patterns = [p for s in secrets for p in patterns_for(s)] if encode else secrets
    parts = []
    for piece in noise:
        parts += [piece, data.draw(st.sampled_from(patterns))]
    stream = b"".join(parts)
    masker = Masker(Patterns(patterns, matcher_cls))
    out, pos = [], 0
    for n in cuts:
        out.append(masker.feed(stream[pos : pos + n]))
        pos += n
    out.append(masker.feed(stream[pos:]))
    result = b"".join(out) + masker.flush()
    assert result == reference(stream, patterns)
    for p in patterns:
        assert p not in result or p in MARK * len(p)


def test_the_fastest_matcher_is_chosen_where_it_installs() -> None:
    import platform

    from xtok.run.matcher import best

    chosen = best([b"abcd"]).name
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        assert chosen == "hyperscan"  # a dependency here: never silently the slow path
    else:
        assert chosen in ("hyperscan", "ahocorasick-rs")
