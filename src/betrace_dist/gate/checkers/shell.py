"""Shell blocks: `bash -n` for syntax, then ShellCheck for the mistakes readers copy, then each
command runs in the page's session (file commands for real, the rest against command models).

`console` (and `shell-session`) blocks are transcripts: lines starting with `$ ` (and their `\\`
continuations) are commands, the lines after them what they printed. Each command runs on its
own; when it ran for real (a file command) or its model could say what it prints, the output
shown must be what it printed (a line `...` stands for any lines). When a model cannot say (a
cluster, a daemon, a server), the ledger reports the block as "modelled": checked against a
model, output not compared.
"""

from __future__ import annotations

import bisect
import json
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, ClassVar

from ... import tools
from ...release import load_release_data
from .. import update
from ..commands import models
from ..lexer import Block
from ..session import FILE_COMMANDS, CommandError, Model
from ..shellwords import Command, SplitError, split
from ..update import ELLIPSIS  # one spelling of "any value" for compare and update
from . import CheckFailure, Context, Status

#: ShellCheck rules the guides opt out of, each with the reason.
SHELLCHECK_EXCLUDE = {
    # Guides are followed one step at a time by a person who sees a failed `cd`;
    # `cd docker || exit` in every guide would teach noise.
    "SC2164": "cd without || exit in step-by-step instructions",
}


CONSOLE = frozenset({"console", "shell-session"})

#: `bash -n` and ShellCheck read the page's text with the gate's rights, outside the page's jail:
#: each runs within tools.CHECK_MEMORY and CHECK_CPU_SECONDS. Wall-clock seconds for each,
#: and for all of a page's blocks together (the page's commands have a time limit of their own;
#: this bounds the gate's share: at most this plus one block's).
BASH_N_TIMEOUT, SHELLCHECK_TIMEOUT = 10, 30
PAGE_CHECK_SECONDS = 120


