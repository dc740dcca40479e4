"""Real files for indexing tests: a PDF made with fpdf2, Markdown, and a long corpus."""

from __future__ import annotations

from fpdf import FPDF

PDF_SENTENCES = [
    "The lighthouse keeper recorded the storm at midnight in the copper logbook.",
    "Seven fishing boats returned to the harbour before the fog settled over the bay.",
    "Replacement lenses for the lamp arrive every spring from the glassworks in Murano.",
]

MARKDOWN = """# Onboarding

Every new engineer receives a laptop, a badge and a mentor during the first week.

## Expenses

Travel expenses are reimbursed within thirty days when receipts are attached.

## Security

Passwords rotate every ninety days and hardware keys are mandatory for production access.
"""


def make_pdf(paragraphs: list[str] = PDF_SENTENCES) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for paragraph in paragraphs:
        pdf.multi_cell(0, 8, paragraph)
        pdf.ln(6)
    return bytes(pdf.output())


def corpus(paragraphs: int) -> str:
    """Distinct English paragraphs, one per line pair, for splitting into many segments."""
    words = (
        "river copper lantern harvest signal meadow engine glacier orchard compass quarry "
        "thunder saddle violin harbour ember"
    ).split()
    lines = []
    for i in range(paragraphs):
        picked = [words[(i * 7 + j * 3) % len(words)] for j in range(12)]
        lines.append(f"Paragraph {i}: " + " ".join(picked) + f" number {i}.")
    return "\n\n".join(lines)
