"""Split a shell block into the simple commands a reader types, with their lines.

bashlex parses the block as bash does (continuations, quotes, pipelines, lists, heredocs); each
simple command keeps its raw words (quotes and `$VAR` intact, expanded later by real bash), its
source text (heredoc included) and the line it starts on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import bashlex
import bashlex.errors

from ..errors import LineError
from . import printf


class SplitError(LineError):
    """A shell block bashlex cannot split as bash would."""


@dataclass
class Command:
    words: list[str]  # raw words as written (quotes kept), assignments first
    text: str  # the command's source text, heredoc body included
    line: int  # 1-based line in the block
    #: the same words with every $(...) replaced by a placeholder: what command models expand
    model_words: list[str] = field(default_factory=list)
    heredoc: str | None = None
    redirects: list[tuple[str, str]] = field(default_factory=list)  # (operator, raw target)
    #: what feeds its standard input besides a heredoc: (operator, raw word) of `<` and `<<<`
    inputs: list[tuple[str, str]] = field(default_factory=list)
    pipeline: tuple[int, int] = (0, 1)  # position in its pipeline, pipeline length
    background: bool = False
    substitutions: list[Command] = field(default_factory=list)

    @property
    def assignments(self) -> list[str]:
        out = []
        for word in self.words:
            name, eq, _ = word.partition("=")
            if eq and name.isidentifier():
                out.append(word)
            else:
                break
        return out

    @property
    def argv(self) -> list[str]:
        return self.words[len(self.assignments) :]


#: What a command substitution stands for when a command model reads its arguments.
SUBSTITUTED = "substituted-value"


#: a word the shell passes on as written: single-quoted, double-quoted with nothing to expand,
#: or bare with no quote, expansion, pipe or parenthesis
_CONSTANT_WORD = r"""'[^']*'|"[^"$`\\]*"|[^\s'"$`|()]+"""
#: a command substitution that prints text written into the page through base64
#: (`$(printf admin:secret | base64)`, `$(echo -n 'a:b' | base64)`): the text is the page's.
#: Its words are matched apart, one way only to split them: linear on any text.
_CONSTANT_BASE64 = re.compile(
    rf"\$\(\s*(printf|echo(?:\s+-n)?)\s+((?:{_CONSTANT_WORD})(?:\s+(?:{_CONSTANT_WORD}))*)"
    r"\s*\|\s*base64\s*\)"
)
#: a variable as the shell expands it in a word: $NAME or ${NAME}
_EXPANDED = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


def single_quoted(word: str) -> str | None:
    """The text of a word that is one single-quoted string (`'a:$b'`), where the shell expands
    nothing; None for any other word (`'a:'$B'c'` has an expanded part between its quotes)."""
    return word[1:-1] if re.fullmatch(r"'[^']*'", word) else None


def constant_base64(text: str) -> str | None:
    """The text a `$(printf ... | base64)` or `$(echo ... | base64)` in `text` encodes, when
    every word is written into the page (no variable, no substitution); None otherwise. printf
    is modelled (gate/printf.py); echo joins its words with spaces."""
    found = _CONSTANT_BASE64.search(text)
    if found is None:
        return None
    words = [w[1:-1] if w[:1] in "'\"" else w for w in re.findall(_CONSTANT_WORD, found[2])]
    return printf.printed(words) if found[1] == "printf" else " ".join(words)


def with_typed(value: str, typed: dict[str, str]) -> str:
    """`value` with each variable the page typed the value of ($NAME, ${NAME}) replaced by
    that value; other variables stay as written."""
    return _EXPANDED.sub(lambda m: typed.get(m[1] or m[2], m[0]), value)


def _line(script: str, pos: int) -> int:
    return script.count("\n", 0, pos) + 1


