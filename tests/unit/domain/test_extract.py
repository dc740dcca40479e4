from __future__ import annotations

import io
import zipfile

import docx
import pytest
from fpdf import FPDF, XPos, YPos

from worker.domain.errors import PermanentError
from worker.domain.extract import decode_text, extract_file, html_to_text

FIRST_PARAGRAPH = "The quick brown fox jumps over the lazy dog near the riverbank."
SECOND_PARAGRAPH = "Postgres keeps every job, lock and outcome in one place."
THIRD_PAGE_TEXT = "A second page closes the report."


def make_pdf() -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, FIRST_PARAGRAPH, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(8)
    pdf.multi_cell(0, 8, SECOND_PARAGRAPH, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.add_page()
    pdf.multi_cell(0, 8, THIRD_PAGE_TEXT, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew in every region.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Region"
    table.cell(0, 1).text = "Growth"
    table.cell(1, 0).text = "North"
    table.cell(1, 1).text = "12%"
    document.add_paragraph("Costs stayed flat.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_pdf_text_comes_from_every_page() -> None:
    text = extract_file(make_pdf(), extension="pdf", name="report.pdf")

    assert FIRST_PARAGRAPH in text
    assert SECOND_PARAGRAPH in text
    assert text.index(FIRST_PARAGRAPH) < text.index(SECOND_PARAGRAPH)
    assert f"\n\n{THIRD_PAGE_TEXT}" in text


def test_extension_is_case_and_dot_insensitive() -> None:
    assert FIRST_PARAGRAPH in extract_file(make_pdf(), extension=".PDF", name="REPORT.PDF")
    assert extract_file(b"plain", extension=".TXT", name="a.TXT") == "plain"


def test_docx_paragraphs_and_table_cells_in_document_order() -> None:
    text = extract_file(make_docx(), extension="docx", name="report.docx")

    assert text.splitlines() == [
        "Quarterly report",
        "Revenue grew in every region.",
        "Region | Growth",
        "North | 12%",
        "Costs stayed flat.",
    ]


def test_docx_merged_cells_appear_once() -> None:
    document = docx.Document()
    table = document.add_table(rows=1, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "wide"
    table.cell(0, 2).text = "narrow"
    buffer = io.BytesIO()
    document.save(buffer)

    assert extract_file(buffer.getvalue(), extension="docx", name="t.docx") == "wide | narrow"


def test_html_drops_scripts_navigation_and_chrome_and_keeps_paragraphs() -> None:
    html = b"""<!DOCTYPE html><html><head><title>Page title</title>
    <style>p { color: red }</style></head><body>
    <header>Site header</header><nav><a href="/">Home</a> <a href="/blog">Blog</a></nav>
    <h1>Release notes</h1>
    <p>First   paragraph
       spans <b>several</b> lines.</p>
    <p>Second paragraph.</p>
    <ul><li>one</li>
        <li>two</li></ul>
    <script>console.log("tracking")</script><!-- a comment -->
    <footer>Copyright</footer></body></html>"""

    text = extract_file(html, extension="html", name="notes.html")

    assert text == (
        "Release notes\n\nFirst paragraph spans several lines.\n\nSecond paragraph.\n\none\ntwo"
    )


def test_html_main_only_prefers_main_then_article() -> None:
    page = "<body><div>Sidebar</div><main><p>Main text</p></main><article>Other</article></body>"
    article = "<body><div>Sidebar</div><article><p>Article text</p></article></body>"

    assert html_to_text(page, main_only=True) == "Main text"
    assert html_to_text(article, main_only=True) == "Article text"
    assert html_to_text("<body><p>Body text</p></body>", main_only=True) == "Body text"
    assert html_to_text(page) == "Sidebar\n\nMain text\n\nOther"


def test_html_without_tags_is_one_paragraph_of_text() -> None:
    assert html_to_text("https://example.com/page") == "https://example.com/page"
    assert html_to_text(" index.html\n  &amp; more ") == "index.html & more"


def test_htm_and_markdown_are_supported() -> None:
    assert extract_file(b"<p>hi</p>", extension="htm", name="a.htm") == "hi"
    markdown = "# Title\n\n- item *one*\n"
    assert extract_file(markdown.encode(), extension="md", name="a.md") == markdown
    assert extract_file(markdown.encode(), extension="markdown", name="a.markdown") == markdown


def test_csv_rows_are_rendered_with_the_header_names() -> None:
    data = (
        'name,city,note\nAda,London,"likes, commas"\n\nLinus,Helsinki,\nGrace,Arlington,x,extra\n'
    )

    text = extract_file(data.encode(), extension="csv", name="people.csv")

    assert text.splitlines() == [
        "name: Ada; city: London; note: likes, commas",
        "name: Linus; city: Helsinki; note: ",
        "name: Grace; city: Arlington; note: x; column 4: extra",
    ]


def test_csv_with_a_header_only_is_empty() -> None:
    assert extract_file(b"a,b\n", extension="csv", name="empty.csv") == ""


def test_utf8_byte_order_mark_is_removed() -> None:
    data = "\ufeffcol\nvalue\n".encode()

    assert extract_file(data, extension="csv", name="bom.csv") == "col: value"


def test_gb18030_chinese_text_is_decoded() -> None:
    text = "知识库索引\uff1a把文档切分成段落\uff0c然后写入向量库。"

    assert extract_file(text.encode("gb18030"), extension="txt", name="zh.txt") == text


def test_undecodable_bytes_fall_back_to_latin_1() -> None:
    assert decode_text(b"caf\xe9 \xff\x81") == "caf\xe9 \xff\x81"
    assert decode_text("naïve".encode("utf-16")) == "naïve"


def test_empty_files_give_empty_text() -> None:
    assert extract_file(b"", extension="txt", name="empty.txt") == ""
    assert extract_file(b"", extension="html", name="empty.html") == ""


def test_unsupported_extension_is_a_permanent_error_naming_the_file() -> None:
    with pytest.raises(PermanentError, match=r"unsupported file type 'exe' for setup\.exe"):
        extract_file(b"MZ", extension="exe", name="setup.exe")


@pytest.mark.parametrize(
    ("data", "extension", "name"),
    [
        (b"%PDF-1.4\nthis is not really a pdf", "pdf", "broken.pdf"),
        (b"", "pdf", "empty.pdf"),
        (b"not a zip archive", "docx", "broken.docx"),
    ],
)
def test_corrupt_files_are_permanent_errors_naming_the_file(
    data: bytes, extension: str, name: str
) -> None:
    with pytest.raises(PermanentError, match=rf"cannot read {name}: ") as info:
        extract_file(data, extension=extension, name=name)

    assert info.value.__cause__ is not None


def test_a_zip_that_is_not_a_word_file_is_a_permanent_error() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")

    with pytest.raises(PermanentError, match=r"cannot read fake\.docx: "):
        extract_file(buffer.getvalue(), extension="docx", name="fake.docx")


def test_a_truncated_pdf_is_a_permanent_error() -> None:
    data = make_pdf()

    with pytest.raises(PermanentError, match=r"cannot read cut\.pdf: "):
        extract_file(data[: len(data) // 3], extension="pdf", name="cut.pdf")