def _limited(argv: list[str], script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """argv run on the script (tools.run_checker); past `timeout`, a CheckFailure that
    says so."""
    try:
        return tools.run_checker(argv, script, timeout)
    except subprocess.TimeoutExpired:
        name = argv[0].rsplit("/", 1)[-1]
        raise CheckFailure(f"{name} did not finish within {timeout:g} s on this block") from None


def script_of(block: Block) -> tuple[str, str]:
    """(dialect, script text) with console output lines blanked."""
    if block.language not in CONSOLE:
        return ("sh" if block.language == "sh" else "bash"), block.body
    out: list[str] = []
    continuing = False
    for line in block.body.split("\n"):
        if line.startswith("$ ") or (line == "$"):
            out.append(line[2:])
            continuing = line.rstrip().endswith("\\")
        elif continuing:
            out.append(line)
            continuing = line.rstrip().endswith("\\")
        else:
            out.append("")
    return "bash", "\n".join(out)


# Speed: `bash -n` and ShellCheck depend only on the script (and the program), so a run checks
# each distinct script once; identical blocks (a command repeated across pages) reuse the answer.
# Within one process only: nothing is kept between runs.
@cache
def _bash_n(script: str) -> subprocess.CompletedProcess[str]:
    return _limited([tools.require("bash"), "-n"], script, BASH_N_TIMEOUT)


@cache
def _shellcheck(shellcheck: str, dialect: str, script: str) -> list[dict[str, Any]]:
    """ShellCheck's comments. It exits 0 with none and 1 with some; anything else (out of
    memory, killed, a crash) is a failure of the block that says so, never "no comments"."""
    argv = [shellcheck, "-f", "json1", "-s", dialect, "-e", ",".join(SHELLCHECK_EXCLUDE), "-"]
    result = _limited(argv, script, SHELLCHECK_TIMEOUT)
    try:
        comments: list[dict[str, Any]] = json.loads(result.stdout).get("comments", [])
    except (ValueError, AttributeError):
        comments = []
    if (result.returncode, bool(comments)) in ((0, False), (1, True)):
        return comments
    said = result.stderr.strip().splitlines()[:1] or [f"exit {result.returncode}"]
    raise CheckFailure(f"ShellCheck could not check this block: {said[0]}")


def _check_syntax(script: str) -> None:
    """`bash -n` (once per distinct script in a run): a syntax error at the line bash names."""
    syntax = _bash_n(script)
    if syntax.returncode not in (0, 2):  # 2: a syntax error; anything else: bash itself failed
        said = syntax.stderr.strip().splitlines()[:1] or [f"exit {syntax.returncode}"]
        raise CheckFailure(f"bash -n could not check this block: {said[0]}")
    if syntax.returncode != 0:
        message = syntax.stderr.strip().splitlines()[0] if syntax.stderr.strip() else "error"
        raise CheckFailure(f"shell syntax error: {message.split(': ', 2)[-1]}", _bash_line(message))


def _checked_in_time(state: dict[str, Any], script: str, dialect: str) -> None:
    """`bash -n` and ShellCheck, counted against the page's PAGE_CHECK_SECONDS (`state`: the
    page's, shared by its blocks)."""
    spent = float(state.get("shell_check_seconds", 0.0))
    if spent > PAGE_CHECK_SECONDS:
        raise CheckFailure(
            f"the page's shell checks (bash -n, ShellCheck) used up their {PAGE_CHECK_SECONDS} s; "
            "later blocks were not checked"
        )
    started = time.monotonic()
    try:
        _check_syntax(script)
        _check_shellcheck(dialect, script)
    finally:
        state["shell_check_seconds"] = spent + time.monotonic() - started


def _bash_line(message: str) -> int | None:
    """The block line a bash message names: "bash: line 3: syntax error ..." -> 3."""
    if "line " not in message:
        return None
    try:
        return int(message.split("line ", 1)[1].split(":", 1)[0])
    except ValueError:
        return None


def _check_shellcheck(dialect: str, script: str) -> None:
    """ShellCheck (once per distinct script): its first comment, at its line, and how many more."""
    shellcheck = tools.find("shellcheck")
    if shellcheck is None:
        raise CheckFailure(f"ShellCheck is not installed ({tools.TOOLS['shellcheck'].hint})")
    comments = _shellcheck(shellcheck, dialect, script)
    if comments:
        first = comments[0]
        more = f" (+{len(comments) - 1} more)" if len(comments) > 1 else ""
        raise CheckFailure(
            f"ShellCheck SC{first['code']} ({first['level']}): {first['message']}{more}",
            first["line"],
        )


class ShellChecker:
    name: ClassVar[str] = "shell"
    status: ClassVar[Status] = "run"
    languages: ClassVar[frozenset[str]] = frozenset({"bash", "sh", "shell"}) | CONSOLE

    def __init__(self, live_on: bool = False, table: dict[str, Model] | None = None) -> None:
        #: whether the run's live tier is on: its curl steps then print what really ran
        self.live_on = live_on
        self.models = models() if table is None else table

    def plan(self, block: Block) -> tuple[str, str] | None:
        """The ledger status of a block, said plainly: "run" when every command runs for real,
        "modelled" (with what the models stand in for) when one goes to a command model."""
        script = script_of(block)[1]
        if block.language in CONSOLE:
            heads = {h for step in steps(block.body) for h in self._model_heads(step)}
        else:
            heads = self._model_heads(Step(1, script, None, 1))
        if not heads:
            return None
        stand_ins = sorted({MODELLED.get(h, f"'{h}'") for h in heads})
        shown = [s for s in steps(block.body) if s.output] if block.language in CONSOLE else []
        note = "; the output shown is not compared" if shown else ""
        return "modelled", f"checked against a model of {', '.join(stand_ins)}{note}"

    def check(self, block: Block, ctx: Context) -> None:
        dialect, script = script_of(block)
        if block.language in CONSOLE and not script.strip():
            raise CheckFailure("a console block needs at least one command line starting with '$ '")
        _checked_in_time(ctx.state, script, dialect)
        if block.language in CONSOLE:
            self._run_console(block, ctx)
            return
        self.run(script, ctx)

    def _run_console(self, block: Block, ctx: Context) -> None:
        """Each `$` command of a transcript on its own, its output compared where it can be.
        The later steps are the same terminal's: a step that never returns (a foreground
        server) stops them too."""
        todo = steps(block.body)
        split_steps = [_split_or_none(step) for step in todo]
        for index, step in enumerate(todo):
            printed = self.run(step.script, ctx, step.line, _later(split_steps[index + 1 :]))
            if step.output is not None and printed is not None:
                _compare_or_update(step, printed, ctx)
            elif step.output is not None and not self._model_heads(step):
                # the ledger promised a comparison: a model that could not give the output
                # must not pass silently
                raise CheckFailure(
                    "the output shown cannot be compared: a command's model gave no output",
                    step.line,
                )

    def _model_heads(self, step: Step) -> set[str]:
        """Programs of a step that go to a model rather than run for real (the project's
        commands always run for real; curl too when the live tier is on and every URL it names
        is the backend's port, the only service that runs here, or Grafana's app proxy route,
        which the live tier sends to the backend behind it: Grafana itself is a model)."""
        real = _RUN_FOR_REAL | ({"curl"} if self.live_on and _curls_reach_backend(step) else set())
        return {h for h in _heads(step) if h not in real}

    def run(
        self, script: str, ctx: Context, first_line: int = 1, later: Sequence[Command] = ()
    ) -> str | None:
        """Each command to a command model, in the page's session; what the commands printed,
        or None when a model could not say. `first_line`: the block line the script starts at;
        `later`: commands the same block runs after this script (a transcript's next steps)."""
        try:
            commands = split(script, first_line)
        except SplitError as exc:
            raise CheckFailure(exc.reason, exc.line) from None
        session = ctx.session()
        session.printed = []
        try:
            session.run(commands, self.models, later)
        except CommandError as exc:
            line = getattr(exc, "line", None)
            shown = next((c.text.split("\n")[0] for c in commands if c.line == line), "")
            raise CheckFailure(f"`{shown}`: {exc}", line) from None
        if any(p is None for p in session.printed):
            return None
        return "".join(p if isinstance(p, str) else p.stdout for p in session.printed)


@dataclass(frozen=True)
class Step:
    """One `$ command` of a console block and the output shown under it."""

    line: int  # body line of the `$`, 1-based
    script: str  # the command, prompt removed; its first line is `line`
    output: list[str] | None  # the lines shown under it (None: nothing is shown)
    output_line: int  # body line of the first output line


def steps(body: str) -> list[Step]:
    lines = body.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    out: list[Step] = []
    i = 0
    while i < len(lines):
        if not (lines[i].startswith("$ ") or lines[i] == "$"):
            i += 1  # output before any command: shellcheck and the syntax check saw blanks
            continue
        start = i
        command = [lines[i][2:]]
        while command[-1].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            command.append(lines[i])
        i += 1
        shown_from = i
        while i < len(lines) and not (lines[i].startswith("$ ") or lines[i] == "$"):
            i += 1
        shown = lines[shown_from:i]
        while shown and not shown[-1].strip():
            shown.pop()
        script = "\n".join(command) + "\n"
        out.append(Step(start + 1, script, shown or None, shown_from + 1))
    return out


@lru_cache(maxsize=8)  # the questions about one step come together; a page's text is bounded
def _argvs(script: str, line: int) -> tuple[tuple[str, ...], ...]:
    """The word lists of a step's commands (split once per step; an error is reported with its
    line when the block is checked, so here it gives no command)."""
    try:
        return tuple(tuple(c.argv) for c in split(script, line, locate=False))
    except SplitError:
        return ()


#: a call of Grafana's app proxy route on this machine, which the live tier sends to the real
#: backend behind it (commands/curl.py `_behind_grafana`)
_PROXY_ROUTE = re.compile(r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?/api/plugin-proxy/")


def _curls_reach_backend(step: Step) -> bool:
    """Every URL of the step's curl commands names the backend's HTTP port or Grafana's app
    proxy route on this machine, as written (a URL built from a variable or another port
    counts as a model: the label says less, never more, than what ran)."""
    port = str(load_release_data().current.backend.ports["http"].port)
    argvs = _argvs(step.script, step.line)
    urls = [w for argv in argvs if argv[:1] == ("curl",) for w in argv if "://" in w]
    return bool(urls) and all(
        re.match(rf"https?://[^/:]+:{port}(/|$)", u) or _PROXY_ROUTE.match(u) for u in urls
    )


def _heads(step: Step) -> set[str]:
    """Programs of a step that are not file commands (those run in the jail)."""
    heads = {argv[0].rsplit("/", 1)[-1] for argv in _argvs(step.script, step.line) if argv}
    return {h for h in heads if h not in FILE_COMMANDS and h not in ("cd", "export")}


#: What each command model stands in for, as the ledger and the page note name it.
MODELLED = {
    "helm": "a Kubernetes cluster (real Helm, client-side dry run)",
    "kubectl": "a Kubernetes cluster (real kubectl, offline)",
    "docker": "a Docker daemon (real Compose, configuration only; builds from the Dockerfile)",
    "docker-compose": "a Docker daemon (real Compose, configuration only)",
    "curl": "the running services (ports and endpoints from the release data)",
    "nix": "upstream's flake and nixpkgs (real Nix, stand-in inputs)",
    "betrace-backend": "the backend program (started in the model only)",
    "git": "the project's remote repository",
    "make": "the project's make targets (named, not run)",
    "sleep": "time passing (no wait offline)",
}

#: Commands whose model runs the real program and returns what it printed: the project's own
#: commands (`python -m betrace_dist...`, `betrace-dist`), run for real on the page's copy.
_RUN_FOR_REAL = frozenset({"python", "python3", "betrace-dist"})


def _compare_or_update(step: Step, printed: str, ctx: Context) -> None:
    """Compare the shown output; under --update-outputs queue a rewrite instead of failing."""
    try:
        compare(step, printed)
    except CheckFailure:
        if ctx.updates is None or ctx.source_line is None:
            raise
        shown, actual = _lines(step, printed)
        first = ctx.source_line(step.output_line)
        last = ctx.source_line(step.output_line + len(shown) - 1)
        try:
            ctx.updates.queue(ctx.page, first, last, shown, actual)
        except update.UpdateError as exc:
            raise CheckFailure(str(exc), step.output_line) from None


def json_matches(shown: object, actual: object) -> bool:
    """A JSON document shown on a page against what was printed: `"..."` as a value stands for
    any value, a `"...": "..."` member for any further members, a last `"..."` item for any
    further items; everything else must be equal."""
    if shown == ELLIPSIS:
        return True
    if isinstance(shown, dict) and isinstance(actual, dict):
        open_ended = shown.get(ELLIPSIS) == ELLIPSIS
        keys = set(shown) - {ELLIPSIS}
        if not keys <= set(actual) or (not open_ended and keys != set(actual)):
            return False
        return all(json_matches(shown[k], actual[k]) for k in keys)
    if isinstance(shown, list) and isinstance(actual, list):
        if shown and shown[-1] == ELLIPSIS:
            head = shown[:-1]
            return len(actual) >= len(head) and all(map(json_matches, head, actual))
        return len(shown) == len(actual) and all(map(json_matches, shown, actual))
    return type(shown) is type(actual) and shown == actual


def _same_json(shown: str, actual: str) -> bool:
    try:
        return json_matches(json.loads(shown), json.loads(actual))
    except ValueError:
        return False


def _lines(step: Step, printed: str) -> tuple[list[str], list[str]]:
    """The output a step shows and what its command printed, line by line, ends trimmed."""
    shown = [line.rstrip() for line in step.output or []]
    actual = [line.rstrip() for line in printed.rstrip("\n").split("\n")] if printed else []
    return shown, actual


def matches_with_ellipses(shown: list[str], actual: list[str]) -> bool:
    """The shown lines against the printed ones, a line `...` standing for one or more lines (a
    lone `...` for any output, none included). Each literal run is placed at its leftmost place
    after the one before, which is where any match could put it: linear in the output, which
    the page controls (a regular expression of `.*?` backtracked for hours on a few lines)."""
    if shown == ["..."]:
        return True
    runs: list[list[str]] = [[]]
    for line in shown:
        if line == "...":
            runs.append([])
        else:
            runs[-1].append(line)
    if len(runs) == 1:  # as text: nothing shown is what a lone line break printed
        return "\n".join(shown) == "\n".join(actual)
    first, *middle, last = runs
    if actual[: len(first)] != first:
        return False
    text = "\n" + "\n".join(actual) + "\n"
    starts = [0]  # starts[i]: where the line break before line i is in `text`
    for line in actual:
        starts.append(starts[-1] + len(line) + 1)
    at = len(first) + 1  # the first `...` takes a line at least
    for run in middle:
        if run:
            found = text.find("\n" + "\n".join(run) + "\n", starts[min(at, len(actual))])
            if found < 0 or at > len(actual):
                return False
            at = bisect.bisect_left(starts, found)
        at += len(run) + 1
    tail = len(actual) - len(last)
    return tail >= at and actual[tail:] == last


def compare(step: Step, printed: str) -> None:
    """The output a console block shows must be what its command printed; `...` is any lines,
    and a JSON line is compared as JSON (see json_matches)."""
    shown, actual = _lines(step, printed)
    if ELLIPSIS not in shown and len(shown) == len(actual):
        shown = [
            a if s != a and _same_json(s, a) else s for s, a in zip(shown, actual, strict=True)
        ]
    if matches_with_ellipses(shown, actual):
        return
    for index, line in enumerate(shown):
        if line == "...":
            break
        got = actual[index] if index < len(actual) else None
        if got != line:
            said = f"printed '{got}'" if got is not None else "printed nothing more"
            raise CheckFailure(
                f"the page shows '{line}' as output, but the command {said}; copy what it "
                "prints, or write ... for lines that vary",
                step.output_line + index,
            )
    if "..." in shown:
        raise CheckFailure(
            "the output shown does not match what the command printed, even with ... for the "
            f"lines that vary; it printed: {' | '.join(actual[:6])}",
            step.output_line,
        )
    extra = actual[len(shown)] if len(actual) > len(shown) else ""
    raise CheckFailure(
        f"the command printed more than the page shows (next: '{extra}'); show all of it, "
        "or end the output with a line ...",
        step.output_line + len(shown) - 1,
    )


def _split_or_none(step: Step) -> list[Command] | None:
    """A transcript step's commands, split once (None: it does not split, which is told when
    it runs)."""
    try:
        return split(step.script, step.line)
    except SplitError:
        return None


def _later(rest: Sequence[list[Command] | None]) -> list[Command]:
    """The commands of a transcript's later steps, up to one that does not split."""
    out: list[Command] = []
    for commands in rest:
        if commands is None:
            break
        out += commands
    return out
