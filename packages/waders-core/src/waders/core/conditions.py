"""Conditions database: calibration constants with validity ranges, history and provenance.

Constants (gain per amplifier, noise, dark current, pedestal and noise maps, bad-pixel
masks, crosstalk matrices) change with time and hardware.  Each entry is keyed by
detector (CCD id), amplifier, constant type and a validity range in run numbers and/or
UTC times (either end open), and carries provenance (who or what produced it, from which
runs, the waders version) and a comment.  Array constants are stored as NPZ blobs with a
SHA-256 checksum verified on every read.

Deploying never overwrites: an entry whose validity overlaps older ones wins where they
overlap (newest wins), and the older entries stay in the history.  ``deploy(...,
dry_run=True)`` shows what a deployment would override without writing.

The store is one SQLite file (path from the caller, or ``$WADERS_CONDITIONS``); every
deployment is one transaction.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, InputFileError
from .paths import check_regular_file, read_text_bounded
from .versions import waders_versions

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

__all__ = ["ConditionsDB", "Constant", "Validity", "constants_from_summary", "default_path"]

#: Environment variable naming the default conditions database.
ENV = "WADERS_CONDITIONS"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS constants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    detector TEXT NOT NULL,
    amplifier TEXT NOT NULL,
    ctype TEXT NOT NULL,
    value REAL,
    error REAL,
    unit TEXT,
    blob BLOB,
    sha256 TEXT,
    run_min INTEGER,
    run_max INTEGER,
    time_min TEXT,
    time_max TEXT,
    created TEXT NOT NULL,
    author TEXT,
    source TEXT,
    from_runs TEXT,
    waders_version TEXT,
    comment TEXT
);
CREATE INDEX IF NOT EXISTS constants_key ON constants (detector, ctype, amplifier);
"""


def default_path() -> Path:
    """The database named by ``$WADERS_CONDITIONS``, else ``conditions.sqlite`` here."""
    return Path(os.environ.get(ENV, "conditions.sqlite"))


def _utc(value: str | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"bad time {value!r}", hint="write an ISO time such as 2025-08-07T17:02:13") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Validity:
    """Where a constant applies: runs [run_min, run_max] and times [time_min, time_max); None = open."""

    run_min: int | None = None
    run_max: int | None = None
    time_min: str | None = None
    time_max: str | None = None

    def __post_init__(self) -> None:
        if self.run_min is not None and self.run_max is not None and self.run_max < self.run_min:
            raise ConfigError(f"validity runs {self.run_min}..{self.run_max} are reversed")
        object.__setattr__(self, "time_min", _utc(self.time_min))
        object.__setattr__(self, "time_max", _utc(self.time_max))
        if self.time_min and self.time_max and self.time_max <= self.time_min:
            raise ConfigError(f"validity times {self.time_min}..{self.time_max} are reversed")

    @classmethod
    def parse_runs(cls, text: str | None, **times: str | None) -> Validity:
        """``"10:20"`` (both included), ``"10:"``, ``":20"``, ``"15"`` or None."""
        if not text:
            return cls(**times)
        start, sep, stop = text.partition(":")
        try:
            low = int(start) if start else None
            high = (int(stop) if stop else None) if sep else low
        except ValueError:
            raise ConfigError(f"bad run range {text!r}", hint="write A:B, A:, :B or A") from None
        return cls(low, high, **times)

    def overlaps(self, other: Validity) -> bool:
        """True if both ranges share some run and some time."""

        def meet(a0: Any, a1: Any, b0: Any, b1: Any, closed: bool) -> bool:
            low_ok = a1 is None or b0 is None or (b0 <= a1 if closed else b0 < a1)
            high_ok = b1 is None or a0 is None or (a0 <= b1 if closed else a0 < b1)
            return low_ok and high_ok

        return meet(self.run_min, self.run_max, other.run_min, other.run_max, True) and meet(
            self.time_min, self.time_max, other.time_min, other.time_max, False
        )

    def describe(self) -> str:
        """``runs 10..20, 2025-01-01..open``."""
        low = "open" if self.run_min is None else self.run_min
        high = "open" if self.run_max is None else self.run_max
        runs = f"runs {low}..{high}"
        if self.time_min or self.time_max:
            runs += f", {self.time_min or 'open'}..{self.time_max or 'open'}"
        return runs


