"""Telegram HTML rendering: escaping, templates, the strict validator and UTF-16-safe fitting.

The validator is cross-checked against the stand-in's independent port of Telegram's own parser.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resources.publishers.render import (
    ELLIPSIS,
    MESSAGE_LIMIT,
    Html,
    TelegramHTMLError,
    escape_html,
    fit_message,
    render_template,
    utf16_length,
    validate_telegram_html,
    visible_text,
)
from tests.support.telegram_standin import parse_html

HOSTILE = [
    "<script>alert(1)</script>",
    "AT&T",
    "</b><i>",
    "a < b > c",
    "\"quoted\" 'single'",
    "&amp;",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_text_is_valid_and_shows_exactly_the_input(value: str) -> None:
    escaped = escape_html(value)
    validate_telegram_html(escaped)
    assert visible_text(escaped) == value
    assert parse_html(escaped)[0] == value  # Telegram's reading agrees


def test_utf16_length_counts_astral_characters_twice() -> None:
    assert utf16_length("abc") == 3
    assert utf16_length("€") == 1
    assert utf16_length("🚀") == 2
    assert utf16_length("👨‍👩‍👧") == 8  # three astral emoji joined by two U+200D


@pytest.mark.parametrize(
    "html",
    [
        "plain",
        "<b>bold</b> <strong>s</strong> <i>i</i> <em>e</em> <u>u</u> <ins>n</ins>",
        "<s>s</s> <strike>k</strike> <del>d</del>",
        '<a href="https://dexscreener.com/solana/abc?x=1&amp;y=2">chart</a>',
        "<code>x &lt; y</code>",
        '<pre>raw</pre> <pre><code class="language-python">print(1)</code></pre>',
        '<tg-spoiler>s</tg-spoiler> <span class="tg-spoiler">s</span>',
        "<blockquote>q</blockquote> <blockquote expandable>long</blockquote>",
        "<b>bold <i>italic <u>under <s>strike <tg-spoiler>spoiler</tg-spoiler></s></u></i></b>",
        "&lt; &gt; &amp; &quot; &#39; &#x1F680; &#128640;",
        "<B>upper-case tags</B>",
    ],
)
def test_accepts_telegrams_html_subset(html: str) -> None:
    validate_telegram_html(html)
    plain, _ = parse_html(html)
    assert plain == visible_text(html)


@pytest.mark.parametrize(
    ("html", "position", "fragment"),
    [
        ("a < b", 2, "'<' does not start"),
        ("a > b", 2, "unescaped '>'"),
        ("AT&T", 2, "'&' does not start an entity"),
        ("&nbsp;", 0, "'&' does not start an entity"),
        ("&amp", 0, "ending with ';'"),
        ("&#X41;", 0, "'&' does not start an entity"),  # Telegram knows a lower-case x only
        ("&#0;", 0, "not a valid character"),
        ("&#xD800;", 0, "not a valid character"),
        ("<b>open", 0, "<b> is never closed"),
        ("x</b>", 1, "has no start tag"),
        ("<b>x</i>", 4, "closes <b> opened at character 0"),
        ("<b><i>x</b></i>", 7, "closes <i>"),
        ("<script>x</script>", 0, "not in Telegram's HTML subset"),
        ("<br>", 0, "not in Telegram's HTML subset"),
        ("<a>x</a>", 0, "href"),
        ('<a href="">x</a>', 0, "href"),
        ("<a href=x>y</a>", 0, "must be quoted"),
        ('<a href="x" title="t">y</a>', 0, "href"),
        ('<b class="x">y</b>', 0, "takes no attributes"),
        ('<span class="x">y</span>', 0, "tg-spoiler"),
        ('<code class="language-py">x</code>', 0, "directly enclosing <pre>"),
        ('<pre><code class="language-">x</code></pre>', 5, "needs a name"),
        ("<pre>text<code>x</code></pre>", 9, "either text or one <code>"),
        ("<pre><code>x</code>more</pre>", 19, "either text or one <code>"),
        ("<pre><b>x</b></pre>", 5, "either text or one <code>"),
        ("<code><b>x</b></code>", 6, "inside <code>"),
        ('<a href="u"><a href="v">x</a></a>', 12, "inside another <a>"),
        ("<blockquote><blockquote>x</blockquote></blockquote>", 12, "inside another"),
        ('<a href="a&b">x</a>', 0, "in an attribute value"),
        ("<blockquote foo>x</blockquote>", 0, "expandable"),
        ("<b>x</b attr>", 4, "has attributes"),
    ],
)
def test_rejects_with_the_position_of_the_first_problem(
    html: str, position: int, fragment: str
) -> None:
    with pytest.raises(TelegramHTMLError) as caught:
        validate_telegram_html(html)
    assert caught.value.position == position
    assert fragment in str(caught.value)
    assert f"at character {position}" in str(caught.value)
    assert isinstance(caught.value, ValueError)


# -- templates ---------------------------------------------------------------------------------

SIGNAL = (
    "<b>{direction} {symbol}</b> on {exchange}\n"
    "Entry <code>{entry:.4f}</code> · stop {stop:,.2f}\n"
    '<a href="{chart}">chart</a> <i>{note}</i>'
)


def test_template_escapes_every_value_but_keeps_its_own_tags() -> None:
    values = {
        "direction": "LONG",
        "symbol": "<script>alert('x')</script>",
        "exchange": "AT&T <b>exchange",
        "entry": 0.000123456,
        "stop": 1234.5,
        "chart": 'https://dexscreener.com/solana/x?a=1&b="2"',
        "note": "</i></b>unbalanced<b>",
    }
    html = render_template(SIGNAL, values)
    validate_telegram_html(html)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<code>0.0001</code>" in html and "stop 1,234.50" in html
    plain, entities = parse_html(html)
    assert "LONG <script>alert('x')</script> on AT&T <b>exchange" in plain
    assert plain.endswith("chart </i></b>unbalanced<b>")
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == values["chart"]  # the URL survives escaping intact
    assert [e["type"] for e in entities].count("bold") == 1


def test_template_inserts_html_values_raw_and_still_validates_them() -> None:
    rendered = render_template("{targets}", {"targets": Html("<b>TP1</b> 1.2")})
    assert rendered == "<b>TP1</b> 1.2"
    with pytest.raises(TelegramHTMLError, match="rendered template"):
        render_template("{targets}", {"targets": Html("<b>TP1")})
    assert render_template("{x:>5}", {"x": Html("<b>")}) == "  &lt;b&gt;"  # a spec: text


@pytest.mark.parametrize(
    ("template", "values", "error", "match"),
    [
        ("<b>{missing}</b>", {}, KeyError, "missing"),
        ("<b>{}</b>", {"x": 1}, ValueError, "plain name"),
        ("{0}", {"x": 1}, ValueError, "plain name"),
        ("{x.__class__}", {"x": 1}, ValueError, "plain name"),
        ("{x[0]}", {"x": [1]}, ValueError, "plain name"),
        ("<b>{x}", {"x": 1}, TelegramHTMLError, "never closed"),
        ("{x", {"x": 1}, ValueError, "expected '}'"),
    ],
)
def test_template_errors(
    template: str, values: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        render_template(template, values)


# -- fitting -----------------------------------------------------------------------------------


def test_fit_leaves_a_message_within_the_limit_untouched() -> None:
    html = "<b>" + "x" * 4000 + "</b>" + "&amp;" * 96  # 4096 visible, far more raw characters
    assert fit_message(html) == html


@pytest.mark.parametrize(
    ("html", "limit", "expected"),
    [
        ("<b>abcdef</b> ghi", 4, "<b>abc</b>…"),
        ("<b>abc</b> <i>defg</i>", 5, "<b>abc</b>…"),  # blank dropped, empty <i> dropped
        ("a&amp;b&amp;c", 4, "a&amp;b…"),  # an entity is one character, never cut
        ("ab🚀cd", 4, "ab…"),  # the rocket needs 2 units, only 1 is left
        ("ab🚀cd", 5, "ab🚀…"),
        (
            '<a href="https://x.io/a?b=1&amp;c=2">linktext</a> tail',
            5,
            '<a href="https://x.io/a?b=1&amp;c=2">link</a>…',
        ),
        (
            '<pre><code class="language-py">line1\nline2</code></pre>',
            8,
            '<pre><code class="language-py">line1\nl</code></pre>…',
        ),
        ("<b><i><u>deep</u></i></b>", 3, "<b><i><u>de</u></i></b>…"),
        ("abc", 1, "…"),
    ],
)
def test_fit_cuts_between_characters_and_closes_open_tags(
    html: str, limit: int, expected: str
) -> None:
    assert fit_message(html, limit) == expected
    assert utf16_length(visible_text(expected)) <= limit


def test_fit_rejects_a_limit_below_one_and_invalid_html() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        fit_message("abc", 0)
    with pytest.raises(TelegramHTMLError):
        fit_message("<b>abc", 2)


_WORDS = st.sampled_from(["signal", "BTC", "🚀", "€", "x", " ", "\n", "&", "<", ">", '"', "ü"])
_TEXT = st.lists(_WORDS, max_size=12).map("".join)


@st.composite
def _documents(draw: st.DrawFn, depth: int = 0) -> str:
    """Random valid Telegram HTML built from escaped text and (nested) allowed tags."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "text", "b", "i", "a", "code", "pre", "quote"]))
        if kind == "text" or depth >= 3:
            parts.append(escape_html(draw(_TEXT)))
        elif kind == "code":
            parts.append(f"<code>{escape_html(draw(_TEXT))}</code>")
        elif kind == "pre":
            language = draw(st.sampled_from(["", "python", "rust"]))
            body = escape_html(draw(_TEXT))
            parts.append(
                f'<pre><code class="language-{language}">{body}</code></pre>'
                if language
                else f"<pre>{body}</pre>"
            )
        elif kind == "a":
            parts.append(
                f'<a href="https://t.me/x?q={escape_html(draw(_TEXT))}">{draw(_documents(depth=3))}</a>'
            )
        elif kind == "quote" and depth == 0:
            parts.append(f"<blockquote>{draw(_documents(depth=1))}</blockquote>")
        else:
            tag = "b" if kind in ("b", "quote") else "i"
            parts.append(f"<{tag}>{draw(_documents(depth=depth + 1))}</{tag}>")
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(html=_documents(), limit=st.integers(1, 60))
def test_fit_always_yields_valid_html_within_the_limit(html: str, limit: int) -> None:
    original = visible_text(html)
    assert parse_html(html)[0] == original  # Telegram reads the generated document our way
    fitted = fit_message(html, limit)
    validate_telegram_html(fitted)
    shown = visible_text(fitted)
    assert utf16_length(shown) <= limit
    if utf16_length(original) <= limit:
        assert fitted == html
    else:
        assert shown.endswith(ELLIPSIS)
        assert original.startswith(shown[: -len(ELLIPSIS)])
    # Telegram's reading of the fitted text agrees with ours
    assert parse_html(fitted)[0] == shown


