"""The DQM store: run documents across runs, and the per-image values of every ME for trends.

:func:`open_store` opens

* a SQLite file (default ``OUTDIR/dqm.sqlite``; any path or ``sqlite:///path``): WAL
  journal, one transaction per run update, so a writer killed at any point leaves the
  previous version of that run intact, and several processes may write different runs at
  once (each waits for the others: busy timeout, then retries);
* a MongoDB database (``mongodb://host/DB`` or ``mongodb+srv://...``, needs pymongo): one
  document per run, nested run -> images -> amplifiers -> MEs (the layout pysimdamicm's
  ``create_mongDB_document`` intended, without its flattened columns), replaced atomically.

Both give the same API: :meth:`Store.put_run`, :meth:`Store.get_run`, :meth:`Store.runs`
and :meth:`Store.history`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from waders.core.errors import ConfigError, InputFileError, WadersError, environment_error

__all__ = ["MongoStore", "SQLiteStore", "Store", "from_mongo", "open_store", "to_mongo"]

log = logging.getLogger(__name__)

#: Name of the default SQLite store in the output directory.
DEFAULT_NAME = "dqm.sqlite"
_SCHEMA_VERSION = 1


class Store:
    """Interface of the DQM stores."""

    uri: str = ""

    def put_run(self, document: Mapping[str, Any]) -> None:
        """Insert or replace the document of a run (``document["run"]``), atomically."""
        raise NotImplementedError

    def get_run(self, run: int) -> dict[str, Any] | None:
        """The document of a run, or None."""
        raise NotImplementedError

    def runs(self) -> list[int]:
        """Run numbers in the store, ascending."""
        raise NotImplementedError

    def history(self, me: str, amplifier: str) -> list[tuple[int, int | None, float | None, float | None]]:
        """``(run, image, value, error)`` of an ME and amplifier over all runs, ordered by run and image."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _values(document: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Rows (stem, image, amplifier, me, value, error, status) of a run document."""
    for stem, image in (document.get("images") or {}).items():
        for me, per_amp in (image.get("me") or {}).items():
            for amp, entry in per_amp.items():
                quality = entry.get("quality") or {}
                yield (stem, image.get("image"), amp, me, entry.get("value"), entry.get("error"), quality.get("status"))


def _run_number(document: Mapping[str, Any]) -> int:
    try:
        return int(document["run"])
    except (KeyError, TypeError, ValueError):
        raise WadersError("a DQM run document needs an integer 'run'") from None


