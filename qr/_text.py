"""Estimating text width and greedy word wrapping for SVG text, without any font files."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace

ELLIPSIS = "…"
_NARROW = frozenset("iljtfrI.,:;!'|()[]{}· ")
_WIDE = frozenset("mwMW@%")
_WIDER = 1.08  # calibrated so DejaVu Sans (wider than Noto Sans) still fits the estimate
_BOLDER = 1.12
_MONO_EM = 0.6


@dataclass(frozen=True)
class Style:
    """How one kind of text line is set: size in mm, line pitch as a multiple of size, wrap limits."""

    role: str
    size: float
    weight: str = "400"
    mono: bool = False
    spacing: float = 0.0
    leading: float = 1.25
    max_lines: int = 2
    width: float = 180.0

    @property
    def bold(self) -> bool:
        """Whether the weight is semibold or heavier."""
        return int(self.weight) >= 600


def _glyph_em(char: str, bold: bool) -> float:
    """Approximate advance width of one sans-serif character, in em."""
    if unicodedata.combining(char):
        return 0.0
    if char in _NARROW:
        em = 0.3
    elif char in _WIDE:
        em = 0.86
    elif char.isupper():
        em = 0.68
    else:
        em = 0.56
    return em * _WIDER * (_BOLDER if bold else 1.0)


def text_width(
    text: str, size: float, *, bold: bool = False, mono: bool = False, spacing: float = 0.0
) -> float:
    """Estimated rendered width of `text` in mm at font size `size` mm (letter spacing in mm)."""
    chars = [c for c in unicodedata.normalize("NFC", text) if not unicodedata.combining(c)]
    ems = len(chars) * _MONO_EM if mono else sum(_glyph_em(c, bold) for c in chars)
    return ems * size + spacing * len(chars)


def line_width(text: str, style: Style) -> float:
    """Estimated width of `text` set in `style`."""
    return text_width(text, style.size, bold=style.bold, mono=style.mono, spacing=style.spacing)


def _split_long(word: str, style: Style) -> list[str]:
    """Break a word wider than the line into pieces that each fit."""
    pieces = [""]
    for char in word:
        if pieces[-1] and line_width(pieces[-1] + char, style) > style.width:
            pieces.append(char)
        else:
            pieces[-1] += char
    return pieces


def _ellipsize(line: str, style: Style) -> str:
    """Shorten `line` until it fits with a trailing ellipsis."""
    line = line.rstrip()
    while line and line_width(line + ELLIPSIS, style) > style.width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


def wrap(text: str, style: Style, max_lines: int | None = None) -> list[str]:
    """Greedy word wrap into at most `max_lines` lines; the last one ends in an ellipsis if text remains."""
    limit = style.max_lines if max_lines is None else max_lines
    words: list[str] = []
    for word in text.split():
        words.extend([word] if line_width(word, style) <= style.width else _split_long(word, style))
    lines: list[str] = []
    for word in words:
        if lines and line_width(f"{lines[-1]} {word}", style) <= style.width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if len(lines) > limit:
        lines = [*lines[: limit - 1], _ellipsize(lines[limit - 1], style)]
    return lines


def fit(text: str, style: Style, sizes: tuple[float, ...]) -> tuple[Style, list[str]]:
    """The largest of `sizes` whose wrap needs no ellipsis, else the smallest one, ellipsized."""
    for size in sizes:
        sized = replace(style, size=size)
        lines = wrap(text, sized, sized.max_lines + 1)
        if len(lines) <= sized.max_lines:
            return sized, lines
    smallest = replace(style, size=sizes[-1])
    return smallest, wrap(text, smallest)