@dataclass
class Constant:
    """One calibration constant and its metadata."""

    detector: str
    amplifier: str
    ctype: str
    value: float | None = None
    error: float | None = None
    unit: str | None = None
    array: np.ndarray | None = None
    validity: Validity = field(default_factory=Validity)
    author: str | None = None
    source: str | None = None
    from_runs: str | None = None
    comment: str | None = None
    id: int | None = None
    created: str | None = None
    waders_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible description (arrays summarised by shape)."""
        out = asdict(self)
        out["validity"] = asdict(self.validity)
        out["array"] = None if self.array is None else {"shape": list(self.array.shape), "dtype": str(self.array.dtype)}
        return out


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except (ImportError, KeyError, OSError):
        return ""


def _pack(array: np.ndarray) -> tuple[bytes, str]:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, value=array)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def _unpack(blob: bytes, checksum: str, entry: int) -> np.ndarray:
    if hashlib.sha256(blob).hexdigest() != checksum:
        raise InputFileError(f"conditions entry #{entry}: the stored array fails its checksum (database corrupted)")
    import numpy as np

    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return npz["value"]


class ConditionsDB:
    """A conditions database in one SQLite file.

    Parameters
    ----------
    path : path, optional
        Database file (created on first deployment); default :func:`default_path`.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        if not write and not self.path.exists():
            raise InputFileError(
                f"conditions database {self.path} does not exist",
                hint=f"deploy constants first (waders conditions deploy) or set ${ENV}",
            )
        if self.path.exists():
            check_regular_file(self.path, "a conditions database (SQLite file)")
        try:
            if write:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            else:  # a read command must not write: read-only, no schema, no journal change
                uri = f"{self.path.resolve().as_uri()}?mode=ro"
                connection = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise InputFileError(f"cannot open conditions database {self.path}: {err}") from None
        try:
            if write:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
            elif (
                connection.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'constants'"
                ).fetchone()[0]
                == 0
            ):
                raise InputFileError(
                    f"{self.path} is not a conditions database (no 'constants' table)",
                    hint=f"give the file written by 'waders conditions deploy' (or set ${ENV})",
                )
            yield connection
        except sqlite3.DatabaseError as err:
            raise InputFileError(f"conditions database {self.path} is not usable: {err}") from None
        finally:
            connection.close()

    # --- writing -------------------------------------------------------------------------
    def deploy(self, constants: list[Constant], *, dry_run: bool = False) -> list[dict[str, Any]]:
        """Add constants (one transaction); return, per constant, the older entries it overrides.

        Parameters
        ----------
        constants : list of Constant
            Entries to add.
        dry_run : bool
            Only report what would happen.
        """
        for constant in constants:
            if constant.value is None and constant.array is None:
                raise ConfigError(f"constant {constant.ctype} of {constant.detector}/{constant.amplifier} has no value")
        if dry_run and not self.path.exists():
            return [{"constant": c.to_dict(), "overrides": []} for c in constants]
        plan = []
        with self._connect(write=True) as db:
            for constant in constants:
                overridden = [
                    older.id
                    for older in self._query(db, constant.detector, constant.ctype, constant.amplifier)
                    if older.validity.overlaps(constant.validity)
                ]
                plan.append({"constant": constant, "overrides": overridden})
            if dry_run:
                return [{"constant": p["constant"].to_dict(), "overrides": p["overrides"]} for p in plan]
            created = datetime.now(timezone.utc).isoformat(timespec="seconds")
            version = waders_versions().get("waders-core", "")
            db.execute("BEGIN IMMEDIATE")
            try:
                for item in plan:
                    c: Constant = item["constant"]
                    blob, checksum = _pack(c.array) if c.array is not None else (None, None)
                    cursor = db.execute(
                        "INSERT INTO constants (detector, amplifier, ctype, value, error, unit, blob, sha256, run_min,"
                        " run_max, time_min, time_max, created, author, source, from_runs, waders_version, comment)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            c.detector, c.amplifier, c.ctype, c.value, c.error, c.unit, blob, checksum,
                            c.validity.run_min, c.validity.run_max, c.validity.time_min, c.validity.time_max,
                            created, c.author or _user(), c.source, c.from_runs, version, c.comment,
                        ),
                    )  # fmt: skip
                    c.id, c.created, c.waders_version = cursor.lastrowid, created, version
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return [{"constant": p["constant"].to_dict(), "overrides": p["overrides"]} for p in plan]

    # --- reading -------------------------------------------------------------------------
    def _query(
        self, db: sqlite3.Connection, detector: str | None, ctype: str | None, amplifier: str | None
    ) -> list[Constant]:
        clauses, args = [], []
        for column, value in (("detector", detector), ("ctype", ctype), ("amplifier", amplifier)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(str(value))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = db.execute(
            "SELECT id, detector, amplifier, ctype, value, error, unit, blob, sha256, run_min, run_max, time_min,"
            f" time_max, created, author, source, from_runs, waders_version, comment FROM constants {where}"
            " ORDER BY id",
            args,
        ).fetchall()
        out = []
        for row in rows:
            (entry, det, amp, kind, value, error, unit, blob, checksum, r0, r1, t0, t1, created, author, source,
             from_runs, version, comment) = row  # fmt: skip
            out.append(
                Constant(
                    det,
                    amp,
                    kind,
                    value,
                    error,
                    unit,
                    _unpack(blob, checksum, entry) if blob is not None else None,
                    Validity(r0, r1, t0, t1),
                    author,
                    source,
                    from_runs,
                    comment,
                    entry,
                    created,
                    version,
                )
            )
        return out

    def get(
        self,
        ctype: str,
        detector: str,
        amplifier: str | tuple[str, ...] = "*",
        *,
        run: int | None = None,
        when: str | datetime | None = None,
    ) -> Constant:
        """The constant valid for a run (and/or time): the newest deployed entry that covers it.

        Parameters
        ----------
        ctype, detector : str
            Constant type and detector.
        amplifier : str or tuple of str
            Amplifier name, or its name and aliases; ``"*"`` entries apply to every amplifier.
        run : int, optional
            Run number.
        when : str or datetime, optional
            Time of the data (UTC).

        Raises
        ------
        ConfigError
            If no entry is valid there.
        """
        names = (amplifier,) if isinstance(amplifier, str) else tuple(amplifier)
        point = Validity(run, run, _utc(when), None)
        with self._connect() as db:
            candidates = [
                c
                for c in self._query(db, str(detector), ctype, None)
                if (c.amplifier in names or c.amplifier == "*") and _covers(c.validity, run, point.time_min)
            ]
        if not candidates:
            where = f"run {run}" if run is not None else "any run"
            raise ConfigError(
                f"no {ctype} constant for detector {detector}, amplifier {names[0]} valid at {where}"
                + (f", {point.time_min}" if point.time_min else "")
                + f" in {self.path}",
                hint="deploy one with: waders conditions deploy",
            )
        specific = [c for c in candidates if c.amplifier != "*"] or candidates
        return max(specific, key=lambda c: c.id or 0)

    def list(self, ctype: str | None = None, detector: str | None = None) -> list[Constant]:
        """Every entry (oldest first), optionally of one type or detector."""
        with self._connect() as db:
            return self._query(db, detector, ctype, None)

    def history(self, ctype: str, detector: str, amplifier: str | None = None) -> list[Constant]:
        """Every deployment of a constant, oldest first (nothing is ever deleted)."""
        with self._connect() as db:
            return self._query(db, str(detector), ctype, amplifier)


def _covers(validity: Validity, run: int | None, when: str | None) -> bool:
    """True if the data point (run and/or time) lies in the validity range.

    A range on runs needs a run inside it, a range on times needs a time inside it;
    open ends accept anything.
    """
    if validity.run_min is not None or validity.run_max is not None:
        if run is None:
            return False
        if validity.run_min is not None and run < validity.run_min:
            return False
        if validity.run_max is not None and run > validity.run_max:
            return False
    if validity.time_min is not None or validity.time_max is not None:
        if when is None:
            return False
        if validity.time_min is not None and when < validity.time_min:
            return False
        if validity.time_max is not None and when >= validity.time_max:
            return False
    return True


def constants_from_summary(summary_path: str | Path, detector: str, validity: Validity) -> list[Constant]:
    """Gain, noise and dark current per amplifier from a ``waders ana`` summary (proposed constants)."""
    path = Path(summary_path)
    try:
        summary = json.loads(read_text_bounded(path, "a waders ana summary"))
    except (OSError, json.JSONDecodeError, RecursionError) as err:
        raise InputFileError(f"{path}: not a readable waders ana summary ({err})") from None
    if not isinstance(summary, dict):
        raise InputFileError(f"{path}: not a waders ana summary (a JSON object is expected)")
    out = []
    for amp, values in summary.get("amplifiers", {}).items():
        for ctype, key, err_key, unit in (
            ("gain", "gain_adu_per_e", "gain_err", "ADU/e"),
            ("noise", "sigma_e", None, "e"),
            ("dark_current", "lambda_e_per_pixel", "lambda_err", "e/pixel"),
        ):
            if values.get(key) is not None and (ctype != "gain" or values.get("fit_valid", True)):
                out.append(
                    Constant(
                        detector,
                        amp,
                        ctype,
                        float(values[key]),
                        values.get(err_key) if err_key else None,
                        unit,
                        validity=validity,
                        source=str(path),
                        from_runs=str(summary.get("run", "")),
                        comment=f"proposed from {path.name} at {time.strftime('%Y-%m-%d')}",
                    )
                )
    return out
