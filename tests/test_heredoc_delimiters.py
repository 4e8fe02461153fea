"""A here-document's delimiter is read as bash reads it: quote removal over the whole word, and
any quoted part makes it the quote-removed word. Read literally, `<<tr"u"e` would swallow the
commands after the body into it, and a block whose commands fail would pass.
"""

from __future__ import annotations

import pytest

from betrace_dist.gate.shellwords import heredoc_delimiter, split

BLOCK = 'cat > notes.txt <<tr"u"e\nhello\ntrue\ncat /does/not/exist\nls /nope\ntr"u"e\n'


def test_a_partly_quoted_delimiter_ends_where_bash_ends_it() -> None:
    commands = split(BLOCK)
    assert [(c.words, c.line) for c in commands[1:]] == [
        (["cat", "/does/not/exist"], 4),
        (["ls", "/nope"], 5),
        (['tr"u"e'], 6),
    ]
    assert commands[0].heredoc is not None and "cat /does" not in commands[0].heredoc


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("EOF", ("EOF", False)),
        ("'EOF'", ("EOF", True)),
        ('"EOF"', ("EOF", True)),
        ("\\EOF", ("EOF", True)),
        ('tr"u"e', ("true", True)),
        ("E'O'F", ("EOF", True)),
        ("E\\OF", ("EOF", True)),
        ('"a\\"b"', ('a"b', True)),
    ],
)
def test_delimiter_words_as_bash_reads_them(word: str, expected: tuple[str, bool]) -> None:
    assert heredoc_delimiter(word) == expected


def test_here_strings_are_not_here_documents() -> None:
    assert [c.words[0] for c in split('cat <<< "hello world"\nls\n')] == ["cat", "ls"]