class _Collector(bashlex.ast.nodevisitor):  # type: ignore[misc]
    def __init__(self, script: str) -> None:
        self.script = script
        self.commands: list[Command] = []

    def command(self, node: bashlex.ast.node, background: bool, pipeline: tuple[int, int]) -> None:
        start, end = node.pos
        words: list[str] = []
        model_words: list[str] = []
        heredoc = None
        subs: list[Command] = []
        redirects: list[tuple[str, str]] = []
        inputs: list[tuple[str, str]] = []
        for part in node.parts:
            if part.kind in ("word", "assignment"):
                raw = self.script[part.pos[0] : part.pos[1]]
                masked = raw
                for sub in reversed(getattr(part, "parts", [])):
                    if sub.kind == "commandsubstitution":
                        inner = _Collector(self.script)
                        inner.walk(sub.command)
                        subs[:0] = inner.commands
                        a, b = sub.pos[0] - part.pos[0], sub.pos[1] - part.pos[0]
                        masked = masked[:a] + SUBSTITUTED + masked[b:]
                words.append(raw)
                model_words.append(masked)
            elif part.kind == "redirect":
                if getattr(part, "heredoc", None) is not None:
                    heredoc = part.heredoc.value
                    end = max(end, part.heredoc.pos[1])
                elif part.type in (">", ">>", ">|", "&>") and hasattr(part.output, "pos"):
                    target = self.script[part.output.pos[0] : part.output.pos[1]]
                    redirects.append((part.type, target))
                elif (
                    part.type in ("<", "<<<")
                    and getattr(part, "input", None) in (None, 0)
                    and hasattr(part.output, "pos")
                ):
                    inputs.append((part.type, self.script[part.output.pos[0] : part.output.pos[1]]))
        self.commands.append(
            Command(
                words=words,
                model_words=model_words,
                text=self.script[start:end],
                line=_line(self.script, start),
                heredoc=heredoc,
                redirects=redirects,
                inputs=inputs,
                pipeline=pipeline,
                background=background,
                substitutions=subs,
            )
        )

    def walk(self, node: bashlex.ast.node, background: bool = False) -> None:
        kind = node.kind
        if kind == "command":
            self.command(node, background, (0, 1))
        elif kind == "pipeline":
            members = [p for p in node.parts if p.kind != "pipe"]
            for index, member in enumerate(members):
                if member.kind != "command":
                    raise SplitError(
                        _line(self.script, member.pos[0]),
                        "a pipeline member that is not a simple command is not modelled",
                    )
                self.command(member, background, (index, len(members)))
        elif kind == "list":
            for part, amp in _backgrounded(node.parts):
                self.walk(part, background=amp)
        else:
            raise SplitError(
                _line(self.script, node.pos[0]),
                f"shell {kind} constructs (if, for, while, functions, subshells) are not modelled "
                "in guide blocks; write the steps as plain commands",
            )


def _backgrounded(parts: list[bashlex.ast.node]) -> list[tuple[bashlex.ast.node, bool]]:
    """A list's commands and pipelines, each with whether it runs in the background: `&` ends
    an AND-OR list (`a && b &`), and bash runs all of it in the background, `a` too."""
    out: list[tuple[bashlex.ast.node, bool]] = []
    pending: list[bashlex.ast.node] = []
    for part in [*parts, None]:
        if part is not None and part.kind != "operator":
            pending.append(part)
        elif part is None or part.op in (";", "&", "\n"):
            amp = part is not None and part.op == "&"
            out += [(member, amp) for member in pending]
            pending = []
    return out


#: A here-document's delimiter word: bare characters, 'single', "double" quoted parts and
#: backslash escapes, in any mix (`<<EOF`, `<<'EOF'`, `<<tr"u"e`, `<<\\EOF`, `<<-E'O'F`).
_HEREDOC = re.compile(
    r"(?<!<)<<(?!<)(-?)([ \t]*)((?:[^\s;&|<>()'\"\\]|'[^']*'|\"(?:[^\"\\]|\\.)*\"|\\.)+)"
)
_QUOTE_PART = re.compile(r"'([^']*)'|\"((?:[^\"\\]|\\.)*)\"|\\(.)|([^'\"\\]+)")


def heredoc_delimiter(word: str) -> tuple[str, bool]:
    """The delimiter bash reads from a `<<` word and whether the body is left unexpanded: bash
    removes quotes over the whole word, and any quote or backslash in it quotes the body."""
    parts = []
    for match in _QUOTE_PART.finditer(word):
        single, double, escaped, bare = match.groups()
        if double is not None:
            double = re.sub(r"\\([$`\"\\\n])", r"\1", double)
        parts.append(next(p for p in (single, double, escaped, bare) if p is not None))
    return "".join(parts), any(c in word for c in "'\"\\")


