"""Codes and notes the platform writes itself read as names in the page's language, with the
code in a tooltip (#15)."""

from __future__ import annotations

from tests.i18n_msgs.test_language_choice import _browser
from tests.zh_text import english_sentences, visible_text


def test_the_seeded_pricing_note_is_translated(client, make_user):
    operator = make_user("operator")
    _browser(client, operator)
    for path in ("/pricing/parameters", "/dashboard"):
        page = client.get(path).get_data(as_text=True)
        assert 'title="default parameters">默认参数</span>' in page, path
        assert "default parameters" not in visible_text(page), path
    page = client.get("/pricing/parameters?lang=en").get_data(as_text=True)
    assert ">Default parameters</span>" in page


def test_header_and_switcher_have_no_english_on_zh_pages(client, make_user):
    """The new header parts (menus, switcher) are Chinese; "English" is marked lang=en."""
    _browser(client, make_user("operator"))
    page = client.get("/dashboard").get_data(as_text=True)
    header = page[page.index("<header"): page.index("</header>")]
    assert not english_sentences(visible_text(header)), visible_text(header)
    for name in ("审核", "交易", "定价", "监管", "机构"):
        assert f"<summary>{name}</summary>" in header
