"""How much log a container keeps, read the way Docker reads a service's `logging:` options.

Only Docker's two file drivers bound a container's log on the host by themselves: json-file,
Docker's default, which keeps everything unless `max-size` is set, and local, bounded by default.
Options and defaults are the ones Docker's pages "JSON File logging driver" and "Local file
logging driver" (docs.docker.com/engine/logging/drivers/json-file/ and .../local/) document, read
as moby reads them (daemon/logger/jsonfilelog/jsonfilelog.go, daemon/logger/local/config.go):
sizes through go-units' FromHumanSize, in decimal units (20m is 20,000,000 bytes), and a file is
rotated once it has reached max-size, so a container keeps about max-size x max-file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..names import GO_TRUE

#: The local driver's defaults: five files of 20 MB (Docker's page: "100MB of log messages per
#: container"), the rotated ones compressed.
LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5", "compress": "true"}
#: json-file keeps one file, uncompressed, when the options do not say otherwise.
JSON_FILE_DEFAULTS = {"max-file": "1", "compress": "false"}

_USE = "use json-file with max-size and max-file, or the local driver"

#: go-units FromHumanSize: a number, one optional space, then b, or a unit letter optionally
#: followed by b or ib (any case); every unit decimal.
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?(?:([kmgtp])(?:i?b)?|b)?", re.IGNORECASE)
_UNIT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


@dataclass(frozen=True)
class LogLimit:
    """A container's log on the host: `files` files of at most `file_bytes` each."""

    driver: str
    file_bytes: int
    files: int

    @property
    def total_bytes(self) -> int:
        return self.file_bytes * self.files


class LoggingProblem(ValueError):
    """Why a service's logs are not bounded, or its container would not be created; `field` is
    the part of `logging` at fault."""

    def __init__(self, field: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def size_bytes(text: str) -> int | None:
    """Bytes in a Docker size ('20m' -> 20000000), None when Docker would refuse it."""
    found = _SIZE.fullmatch(text)
    if found is None:
        return None
    return int(float(found[1]) * _UNIT[(found[2] or "").lower()])


def amount(size: int) -> str:
    """A size as a reader reads it, in the decimal units Docker counts in: '200 MB'."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


def limit(logging: Mapping[str, Any] | None) -> LogLimit:
    """The bound a service's `logging:` puts on its container's log, or LoggingProblem."""
    if not logging:
        raise LoggingProblem(
            (),
            "is not set: Docker's default json-file driver then keeps all the container writes; "
            + _USE,
        )
    driver = str(logging.get("driver") or "")
    options = {str(k): str(v) for k, v in (logging.get("options") or {}).items()}
    if driver == "json-file":
        if "max-size" not in options:
            raise LoggingProblem(
                ("options", "max-size"),
                "is not set: json-file then keeps the container's whole log in one file that "
                "grows without limit; set it (20m, say) with max-file",
            )
        defaults = JSON_FILE_DEFAULTS
    elif driver == "local":
        defaults = LOCAL_DEFAULTS
    else:
        raise LoggingProblem(("driver",), _driver_problem(driver))
    options = {**defaults, **options}
    found = LogLimit(driver, _file_bytes(options["max-size"]), _files(options["max-file"]))
    if options["compress"] in GO_TRUE and found.files < 2:
        # Both drivers refuse it: only rotated files are compressed (moby's option checks).
        raise LoggingProblem(
            ("options", "compress"),
            f"is true with max-file {found.files}: Docker refuses to create the container, "
            "since only rotated files are compressed; keep 2 files or more, or compress false",
        )
    return found


def _driver_problem(driver: str) -> str:
    if not driver:
        return (
            "is not set: the daemon's default driver is used, which keeps everything unless the "
            f"daemon's own configuration says otherwise; {_USE}"
        )
    if driver == "none":
        return f"is 'none': the container keeps no log, `docker compose logs` shows nothing; {_USE}"
    return (
        f"is '{driver}': only json-file (with max-size) and local bound a container's log files "
        f"on the host; {_USE}"
    )


def _file_bytes(text: str) -> int:
    size = size_bytes(text)
    if size is None or size <= 0:
        raise LoggingProblem(
            ("options", "max-size"),
            f"is '{text}', not a size Docker takes: a positive number with k, m or g (20m)",
        )
    return size


def _files(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise LoggingProblem(
            ("options", "max-file"), f"is '{text}', not a whole number of files of at least 1"
        )
    return int(text)
