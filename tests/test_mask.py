"""The streaming masker: what it must catch, equal to masking the whole stream at once
whatever the chunking, with each matcher (the C extension, Hyperscan, Aho-Corasick, pure
Python), and written to a file descriptor as it would be returned."""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xtok.refs import SecretRef
from xtok.run import runner
from xtok.run.mask import MARK, Masker, Patterns, redact
from xtok.run.matcher import (
    AhoCorasickMatcher,
    HyperscanMatcher,
    Matcher,
    NativeMatcher,
    PythonMatcher,
)
from xtok.run.unwrap import B64, RUN_MIN, Wrappable
from xtok.run.variants import MIN_LINE_LEN, patterns_for
from xtok.sensitive import Secret

MATCHERS = [NativeMatcher, HyperscanMatcher, AhoCorasickMatcher, PythonMatcher]
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
    """Mask the unchunked data: every occurrence, overlapping or touching ones merged, and every
    occurrence of a Wrappable pattern in the data with its wraps (a line break after RUN_MIN or
    more base64 characters) removed."""
    spans = [(s, s + len(p)) for p in set(patterns) for s in occurrences(data, p)]
    wrappable = {p for p in patterns if isinstance(p, Wrappable)}
    if wrappable:
        kept, i, run = [], 0, 0  # offsets in `data` of what stays when the wraps go
        while i < len(data):
            brk = 2 if data[i : i + 2] == b"\r\n" else 1 if data[i : i + 1] == b"\n" else 0
            if brk and run >= RUN_MIN:
                i, run = i + brk, 0
                continue
            run = run + 1 if data[i] in B64 else 0
            kept.append(i)
            i += 1
        view = bytes(data[k] for k in kept)
        spans += [
            (kept[s], kept[s + len(p) - 1] + 1) for p in wrappable for s in occurrences(view, p)
        ]
    out, pos, end = bytearray(), 0, -1
    for s, e in sorted(spans):
        if s > end:  # touching occurrences (s == end) form one run
            out += data[pos:s] + MARK
        end = max(end, e)
        pos = max(pos, end)
    return bytes(out + data[pos:])


def occurrences(data: bytes, p: bytes) -> list[int]:
    return [s for s in range(len(data)) if data.startswith(p, s)]


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


def wrap(encoded: bytes, width: int, newline: bytes = b"\n") -> bytes:
    return b"".join(encoded[i : i + width] + newline for i in range(0, len(encoded), width))


@pytest.mark.parametrize("width", [76, 64])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"], ids=["lf", "crlf"])
def test_base64_wrapped_at_64_and_76_columns(
    matcher: type[Matcher], width: int, newline: bytes
) -> None:
    """`base64` and MIME wrap at 76 columns, PEM and `openssl base64` at 64; mail uses CRLF."""
    for secret in (bytes(range(32, 127)) * 2, SECRET, b"k3y-0f-12-byte"):
        for prefix in (b"", b"k", b"key:", b"x" * 40):
            wrapped = wrap(base64.b64encode(prefix + secret), width, newline)
            out = mask(b"-----\n" + wrapped + b"-----\n", [secret], matcher, 50)
            core = base64.b64encode(b"\0" * len(prefix) + secret)[len(prefix) * 2 : -4]
            assert MARK in out and not leaks(out, core, n=8), out


def test_openssl_base64_and_a_pem_body(matcher: type[Matcher]) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    secret = bytes(range(256))  # binary: a DER key, say
    for prefix in (b"", b"\x30\x82"):
        text = subprocess.run(
            ["openssl", "base64"], input=prefix + secret, capture_output=True, check=True
        ).stdout
        assert len(text.splitlines()[0]) == 64
        pem = b"-----BEGIN KEY-----\n" + text + b"-----END KEY-----\n"
        out = mask(pem, [secret], matcher, 33)
        core = base64.b64encode(b"\0" * len(prefix) + secret)[len(prefix) * 2 : -4]
        assert out.startswith(b"-----BEGIN KEY-----\n") and not leaks(out, core, n=8), out


def test_wrapped_lines_of_other_text_stay_apart(matcher: type[Matcher]) -> None:
    """A break after a short line is not a wrap: the secret's base64 split there is two words."""
    core = base64.b64encode(SECRET)[:32]
    text = b"A" * 10 + core[:12] + b"\n" + core[12:] + b"\n"
    assert mask(text, [SECRET], matcher, 7) == text


# 4b: secrets up to AWS's limit


