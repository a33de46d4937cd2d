"""Every translatable string in market/ has a Chinese translation."""

from market.translations import sync


def test_every_string_has_a_chinese_translation():
    gaps = sync.missing()
    assert not gaps, f"run `make i18n` and translate: {gaps}"


def test_catalogue_is_compiled(app, client):
    assert sync.MO.exists()
    assert "登录" in client.get("/login").get_data(as_text=True)