# --- SQLite -----------------------------------------------------------------------------------------
class SQLiteStore(Store):
    """Run documents in a SQLite file (see the module docstring).

    Parameters
    ----------
    path : path
        The database file (created with its directory).
    timeout : float
        Seconds to wait for another writer before giving up.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.uri = str(self.path)
        self.timeout = timeout
        if self.path.exists() and not self.path.is_file():
            raise InputFileError(f"DQM store {self.path}: not a regular file", hint="give a SQLite file or folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._retrying(self._setup)
        except sqlite3.DatabaseError as err:
            raise InputFileError(
                f"DQM store {self.path}: {err}", hint="give a waders DQM store (a SQLite file) or a new file name"
            ) from None
        except OSError as err:
            raise environment_error(err) from None

    def _setup(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("%s: WAL journal unavailable (%s); concurrent readers may wait", self.path, mode)
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY, tag TEXT, status TEXT, updated TEXT, "
                "reference_run INTEGER, document BLOB NOT NULL)"
            )
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS me_values (run INTEGER NOT NULL, stem TEXT NOT NULL, image INTEGER, "
                "amplifier TEXT NOT NULL, me TEXT NOT NULL, value REAL, error REAL, status TEXT, "
                "PRIMARY KEY (run, stem, amplifier, me))"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS me_history ON me_values (me, amplifier, run, image)")
            self._conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _retrying(self, action: Any, *args: Any) -> Any:
        """Run ``action``; retry while another process holds the database (up to ``timeout``)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.05
        while True:
            try:
                return action(*args)
            except sqlite3.OperationalError as err:
                text = str(err).lower()
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise WadersError(f"DQM store {self.path}: {err}") from None
                log.info("DQM store %s is busy; retrying", self.path)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def put_run(self, document: Mapping[str, Any]) -> None:
        run = _run_number(document)
        blob = zlib.compress(json.dumps(document, allow_nan=False, separators=(",", ":")).encode(), 6)
        rows = [(run, *row) for row in _values(document)]
        self._retrying(self._put, run, document, blob, rows)

    def _put(self, run: int, document: Mapping[str, Any], blob: bytes, rows: list[tuple[Any, ...]]) -> None:
        with self._transaction():
            self._conn.execute(
                "INSERT OR REPLACE INTO runs (run, tag, status, updated, reference_run, document) VALUES (?,?,?,?,?,?)",
                (run, document.get("tag"), document.get("status"), document.get("updated"),
                 document.get("reference_run"), blob),
            )  # fmt: skip
            self._write_values(run, rows)

    def _write_values(self, run: int, rows: list[tuple[Any, ...]]) -> None:
        self._conn.execute("DELETE FROM me_values WHERE run = ?", (run,))
        self._conn.executemany("INSERT INTO me_values VALUES (?,?,?,?,?,?,?,?)", rows)

    def get_run(self, run: int) -> dict[str, Any] | None:
        row = self._retrying(
            lambda: self._conn.execute("SELECT document FROM runs WHERE run = ?", (int(run),)).fetchone()
        )
        if row is None:
            return None
        return json.loads(zlib.decompress(row[0]))

    def runs(self) -> list[int]:
        rows = self._retrying(lambda: self._conn.execute("SELECT run FROM runs ORDER BY run").fetchall())
        return [int(r[0]) for r in rows]

    def history(self, me: str, amplifier: str) -> list[tuple[int, int | None, float | None, float | None]]:
        query = (
            "SELECT run, image, value, error FROM me_values WHERE me = ? AND amplifier = ? ORDER BY run, image, stem"
        )
        rows = self._retrying(lambda: self._conn.execute(query, (me, amplifier)).fetchall())
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]

    def close(self) -> None:
        self._conn.close()


# --- MongoDB ----------------------------------------------------------------------------------------
def to_mongo(document: Mapping[str, Any]) -> dict[str, Any]:
    """The MongoDB layout of a run document: lists of named items (no user text in keys)."""

    def entries(per_amp: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"name": amp, **entry} for amp, entry in per_amp.items()]

    images = []
    for stem, image in (document.get("images") or {}).items():
        amplifiers: dict[str, list[dict[str, Any]]] = {}
        for me, per_amp in (image.get("me") or {}).items():
            for amp, entry in per_amp.items():
                amplifiers.setdefault(amp, []).append({"name": me, **entry})
        rest = {k: v for k, v in image.items() if k != "me"}
        images.append({"stem": stem, **rest, "amplifiers": [{"name": a, "mes": m} for a, m in amplifiers.items()]})
    run_level = [
        {"name": me, "amplifiers": entries(per_amp)} for me, per_amp in (document.get("run_level") or {}).items()
    ]
    rest = {k: v for k, v in document.items() if k not in ("images", "run_level", "masked_fraction")}
    masked = [{"amplifier": a, "fraction": f} for a, f in (document.get("masked_fraction") or {}).items()]
    return {"_id": _run_number(document), **rest, "images": images, "run_level": run_level, "masked_fraction": masked}


