"""The gate's own scans of page text stay linear in it: the page controls that text.

A console block's shown output against what its command printed (`...` lines): the page controls
both sides, and a regular expression of `.*?` for each `...` backtracked without end on a few
lines of output. The expected results come from that regular expression, the old definition of
a match, kept here as the model. The scan for variables a page defines is held the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from betrace_dist.gate.checkers.shell import matches_with_ellipses
from betrace_dist.release import ReleaseData


def by_regular_expression(shown: list[str], actual: list[str]) -> bool:
    pattern = "\n".join(".*?" if line == "..." else re.escape(line) for line in shown)
    return re.fullmatch(pattern, "\n".join(actual), re.DOTALL) is not None


LINES = st.sampled_from(["a", "b", "", "..."])


@given(st.lists(LINES, max_size=8), st.lists(st.sampled_from(["a", "b", ""]), max_size=10))
def test_ellipses_match_as_the_regular_expression_did(shown: list[str], actual: list[str]) -> None:
    assert matches_with_ellipses(shown, actual) == by_regular_expression(shown, actual)


def test_examples() -> None:
    assert matches_with_ellipses(["a", "...", "c"], ["a", "b", "b", "c"])
    assert not matches_with_ellipses(["a", "...", "c"], ["a", "c"])  # `...` is a line at least
    assert matches_with_ellipses(["..."], [])
    assert matches_with_ellipses(["...", "x", "...", "y"], ["x", "x", "q", "y"])


def test_output_that_made_the_old_comparison_backtrack_is_answered() -> None:
    """Eight `...` between `a` lines against 3,000 printed `a` lines and no `b`: the regular
    expression ran for hours. Run in a thread, so a return to it fails instead of hanging."""
    answer: list[bool] = []
    shown = ["...", "a"] * 8 + ["b"]
    worker = threading.Thread(
        target=lambda: answer.append(matches_with_ellipses(shown, ["a"] * 3000)), daemon=True
    )
    worker.start()
    worker.join(120)
    assert answer == [False], "the comparison did not return"


def test_a_page_of_blank_lines_is_scanned_for_variables_at_once() -> None:
    """The scan for variables a page defines (typed.defined_variables) split each run of blank
    lines every way from each line start: 3,000 blank lines took 80 s, 10,000 over five minutes."""
    code = (
        "from betrace_dist.gate import typed\n"
        "text = '# A page\\n\\nA short page.' + '\\n' * 20_000 + 'export BETRACE_DEBUG=1\\n'\n"
        "print(sorted(typed.defined_variables(text)))"
    )
    assert _returns(code) == "['BETRACE_DEBUG']"


def _returns(code: str, seconds: float = 120) -> str:
    """What a Python snippet printed, run in a child process: one regular expression call holds
    the interpreter until it returns (a thread's join cannot end it), so a scan that does not
    return is killed after `seconds` and fails here instead of hanging the suite."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the scan did not return in {seconds} s")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_line_of_blanks_is_scanned_for_variables_at_once() -> None:
    """`[ \t]*-?[ \t]*` after a line start split one line of blanks every way: a page line
    of 300,000 tabs held the gate 10 minutes, past its processor budget, which cannot stop one
    regular expression call."""
    code = (
        "from betrace_dist.gate import typed\n"
        "text = '# A page\\n\\nSome text\\n' + '\\t' * 300_000 + 'x\\n  - \\t\"BETRACE_DEBUG=1'\n"
        "print(sorted(typed.defined_variables(text)))"
    )
    assert _returns(code) == "['BETRACE_DEBUG']"


def test_a_long_printf_is_read_for_a_written_password_at_once() -> None:
    """`$(printf WORD... | base64)` read as words with optional blanks between them split a
    run of letters every way: 40 letters with no `| base64` after them held the scan for
    hours. Words are now apart, one way only to split them."""
    code = (
        "from betrace_dist.gate.shellwords import constant_base64\n"
        "print(constant_base64('$(printf ' + 'a' * 200_000), "
        "constant_base64('$(echo ' + 'a ' * 200_000 + \"| base64)\")[-3:])"
    )
    assert _returns(code) == "None a a"
    # printf's own model: a format used again for each of 300,000 words, a width of the page's
    # choosing, a run of zeros the flags and the width could both take: bounded and linear
    code = (
        "from betrace_dist.gate.printf import printed, PRINTED_MAX\n"
        "print(len(printed(['x' * 1000 + '%s', *['y'] * 300_000])) == PRINTED_MAX,"
        " printed(['%99999999999s', 'pw']), len(printed(['%' + '0' * 200_000 + '!', 'pw'])),"
        " len(printed(['%65536s' * 2000])), len(printed(['%*s' * 2000, *['65536'] * 4000])))"
    )
    assert _returns(code) == "True %99999999999s pw 65536 65536 65536"