def test_a_secret_of_64_kib_and_its_encodings(matcher: type[Matcher]) -> None:
    """Secrets Manager takes values up to 65,536 bytes (Hyperscan refuses such long patterns)."""
    rnd = random.Random(64)
    secret = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789/+ ") for _ in range(65_536))
    forms = [
        secret,
        base64.b64encode(b"u:" + secret),
        quote(secret, safe="").encode(),
        json.dumps(secret.decode()).encode(),
    ]
    data = b"".join(b"v=" + form + b";\n" for form in forms)
    data += base64.encodebytes(secret) + b"almost " + secret[:-1] + b"\n"
    out = mask(data, [secret], matcher, 8192)
    assert out.count(MARK) == 5, out[:200]
    assert out.startswith(b'v=***;\nv=dTo***;\nv=***;\nv="***";\n***')
    assert out.endswith(b"\nalmost " + secret[:-1] + b"\n")  # a prefix alone is not the secret
    masked = out[: -len(secret) - 8]
    for form in [*forms, base64.b64encode(secret)]:
        assert not leaks(masked, form, n=64)


def test_the_runner_masks_a_64_kib_secret_given_whole_and_as_a_file(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The runner with a real child: a value at Secrets Manager's limit runs (it used to exit
    215 building the masker) and is masked in what the child prints, in env and as a file."""
    secret = bytes(
        random.Random(7).choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345") for _ in range(65_536)
    )
    secrets = [
        (SecretRef("BIG", "big"), Secret(secret)),
        (SecretRef("BIG_FILE", "big", as_file=True), Secret(secret)),
    ]
    script = 'printf "env %s\\n" "$BIG"; printf "file "; cat "$BIG_FILE"; '
    script += 'printf "\\nb64 "; base64 "$BIG_FILE"'
    status = runner.run(["sh", "-c", script], secrets)
    out = capfd.readouterr().out
    assert status == 0
    assert out.startswith("env ***\nfile ***\nb64 ***") and secret[:64].decode() not in out


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


MIXED = "Pa55/wörd <&> it's (x)*!~ +Q=`\x1b"  # upper case, /, non-ASCII, HTML, control


def lower_hex(text: str) -> str:
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), text)


@pytest.mark.parametrize(
    "form",
    [
        quote(MIXED, safe=""),
        lower_hex(quote(MIXED, safe="")),
        quote(MIXED),  # keeps /
        lower_hex(quote(MIXED)),
        quote_plus(MIXED),
        lower_hex(quote_plus(MIXED)),
    ],
    ids=["all", "all-lower-hex", "keep-slash", "keep-slash-lower-hex", "plus", "plus-lower-hex"],
)
def test_percent_encodings_full_partial_and_lower_hex(matcher: type[Matcher], form: str) -> None:
    out = mask(b"url=" + form.encode() + b"&next\n", [MIXED.encode()], matcher, 5)
    assert out == b"url=***&next\n"


def json_escape_html(text: str, *, upper: bool) -> str:
    """Go's encoding/json (lower-case hex) and .NET's System.Text.Json (upper-case hex) escape
    <, > and & (and .NET also ' + `) as \\uXXXX; Go is not installed here: emulated."""
    escaped = json.dumps(text, ensure_ascii=False)[1:-1]
    for ch in "<>&'+`" if upper else "<>&":
        escaped = escaped.replace(ch, f"\\u{ord(ch):04X}" if upper else f"\\u{ord(ch):04x}")
    return (
        re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), escaped)
        if upper
        else escaped
    )


@pytest.mark.parametrize(
    "form",
    [
        json.dumps(MIXED)[1:-1],  # Python: \\u00f6 lower-case, \\u001b
        re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), json.dumps(MIXED)[1:-1]),
        json_escape_html(MIXED, upper=False),
        json_escape_html(MIXED, upper=True),
        json.dumps(MIXED).replace("/", "\\/")[1:-1],
    ],
    ids=["ascii-lower", "ascii-upper", "go-html-lower", "dotnet-html-upper", "slash"],
)
def test_json_unicode_escapes_in_either_case(matcher: type[Matcher], form: str) -> None:
    out = mask(b'{"v": "' + form.encode() + b'"}', [MIXED.encode()], matcher, 4)
    assert out == b'{"v": "***"}', out


def test_node_encode_uri_component_and_json_stringify(matcher: type[Matcher]) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    script = "const v = process.env.V; console.log(encodeURIComponent(v), JSON.stringify({v}))"
    printed = subprocess.run(
        ["node", "-e", script], env={"V": MIXED}, capture_output=True, check=True
    ).stdout
    assert b"(x)*!~" in printed  # encodeURIComponent keeps !'()*~
    assert mask(printed, [MIXED.encode()], matcher, 6) == b'*** {"v":"***"}\n'


@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_bash_trace_of_unprintable_characters(matcher: type[Matcher], locale: str) -> None:
    """With no shell metacharacters, bash's `set -x` prints $'…': octal for control characters,
    and for non-ASCII bytes too under LC_ALL=C."""
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    secret = "pässwörd\x01x\x1by\x7fz"
    trace = subprocess.run(
        ["bash", "-xc", "true $V"],
        env={"V": secret, "PATH": "/usr/bin:/bin", "LC_ALL": locale},
        capture_output=True,
        check=True,
    ).stderr
    assert b"$'" in trace and (b"\\303" in trace) == (locale == "C")
    assert mask(trace, [secret.encode()], matcher, 5) == b"+ true $'***'\n"