def from_mongo(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The run document (summary layout) of a MongoDB document (inverse of :func:`to_mongo`)."""
    document = {k: v for k, v in stored.items() if k not in ("_id", "images", "run_level", "masked_fraction")}
    images: dict[str, Any] = {}
    for image in stored.get("images") or []:
        rest = {k: v for k, v in image.items() if k not in ("stem", "amplifiers")}
        me: dict[str, dict[str, Any]] = {}
        for amp in image.get("amplifiers") or []:
            for entry in amp.get("mes") or []:
                me.setdefault(entry["name"], {})[amp["name"]] = {k: v for k, v in entry.items() if k != "name"}
        images[image["stem"]] = {**rest, "me": me}
    run_level: dict[str, Any] = {}
    for item in stored.get("run_level") or []:
        run_level[item["name"]] = {e["name"]: {k: v for k, v in e.items() if k != "name"} for e in item["amplifiers"]}
    document["images"] = images
    document["run_level"] = run_level
    document["masked_fraction"] = {m["amplifier"]: m["fraction"] for m in stored.get("masked_fraction") or []}
    return document


class MongoStore(Store):
    """Run documents in a MongoDB collection (``runs`` of the URI's database, default ``waders_dqm``).

    Parameters
    ----------
    uri : str
        ``mongodb://[user:password@]host[:port]/[DATABASE]``.
    client : object, optional
        An existing client (tests use mongomock).
    """

    def __init__(self, uri: str, *, client: Any = None, timeout_ms: int = 10_000) -> None:
        self.uri = _redacted(uri)  # shown in messages: never the password
        if client is None:
            try:
                import pymongo
            except ImportError:
                raise ConfigError(
                    "a mongodb:// store needs pymongo", hint="pip install pymongo (or waders-dqm[mongodb])"
                ) from None
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
        self._client = client
        database = _database_name(uri)
        self._runs = client[database]["runs"]

    def put_run(self, document: Mapping[str, Any]) -> None:
        stored = to_mongo(document)
        self._call(self._runs.replace_one, {"_id": stored["_id"]}, stored, upsert=True)

    def get_run(self, run: int) -> dict[str, Any] | None:
        stored = self._call(self._runs.find_one, {"_id": int(run)})
        return from_mongo(stored) if stored is not None else None

    def runs(self) -> list[int]:
        return sorted(int(d["_id"]) for d in self._call(self._runs.find, {}, {"_id": 1}))

    def history(self, me: str, amplifier: str) -> list[tuple[int, int | None, float | None, float | None]]:
        pipeline = [
            {"$unwind": "$images"},
            {"$unwind": "$images.amplifiers"},
            {"$match": {"images.amplifiers.name": amplifier}},
            {"$unwind": "$images.amplifiers.mes"},
            {"$match": {"images.amplifiers.mes.name": me}},
            {
                "$project": {
                    "_id": 0,
                    "run": "$_id",
                    "image": "$images.image",
                    "stem": "$images.stem",
                    "value": "$images.amplifiers.mes.value",
                    "error": "$images.amplifiers.mes.error",
                }
            },
        ]
        rows = list(self._call(self._runs.aggregate, pipeline))
        rows.sort(key=lambda r: (r["run"], r.get("image") is None, r.get("image") or 0, r.get("stem", "")))
        return [(int(r["run"]), r.get("image"), r.get("value"), r.get("error")) for r in rows]

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as err:
            if type(err).__module__.split(".")[0] in ("pymongo", "mongomock"):
                raise WadersError(f"DQM store {_redacted(self.uri)}: {type(err).__name__}: {err}") from None
            raise

    def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            close()


def _database_name(uri: str) -> str:
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    path = rest.split("/", 1)[1] if "/" in rest else ""
    name = path.split("?", 1)[0].strip("/")
    return name or "waders_dqm"


def _redacted(uri: str) -> str:
    """The URI without its password (for messages)."""
    if "@" not in uri or "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def open_store(uri: str | Path | None, output_dir: str | Path | None = None) -> Store:
    """Open the store named by ``uri``.

    Parameters
    ----------
    uri : str or Path or None
        ``mongodb://...``, ``sqlite:///path``, a file path, or None for ``OUTDIR/dqm.sqlite``.
    output_dir : path, optional
        The DQM output directory (for the default store).
    """
    if uri is None:
        return SQLiteStore(Path(output_dir or ".") / DEFAULT_NAME)
    text = str(uri)
    if text.startswith(("mongodb://", "mongodb+srv://")):
        return MongoStore(text)
    if text.startswith("sqlite:///"):
        return SQLiteStore(text[len("sqlite:///") :])
    if "://" in text:
        raise ConfigError(f"unknown DQM store {text!r}", hint="give a file path, sqlite:///PATH or mongodb://HOST/DB")
    path = Path(text)
    if path.is_dir():
        path = path / DEFAULT_NAME
    return SQLiteStore(path)
