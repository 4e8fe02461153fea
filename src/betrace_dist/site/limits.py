"""How much a page may compute while it renders: size caps for values, and a wall-clock limit.

A page is text anyone can propose in a pull request, and the gate and `mkdocs build` render it on
CI runners and on maintainers' machines. The Jinja sandbox stops a page from reaching Python
objects; these limits stop it from exhausting the machine with objects it may reach: a string of
a billion characters (`'x' * 10**9`), a number of a billion digits (`10 ** 10**9`), a loop that
runs for hours.

Sizes are checked *before* the operation allocates them, from the sizes of its operands, so a
page asking for 1 GB fails at once instead of after the allocation.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from functools import wraps
from types import TracebackType
from typing import Any

from jinja2.exceptions import SecurityError

#: Seconds one page may take to render (the largest real page takes well under one).
TIME_LIMIT = 10.0
#: Characters (or items) of one value a page computes: a string, a list.
MAX_VALUE = 2_000_000
#: Characters of one rendered page.
MAX_OUTPUT = 5_000_000
#: Items of a `range()`.
MAX_RANGE = 100_000
#: Bits of an integer a page computes (about 30,000 decimal digits).
MAX_INT_BITS = 100_000


class LimitError(SecurityError):
    """A page asked for more than the render limits allow."""


class RenderTimeout(BaseException):
    """Raised inside the rendering thread when its time is up.

    A BaseException, so that no `except Exception` on the way (in a macro, in Jinja) swallows it.
    """


def refuse(what: str, size: int, limit: int, unit: str = "characters") -> None:
    if size > limit:
        raise LimitError(
            f"{what} would make {size:,} {unit}; a page may compute at most {limit:,} "
            "(render limit against pages that exhaust the machine)"
        )


def bounded_range(*args: int) -> range:
    """`range()` for pages: at most MAX_RANGE items."""
    rng = range(*args)
    refuse(f"range{args}", len(rng), MAX_RANGE, "items")
    return rng


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def check_value(value: Any) -> Any:
    """A value a call or operator produced, refused if it is too large."""
    size = _length(value)
    if size is not None:
        refuse(f"a {type(value).__name__}", size, MAX_VALUE, "items")
    elif isinstance(value, int) and not isinstance(value, bool):
        refuse("an integer", value.bit_length(), MAX_INT_BITS, "bits")
    return value


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse `*`, `+`, `**` and `%` whose result would be too large, before computing it."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "*" and ints:
        refuse("this multiplication", left.bit_length() + right.bit_length(), MAX_INT_BITS, "bits")
    elif operator == "*":
        seq, times = (left, right) if isinstance(right, int) else (right, left)
        if _length(seq) is not None and isinstance(times, int):
            refuse(f"{type(seq).__name__} * {times}", len(seq) * max(times, 0), MAX_VALUE)
    elif operator == "+" and _length(left) is not None and _length(right) is not None:
        refuse(f"{type(left).__name__} + {type(right).__name__}", len(left) + len(right), MAX_VALUE)
    elif operator == "**" and ints and right > 0:
        refuse(f"{left} ** {right}", max(abs(left).bit_length(), 1) * right, MAX_INT_BITS, "bits")
    elif operator == "%" and isinstance(left, str):
        check_printf(left)


_PRINTF_FIELD = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_printf(template: str) -> None:
    """Refuse `'%1000000000d' % 1`: a width or precision past the value limit, or a `*` one."""
    for match in _PRINTF_FIELD.finditer(template):
        for number in match.groups():
            if number == "*":
                raise LimitError("a '*' width or precision in a printf-style format is not allowed")
            if number:
                # no percent sign in the message: mkdocs-macros 1.5 formats error messages with
                # `%` (mkdocs_macros/errors.py format_error) and would fail on it
                refuse(f"the printf-style width {number}", int(number), MAX_VALUE)


def check_format_string(template: str) -> None:
    """Refuse `'{:>1000000000}'.format(1)`: a large width, or one computed from an argument."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        if "{" in spec:
            raise LimitError("a format spec computed from an argument is not allowed in pages")
        for number in re.findall(r"\d+", spec):
            refuse(f"the format spec {spec!r}", int(number), MAX_VALUE)


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) else len(str(value))


