"""User-supplied text shown by Streamlit's Markdown-rendering calls (st.markdown, st.error,
st.warning, st.info, st.success, captions): escaped so it is shown literally, never as a link,
an image, HTML, LaTeX, an emoji/icon shortcode or a coloured span.

A file name like `[sign in](http://evil)` or a lab unit like `![x](http://evil/t.png)` would
otherwise become a phishing link or a tracking pixel on a clinician's screen.
"""
from __future__ import annotations

import re
import unicodedata

MAX_CHARS = 300

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones Markdown,
# GFM (tables, strikethrough, autolinks), HTML, Streamlit's $LaTeX$, :shortcodes: and
# :color[text] give a meaning to.
_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:&@=\"'^")
_SPACE_LIKE = re.compile(r"[\r\n\t\v\f\u2028\u2029]+")


def _printable(ch: str) -> bool:
    # Cc: control, Cf: format (bidi overrides, zero-width), Cs/Co/Cn: surrogates, private, unassigned
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def plain(text: object, max_chars: int = MAX_CHARS) -> str:
    """One line of printable text, at most `max_chars` characters ('…' when cut). No escaping:
    for widgets that do not render Markdown (st.text, dataframe cells, st.code)."""
    s = _SPACE_LIKE.sub(" ", "" if text is None else str(text))
    s = "".join(ch for ch in s if _printable(ch))
    if len(s) > max_chars:
        s = s[: max(max_chars - 1, 0)] + "…"
    return s


def md_escape(text: object, max_chars: int = MAX_CHARS) -> str:
    """`text` as Markdown that renders as exactly that text (after `plain`): every character
    with a Markdown/HTML meaning is backslash-escaped; control characters are dropped, line
    breaks become spaces, and it is cut to `max_chars` characters."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in plain(text, max_chars))


def md_list(items, limit: int = 5, max_chars: int = 120) -> str:
    """'a, b, c and 7 more': the first `limit` items, each escaped; for refusal messages."""
    items = list(items)
    shown = ", ".join(md_escape(i, max_chars) for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")
