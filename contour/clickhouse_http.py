"""ClickHouse HTTP protocol server over one embedded chdb session (the "ClickHouse owner").

chdb lets one process open a data folder; this module is that process. It owns a persistent
``chdb.session.Session(DATA_DIR)`` and serves the ClickHouse HTTP interface on loopback so
that clickhouse-connect, its SQLAlchemy dialect (Superset) and plain ``curl`` talk to it as to
a ClickHouse server::

    python -m contour.clickhouse_http --path DATA_DIR --host 127.0.0.1 --port PORT

What is implemented, as ClickHouse does it:

* ``GET /ping`` (and ``/replicas_status``) -> ``Ok.``; ``GET /`` without a query -> ``Ok.``.
* ``GET /?query=...`` (read-only, like ClickHouse) and ``POST /``: the ``query`` URL
  parameter, a line break and the request body form the query. ``multipart/form-data``
  bodies carrying ``query`` / ``param_*`` fields are accepted too.
* ``database`` (parameter or ``X-ClickHouse-Database`` header), ``default_format``
  (or ``X-ClickHouse-Format``), ``param_<name>`` query parameters for ``{name:Type}``
  placeholders (passed to chdb's native parameter binding), every other URL parameter is a
  setting: HTTP-only ones are interpreted or ignored, the others are applied to the session
  with ``SET`` for the duration of the request (an unknown setting fails as on ClickHouse).
* ``session_id``: ``USE`` and ``SET`` persist per HTTP session; without one they last for
  the request only, as on ClickHouse.
* Inserts with data (``INSERT ... FORMAT X <data>`` or ``... VALUES <data>``) are streamed
  into chdb's streaming inserter; request bodies may be ``Content-Encoding`` lz4, zstd,
  gzip, deflate, br, xz or bzip2 compressed, and ``Transfer-Encoding: chunked``.
* Responses are compressed when the client sends ``enable_http_compression=1`` and an
  ``Accept-Encoding`` we support (lz4, zstd, gzip, deflate, br), unless
  ``--no-http-compression`` is given.
* Headers ``X-ClickHouse-Query-Id``, ``-Format``, ``-Timezone``, ``-Server-Display-Name``,
  ``-Summary``; errors carry ClickHouse's text (``Code: 60. DB::Exception: ...``), the
  ``X-ClickHouse-Exception-Code`` header and ClickHouse's HTTP status for that code.
* Users: ``default`` (password ``CONTOUR_CLICKHOUSE_PASSWORD``; any password is accepted
  when it is unset) and the read-only ``reader`` (``CONTOUR_CLICKHOUSE_READER_PASSWORD``,
  same rule). A read-only request (user ``reader``, ``GET``, or ``readonly=1|2``) may only
  run SELECT / WITH / SHOW / DESCRIBE / EXISTS / EXPLAIN (and USE / SET); its SELECT-like
  statements additionally run with ``SETTINGS readonly=1`` so that the engine also refuses
  table functions such as ``file()`` or ``url()``.

Differences from a ClickHouse server: one engine session serves everybody, so statements
are serialised (one query at a time), temporary tables are shared, ``currentUser()`` is
always ``default``, results are fully materialised before they are sent (no progress
headers, no ``compress=1``/``decompress=1`` ClickHouse-native compression, no external data).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import bz2
import contextlib
import email.parser
import email.policy
import hmac
import json
import logging
import lzma
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import IO, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger("contour.clickhouse_http")

# --------------------------------------------------------------------------------------- errors

#: ClickHouse error codes used by this module (values checked against chdb 26.9 system.errors).
SYNTAX_ERROR = 62
UNKNOWN_SETTING = 115
NOT_IMPLEMENTED = 48
READONLY = 164
INTO_OUTFILE_NOT_ALLOWED = 358
SESSION_NOT_FOUND = 372
UNKNOWN_COMPRESSION_METHOD = 89
CANNOT_DECOMPRESS = 271
AUTHENTICATION_FAILED = 516
CANNOT_SCHEDULE_TASK = 439
UNKNOWN_FORMAT = 73
STD_EXCEPTION = 1001

_ERROR_NAMES = {
    SYNTAX_ERROR: "SYNTAX_ERROR",
    UNKNOWN_SETTING: "UNKNOWN_SETTING",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    READONLY: "READONLY",
    INTO_OUTFILE_NOT_ALLOWED: "INTO_OUTFILE_NOT_ALLOWED",
    SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
    UNKNOWN_COMPRESSION_METHOD: "UNKNOWN_COMPRESSION_METHOD",
    CANNOT_DECOMPRESS: "CANNOT_DECOMPRESS",
    AUTHENTICATION_FAILED: "AUTHENTICATION_FAILED",
    CANNOT_SCHEDULE_TASK: "CANNOT_SCHEDULE_TASK",
    UNKNOWN_FORMAT: "UNKNOWN_FORMAT",
    STD_EXCEPTION: "STD_EXCEPTION",
}

# ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, by code.
_STATUS_BY_CODE: dict[int, int] = {194: 401}
_STATUS_BY_CODE.update(dict.fromkeys((192, 193, 516, 512, 497), 403))
_STATUS_BY_CODE.update(dict.fromkeys(
    (36, 427, 6, 25, 26, 38, 41, 72, 441, 675, 676, 27, 376, 15, 44, 37, 123, 8, 167, 168, 223,
     62, 117, 53, 321), 400))
_STATUS_BY_CODE.update(dict.fromkeys(
    (60, 46, 47, 50, 56, 81, 115, 152, 63, 73, 336, 78, 511), 404))
_STATUS_BY_CODE.update({229: 413, 48: 501, 209: 503, 76: 503, 381: 411, 159: 408, 439: 503,
                        779: 415})

_CODE_RE = re.compile(r"Code: (\d+)\.")
_VERSION_SUFFIX_RE = re.compile(r"\s*\(version [^)]*\)\s*$")


class ClickHouseError(Exception):
    """An error to report to the client the way ClickHouse does."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def new(cls, code: int, text: str) -> ClickHouseError:
        name = _ERROR_NAMES.get(code, "UNKNOWN_EXCEPTION")
        return cls(code, f"Code: {code}. DB::Exception: {text}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> ClickHouseError:
        """Wrap an exception raised by chdb, keeping ClickHouse's own text."""
        text = str(exc).strip()
        start = text.find("Code: ")
        if start > 0:
            text = text[start:]
        text = _VERSION_SUFFIX_RE.sub("", text)
        match = _CODE_RE.match(text)
        if match is None:
            return cls.new(STD_EXCEPTION, text or type(exc).__name__)
        return cls(int(match.group(1)), text)

    @property
    def http_status(self) -> int:
        return _STATUS_BY_CODE.get(self.code, 500)


# ------------------------------------------------------------------------------ SQL scanning

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|\#[ !][^\n]*)
  | (?P<block>/\*)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<quoted>`(?:[^`\\]|\\.|``)*`|"(?:[^"\\]|\\.|"")*")
  | (?P<heredoc>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<number>[0-9][0-9A-Za-z_.]*)
  | (?P<punct>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPEN = "([{"
_CLOSE = ")]}"

#: statements a read-only request may run
READ_ONLY_STATEMENTS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "(", "USE", "SET"})
#: statements whose result set is reported with X-ClickHouse-Format
RESULT_STATEMENTS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "(", "CHECK", "KILL",
     "WATCH"})
#: read statements that accept a trailing SETTINGS clause (engine-enforced readonly=1)
_ENGINE_READONLY_STATEMENTS = frozenset(
    {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN", "("})


@dataclass(frozen=True)
class Token:
    kind: str  # word, quoted, string, number, punct, heredoc
    start: int
    end: int
    text: str  # upper-cased for words
    depth: int
    raw: str

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text in words

    @property
    def name(self) -> str:
        """Identifier value of a word or quoted identifier token."""
        if self.kind == "quoted":
            return _unquote_identifier(self.raw)
        return self.raw


def _unquote_identifier(text: str) -> str:
    quote = text[0]
    body = text[1:-1].replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _tokens(text: str, stop: Callable[[list[Token]], bool] | None = None) -> list[Token]:
    """Significant tokens of ``text`` (no whitespace or comments), with nesting depth."""
    out: list[Token] = []
    depth = 0
    pos = 0
    size = len(text)
    while pos < size:
        match = _TOKEN_RE.match(text, pos)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup or "punct"
        end = match.end()
        if kind in ("ws", "comment"):
            pos = end
            continue
        if kind == "block":  # nested block comments, as in ClickHouse
            level, end = 1, pos + 2
            while level and end < size:
                if text.startswith("/*", end):
                    level, end = level + 1, end + 2
                elif text.startswith("*/", end):
                    level, end = level - 1, end + 2
                else:
                    end += 1
            pos = end
            continue
        if kind == "heredoc":
            close = text.find(match.group(), end)
            if close >= 0:
                end = close + len(match.group())
                kind = "string"
            else:
                kind, end = "punct", pos + 1
        raw = text[pos:end]
        value = raw.upper() if kind == "word" else raw
        if kind == "punct" and value in _CLOSE:
            depth = max(0, depth - 1)
        out.append(Token(kind, pos, end, value, depth, raw))
        if kind == "punct" and value in _OPEN:
            depth += 1
        pos = end
        if stop is not None and stop(out):
            break
    return out


@dataclass
class Statement:
    """What the server needs to know about one query, found by a light lexical scan."""

    keyword: str = ""
    #: end of the SQL text proper (before trailing ';', comments, or INSERT data)
    end: int = 0
    #: explicit output format (FORMAT clause of a non-INSERT statement)
    output_format: str | None = None
    #: INSERT with data: the input format ("Values" for VALUES), the end of the SQL prefix
    #: handed to the streaming inserter and where the data starts
    insert_format: str | None = None
    insert_prefix_end: int = 0
    data_start: int | None = None
    multi_statement_at: int | None = None
    into_outfile: bool = False
    #: where to add ``, readonly=1`` to an existing outer SETTINGS clause
    settings_insert_at: int | None = None
    set_names: list[str] = field(default_factory=list)
    use_database: str | None = None


class _InsertDataFinder:
    """Token-scan stop condition: the end of ``INSERT ... VALUES`` / ``... FORMAT name``."""

    def __init__(self) -> None:
        self.selecting = False
        self.reached = False

    def __call__(self, tokens: list[Token]) -> bool:
        if not tokens[0].is_word("INSERT"):
            return False
        last = tokens[-1]
        if last.depth:
            return False
        if last.is_word("SELECT", "WITH"):
            self.selecting = True  # ``FROM values(...)`` is then a table function
        elif last.is_word("VALUES"):
            self.reached = not self.selecting
        elif last.kind in ("word", "quoted") and len(tokens) >= 2:
            self.reached = tokens[-2].is_word("FORMAT") and tokens[-2].depth == 0
        return self.reached


def analyze(text: str) -> Statement:
    """Scan one ClickHouse statement (``text`` may continue with INSERT data)."""
    finder = _InsertDataFinder()
    toks = _tokens(text, stop=finder)
    st = Statement()
    if not toks:
        return st
    first = toks[0]
    st.keyword = first.text
    if finder.reached:
        last = toks[-1]
        if last.is_word("VALUES"):
            st.insert_format = "Values"
            st.insert_prefix_end = last.start
            st.data_start = last.end
        else:
            infile = any(t.is_word("INFILE") and t.depth == 0 for t in toks)
            if not infile:
                st.insert_format = last.name
                st.insert_prefix_end = toks[-2].start
                st.data_start = _skip_to_insert_data(text, last.end)
        st.end = last.end
        return st
    # Trailing semicolons end the statement; anything after one is a second statement.
    body = toks
    for i, tok in enumerate(toks):
        if tok.text == ";" and tok.depth == 0:
            rest = [t for t in toks[i + 1:] if t.text != ";"]
            if rest:
                st.multi_statement_at = rest[0].start
            body = toks[:i]
            break
    if not body:
        return st
    st.end = body[-1].end
    top = [t for t in body if t.depth == 0]
    format_at: int | None = None
    for i, tok in enumerate(top):
        if tok.is_word("FORMAT") and i + 1 < len(top) and top[i + 1].kind in ("word", "quoted"):
            after = top[i + 2:]
            if not after or after[0].is_word("SETTINGS"):
                st.output_format = top[i + 1].name
                format_at = i
        elif tok.is_word("INTO") and i + 1 < len(top) and top[i + 1].is_word("OUTFILE"):
            st.into_outfile = True
    for i, tok in enumerate(top):
        if (tok.is_word("SETTINGS") and i + 2 < len(top) and top[i + 1].kind == "word"
                and top[i + 2].text == "=" and i > 0):
            clause_end = top[format_at - 1] if format_at is not None and format_at > i else body[-1]
            st.settings_insert_at = clause_end.end
    if st.keyword == "SET":
        st.set_names = [
            top[i].name.lower() for i in range(1, len(top) - 1)
            if top[i].kind in ("word", "quoted") and top[i + 1].text == "="
        ]
    elif st.keyword == "USE" and len(top) >= 2:
        st.use_database = top[1].name
    return st


def _skip_to_insert_data(text: str, pos: int) -> int:
    """Where INSERT data starts after ``FORMAT name``, by ClickHouse's ParserInsertQuery rule."""
    size = len(text)
    if pos < size and text[pos] == ";":
        raise ClickHouseError.new(
            SYNTAX_ERROR, "You have excessive ';' symbol before data for INSERT")
    while pos < size and text[pos] in " \t\f":
        pos += 1
    if pos < size and text[pos] == "\r":
        pos += 1
    if pos < size and text[pos] == "\n":
        pos += 1
    return pos


def with_engine_readonly(sql: str, st: Statement) -> str:
    """Add ``readonly=1`` to the statement's outer SETTINGS clause (or append one)."""
    if st.settings_insert_at is not None:
        at = st.settings_insert_at
        return f"{sql[:at]}, readonly=1{sql[at:]}"
    return f"{sql[:st.end]} SETTINGS readonly=1{sql[st.end:]}"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ------------------------------------------------------------------------ body transcoding


class _Decoder(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def finish(self) -> bytes: ...


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


class _FramedDecoder:
    """Decompressor of a stream of concatenated frames/members (clickhouse-connect compresses
    each Native block separately), over any object with ``decompress``/``eof``/``unused_data``."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._dec = factory()
        self._started = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            if self._dec.eof:
                self._dec = self._factory()
            self._started = True
            out.append(self._dec.decompress(data))
            data = self._dec.unused_data if self._dec.eof else b""
        return b"".join(out)

    def finish(self) -> bytes:
        if self._started and not self._dec.eof:
            raise ClickHouseError.new(CANNOT_DECOMPRESS, "Compressed request body is truncated")
        return b""


class _BrotliDecoder:
    def __init__(self, module: Any) -> None:
        self._dec = module.Decompressor()

    def feed(self, data: bytes) -> bytes:
        return bytes(self._dec.process(data))

    def finish(self) -> bytes:
        return b""


def _optional_module(*names: str) -> Any:
    for name in names:
        try:
            return __import__(name, fromlist=["_"])
        except ImportError:
            continue
    return None


_lz4_frame = _optional_module("lz4.frame")
_zstd = _optional_module("compression.zstd", "backports.zstd")
_zstandard = None if _zstd is not None else _optional_module("zstandard")
_brotli = _optional_module("brotli")


def _zstd_decompressor() -> Any:
    if _zstd is not None:
        return _zstd.ZstdDecompressor()
    assert _zstandard is not None
    return _zstandard.ZstdDecompressor().decompressobj()


def request_decoder(encoding: str) -> _Decoder:
    """A streaming decoder for a request ``Content-Encoding``."""
    enc = encoding.strip().lower()
    if enc in ("", "identity", "none"):
        return _Identity()
    if enc in ("gzip", "x-gzip", "deflate"):
        return _FramedDecoder(lambda: zlib.decompressobj(wbits=47))
    if enc == "lz4" and _lz4_frame is not None:
        return _FramedDecoder(_lz4_frame.LZ4FrameDecompressor)
    if enc == "zstd" and (_zstd is not None or _zstandard is not None):
        return _FramedDecoder(_zstd_decompressor)
    if enc in ("xz", "lzma"):
        return _FramedDecoder(lambda: lzma.LZMADecompressor(format=lzma.FORMAT_AUTO))
    if enc in ("bz2", "bzip2"):
        return _FramedDecoder(bz2.BZ2Decompressor)
    if enc == "br" and _brotli is not None:
        return _BrotliDecoder(_brotli)
    raise ClickHouseError.new(
        UNKNOWN_COMPRESSION_METHOD, f"Unknown HTTP Content-Encoding {encoding!r}")


def _response_encoders() -> dict[str, Callable[[memoryview], bytes]]:
    encoders: dict[str, Callable[[memoryview], bytes]] = {}
    if _lz4_frame is not None:
        encoders["lz4"] = lambda data: _lz4_frame.compress(data)
    if _zstd is not None:
        encoders["zstd"] = lambda data: _zstd.compress(bytes(data))
    elif _zstandard is not None:
        encoders["zstd"] = lambda data: _zstandard.ZstdCompressor().compress(data)
    encoders["gzip"] = lambda data: _zlib_compress(data, 31)
    encoders["deflate"] = lambda data: _zlib_compress(data, 15)
    if _brotli is not None:
        encoders["br"] = lambda data: _brotli.compress(bytes(data))
    return encoders


def _zlib_compress(data: memoryview, wbits: int) -> bytes:
    comp = zlib.compressobj(level=3, wbits=wbits)
    return comp.compress(data) + comp.flush()


RESPONSE_ENCODERS = _response_encoders()


def choose_response_encoding(accept_encoding: str) -> str | None:
    """First encoding of the client's ``Accept-Encoding`` list that we can produce."""
    for item in accept_encoding.split(","):
        name = item.split(";", 1)[0].strip().lower()
        if name in RESPONSE_ENCODERS:
            return name
    return None


# ------------------------------------------------------------------------------- the engine

#: URL parameters that are part of the HTTP protocol, not engine settings
HTTP_PARAMETERS = frozenset({
    "query", "database", "default_format", "user", "password", "query_id", "session_id",
    "session_timeout", "session_check", "close_session", "compress", "decompress", "buffer_size",
    "wait_end_of_query", "client_protocol_version", "quota_key", "role", "stacktrace",
    "readonly", "enable_http_compression", "http_zlib_compression_level",
    "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "cancel_http_readonly_queries_on_client_close", "http_response_buffer_size",
    "http_wait_end_of_query", "add_http_cors_header", "http_write_exception_in_output_format",
    "http_response_headers", "output_format_parallel_formatting",
})
#: pseudo-formats of chdb's Python API that must not be requested over HTTP
_PYTHON_ONLY_FORMATS = frozenset({"dataframe", "arrowtable", "datastore", "debug"})
_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INSERT_CHUNK = 1 << 20


@dataclass
class HttpSession:
    """State kept for a ClickHouse HTTP ``session_id``."""

    database: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    last_used: float = field(default_factory=time.monotonic)


@dataclass
class QueryJob:
    sql: str
    statement: Statement
    database: str | None
    settings: dict[str, str]
    params: dict[str, str]
    default_format: str
    #: only read statements (user reader, GET, readonly=1|2) ...
    readonly: bool
    #: ... and also run them with SETTINGS readonly=1 (user reader, readonly=1|2)
    engine_readonly: bool = False
    readonly_reason: str = ""
    session_id: str | None = None
    session_timeout: float = 60.0
    session_check: bool = False
    #: INSERT with data: the statement before FORMAT/VALUES, the data read with the statement
    #: and the rest of the body
    insert_prefix: str = ""
    insert_head: bytes = b""
    insert_rest: IO[bytes] | None = None


@dataclass
class QueryOutcome:
    body: memoryview
    result_format: str | None
    summary: dict[str, str]
    timezone: str
    keep_alive: Any = None  # the chdb result object owning ``body``'s memory


class ChdbEngine:
    """One persistent chdb session; every call is serialised by a lock."""

    def __init__(self, path: str) -> None:
        from chdb.session import Session  # imported here: the module loads without chdb

        os.makedirs(path, exist_ok=True)
        self._session: Any = Session(path)
        self._lock = threading.Lock()
        self._closed = False
        self.version = self._scalar("SELECT version()")
        self.timezone = self._scalar("SELECT timezone()")
        self._current_db = self._scalar("SELECT currentDatabase()")
        self._baseline = self._changed_settings()
        self._applied: dict[str, str] = {}
        self._sessions: dict[str, HttpSession] = {}

    # ------------------------------------------------------------------ engine primitives
    def _raw(self, sql: str, fmt: str = "TabSeparated", params: dict[str, str] | None = None
             ) -> Any:
        try:
            return self._session.query(sql, fmt, params=params or None)
        except Exception as exc:  # chdb raises ChdbError/RuntimeError with ClickHouse's text
            raise ClickHouseError.from_engine(exc) from None

    def _scalar(self, sql: str) -> str:
        return bytes(self._raw(sql).bytes()).decode().rstrip("\n")

    def _changed_settings(self) -> dict[str, str]:
        rows = bytes(self._raw(
            "SELECT name, value FROM system.settings WHERE changed", "JSONEachRow").bytes())
        result: dict[str, str] = {}
        for line in rows.splitlines():
            row = json.loads(line)
            result[row["name"]] = row["value"]
        return result

    # --------------------------------------------------------------------- session state
    def _http_session(self, job: QueryJob) -> HttpSession | None:
        now = time.monotonic()
        expired = [k for k, s in self._sessions.items() if now - s.last_used > s.timeout]
        for key in expired:
            del self._sessions[key]
        if not job.session_id:
            return None
        sess = self._sessions.get(job.session_id)
        if sess is None:
            if job.session_check:
                raise ClickHouseError.new(
                    SESSION_NOT_FOUND, f"Session {job.session_id} not found")
            sess = self._sessions[job.session_id] = HttpSession()
        sess.timeout = job.session_timeout
        sess.last_used = now
        return sess

    def _sync_settings(self, wanted: Mapping[str, str]) -> None:
        """Make the session's changed settings exactly ``wanted`` (plus chdb's baseline)."""
        for name in [n for n in self._applied if n not in wanted]:
            base = self._baseline.get(name)
            value = "DEFAULT" if base is None else quote_string(base)
            self._raw(f"SET {name} = {value}")
            del self._applied[name]
        for name, value in wanted.items():
            if self._applied.get(name) == value:
                continue
            if not _SETTING_NAME_RE.match(name):
                raise ClickHouseError.new(UNKNOWN_SETTING, f"Unknown setting '{name}'")
            self._raw(f"SET {name} = {quote_string(value)}")
            self._applied[name] = value

    def _use(self, database: str) -> None:
        if database != self._current_db:
            self._raw(f"USE {quote_identifier(database)}")
            self._current_db = database

    # ------------------------------------------------------------------------- execution
    def execute(self, job: QueryJob) -> QueryOutcome:
        with self._lock:
            if self._closed:
                raise ClickHouseError.new(CANNOT_SCHEDULE_TASK, "Server is shutting down")
            sess = self._http_session(job)
            settings = dict(sess.settings) if sess else {}
            settings.update(job.settings)
            _check_allowed(job.statement, job.readonly, job.readonly_reason)
            self._sync_settings(settings)
            self._use(job.database or (sess.database if sess else None) or "default")
            timezone = settings.get("session_timezone") or self.timezone
            if job.statement.insert_format is not None:
                summary = self._insert(job)
                return QueryOutcome(memoryview(b""), None, summary, timezone)
            result = self._query(job, job.engine_readonly)
            self._after_statement(job.statement, sess)
            fmt: str | None = job.statement.output_format or job.default_format
            if job.statement.keyword not in RESULT_STATEMENTS and not job.statement.output_format:
                fmt = None
            wrapper = result.get_memview()
            return QueryOutcome(wrapper.view(), fmt, _result_summary(result), timezone,
                                keep_alive=(result, wrapper))

    def _query(self, job: QueryJob, engine_readonly: bool) -> Any:
        fmt = job.default_format
        if fmt.lower() in _PYTHON_ONLY_FORMATS:
            raise ClickHouseError.new(UNKNOWN_FORMAT, f"Unknown output format {fmt}")
        st = job.statement
        if engine_readonly and st.keyword in _ENGINE_READONLY_STATEMENTS:
            try:
                return self._raw(with_engine_readonly(job.sql, st), fmt, job.params)
            except ClickHouseError as exc:
                if exc.code != SYNTAX_ERROR:
                    raise
                # our SETTINGS clause did not fit this statement; the lexical check passed
        return self._raw(job.sql, fmt, job.params)

    def _insert(self, job: QueryJob) -> dict[str, str]:
        st = job.statement
        assert st.insert_format is not None
        try:
            inserter = self._session.send_insert(job.insert_prefix, st.insert_format)
        except Exception as exc:
            raise ClickHouseError.from_engine(exc) from None
        try:
            if job.insert_head:
                inserter.append(job.insert_head)
            if job.insert_rest is not None:
                while chunk := job.insert_rest.read(_INSERT_CHUNK):
                    inserter.append(chunk)
            result = inserter.finish()
        except Exception as exc:
            with contextlib.suppress(Exception):  # already finished, or failed in finish()
                inserter.cancel()
            raise ClickHouseError.from_engine(exc) from None
        return {
            "read_rows": "0", "read_bytes": "0",
            "written_rows": str(result.rows_written),
            "written_bytes": str(result.bytes_written),
            "total_rows_to_read": "0", "result_rows": str(result.rows_written),
            "result_bytes": str(result.bytes_written),
            "elapsed_ns": str(int(result.elapsed * 1e9)),
        }

    def _after_statement(self, st: Statement, sess: HttpSession | None) -> None:
        if st.keyword == "USE":
            self._current_db = self._scalar("SELECT currentDatabase()")
            if sess is not None:
                sess.database = self._current_db
        elif st.keyword == "SET":
            before = dict(self._applied)
            now = self._changed_settings()
            self._applied = {k: v for k, v in now.items()
                             if self._baseline.get(k) != v and k not in HTTP_PARAMETERS}
            if sess is not None:
                for name in set(before) | set(self._applied):
                    if name in self._applied and before.get(name) != self._applied[name]:
                        sess.settings[name] = self._applied[name]
                    elif name not in self._applied:
                        sess.settings.pop(name, None)

    def close(self) -> None:
        """Wait for the running statement, then close the session (the folder is released)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._session.close()


def _check_allowed(st: Statement, readonly: bool, reason: str = "") -> None:
    if st.multi_statement_at is not None:
        raise ClickHouseError.new(
            SYNTAX_ERROR, "Syntax error (Multi-statements are not allowed): failed at position "
            f"{st.multi_statement_at + 1}")
    if "readonly" in st.set_names:
        # readonly cannot be lowered again on the shared engine session
        raise ClickHouseError.new(
            READONLY if readonly else NOT_IMPLEMENTED,
            "SET readonly is not supported by this server: pass readonly=1 as a URL parameter "
            "or connect as the read-only user")
    if not readonly:
        return
    if st.keyword not in READ_ONLY_STATEMENTS:
        raise ClickHouseError.new(READONLY, f"Cannot execute query in readonly mode{reason}")
    if st.into_outfile:
        raise ClickHouseError.new(INTO_OUTFILE_NOT_ALLOWED, "INTO OUTFILE is not allowed")


def _result_summary(result: Any) -> dict[str, str]:
    return {
        "read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
        "written_rows": str(result.rows_written()),
        "written_bytes": str(result.bytes_written()),
        "total_rows_to_read": "0", "result_rows": "0", "result_bytes": "0",
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }


# ------------------------------------------------------------------------------ HTTP layer


@dataclass(frozen=True)
class AuthConfig:
    """Passwords of the two users; ``None`` accepts any password for that user."""

    default_password: str | None = None
    reader_password: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> AuthConfig:
        return cls(env.get("CONTOUR_CLICKHOUSE_PASSWORD") or None,
                   env.get("CONTOUR_CLICKHOUSE_READER_PASSWORD") or None)

    def check(self, user: str, password: str) -> bool:
        if user == "default":
            expected = self.default_password
        elif user == "reader":
            expected = self.reader_password
        else:
            return False
        return expected is None or hmac.compare_digest(expected.encode(), password.encode())


_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values", "tsv": "text/tab-separated-values",
    "csv": "text/csv", "csvwithnames": "text/csv", "json": "application/json",
    "jsoncompact": "application/json", "jsoneachrow": "application/x-ndjson",
    "native": "application/octet-stream", "rowbinary": "application/octet-stream",
    "arrow": "application/octet-stream", "arrowstream": "application/octet-stream",
    "parquet": "application/octet-stream", "orc": "application/octet-stream",
}
_HEAD_LIMIT = 1 << 20
_SPOOL_LIMIT = 64 << 20


def content_type(fmt: str | None) -> str:
    if fmt is None:
        return "text/plain; charset=UTF-8"
    kind = _CONTENT_TYPES.get(fmt.lower())
    if kind is None:
        low = fmt.lower()
        if low.startswith(("tabseparated", "tsv")):
            kind = "text/tab-separated-values"
        elif low.startswith("json"):
            kind = "application/json"
        elif low.startswith("rowbinary"):
            kind = "application/octet-stream"
        else:
            kind = "text/plain"
    return kind if kind == "application/octet-stream" else f"{kind}; charset=UTF-8"


class ClickHouseHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], engine: ChdbEngine, auth: AuthConfig,
                 http_compression: bool = True, keep_alive_timeout: float = 30.0) -> None:
        self.engine = engine
        self.auth = auth
        self.http_compression = http_compression
        self.keep_alive_timeout = keep_alive_timeout
        self.display_name = socket.gethostname()
        super().__init__(address, ClickHouseRequestHandler)


class _ChunkedReader:
    """Reader of an HTTP/1.1 ``Transfer-Encoding: chunked`` request body."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def chunks(self) -> Iterator[bytes]:
        while True:
            line = self._raw.readline(1024)
            if not line:
                raise ClickHouseError.new(STD_EXCEPTION, "Unexpected end of chunked body")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise ClickHouseError.new(STD_EXCEPTION, "Malformed chunked body") from None
            if size == 0:
                while self._raw.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return
            data = self._raw.read(size)
            if len(data) != size:
                raise ClickHouseError.new(STD_EXCEPTION, "Unexpected end of chunked body")
            self._raw.readline(1024)
            yield data


class ClickHouseRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ClickHouseHTTPServer

    def setup(self) -> None:
        self.timeout = self.server.keep_alive_timeout
        super().setup()
        # headers and body are separate writes: without this, Nagle + delayed ACK add 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return "ClickHouse"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Silence http.server's own access log; we log one line per request ourselves."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    # ----------------------------------------------------------------------- dispatch
    def _handle(self) -> None:
        started = time.perf_counter()
        self._body_consumed = False
        self._user = "-"
        self._log_sql = ""
        status = 500
        try:
            url = urlsplit(self.path)
            if url.path in ("/ping", "/replicas_status"):
                status = self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            elif url.path not in ("/", ""):
                text = (f"There is no handle {url.path}\n\nUse / or /ping for health checks.\n"
                        "Send queries from your program with POST method or GET /?query=...\n")
                status = self._reply(404, text.encode(), {"Content-Type": "text/plain"})
            else:
                status = self._query(url.query)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            status = 499  # the client went away
        except Exception as exc:
            if not isinstance(exc, ClickHouseError):
                logger.exception("internal error")
                exc = ClickHouseError.new(STD_EXCEPTION, repr(exc))
            try:
                status = self._reply_error(exc)
            except (ConnectionError, TimeoutError):
                self.close_connection = True
                status = 499
        if logger.isEnabledFor(logging.INFO):
            short = " ".join(self._log_sql[:160].split())[:100]
            logger.info("%s %d %.1fms user=%s %s", self.command, status,
                        (time.perf_counter() - started) * 1000, self._user, short)

    def _query(self, query_string: str) -> int:
        params = dict(parse_qsl(query_string, keep_blank_values=True))
        self._user = self._authenticate(params)
        form = self._read_form() if self.command == "POST" else None
        if form is not None:
            params.update(form)
            body = None
        else:
            body = self._read_body() if self.command == "POST" else None
        for name in ("compress", "decompress"):
            if params.get(name, "0").lower() not in ("0", "", "false"):
                raise ClickHouseError.new(
                    NOT_IMPLEMENTED, f"{name}=1 (ClickHouse native block compression) is not "
                    "supported by this server: use HTTP Content-Encoding / Accept-Encoding")
        url_query = params.get("query", "")
        if self.command == "GET" and not url_query:
            return self._reply(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            job = self._build_job(params, url_query, body)
            outcome = self.server.engine.execute(job)
        finally:
            if body is not None:
                body.close()
        headers = {
            "Content-Type": content_type(outcome.result_format),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": outcome.timezone,
            "X-ClickHouse-Server-Display-Name": self.server.display_name,
            "X-ClickHouse-Summary": json.dumps(outcome.summary, separators=(",", ":")),
        }
        if outcome.result_format is not None:
            headers["X-ClickHouse-Format"] = outcome.result_format
        payload: bytes | memoryview = outcome.body
        if (payload.nbytes and self.server.http_compression
                and params.get("enable_http_compression", "0") not in ("0", "")):
            encoding = choose_response_encoding(self.headers.get("Accept-Encoding", ""))
            if encoding is not None:
                payload = RESPONSE_ENCODERS[encoding](outcome.body)
                headers["Content-Encoding"] = encoding
        return self._reply(200, payload, headers)

    # ------------------------------------------------------------------- request parts
    def _authenticate(self, params: Mapping[str, str]) -> str:
        user = password = None
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            user, _, password = decoded.partition(":")
        elif self.headers.get("X-ClickHouse-User") is not None:
            user = self.headers.get("X-ClickHouse-User", "")
            password = self.headers.get("X-ClickHouse-Key", "")
        elif "user" in params or "password" in params:
            user, password = params.get("user", ""), params.get("password", "")
        user = user or "default"
        if not self.server.auth.check(user, password or ""):
            self.close_connection = True  # the request body was not read
            raise ClickHouseError.new(
                AUTHENTICATION_FAILED, f"{user}: Authentication failed: password is incorrect, "
                "or there is no user with such name")
        return user

    def _body_chunks(self) -> Iterator[bytes]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield from _ChunkedReader(self.rfile).chunks()
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(remaining, _INSERT_CHUNK))
            if not data:
                raise ClickHouseError.new(STD_EXCEPTION, "Unexpected end of request body")
            remaining -= len(data)
            yield data

    def _read_body(self) -> IO[bytes]:
        """The decoded request body, spooled to memory (or disk past 64 MiB)."""
        decoder = request_decoder(self.headers.get("Content-Encoding", ""))
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT)  # noqa: SIM115
        try:
            for chunk in self._body_chunks():
                spool.write(decoder.feed(chunk))
            spool.write(decoder.finish())
        except (ClickHouseError, ConnectionError, TimeoutError):
            spool.close()
            self.close_connection = True
            raise
        except Exception as exc:  # zlib.error, ZstdError, lz4's RuntimeError, EOFError...
            spool.close()
            self.close_connection = True
            raise ClickHouseError.new(CANNOT_DECOMPRESS, f"Cannot decode request body: {exc}"
                                      ) from None
        spool.seek(0)
        self._body_consumed = True
        return spool

    def _read_form(self) -> dict[str, str] | None:
        """Fields of a ``multipart/form-data`` body (query and parameters), else ``None``."""
        ctype = self.headers.get("Content-Type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            return None
        body = b"".join(self._body_chunks())
        self._body_consumed = True
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body)
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                raise ClickHouseError.new(
                    NOT_IMPLEMENTED, "External data is not supported by this server")
            if isinstance(name, str):
                payload = part.get_payload(decode=True)
                fields[name] = payload.decode() if isinstance(payload, bytes) else ""
        return fields

    def _build_job(self, params: dict[str, str], url_query: str, body: IO[bytes] | None
                   ) -> QueryJob:
        head = (url_query + "\n").encode() if url_query else b""
        rest: IO[bytes] | None = None
        if body is not None:
            chunk = body.read(_HEAD_LIMIT)
            head += chunk
            if len(chunk) == _HEAD_LIMIT:
                rest = body
        if not head.strip():
            raise ClickHouseError.new(SYNTAX_ERROR, "Empty query")
        text = head.decode("latin-1")  # byte offsets == character offsets
        st = analyze(text)
        if st.insert_format is not None and st.data_start is not None:
            sql = head[:st.data_start].decode("utf-8", errors="replace")
            insert_prefix = head[:st.insert_prefix_end].decode("utf-8", errors="replace").rstrip()
            insert_head = head[st.data_start:]
        else:
            if rest is not None:  # a long statement: read it whole and scan it again
                head += rest.read()
                rest = None
                text = head.decode("latin-1")
                st = analyze(text)
            sql = head.decode("utf-8", errors="replace")
            insert_prefix, insert_head = "", b""
            st = _rescan_utf8(sql, st, text)
        self._log_sql = sql
        settings = {k: v for k, v in params.items()
                    if k not in HTTP_PARAMETERS and not k.startswith("param_")}
        engine_readonly = (self._user == "reader"
                           or params.get("readonly", "0") not in ("0", ""))
        return QueryJob(
            sql=sql,
            statement=st,
            database=params.get("database") or self.headers.get("X-ClickHouse-Database"),
            settings=settings,
            params={k[6:]: v for k, v in params.items() if k.startswith("param_")},
            default_format=(params.get("default_format")
                            or self.headers.get("X-ClickHouse-Format") or "TabSeparated"),
            readonly=engine_readonly or self.command == "GET",
            engine_readonly=engine_readonly,
            readonly_reason=_readonly_reason(self._user, self.command, params),
            session_id=params.get("session_id") or None,
            session_timeout=_float(params.get("session_timeout"), 60.0, 3600.0),
            session_check=params.get("session_check", "0") not in ("0", ""),
            insert_prefix=insert_prefix,
            insert_head=insert_head,
            insert_rest=rest,
        )

    # ------------------------------------------------------------------------ replies
    def _reply(self, status: int, body: bytes | memoryview, headers: Mapping[str, str]) -> int:
        self._drain_unread_body()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(memoryview(body).nbytes))
        timeout = int(self.server.keep_alive_timeout)
        if self.close_connection:
            self.send_header("Connection", "close")
        else:
            self.send_header("Keep-Alive", f"timeout={timeout}")
        self.end_headers()
        self.wfile.write(body)
        return status

    def _reply_error(self, exc: ClickHouseError) -> int:
        text = f"{exc.message} (version {self.server.engine.version})\n"
        headers = {
            "Content-Type": "text/plain; charset=UTF-8",
            "X-ClickHouse-Exception-Code": str(exc.code),
            "X-ClickHouse-Server-Display-Name": self.server.display_name,
        }
        return self._reply(exc.http_status, text.encode(), headers)

    def _drain_unread_body(self) -> None:
        """Keep-alive needs the request body consumed; close the connection if it was not."""
        if self.command == "POST" and not self._body_consumed and not self.close_connection:
            has_body = (int(self.headers.get("Content-Length") or 0) > 0
                        or "chunked" in self.headers.get("Transfer-Encoding", "").lower())
            if has_body:
                self.close_connection = True


def _readonly_reason(user: str, method: str, params: Mapping[str, str]) -> str:
    if user == "reader":
        return f" (user {user} is read-only)"
    if params.get("readonly", "0") not in ("0", ""):
        return " (readonly is set)"
    if method == "GET":
        return (". For queries over HTTP, method GET implies readonly. You should use method "
                "POST for modifying queries")
    return ""


def _rescan_utf8(sql: str, st: Statement, latin1_text: str) -> Statement:
    """Re-scan on the decoded text when multi-byte characters shifted the offsets."""
    if len(sql) == len(latin1_text):
        return st
    return analyze(sql)


def _float(value: str | None, default: float, limit: float) -> float:
    try:
        return min(float(value), limit) if value else default
    except ValueError:
        return default


# ------------------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m contour.clickhouse_http",
        description="Serve the ClickHouse HTTP protocol over an embedded chdb session that "
                    "owns DATA_DIR.")
    parser.add_argument("--path", required=True, help="chdb data folder (created if missing)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default %(default)s)")
    parser.add_argument("--port", type=int, required=True,
                        help="listen port; 0 picks a free one (logged at start)")
    parser.add_argument("--timezone", default="UTC",
                        help="server timezone of the engine (default %(default)s)")
    parser.add_argument("--keep-alive-timeout", type=float, default=30.0,
                        help="seconds an idle keep-alive connection is kept (default 30)")
    parser.add_argument("--no-http-compression", action="store_true",
                        help="never compress responses, even if the client asks for it")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ["TZ"] = args.timezone  # ClickHouse takes its server timezone from TZ
    time.tzset()
    try:
        engine = ChdbEngine(args.path)
    except Exception as exc:  # e.g. the folder is owned by another process
        logger.error("cannot open chdb data folder %s: %s", args.path, exc.__cause__ or exc)
        return 2
    try:
        server = ClickHouseHTTPServer((args.host, args.port), engine, AuthConfig.from_env(),
                                      http_compression=not args.no_http_compression,
                                      keep_alive_timeout=args.keep_alive_timeout)
    except OSError as exc:
        engine.close()
        logger.error("cannot listen on %s:%d: %s", args.host, args.port, exc)
        return 2

    def stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    logger.info("ClickHouse %s (chdb) on http://%s:%d serving %s, timezone %s",
                engine.version, host, port, os.path.abspath(args.path), engine.timezone)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        engine.close()
        logger.info("stopped; data folder closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