def check_str_method(method: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Refuse str methods that would build a too large string; returns the (materialized) args."""
    target = getattr(method, "__self__", None)
    name = getattr(method, "__name__", "")
    if not isinstance(target, str) or not args:
        return args
    if name in {"center", "ljust", "rjust", "zfill"}:
        refuse(f"str.{name}({args[0]!r})", _as_int(args[0]), MAX_VALUE)
    elif name == "expandtabs":
        refuse("str.expandtabs", len(target) * _as_int(args[0]), MAX_VALUE)
    elif name == "replace" and len(args) >= 2:
        refuse("str.replace", replaced_length(target, str(args[0]), str(args[1])), MAX_VALUE)
    elif name == "join":
        items = list(args[0]) if not isinstance(args[0], list | tuple | str) else args[0]
        refuse("str.join", joined_length(target, items), MAX_VALUE)
        return (items, *args[1:])
    return args


def replaced_length(text: str, old: str, new: str) -> int:
    count = len(text) + 1 if not old else text.count(old)
    return len(text) + count * (len(new) - len(old))


def joined_length(separator: str, items: Iterable[Any]) -> int:
    items = list(items)
    return len(separator) * max(len(items) - 1, 0) + sum(len(str(i)) for i in items)


def guard_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Jinja calls filters directly, past the sandbox: size-check the ones that amplify."""
    checks: dict[str, Callable[..., None]] = {
        "center": _check_center,
        "indent": _check_indent,
        "format": _check_format,
        "replace": _check_replace,
        "join": _check_join,
    }
    for name, check in checks.items():
        if name in filters:
            filters[name] = _guarded(filters[name], check)


def _check_center(value: Any, width: Any = 80) -> None:
    refuse("center", _as_int(width), MAX_VALUE)


def _check_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = str(value)
    refuse("indent", len(text) + _as_int(width) * (text.count("\n") + 1), MAX_VALUE)


def _check_format(value: Any, *_: Any, **__: Any) -> None:
    check_printf(str(value))


def _check_replace(value: Any, old: Any, new: Any, *_: Any) -> None:
    refuse("replace", replaced_length(str(value), str(old), str(new)), MAX_VALUE)


def _check_join(value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    refuse("join", joined_length(str(d), value), MAX_VALUE)


def _guarded(func: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    # do_join and do_replace take the eval context first (jinja2's pass_eval_context marker,
    # which functools.wraps copies): the filter's own arguments follow it.
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0

    @wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        head, value, rest = args[:skip], args[skip], args[skip + 1 :]
        if check is _check_join and not isinstance(value, str | list | tuple):
            value = list(value)  # an iterator would be used up by the check
        kwargs_for_check = {k: v for k, v in kwargs.items() if k != "attribute"}
        check(value, *rest, **kwargs_for_check)
        return check_value(func(*head, value, *rest, **kwargs))

    return guarded


_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


#: the Deadline running in each thread, for `trusted_work`
_ACTIVE: dict[int, Deadline] = {}


@contextlib.contextmanager
def trusted_work(left_after: float = TIME_LIMIT) -> Iterator[None]:
    """Work of the project's own code during a render that the page's time limit must not count
    (reading other pages for a table, done once per build and cached): the clock stops, and
    restarts with `left_after` seconds once the work is done."""
    deadline = _ACTIVE.get(threading.get_ident())
    if deadline is None:
        yield
        return
    deadline.pause()
    try:
        yield
    finally:
        deadline.resume(left_after)


class _Alarm:
    """What Deadline and ProcessorBudget share: an exception raised in the thread that entered
    the block (delivered between two bytecodes, so it stops any Python loop), and withdrawn
    when the block ends before it was delivered."""

    def __init__(self) -> None:
        self.fired = False
        self._lock = threading.Lock()
        self._armed = False
        self._thread = 0

    def _arm(self) -> None:
        self._thread = threading.get_ident()
        self._armed, self.fired = True, False

    def _raise(self, kind: type[BaseException]) -> bool:
        """Raise `kind` in the block's thread; False once the block has ended."""
        with self._lock:
            if self._armed:
                self.fired = True
                _set_async_exc(self._thread, kind)
            return self._armed

    def _disarm(self) -> None:
        with self._lock:
            self._armed = False
            if self.fired:  # one not delivered yet is withdrawn (NULL); none pending: no-op
                _set_async_exc(self._thread, ctypes.py_object())


class Deadline(_Alarm):
    """Raises RenderTimeout in the rendering thread once `seconds` have passed.

    Works in any thread (`mkdocs serve` renders in a worker thread, where signals cannot reach).
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        self._arm()
        self.resume(self.seconds)
        _ACTIVE[self._thread] = self
        return self

    def pause(self) -> None:
        """Stop the clock."""
        if self._timer is not None:
            self._timer.cancel()

    def resume(self, left: float) -> None:
        self._timer = threading.Timer(max(left, 0.0), self._raise, (RenderTimeout,))
        self._timer.daemon = True
        self._timer.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _ACTIVE.pop(self._thread, None)
        self.pause()
        self._disarm()


class OutOfProcessorTime(BaseException):
    """Raised inside a thread that used up its ProcessorBudget (a BaseException, as
    RenderTimeout, so that no `except Exception` on the way swallows it)."""


#: Processor seconds after which a budget that fired fires again, as long as its block runs.
REFIRE = 1.0


class ProcessorBudget(_Alarm):
    """Raises OutOfProcessorTime in the calling thread once it has used `seconds` of processor
    time inside the block.

    Processor time, not wall time: the thread's own clock (pthread_getcpuclockid) advances only
    while it computes, so waiting on a command (whose time its own timeout bounds) costs
    nothing, and a loaded machine does not make a page fail. A watcher thread reads that clock
    every `poll` seconds.
    """

    def __init__(self, seconds: float, poll: float = 0.05) -> None:
        super().__init__()
        self.seconds = seconds
        self.poll = poll
        self._clock = 0
        self._start = 0.0
        self._done = threading.Event()

    def used(self) -> float:
        """Processor seconds the thread has used since the block began."""
        return time.clock_gettime(self._clock) - self._start

    def __enter__(self) -> ProcessorBudget:
        self._arm()
        self._clock = time.pthread_getcpuclockid(self._thread)
        self._start = time.clock_gettime(self._clock)
        self._done.clear()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def _watch(self) -> None:
        due = self.seconds
        while not self._done.wait(self.poll):
            if self.used() <= due:
                continue
            # again after each further REFIRE seconds of computing: code on the way that
            # swallows an exception (a bare `except:` in a library) cannot lift the bound;
            # cleanup that waits (killing a command) uses no processor time
            if not self._raise(OutOfProcessorTime):
                return
            due = self.used() + REFIRE

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._disarm()
        self._done.set()


#: Characters of one page's Markdown (as rendered by the macros) turned into HTML: the largest
#: real page has under 40,000; Python-Markdown's cost grows faster than the text on some inputs.
MAX_MARKDOWN = 400_000


def markdown_to_html(convert: Callable[[str], str], text: str, page: str) -> str:
    """`convert(text)` (Python-Markdown) with a size limit and a wall-clock limit, so one page
    cannot hang the gate or the site build."""
    refuse(f"the Markdown of {page}", len(text), MAX_MARKDOWN)
    try:
        with Deadline(TIME_LIMIT):
            return convert(text)
    except RenderTimeout:
        raise LimitError(
            f"turning {page} into HTML took longer than {TIME_LIMIT:g} s and was stopped "
            "(render limit against pages that exhaust the machine)"
        ) from None
    except RecursionError:  # Python-Markdown recurses into each nested block
        raise LimitError(
            f"{page} nests blocks (admonitions, lists, quotes) too deeply for Python-Markdown "
            "to turn into HTML: flatten it"
        ) from None