# Text between tags: the characters the validator must let through as they are, and every
# entity form it accepts (named and numeric); raw "<", ">" and "&" only ever appear escaped.
_TEXT_PIECES = [*"ab;#x01/ \"'=🚀", "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x1F680;", "&#128640;"]
_PIECE_TEXT = st.lists(st.sampled_from(_TEXT_PIECES), max_size=6).map("".join)
_FORMATTING = ["b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "B"]


@st.composite
def _accepted_documents(draw: st.DrawFn, depth: int = 0, in_link: bool = False, in_quote: bool = False) -> str:
    """Documents inside the subset the validator accepts: escaped text, every allowed tag,
    nested (formatting in formatting, links and quotes not in themselves, code and pre as leaves)."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["text", "format", "format", "a", "code", "pre", "quote", "spoiler"]))
        if kind == "text" or depth >= 4:
            parts.append(draw(_PIECE_TEXT))
        elif kind == "code":
            parts.append(f"<code>{draw(_PIECE_TEXT)}</code>")
        elif kind == "pre":
            body = draw(_PIECE_TEXT)
            parts.append(draw(st.sampled_from([f"<pre>{body}</pre>", f"<pre><code>{body}</code></pre>",
                                               f'<pre><code class="language-py">{body}</code></pre>'])))
        elif kind == "a" and not in_link:
            inner = draw(_accepted_documents(depth + 1, True, in_quote))
            parts.append(f'<a href="https://t.me/u?q=1&amp;r=2">{inner}</a>')
        elif kind == "quote" and not in_quote:
            tag = draw(st.sampled_from(["blockquote", "blockquote expandable"]))
            parts.append(f"<{tag}>{draw(_accepted_documents(depth + 1, in_link, True))}</blockquote>")
        elif kind == "spoiler":
            parts.append(f'<span class="tg-spoiler">{draw(_accepted_documents(depth + 1, in_link, in_quote))}</span>')
        else:
            tag = draw(st.sampled_from(_FORMATTING))
            parts.append(f"<{tag}>{draw(_accepted_documents(depth + 1, in_link, in_quote))}</{tag}>")
    return "".join(parts)


@settings(max_examples=500, deadline=None)
@given(text=_accepted_documents())
def test_whatever_the_validator_accepts_telegram_reads_the_same_way(text: str) -> None:
    validate_telegram_html(text)  # every drawn document is in the subset: nothing is skipped
    assert parse_html(text)[0] == visible_text(text)


def test_message_limit_is_telegrams() -> None:
    assert MESSAGE_LIMIT == 4096
