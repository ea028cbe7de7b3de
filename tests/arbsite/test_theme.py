"""Both themes meet WCAG AA: every text colour of the stylesheet on every background it is used on.

The colours are read from static/css/site.css's custom properties, each light-dark(light, dark).
"""

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[2] / "static" / "css" / "site.css"
PROPERTY = re.compile(
    r"--([\w-]+):\s*light-dark\(\s*(#[0-9a-fA-F]{6})\s*,\s*(#[0-9a-fA-F]{6})\s*\)"
)
AA_TEXT = 4.5
# (text, background) as the stylesheet pairs them: text on the page, the panels, the status
# bar and the rows that pay; the buttons and the badges on their own colours.
PAIRS = [
    *(
        (text, ground)
        for text in ("fg", "muted", "accent", "bad", "good", "warn")
        for ground in ("bg", "panel")
    ),
    ("fg", "pays"),
    ("good", "pays"),
    ("on-accent", "accent"),
    ("on-bad", "bad"),
]


def palettes() -> tuple[dict[str, str], dict[str, str]]:
    found = PROPERTY.findall(CSS.read_text())
    return {name: light for name, light, _ in found}, {name: dark for name, _, dark in found}


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of an sRGB #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcags_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(("text", "ground"), PAIRS)
def test_every_text_colour_meets_aa_on_its_background(theme, text, ground):
    palette = palettes()[0 if theme == "light" else 1]

    ratio = contrast(palette[text], palette[ground])

    assert ratio >= AA_TEXT, f"{theme}: --{text} on --{ground} is {ratio:.2f}:1"


def test_every_colour_of_the_stylesheet_has_a_light_and_a_dark_value():
    css = CSS.read_text()
    declared = set(re.findall(r"--([\w-]+):", css))
    used = set(re.findall(r"var\(--([\w-]+)\)", css))

    assert used <= declared
    assert declared == set(palettes()[0]), "a custom property without light-dark()"
    # Beyond the palette only the QR code's white (a QR code needs it) and a shadow.
    assert re.findall(r"#[0-9a-fA-F]{3,6}\b(?![^;]*light-dark)", PROPERTY.sub("", css)) == ["#fff"]