def test_string_fields_of_a_json_secret(matcher: type[Matcher]) -> None:
    """An RDS-style secret delivered whole: its password and host are masked wherever they
    show up alone; ordinary words (the engine, the user name) and numbers stay readable."""
    secret = json.dumps(
        {
            "engine": "postgres",
            "username": "admin",
            "password": "Tr0ub4dor&3",
            "apiToken": "correcthorse",
            "host": "db-7.internal.example",
            "port": 5432,
            "tags": ["Production", "read-only"],
        }
    ).encode()
    log = b"connecting admin@db-7.internal.example:5432 (postgres, Production, read-only)\n"
    log += b"PGPASSWORD=Tr0ub4dor%263 token=correcthorse\n"
    out = mask(log, [secret], matcher, 7)
    assert out == (
        b"connecting admin@***:5432 (postgres, Production, read-only)\nPGPASSWORD=*** token=***\n"
    )


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


@pytest.mark.parametrize("matcher_cls", MATCHERS, ids=lambda m: m.name)
@settings(max_examples=150, deadline=None)
@given(
    secrets=st.lists(st.binary(min_size=4, max_size=60), min_size=1, max_size=3),
    pieces=st.lists(
        st.tuples(
            st.binary(max_size=12),  # noise before
            st.integers(0, 2),  # secret offset inside what is encoded
            st.integers(0, 90),  # base64 characters before it on the line
            st.sampled_from([16, 63, 64, 76]),  # line width (< 64: breaks are not wraps)
            st.sampled_from([b"\n", b"\r\n"]),
        ),
        min_size=1,
        max_size=4,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=97), max_size=40),
    data=st.data(),
)
def test_wrapped_base64_any_chunking_equals_the_reference(
    matcher_cls: type[Matcher],
    secrets: list[bytes],
    pieces: list[tuple[bytes, int, int, int, bytes]],
    cuts: list[int],
    data: st.DataObject,
) -> None:
    patterns = [p for s in secrets for p in patterns_for(s)]
    stream = b""
    for noise, offset, lead, width, newline in pieces:
        secret = data.draw(st.sampled_from(secrets))
        encoded = base64.b64encode(bytes(offset) + secret + b"\xff")
        filler = (base64.b64encode(noise * 30) or b"QUJD" * 30)[:lead]
        stream += noise + wrap(filler + encoded, width, newline)
    masker = Masker(Patterns(patterns, matcher_cls))
    out, pos = [], 0
    for n in cuts:
        out.append(masker.feed(stream[pos : pos + n]))
        assert masker.held <= masker.max_held
        pos += n
    out.append(masker.feed(stream[pos:]))
    assert b"".join(out) + masker.flush() == reference(stream, patterns)


def test_occurrences_touching_at_a_wrap_stay_apart(matcher: type[Matcher]) -> None:
    """Two base64 forms that touch only once the wrap between them is removed are masked apart:
    the line break stays (the C extension once merged them before mapping them back)."""
    form = next(p for p in patterns_for(SECRET) if isinstance(p, Wrappable))
    # Line 1 ends inside a broken form, whose anchors make the masker read the block with its
    # wraps removed; line 2 ends with a whole form and line 3 starts with another.
    lines = [b"Q" * RUN_MIN + form[:20], form[20:] + b"R" * RUN_MIN + form, form + b"T" * 10]
    data = b"\n".join(lines) + b"\n"
    patterns = patterns_for(SECRET)
    expected = b"Q" * RUN_MIN + b"***" + b"R" * RUN_MIN + b"***\n***" + b"T" * 10 + b"\n"
    assert reference(data, patterns) == expected
    for chunk in (0, 1, 7, 64):
        assert mask(data, [SECRET], matcher, chunk) == expected


def test_held_tail_stays_bounded_in_a_wrapped_blob(matcher: type[Matcher]) -> None:
    """Pages of unrelated base64 hold back no more than a wrapped secret could span."""
    compiled = Patterns(patterns_for(SECRET * 3), matcher)
    masker = Masker(compiled)
    blob = base64.encodebytes(random.Random(5).randbytes(200_000))
    total = 0
    for i in range(0, len(blob), 37):
        total += len(masker.feed(blob[i : i + 37]))
        assert masker.held <= compiled.max_held < 200
    assert total + len(masker.flush()) == len(blob)


