"""What the site's build tests read of a built page (site/reader_text.py): its article, and its
text outside code. The attack found both read with patterns tried again from every `<code` (or
`<article`) a page wrote: a page of 55,000 unclosed `<code>x` took 81 s in one test. Both are
one pass now; these cases hold that they read what the patterns read."""

from __future__ import annotations

import re

import pytest

from betrace_dist.site import reader_text

#: what the old patterns read, kept here as the meaning the one-pass readers must keep
_OLD_CODE = re.compile(r"<pre\b.*?</pre>|<code\b.*?</code>", re.DOTALL)
_OLD_ARTICLE = re.compile(r"<article\b.*</article>", re.DOTALL)

CASES = [
    "plain {{ macro }} text",
    "a <code>{{ x }}</code> b {{ y }}",
    "<pre><code>{% if %}</code>\n{{ z }}</pre> after",
    "<code>x <code>y</code> z</code> {{",
    "<pre>open, never closed {{ a }} <code>c</code> {%",
    "<code>x" * 50 + " {{ left }}",
    "<codex>not code</codex> <preamble> {{ p }}",
    "<article class=a>one</article> <article>two</article> tail",
    "<article>never closed",
    "</article> before <article>",
    "",
]


@pytest.mark.parametrize("html", CASES)
def test_code_is_left_out_as_the_pattern_left_it_out(html: str) -> None:
    assert reader_text.without_code(html) == _OLD_CODE.sub("", html)


@pytest.mark.parametrize("html", CASES)
def test_the_article_is_what_the_pattern_found(html: str) -> None:
    found = _OLD_ARTICLE.search(html)
    assert reader_text.article(html) == (found[0] if found else "")


def test_a_page_of_unclosed_code_keeps_its_text_and_its_macro() -> None:
    """The attack's page, smaller: every `<code>x` stays (none is closed), so a macro after
    them is still found."""
    html = "Text " + "<code>x" * 5000 + " {{ leaked }}"
    assert reader_text.without_code(html) == html