def test_a_long_line_is_scanned_for_secrets_at_once() -> None:
    """The secrets scan tried a name from every character of a run of name characters, each
    scanning the rest of the run: 16,000 characters took 12 s, a page's 400,000 hours."""
    code = (
        "from betrace_dist.artefacts import secrets\n"
        "print(list(secrets.scan_text('x:' + '-a' * 200_000, 'page.md')))"
    )
    assert _returns(code) == "[]"
    from betrace_dist.artefacts import secrets

    shown = "db.password=Zk3l9Qx8vB2mN7pL4tR6"  # a name inside a longer one is still read
    assert [f.excerpt for f in secrets.scan_text(shown, "page.md")] == ["db.password = Zk3l…"]


def test_snippets_that_include_each_other_are_stopped_at_the_pages_budget(tmp_path: Path) -> None:
    """Four small files, each including the next 40 times, made 189 MB of Markdown (four
    minutes, 0.9 GB) before the page's size limit was looked at: the inclusions count now."""
    import markdown

    from betrace_dist.site.snippets import AllowListedSnippets

    folder = tmp_path / "docs" / "s"
    folder.mkdir(parents=True)

    def including(name: str) -> str:
        return f'--8<-- "docs/s/{name}.txt"\n' * 40

    for name, following in zip("abc", "bcd", strict=True):
        (folder / f"{name}.txt").write_text(including(following))
    (folder / "d.txt").write_text("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n")
    snippets = AllowListedSnippets(base_path=[str(tmp_path)], check_paths=True)
    md = markdown.Markdown(extensions=[snippets])
    with pytest.raises(Exception, match="more than 400,000 characters") as refused:
        md.convert('--8<-- "docs/s/a.txt"\n')  # 40^3 inclusions of d.txt: 3.6 MB
    # named as the page names it, never by the checkout's place on the machine
    assert str(refused.value).startswith("snippet 'docs/s/d.txt' is refused"), refused.value
    assert str(tmp_path) not in str(refused.value)
    md.reset()
    assert "Lorem ipsum" in md.convert('--8<-- "docs/s/d.txt"\n')  # one inclusion is fine


def test_a_markdown_link_out_of_the_pages_is_refused_before_it_is_looked_at(
    tmp_path: Path,
) -> None:
    """The gate looked at (and read, for an anchor of a .md file) what a link named with its
    own rights, and said whether it existed: a page could learn what files the machine has."""
    from betrace_dist.gate.display import Shown, link_problems

    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "exists.md").write_text("# Outside\n")
    page = docs / "p.md"
    links = ["../exists.md", "../missing.md", "../exists.md#a"]
    shown = Shown(links=links)
    found = link_problems("\n".join(links), page, docs, shown, lambda _: set())
    assert [p.reason for p in found] == [
        f"the link '{h}' leaves the site's pages (docs/)" for h in links
    ]


def test_only_the_first_broken_anchors_get_a_suggestion(tmp_path: Path) -> None:
    """Each suggestion compares with every id of the page: thousands of broken anchors on a
    page of thousands of headings took minutes, so only the first few get one."""
    from betrace_dist.gate.display import SUGGESTED, Shown, link_problems

    docs = tmp_path / "docs"
    docs.mkdir()
    links = [f"#headin{n}" for n in range(SUGGESTED + 5)]
    shown = Shown(ids={f"heading{n}" for n in range(SUGGESTED + 5)}, links=links)
    found = link_problems("\n".join(links), docs / "p.md", docs, shown, lambda _: set())
    suggested = [p for p in found if "did you mean" in p.reason]
    assert len(found) == SUGGESTED + 5 and len(suggested) == SUGGESTED, found[:3]


def test_a_paragraph_of_many_sizes_is_read_once(release_data: ReleaseData) -> None:
    """Each size walked its whole paragraph again: 12,000 lines of sizes took minutes. Run in a
    thread, so a return to that fails instead of hanging; every size is still reported at its
    line."""
    from betrace_dist.gate import typed

    text = "# Sizes\n\n" + "The body may hold 7 MiB\n" * 12_000
    found: list[list[int]] = []
    worker = threading.Thread(
        target=lambda: found.append([p.line for p in typed._sizes(text, release_data, False)]),
        daemon=True,
    )
    worker.start()
    worker.join(120)
    assert found == [list(range(3, 12_003))], "the scan did not return, or lost a line"