def test_the_fastest_matcher_is_chosen_where_it_installs() -> None:
    """scripts/test installs Hyperscan's headers, so the C extension is built wherever the
    suite runs on Linux x86_64: never silently the slower paths."""
    import platform

    from xtok.run.matcher import best

    chosen = best([b"abcd"]).name
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        assert chosen == "native"
    else:
        assert chosen in ("native", "hyperscan", "ahocorasick-rs")


def drain(fd: int, into: list[bytes], pace: float = 0.0) -> threading.Thread:
    """A thread reading `fd` to its end into `into` (pausing `pace` seconds per read)."""

    def run() -> None:
        while chunk := os.read(fd, 1 << 16):
            into.append(chunk)
            time.sleep(pace)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    every=st.sampled_from([20, 300, 5000, 100_000]),
    sizes=st.lists(st.integers(1, 300_000), min_size=1, max_size=6),
)
def test_write_sends_what_feed_returns(seed: int, every: int, sizes: list[int]) -> None:
    """`Masker.write` (a relay's path: views of the read buffer gathered by writev where few
    occurrences are masked, one masked copy where many are) writes through a pipe what `feed`
    and `flush` return, on every matcher, chunk by chunk."""
    rnd = random.Random(seed)
    secrets = [bytes(rnd.choices(B64, k=rnd.randint(8, 40))) for _ in range(3)]
    stream = b"".join(
        bytes(rnd.choices(b"ab \n", k=rnd.randint(0, every))) + rnd.choice(secrets)
        for _ in range(sum(sizes) // every + 1)
    )
    for matcher in MATCHERS:
        compiled = Patterns([p for s in secrets for p in patterns_for(s)], matcher)
        fed, written = Masker(compiled), Masker(compiled)
        expected, got = [], []
        read, write = os.pipe()
        reader = drain(read, got)
        pos = 0
        for n in [*sizes, len(stream)]:
            chunk = stream[pos : pos + n]
            pos += n
            expected.append(fed.feed(chunk))
            assert written.write(write, chunk)
        expected.append(fed.flush())
        assert written.write(write, b"", end=True)
        os.close(write)
        reader.join()
        os.close(read)
        assert b"".join(got) == b"".join(expected), matcher.name
        assert not any(s in b"".join(got) for s in secrets)


@pytest.mark.parametrize("matcher_cls", MATCHERS, ids=lambda m: m.name)
def test_write_resumes_after_signals_cut_it_short(matcher_cls: type[Matcher]) -> None:
    """A signal that arrives while writev waits on a full pipe ends it early, having written
    part: its handler runs and the rest still goes out, in order, once. A slow reader and a timer
    firing every millisecond make that happen many times over."""
    data = b"".join(
        b"line %d %s\n" % (i, SECRET if i % 997 == 0 else b"x" * 40) for i in range(60_000)
    )
    masker = Masker(Patterns(patterns_for(SECRET), matcher_cls))
    handled = []
    previous = signal.signal(signal.SIGALRM, lambda *_: handled.append(1))
    read, write = os.pipe()
    got: list[bytes] = []
    reader = drain(read, got, pace=0.0005)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        assert masker.write(write, data, end=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.close(write)
        reader.join()
        os.close(read)
    assert len(handled) > 10
    assert b"".join(got) == data.replace(SECRET, MARK)


@pytest.mark.parametrize("matcher_cls", MATCHERS, ids=lambda m: m.name)
def test_write_says_when_the_reader_is_gone(matcher_cls: type[Matcher]) -> None:
    """A closed reader is no error: `write` returns False, so the relay closes the command's
    pipe and the command meets a broken pipe, as without xtok."""
    masker = Masker(Patterns(patterns_for(SECRET), matcher_cls))
    read, write = os.pipe()
    os.close(read)
    try:
        assert masker.write(write, b"a line with " + SECRET + b"\n") is False
    finally:
        os.close(write)


@pytest.mark.parametrize("matcher_cls", MATCHERS, ids=lambda m: m.name)
@pytest.mark.parametrize("every", [997, 7], ids=["few", "many"])
def test_write_waits_on_an_output_made_non_blocking(matcher_cls: type[Matcher], every: int) -> None:
    """Whoever shares xtok's stdout may set O_NONBLOCK on it (some CI log collectors do): a
    full pipe then refuses writes instead of waiting. `write` waits, as with a blocking
    output, and everything arrives, in order."""
    data = b"".join(
        b"line %d %s\n" % (i, SECRET if i % every == 0 else b"x" * 40) for i in range(60_000)
    )
    masker = Masker(Patterns(patterns_for(SECRET), matcher_cls))
    read, write = os.pipe()
    os.set_blocking(write, False)
    got: list[bytes] = []
    reader = drain(read, got, pace=0.0005)
    try:
        assert masker.write(write, data, end=True)
    finally:
        os.close(write)
        reader.join()
        os.close(read)
    assert b"".join(got) == data.replace(SECRET, MARK)
