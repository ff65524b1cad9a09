import string

import pytest

from studio.i18n import LANGUAGES, catalog, pick_language, t


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_string_exists_in_both_languages():
    assert catalog(), "no locale files found"
    for key, texts in catalog().items():
        for lang in LANGUAGES:
            assert texts.get(lang, "").strip(), f"{key} has no {lang} text"


def test_locale_keys_are_strings(tmp_path, monkeypatch):
    import studio.i18n as i18n

    (tmp_path / "x.yaml").write_text("yes:\n  ja: はい\n  en: 'yes'\n", encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    i18n.catalog.cache_clear()
    try:
        with pytest.raises(ValueError, match="not a string"):
            i18n.catalog()
    finally:
        i18n.catalog.cache_clear()


def test_placeholders_match_between_languages():
    for key, texts in catalog().items():
        assert fields(texts["ja"]) == fields(texts["en"]), key


def test_japanese_strings_are_japanese():
    # Catch copy-paste of English into the ja column (a few keys are legitimately Latin).
    latin_only = [k for k, v in catalog().items() if v["ja"].isascii() and v["ja"] != v["en"]]
    assert latin_only == []


def test_t_formats_and_falls_back():
    assert t("model.tab", "ja") == "モデル"
    assert t("model.tab", "en") == "Model"
    assert "3.5" in t("model.loaded", "en", name="m", seconds=3.5, device="cpu", dtype="float32")
    assert t("no.such.key", "ja") == "no.such.key"


@pytest.mark.parametrize(
    "header,lang",
    [
        ("ja,en-US;q=0.9", "ja"),
        ("ja-JP", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("fr-FR,ja;q=0.5", "ja"),
        ("fr-FR", "en"),
        ("en;q=0.2,ja;q=0.9", "ja"),
        ("", "en"),
        (None, "en"),
        ("ja;q=bogus,en", "en"),
    ],
)
def test_pick_language(header, lang):
    assert pick_language(header) == lang
