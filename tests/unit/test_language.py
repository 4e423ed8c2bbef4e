"""The rules read English: a report in another language is told apart, not read silently."""

from __future__ import annotations

import pytest

from service.rules.language import looks_english

ENGLISH = (
    "Iranian-backed militias sent a convoy of trucks to the town of al-Mayadin on Monday, "
    "local sources said, after the regime withdrew some of its units from the area near the "
    "river and handed their positions over to the Local Defence Forces."
)
FRENCH = (
    "Des milices soutenues par l'Iran ont envoyé lundi un convoi de camions vers la ville de "
    "Mayadine, selon des sources locales, après que le régime a retiré certaines de ses unités "
    "de la zone proche du fleuve et remis leurs positions aux forces de défense locales."
)
SPANISH = (
    "Las milicias respaldadas por Irán enviaron el lunes un convoy de camiones a la ciudad de "
    "Mayadin, según fuentes locales, después de que el régimen retirara algunas de sus unidades "
    "de la zona cercana al río y entregara sus posiciones a las fuerzas de defensa locales."
)
ARABIC = (
    "أرسلت الميليشيات المدعومة من إيران يوم الاثنين قافلة من الشاحنات إلى مدينة الميادين "
    "بحسب مصادر محلية بعد أن سحب النظام بعض وحداته من المنطقة القريبة من النهر وسلم مواقعها "
    "إلى قوات الدفاع المحلي في ريف دير الزور الشرقي وسط توتر أمني متزايد في المنطقة كلها"
)


@pytest.mark.parametrize(
    ("text", "english"),
    [(ENGLISH, True), (FRENCH, False), (SPANISH, False), (ARABIC, False), ("Convoy.", True)],
    ids=["english", "french", "spanish", "arabic", "too-short-to-judge"],
)
def test_looks_english(text: str, english: bool) -> None:
    assert looks_english(text) is english
