"""``tagd deck labels``: a print-ready PDF sheet of card labels (cover art, title, platform) with reportlab.

Labels are laid out in a grid on A4 or Letter at a standard card size, with thin cut marks around each. Cover
art is optional per card: a file that is missing or that reportlab cannot read leaves a framed blank, so a sheet
never fails for one bad image.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

CARD_SIZES_MM = {
    "cr80": (85.6, 54.0),  # ISO/IEC 7810 ID-1, the size of NFC PVC cards
    "square": (50.0, 50.0),  # square NFC stickers and tiles
    "mini": (54.0, 34.0),  # mini cards / key fobs
}
PAGES = ("a4", "letter")
MARGIN_MM = 8.0
GAP_MM = 4.0


def grid(page: tuple[float, float], card: tuple[float, float], margin: float, gap: float) -> tuple[int, int]:
    """Columns and rows of cards that fit a page (all in the same unit)."""
    cols = int((page[0] - 2 * margin + gap) // (card[0] + gap))
    rows = int((page[1] - 2 * margin + gap) // (card[1] + gap))
    return max(cols, 0), max(rows, 0)


def render(cards: Iterable[dict[str, Any]], path: str | os.PathLike[str], size: str = "cr80",
           page: str = "a4", covers: dict[str, str] | None = None) -> int:
    """Write the PDF; returns the number of pages. ``covers`` maps an item to an image file."""
    from reportlab.lib.pagesizes import A4, letter
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    if size not in CARD_SIZES_MM:
        raise ValueError(f"unknown card size {size!r} (one of {', '.join(CARD_SIZES_MM)})")
    page_size = {"a4": A4, "letter": letter}.get(page)
    if page_size is None:
        raise ValueError(f"unknown page size {page!r} (one of {', '.join(PAGES)})")
    w, h = CARD_SIZES_MM[size][0] * mm, CARD_SIZES_MM[size][1] * mm
    margin, gap = MARGIN_MM * mm, GAP_MM * mm
    cols, rows = grid(page_size, (w, h), margin, gap)
    per_page = cols * rows
    covers = covers or {}
    pdf = canvas.Canvas(str(path), pagesize=page_size)
    pdf.setTitle("tagd card labels")
    pdf.setCreator("tagd")
    cards = list(cards)
    pages = 0
    for i, card in enumerate(cards):
        slot = i % per_page
        if slot == 0 and i:
            pdf.showPage()
        if slot == 0:
            pages += 1
        col, row = slot % cols, slot // cols
        x = margin + col * (w + gap)
        y = page_size[1] - margin - (row + 1) * h - row * gap
        pdf.setLineWidth(0.25)
        pdf.setStrokeGray(0.6)
        pdf.roundRect(x, y, w, h, 3 * mm)
        art = min(h - 6 * mm, w * 0.42)
        image = covers.get(card["item"])
        drawn = False
        if image:
            try:
                pdf.drawImage(ImageReader(image), x + 3 * mm, y + 3 * mm, art * 0.75, art, preserveAspectRatio=True,
                              anchor="c")
                drawn = True
            except Exception:  # an unreadable image: the framed blank below
                drawn = False
        if not drawn:
            pdf.setStrokeGray(0.8)
            pdf.rect(x + 3 * mm, y + 3 * mm, art * 0.75, art)
        tx = x + 6 * mm + art * 0.75
        text_w = x + w - 3 * mm - tx
        pdf.setFillGray(0)
        font = 11 if size == "cr80" else 8
        lines = _wrap(pdf, card["title"], "Helvetica-Bold", font, text_w)[:3]
        ty = y + h - 5 * mm - font
        for line in lines:
            pdf.setFont("Helvetica-Bold", font)
            pdf.drawString(tx, ty, line)
            ty -= font * 1.2
        pdf.setFont("Helvetica", font - 2)
        pdf.setFillGray(0.35)
        pdf.drawString(tx, y + 4 * mm, (card.get("subtitle") or "")[:40])
    if not cards:
        pages = 1
    pdf.showPage()
    pdf.save()
    return pages


def _wrap(pdf: Any, text: str, font: str, size: float, width: float) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        candidate = f"{line} {word}".strip()
        if pdf.stringWidth(candidate, font, size) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines
