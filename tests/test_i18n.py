"""Every translatable string in market/ has a Chinese translation."""

from market.translations import sync


def test_every_string_has_a_chinese_translation():
    gaps = sync.missing()
    assert not gaps, f"run `make i18n` and translate: {gaps}"


def test_catalogue_is_compiled(app, client):
    assert sync.MO.exists()
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_language_negotiation(app):
    """Pages are Chinese unless the user switched; API clients get their Accept-Language."""
    from market.extensions import select_locale

    cases = [
        ("/api/v1/health", {"Accept-Language": "en-US,en;q=0.9"}, "en"),
        ("/api/v1/health", {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}, "zh"),
        ("/api/v1/health", {}, "zh"),
        ("/api/v1/health?lang=en", {"Accept-Language": "zh"}, "en"),
        ("/api/v1/health", {"Accept-Language": "en", "Cookie": "lang=zh"}, "zh"),
        ("/catalog", {"Accept-Language": "en-US"}, "zh"),
        ("/catalog?lang=en", {}, "en"),
    ]
    for path, headers, expected in cases:
        with app.test_request_context(path, headers=headers):
            assert select_locale() == expected, (path, headers)