def _bare_delimiters(script: str) -> str:
    """The script with quoted here-document delimiters written bare (as bash reads them), padded
    with spaces so that every offset (and so every command's source text, taken from the
    original) is unchanged."""

    def bare(match: re.Match[str]) -> str:
        word, quoted = heredoc_delimiter(match[3])
        if not quoted:
            return match[0]
        if not re.fullmatch(r"[\w.+-]+", word):
            raise SplitError(
                _line(script, match.start()),
                f"here-document delimiter {match[3]!r} is not modelled: use a plain word "
                "such as 'EOF'",
            )
        pad = len(match[0]) - len(match[1]) - len(word) - 2
        return f"<<{match[1]}{' ' * pad}{word}"

    return _HEREDOC.sub(bare, script)


_UNCLOSED = re.compile(r"here-document .* delimited by end-of-file \(wanted ['\"](\w+)['\"]\)")


def _unclosed_heredoc(script: str, message: str) -> SplitError | None:
    """A here-document never closed, reported at its `<<` (bashlex names the end of the block)."""
    match = _UNCLOSED.search(message)
    if match is None:
        return None
    word = match[1]
    for opened in re.finditer(r"<<(-?)[ \t]*['\"\\]?" + word + r"\b", script):
        rest = script[opened.end() :].split("\n")[1:]
        strip = "\t" if opened[1] else ""
        if not any(line.lstrip(strip) == word for line in rest):
            start = opened.start()
            break
    else:
        return None
    return SplitError(
        _line(script, start),
        f"the here-document opened here is never closed: end it with a line holding only {word}",
    )


def split(script: str, first_line: int = 1, locate: bool = True) -> list[Command]:
    """The simple commands of a script, in order; `first_line` is the block line the script
    starts at (a console step's command alone, never padded with the lines before it, which
    bashlex would read again for every step). `locate=False`: a caller that discards a parse
    error's line does not pay for finding it (_error_line parses again)."""
    try:
        commands = _split(script, locate)
    except SplitError as exc:
        raise SplitError(exc.line + first_line - 1 if exc.line else exc.line, exc.reason) from None
    if first_line != 1:
        _shift(commands, first_line - 1)
    return commands


def _shift(commands: list[Command], lines: int) -> None:
    for command in commands:
        command.line += lines
        _shift(command.substitutions, lines)


def _error_line(script: str, message: str, position: int) -> int:
    """The line of bashlex's parse error. bashlex counts its position from the start of the line
    it was reading, not of the script (an error on the second line of `echo ok` then `if then`
    is at position 3), so the line is found by parsing: the first line such that the script up
    to it fails the same way (before it, the script parses or ends early). A binary search: a
    few parses, and only for a block that fails. Not exact for every script: where prefixes
    fail the same way, pass, then fail again (unclosed quotes and `case` mixed; 15 of 3,000
    fuzzed scripts), the line found can be a later one than bash names."""
    lines = script.split("\n")

    def fails_the_same(count: int) -> bool:
        try:
            bashlex.parse(_bare_delimiters("\n".join(lines[:count]) + "\n"))
        except bashlex.errors.ParsingError as exc:
            return (exc.message, exc.position) == (message, position)
        except NotImplementedError:
            return False
        return False

    low, high = 1, len(lines)
    while low < high:
        middle = (low + high) // 2
        if fails_the_same(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _split(script: str, locate: bool = True) -> list[Command]:
    if not script.strip():
        return []
    try:
        trees = bashlex.parse(_bare_delimiters(script))
    except bashlex.errors.ParsingError as exc:
        unclosed = _unclosed_heredoc(script, exc.message)
        if unclosed is not None:
            raise unclosed from None
        line = _error_line(script, exc.message, exc.position) if locate else 1
        raise SplitError(line, f"cannot parse the command: {exc.message}") from None
    except NotImplementedError as exc:
        raise SplitError(1, f"unsupported shell syntax: {exc}") from None
    collector = _Collector(script)
    for tree in trees:
        collector.walk(tree)
    return collector.commands
