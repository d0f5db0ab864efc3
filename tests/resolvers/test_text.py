"""Text extraction and folding for the text-matching kinds."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from resolvers.base import excerpt_around, fold
from resolvers.text import html_to_text, normalize

spaced = st.text(alphabet=st.sampled_from("ab 失控\t\n\r\x0b\x0c\x1c\x85\xa0\u2003\u3000\u200bＡ"))


@given(spaced)
def test_text_normalize_collapses_every_whitespace_run(text: str) -> None:
    expected = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    assert normalize(text) == expected


@given(spaced)
def test_text_fold_and_excerpt_collapse_whitespace(text: str) -> None:
    assert fold(text) == re.sub(r"\s+", " ", text.casefold()).strip()
    assert excerpt_around(text, 0, 0, limit=10_000) == re.sub(r"\s+", " ", text).strip()


def test_text_hidden_elements_dropped_whatever_the_case() -> None:
    html = (
        "<p>İstanbul İİİ</p><SCRIPT type=x>alert('失控')</Script >"
        "<!-- 失控 --><Style>p{}</STYLE><p>标准</p><noscript>no</noscript>end"
    )
    # "İ" lower-cases to two characters: positions in the text must not drift.
    assert normalize(html_to_text(html)) == "İstanbul İİİ 标准 end"


def test_text_unclosed_hidden_element_hides_the_rest() -> None:
    assert normalize(html_to_text("<p>shown</p><script>var a = '<p>失控</p>'")) == "shown"
    assert normalize(html_to_text("<p>shown</p><!-- 失控")) == "shown"


def test_text_tag_names_are_ascii() -> None:
    # "ſ" matches "s" only case-insensitively in Unicode; a browser sees an unknown tag.
    assert normalize(html_to_text("<ſcript>失控</ſcript>")) == "失控"
