"""Small, deterministic SVG building blocks for the report's pictures: a document builder, palettes, axes."""

from __future__ import annotations

from html import escape
from math import floor, log10

# Qualitative colours, distinguishable side by side on a floor plan; index n is always the same colour.
PALETTE: tuple[str, ...] = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#3b8bc2",
    "#a0cbe8",
    "#ffbe7d",
    "#8cd17d",
    "#b6992d",
    "#86bcb6",
    "#d37295",
    "#fabfd2",
    "#d4a6c8",
    "#499894",
    "#f1ce63",
)
INK = "#222222"
MUTED = "#666666"
GRID = "#dddddd"

_STYLE = (
    "text{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;fill:#222222}"
    ".t{font-size:16px;font-weight:bold}.s{font-size:11px;fill:#444444}"
    ".l{font-size:10px}.m{font-size:8px}.w{font-size:8px;fill:#ffffff}.v{font-size:9px;fill:#444444}"
)


def num(value: float, digits: int = 2) -> str:
    """A coordinate or length: fixed precision, trailing zeros dropped, never `-0`."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round axis ticks from 0 that cover `top` in about `count` steps (steps of 1, 2 or 5 x 10^k)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** floor(log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    ticks = [0.0]
    while ticks[-1] < top - 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def tick_label(value: float) -> str:
    """An axis label: thousands separators, at most two decimals."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


class Svg:
    """An SVG document built element by element; `render` gives UTF-8 bytes, identical for identical calls."""

    def __init__(self, width: float, height: float, title: str, description: str = "") -> None:
        self.width = width
        self.height = height
        self._parts: list[str] = [f"<title>{escape(title)}</title>"]
        if description:
            self._parts.append(f"<desc>{escape(description)}</desc>")
        self._parts.append(f"<style>{_STYLE}</style>")

    @staticmethod
    def _attrs(attrs: dict[str, str | float | None]) -> str:
        out = []
        for key, value in attrs.items():
            if value is None:
                continue
            text = num(value) if isinstance(value, int | float) else value
            out.append(f' {key.rstrip("_").replace("_", "-")}="{escape(text)}"')
        return "".join(out)

    def raw(self, fragment: str) -> None:
        """Append markup that the caller has already escaped."""
        self._parts.append(fragment)

    def open(self, cls: str | None = None, **attrs: str | float | None) -> None:
        self._parts.append(f"<g{self._attrs({'class': cls, **attrs})}>")

    def close(self) -> None:
        self._parts.append("</g>")

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        fill: str,
        *,
        stroke: str | None = None,
        cls: str | None = None,
        tip: str | None = None,
        **attrs: str | float | None,
    ) -> None:
        head = f"<rect{self._attrs({'class': cls, 'x': x, 'y': y, 'width': w, 'height': h, 'fill': fill, 'stroke': stroke, **attrs})}"
        self._parts.append(f"{head}><title>{escape(tip)}</title></rect>" if tip else f"{head}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, **attrs: str | float | None) -> None:
        self._parts.append(f"<line{self._attrs({'x1': x1, 'y1': y1, 'x2': x2, 'y2': y2, 'stroke': stroke, **attrs})}/>")

    def polygon(self, points: list[tuple[float, float]], fill: str, **attrs: str | float | None) -> None:
        coords = " ".join(f"{num(x)},{num(y)}" for x, y in points)
        self._parts.append(f"<polygon{self._attrs({'points': coords, 'fill': fill, **attrs})}/>")

    def text(
        self,
        x: float,
        y: float,
        content: str,
        cls: str = "l",
        *,
        anchor: str | None = None,
        **attrs: str | float | None,
    ) -> None:
        self._parts.append(
            f"<text{self._attrs({'class': cls, 'x': x, 'y': y, 'text-anchor': anchor, **attrs})}>{escape(content)}</text>"
        )

    @staticmethod
    def legend_layout(x: float, y: float, labels: list[str], width: float) -> list[tuple[float, float]]:
        """Where each legend entry goes, wrapping at `width` (label widths estimated at 6 px a character)."""
        spots: list[tuple[float, float]] = []
        cx, cy = x, y
        for label in labels:
            size = 32 + 6 * len(label)
            if cx + size > x + width and cx > x:
                cx, cy = x, cy + 16
            spots.append((cx, cy))
            cx += size
        return spots

    @classmethod
    def legend_height(cls, labels: list[str], width: float) -> float:
        spots = cls.legend_layout(0, 0, labels, width)
        return spots[-1][1] + 16 if spots else 0

    def legend(self, x: float, y: float, entries: list[tuple[str, str]], width: float) -> None:
        """Colour swatches with labels, wrapped to `width`."""
        for (color, label), (cx, cy) in zip(
            entries, self.legend_layout(x, y, [label for _, label in entries], width), strict=True
        ):
            self.rect(cx, cy, 11, 11, color, stroke=MUTED, stroke_width=0.5)
            self.text(cx + 15, cy + 9.5, label)

    def render(self) -> bytes:
        head = (
            '<svg xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {num(self.width)} {num(self.height)}" '
            f'width="{num(self.width)}" height="{num(self.height)}">'
        )
        return "\n".join([head, *self._parts, "</svg>", ""]).encode()