def test_a_console_block_of_thousands_of_steps_is_split_once_per_step() -> None:
    """Each step was split with every line before it as blank lines, which bashlex read again:
    6,000 steps ran past five minutes. A step's command is split alone, its lines shifted to the
    block's, so an error still names the block line. Run in a thread, so a return to the old
    way fails instead of hanging."""
    from betrace_dist.gate.checkers.shell import _heads, steps
    from betrace_dist.gate.shellwords import SplitError, split

    body = "$ true\n" * 6000 + "$ helm version\n"
    heads: list[set[str]] = []

    def plan() -> None:
        heads.append(set().union(*(_heads(step) for step in steps(body))))

    worker = threading.Thread(target=plan, daemon=True)
    worker.start()
    worker.join(120)
    assert heads == [{"helm"}], "the steps were not split in time"  # true runs in the jail
    assert split("echo one\necho two\n", first_line=7)[1].line == 8
    with pytest.raises(SplitError) as error:
        split("if then\n", first_line=7)
    assert error.value.line == 7


def test_a_hash_line_is_a_stray_heading_unless_a_comment_starting_a_line_hides_it() -> None:
    """Python-Markdown keeps a comment that starts a line as raw HTML (nothing in it is shown);
    one that starts mid-line protects nothing: its `#x` line is an <h1> (seen with
    Python-Markdown here), so the gate flags it."""
    import markdown

    from betrace_dist.gate.display import stray_headings

    hidden = "text\n<!--\n#x hidden\n-->\n"
    shown = "text <!-- a\n#x shown -->\n"
    assert "<h1>" not in markdown.markdown(hidden) and "<h1>" in markdown.markdown(shown)
    assert stray_headings(hidden, []) == []
    assert [p.line for p in stray_headings(shown, [])] == [2]


def test_many_unclosed_comments_and_hash_lines_are_read_in_one_pass() -> None:
    """Thousands of `<!--` without an end and `#x` lines: no search from every opening, no walk
    of every span for every line (run in a thread that must return)."""
    from betrace_dist.gate.display import stray_headings

    text = "x <!--\n#y\n" * 20_000
    found: list[int] = []
    worker = threading.Thread(
        target=lambda: found.append(len(stray_headings(text, []))), daemon=True
    )
    worker.start()
    worker.join(120)
    assert found == [20_000], "the scan did not return"


def test_many_problems_on_one_line_are_placed_and_named_in_one_pass() -> None:
    """40,000 links to nothing on one line: each problem's region gets its own start and its
    test id its own number, without walking the others for each (20,000 took 99 s; the
    thread's 120 s are for a slow machine, the fix takes about a second)."""
    from types import SimpleNamespace

    from sybil import Document

    from betrace_dist.gate.collect import GateSybil, PageDocument, PageResult, ProblemParser

    count = 40_000
    text = "[a](n.md)" * count + "\n"  # the line the links are on: a region for each
    document = PageDocument.__new__(PageDocument)
    Document.__init__(document, text, "p.md")
    rendered = SimpleNamespace(text=text)
    problems = [(1, 1, "no page")] * count
    document.result = PageResult(Path("p.md"), rendered, [], None, problems)  # type: ignore[arg-type]
    parser = ProblemParser(SimpleNamespace(page_name=lambda _: "p.md"))  # type: ignore[arg-type]
    ids: list[str] = []

    def collect() -> None:
        for region in parser(document):
            document.add(region)
        for example in document.examples():
            ids.append(GateSybil.identify(None, example))  # type: ignore[arg-type]

    worker = threading.Thread(target=collect, daemon=True)
    worker.start()
    worker.join(120)
    assert len(ids) == count, "collecting did not return"
    assert ids[:2] == ["line:1,-", "line:1#2,-"] and ids[-1] == f"line:1#{count},-"


@pytest.mark.parametrize(
    "page",
    [
        "text\n<!-- a note --!>\n#stray\n",  # Python-Markdown's comment ends at --!> too
        "text\n\n```console\n$ echo '<!--'\n```\n\n#stray\n",  # no comment inside code
    ],
)
def test_a_comment_that_python_markdown_has_closed_hides_no_heading(page: str) -> None:
    import markdown

    from betrace_dist.gate.display import stray_headings
    from betrace_dist.gate.lexer import blocks

    assert "<h1>stray</h1>" in markdown.markdown(page, extensions=["fenced_code"])
    line = page.split("\n").index("#stray") + 1
    assert [p.line for p in stray_headings(page, blocks(page))] == [line]


def test_a_pages_failures_are_reported_within_a_budget(tmp_path: Path) -> None:
    """Each failure's text was capped, but not their sum: 2,000 failing blocks of a 131 KB
    page made a 33 MB report. Past the page's budget (and the run's), a failure keeps its
    first line, which names page:line."""
    from types import SimpleNamespace

    from betrace_dist.gate import collect

    (tmp_path / "docs").mkdir()
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    gate = collect.Gate(tmp_path / "mkdocs.yml")
    page = SimpleNamespace(namespace={}, path="p.md", line=1, column=1)
    long = "p.md:{}: shell block (bash): `kubectl get pod x`: no Pod 'x'; pods: " + "y" * 4000
    said = [str(gate._failure(page, long.format(n))) for n in range(200)]
    assert said[0] == long.format(0)
    assert said[-1].startswith("p.md:199: shell block") and len(said[-1]) < 400, said[-1]
    assert "left out" in said[-1]
    assert sum(len(s) > 400 for s in said) <= collect.PAGE_REPORT_LIMIT // 4000 + 1
    other = SimpleNamespace(namespace={}, path="q.md", line=1, column=1)
    assert str(gate._failure(other, long.format(0))) == long.format(0)  # its own budget


def test_deeply_nested_nix_is_read_in_one_pass() -> None:
    """Each `x = {` looked for its matching `}` to tell a function's argument set from an
    attribute set: a block nested 2,000 deep took 21.6 s per read, and every Nix check reads
    the block again, past the block's processor budget. At 20,000 deep that walk would take
    half an hour; one pass takes well under a second. Past nix_env.MAX_PATH components (a later
    attack filled the gate's memory with deep paths) the block is refused, as quickly."""
    code = (
        "from betrace_dist.gate import nix_env\n"
        "from betrace_dist.gate.failure import CheckFailure\n"
        "for depth in (nix_env.MAX_PATH - 2, 20_000):\n"
        "    opened = ''.join(f'a{i} = {{ ' for i in range(depth))\n"
        "    text = '{ ' + opened + 'x = 1; ' + '}; ' * depth + '}'\n"
        "    try:\n"
        "        print(len(nix_env.assignments(text)))\n"
        "    except CheckFailure:\n"
        "        print('refused')"
    )
    assert _returns(code).split() == ["1", "refused"]


INDENTED_LINES = st.sampled_from(
    ["", "x", " x", "  x", "   x", "    x", "\tx", " \tx", "\t\tx", "     x"]
)


@given(st.lists(INDENTED_LINES, max_size=40), st.lists(st.integers(0, 12), max_size=10))
def test_the_nearest_shallower_line_is_that_of_a_walk_back(
    lines: list[str], widths: list[int]
) -> None:
    """A fence's container was found by walking back from the fence over every line above it,
    for each fence: 50,000 lines under 32,000 fences held the gate for its whole budget, and a
    first cure shared walks of one width only (600 widths of tabs undid it). The lines are read
    once now (lexer.Shallower); its answers are those of the walk, kept here as the model."""
    from betrace_dist.gate import lexer

    read = lexer.Shallower()
    for i, line in enumerate(lines):
        for width in widths:
            walk = next(
                (
                    k
                    for k in range(i - 1, -1, -1)
                    if lines[k].strip()
                    and len(lines[k].expandtabs(4)) - len(lines[k].expandtabs(4).lstrip()) < width
                ),
                -1,
            )
            assert read.nearest(width) == walk, (lines[:i], width)
        read.push(i, line)


def test_fences_of_many_widths_under_many_lines_read_each_line_once() -> None:
    """Event-based: 600 fences of 600 widths (tabs make wide ones short) under 20,000 lines;
    the lines read stay one each, where a walk from each fence reads about 12,000,000."""
    from betrace_dist.gate import lexer

    class Counted(str):
        reads = 0

        def expandtabs(self, tabsize: int = 8) -> str:  # type: ignore[override]
            Counted.reads += 1
            return super().expandtabs(tabsize)

    read = lexer.Shallower()
    for i in range(20_000):
        read.push(i, Counted("  x"))
    for k in range(599, -1, -1):
        read.nearest(4 * k + 1)
    assert Counted.reads == 20_000, Counted.reads
