"""Process rules, cleaning, token counting and splitting (``worker.domain.chunking``)."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from typing import Any

import pytest

from worker.domain import chunking
from worker.domain.chunking import ParentMode, ProcessRule
from worker.domain.errors import PermanentError
from worker.domain.models.enums import ProcessRuleMode

WORDS = ("alpha", "beta", "gamma", "internationalization", "of", "the", "a", "retrieval", "index")


def english(paragraphs: int, *, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "\n\n".join(
        " ".join(
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))).capitalize() + "."
            for _ in range(rng.randint(3, 9))
        )
        for _ in range(paragraphs)
    )


def chinese(length: int) -> str:
    """Han characters without punctuation or white space: only the character cut applies."""
    return "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(length))


def custom(**segmentation: Any) -> ProcessRule:
    return chunking.parse_rule("custom", {"segmentation": segmentation})


def cleaning_rule(*, spaces: bool = False, urls: bool = False) -> ProcessRule:
    return ProcessRule(
        mode=ProcessRuleMode.CUSTOM,
        remove_extra_spaces=spaces,
        remove_urls_emails=urls,
        separator="\n",
        max_tokens=500,
        chunk_overlap=0,
    )


# -- parse_rule ------------------------------------------------------------------------------


def test_automatic_mode_uses_dify_automatic_rules_whatever_is_stored() -> None:
    stored = {"segmentation": {"separator": "###", "max_tokens": 60, "chunk_overlap": 5}}

    rule = chunking.parse_rule("automatic", stored)

    assert rule == chunking.parse_rule("automatic", None) == chunking.AUTOMATIC_RULE
    assert rule.mode is ProcessRuleMode.AUTOMATIC
    assert (rule.remove_extra_spaces, rule.remove_urls_emails) == (True, False)
    assert (rule.separator, rule.max_tokens, rule.chunk_overlap) == ("", 500, 50)


def test_custom_rule_reads_segmentation_and_pre_processing_switches() -> None:
    rule = chunking.parse_rule(
        "custom",
        {
            "pre_processing_rules": [
                {"id": "remove_extra_spaces", "enabled": False},
                {"id": "remove_urls_emails", "enabled": True},
                {"id": "remove_stopwords", "enabled": True},
            ],
            "segmentation": {"separator": "###", "max_tokens": 800, "chunk_overlap": 40},
        },
    )

    assert rule.mode is ProcessRuleMode.CUSTOM
    assert (rule.remove_extra_spaces, rule.remove_urls_emails) == (False, True)
    assert (rule.separator, rule.max_tokens, rule.chunk_overlap) == ("###", 800, 40)


def test_pre_processing_switch_is_on_only_when_enabled_is_literally_true() -> None:
    rule = chunking.parse_rule(
        "custom",
        {
            "pre_processing_rules": [{"id": "remove_extra_spaces", "enabled": "true"}],
            "segmentation": {"max_tokens": 500},
        },
    )

    assert rule.remove_extra_spaces is False


@pytest.mark.parametrize(
    ("stored", "expected"),
    [("\\n", "\n"), ("\\n\\n", "\n\n"), ("\n", "\n"), ("\\t|", "\t|"), ("***", "***")],
)
def test_custom_separator_arrives_json_escaped_and_is_unescaped(stored: str, expected: str) -> None:
    rule = custom(separator=stored, max_tokens=500)

    assert rule.separator == expected


def test_segmentation_defaults_to_newline_separator_and_no_overlap() -> None:
    rule = custom(max_tokens=300)

    assert (rule.separator, rule.chunk_overlap) == ("\n", 0)


def test_hierarchical_rule_reads_parent_and_child_segmentation() -> None:
    rule = chunking.parse_rule(
        "hierarchical",
        {
            "pre_processing_rules": [{"id": "remove_extra_spaces", "enabled": True}],
            "segmentation": {"separator": "\\n\\n", "max_tokens": 1000, "chunk_overlap": 0},
            "parent_mode": "paragraph",
            "subchunk_segmentation": {"separator": "\\n", "max_tokens": 200, "chunk_overlap": 20},
        },
    )

    assert rule.parent_mode is ParentMode.PARAGRAPH
    assert (rule.separator, rule.max_tokens) == ("\n\n", 1000)
    assert (rule.subchunk_separator, rule.subchunk_max_tokens, rule.subchunk_overlap) == (
        "\n",
        200,
        20,
    )


def test_full_doc_rule_needs_no_parent_segmentation() -> None:
    rule = chunking.parse_rule(
        "hierarchical",
        {"parent_mode": "full-doc", "subchunk_segmentation": {"max_tokens": 100}},
    )

    assert rule.parent_mode is ParentMode.FULL_DOC
    assert rule.subchunk_max_tokens == 100


def test_rule_stored_without_rules_gets_dify_defaults_for_its_mode() -> None:
    custom_rule = chunking.parse_rule("custom", None)
    hierarchical = chunking.parse_rule("hierarchical", None)

    assert (custom_rule.separator, custom_rule.max_tokens, custom_rule.chunk_overlap) == (
        "\n",
        1024,
        50,
    )
    assert hierarchical.parent_mode is ParentMode.PARAGRAPH
    assert (hierarchical.separator, hierarchical.max_tokens) == ("\n\n", 1024)
    assert (hierarchical.subchunk_separator, hierarchical.subchunk_max_tokens) == ("\n", 512)


@pytest.mark.parametrize(
    ("mode", "rules", "field"),
    [
        ("semantic", {}, "mode"),
        ("custom", {}, "segmentation"),
        ("custom", {"segmentation": "500"}, "segmentation"),
        ("custom", {"segmentation": {"separator": "\n"}}, "segmentation.max_tokens"),
        ("custom", {"segmentation": {"max_tokens": 49}}, "segmentation.max_tokens"),
        ("custom", {"segmentation": {"max_tokens": 4001}}, "segmentation.max_tokens"),
        ("custom", {"segmentation": {"max_tokens": "500"}}, "segmentation.max_tokens"),
        ("custom", {"segmentation": {"max_tokens": True}}, "segmentation.max_tokens"),
        (
            "custom",
            {"segmentation": {"max_tokens": 100, "chunk_overlap": 100}},
            "segmentation.chunk_overlap",
        ),
        (
            "custom",
            {"segmentation": {"max_tokens": 100, "chunk_overlap": -1}},
            "segmentation.chunk_overlap",
        ),
        ("custom", {"segmentation": {"separator": 1, "max_tokens": 100}}, "segmentation.separator"),
        (
            "custom",
            {"pre_processing_rules": "remove_extra_spaces", "segmentation": {"max_tokens": 100}},
            "pre_processing_rules",
        ),
        ("hierarchical", {"segmentation": {"max_tokens": 500}}, "subchunk_segmentation"),
        (
            "hierarchical",
            {"parent_mode": "chapter", "subchunk_segmentation": {"max_tokens": 100}},
            "parent_mode",
        ),
        (
            "hierarchical",
            {"parent_mode": "paragraph", "subchunk_segmentation": {"max_tokens": 100}},
            "segmentation",
        ),
        (
            "hierarchical",
            {"parent_mode": "full-doc", "subchunk_segmentation": {"max_tokens": 20}},
            "subchunk_segmentation.max_tokens",
        ),
    ],
)
def test_invalid_rule_raises_permanent_error_naming_the_field(
    mode: str, rules: dict[str, Any], field: str
) -> None:
    with pytest.raises(PermanentError, match=re.escape(field)):
        chunking.parse_rule(mode, rules)


def test_rule_built_directly_is_validated_too() -> None:
    with pytest.raises(PermanentError, match=r"subchunk_segmentation\.max_tokens"):
        ProcessRule(
            mode=ProcessRuleMode.HIERARCHICAL,
            remove_extra_spaces=True,
            remove_urls_emails=False,
            separator="\n\n",
            max_tokens=500,
            chunk_overlap=0,
            subchunk_max_tokens=10,
        )


# -- clean -----------------------------------------------------------------------------------


def test_clean_always_removes_control_characters_and_special_token_markers() -> None:
    text = "<|im_start|>na\x00ï\x07ve\x0b\x1f\x7f\ufffe ¿¾ tab\tand\nline|>"

    assert chunking.clean(text, cleaning_rule()) == "<im_start>naïve ¿¾ tab\tand\nline>"


def test_clean_keeps_spacing_when_remove_extra_spaces_is_off() -> None:
    text = "a\n\n\n\nb  c"

    assert chunking.clean(text, cleaning_rule()) == text


def test_remove_extra_spaces_collapses_blank_lines_and_space_runs() -> None:
    text = "Title\n\n\n\n\nBody  with \t gaps\u3000\u3000here\r\n\r\n\r\nEnd single\ttab"

    cleaned = chunking.clean(text, cleaning_rule(spaces=True))

    assert cleaned == "Title\n\nBody with gaps here\n\nEnd single\ttab"


def test_remove_urls_emails_deletes_addresses_and_bare_urls() -> None:
    text = "Write to jane.doe+kb@example.co.uk or visit https://example.com/a?b=c today."

    cleaned = chunking.clean(text, cleaning_rule(spaces=True, urls=True))

    assert cleaned == "Write to or visit today."


def test_remove_urls_emails_keeps_markdown_links_and_images_whole() -> None:
    text = (
        "See [the docs](https://docs.example.com/x) and "
        "![diagram](https://img.example.com/d.png) not http://bare.example.com here."
    )

    cleaned = chunking.clean(text, cleaning_rule(urls=True))

    assert cleaned == (
        "See [the docs](https://docs.example.com/x) and "
        "![diagram](https://img.example.com/d.png) not  here."
    )


def test_urls_stay_when_remove_urls_emails_is_off() -> None:
    text = "mail me@example.com at https://example.com"

    assert chunking.clean(text, cleaning_rule(spaces=True)) == text


# -- count_tokens, word_count, content_hash --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t ", 0),
        ("a", 1),
        ("quick", 1),
        ("tokenizer", 2),
        ("internationalization", 5),
        ("Hello, world!", 4),
        ("snake_case", 3),
        ("3.14159", 3),
        ("\u4f60\u597d\uff0c\u4e16\u754c\u3002", 6),
        ("RAG \u68c0\u7d22", 3),
        ("\u3053\u3093\u306b\u3061\u306f", 5),
    ],
)
def test_count_tokens_approximates_gpt_tokens(text: str, tokens: int) -> None:
    assert chunking.count_tokens(text) == tokens


def test_single_characters_count_at_most_one_token() -> None:
    text = english(3) + chinese(100) + "_-*#`~\u00e9\u0301\U0001f600\u3002"

    assert all(chunking.count_tokens(character) <= 1 for character in text)


def test_word_count_is_the_number_of_characters_as_in_dify() -> None:
    assert chunking.word_count("Hello 世界!") == 9


def test_content_hash_matches_dify_generate_text_hash() -> None:
    expected = hashlib.sha256(b"segment textNone").hexdigest()

    assert chunking.content_hash("segment text") == expected
    assert chunking.content_hash("segment text") != chunking.content_hash("segment text ")


# -- split_paragraphs ------------------------------------------------------------------------


def test_each_separator_piece_is_its_own_segment_stripped_without_empties() -> None:
    rule = custom(separator="\\n", max_tokens=100)

    chunks = chunking.split_paragraphs("  first line \n\n second line\n   \nthird", rule)

    assert chunks == ["first line", "second line", "third"]


def test_custom_separator_cuts_where_newlines_would_not() -> None:
    rule = custom(separator="***", max_tokens=100)

    chunks = chunking.split_paragraphs("one\ntwo***three\n\nfour***", rule)

    assert chunks == ["one\ntwo", "three\n\nfour"]


def test_automatic_rule_merges_small_paragraphs_up_to_the_limit() -> None:
    text = english(40)

    chunks = chunking.split_paragraphs(text, chunking.AUTOMATIC_RULE)

    assert 1 < len(chunks) < 40
    assert all(chunking.count_tokens(chunk) <= 500 for chunk in chunks)
    assert "\n\n" in chunks[0]


def test_text_within_the_limit_is_one_segment() -> None:
    assert chunking.split_paragraphs("  short text.  ", chunking.AUTOMATIC_RULE) == ["short text."]


@pytest.mark.parametrize("max_tokens", [50, 128, 500, 4000])
def test_no_english_chunk_exceeds_max_tokens(max_tokens: int) -> None:
    text = english(200) + "\n" + "x" * 5000 + " " + "Sentence one. " * 900
    rule = custom(separator="\\n\\n", max_tokens=max_tokens, chunk_overlap=max_tokens // 5)

    chunks = chunking.split_paragraphs(text, rule)

    assert chunks
    assert max(chunking.count_tokens(chunk) for chunk in chunks) <= max_tokens


@pytest.mark.parametrize("rule", [chunking.AUTOMATIC_RULE, custom(max_tokens=50, chunk_overlap=10)])
def test_no_chinese_chunk_exceeds_max_tokens_on_a_20000_character_text(rule: ProcessRule) -> None:
    chunks = chunking.split_paragraphs(chinese(20_000), rule)

    assert len(chunks) > 20_000 // rule.max_tokens
    assert max(chunking.count_tokens(chunk) for chunk in chunks) <= rule.max_tokens


def test_neighbouring_chunks_overlap_by_chunk_overlap_tokens() -> None:
    text = chinese(3000)
    rule = custom(max_tokens=200, chunk_overlap=30)

    chunks = chunking.split_paragraphs(text, rule)

    for previous, current in itertools.pairwise(chunks):
        assert previous[-30:] == current[:30]
    rebuilt = chunks[0] + "".join(chunk[30:] for chunk in chunks[1:])
    assert rebuilt == text


def test_word_level_fallback_keeps_spaces_and_overlaps_whole_words() -> None:
    rng = random.Random(11)
    text = " ".join(rng.choice(WORDS) for _ in range(2000))
    rule = custom(separator="\\n", max_tokens=100, chunk_overlap=20)

    chunks = chunking.split_paragraphs(text, rule)

    assert len(chunks) > 1
    assert all(set(chunk.split(" ")) <= set(WORDS) for chunk in chunks)
    for previous, current in itertools.pairwise(chunks):
        previous_words, current_words = previous.split(" "), current.split(" ")
        shared = next(
            (
                k
                for k in range(len(current_words), 0, -1)
                if previous_words[-k:] == current_words[:k]
            ),
            0,
        )
        assert shared >= 1
        assert chunking.count_tokens(" ".join(current_words[:shared])) <= 20


def test_sentence_fallback_cuts_chinese_text_after_full_stops() -> None:
    sentence = chinese(30) + "。"
    rule = custom(separator="\\n\\n", max_tokens=100)

    chunks = chunking.split_paragraphs(sentence * 20, rule)

    assert all(chunk.endswith("。") for chunk in chunks)
    assert all(chunking.count_tokens(chunk) <= 100 for chunk in chunks)


def test_splitting_is_deterministic() -> None:
    text = english(60) + chinese(5000)
    rule = custom(separator="\\n", max_tokens=120, chunk_overlap=24)

    assert chunking.split_paragraphs(text, rule) == chunking.split_paragraphs(text, rule)


# -- split_parent_child ----------------------------------------------------------------------


def hierarchical(parent_mode: str, **child: Any) -> ProcessRule:
    return chunking.parse_rule(
        "hierarchical",
        {
            "segmentation": {"separator": "\\n\\n", "max_tokens": 200},
            "parent_mode": parent_mode,
            "subchunk_segmentation": {"separator": "\\n", **child},
        },
    )


def test_paragraph_parents_split_by_separator_with_children_by_subchunk_separator() -> None:
    text = "Intro line one\nIntro line two\n\nBody line one\nBody line two\nBody line three"

    parents = chunking.split_parent_child(text, hierarchical("paragraph", max_tokens=50))

    assert parents == [
        chunking.ParentChunk(
            content="Intro line one\nIntro line two",
            children=("Intro line one", "Intro line two"),
        ),
        chunking.ParentChunk(
            content="Body line one\nBody line two\nBody line three",
            children=("Body line one", "Body line two", "Body line three"),
        ),
    ]


def test_paragraph_parents_and_children_respect_their_limits() -> None:
    rule = hierarchical("paragraph", max_tokens=60, chunk_overlap=10)

    parents = chunking.split_parent_child(english(80) + "\n\n" + chinese(4000), rule)

    assert len(parents) > 10
    assert all(chunking.count_tokens(parent.content) <= 200 for parent in parents)
    assert all(chunking.count_tokens(child) <= 60 for p in parents for child in p.children)
    assert all(child in parent.content for parent in parents for child in parent.children)


def test_full_doc_makes_one_parent_of_the_whole_text() -> None:
    text = "First line\nSecond line\n\nThird line"

    parents = chunking.split_parent_child(text, hierarchical("full-doc", max_tokens=50))

    assert parents == [
        chunking.ParentChunk(content=text, children=("First line", "Second line", "Third line"))
    ]


def test_full_doc_parent_is_truncated_to_10000_tokens() -> None:
    text = chinese(25_000)

    parents = chunking.split_parent_child(text, hierarchical("full-doc", max_tokens=500))

    assert len(parents) == 1
    assert parents[0].content == text[: chunking.FULL_DOC_MAX_TOKENS]
    assert chunking.count_tokens(parents[0].content) == chunking.FULL_DOC_MAX_TOKENS
    assert "".join(parents[0].children) == parents[0].content


def test_full_doc_truncation_can_cut_inside_a_long_word() -> None:
    text = "x" * 50_000

    parents = chunking.split_parent_child(text, hierarchical("full-doc", max_tokens=500))

    assert chunking.count_tokens(parents[0].content) == chunking.FULL_DOC_MAX_TOKENS


def test_parent_without_children_is_dropped() -> None:
    rule = chunking.parse_rule(
        "hierarchical",
        {
            "segmentation": {"separator": "\\n\\n", "max_tokens": 100},
            "parent_mode": "paragraph",
            "subchunk_segmentation": {"separator": "---", "max_tokens": 50},
        },
    )

    parents = chunking.split_parent_child("Intro\n\n------\n\nOutro", rule)

    assert [parent.content for parent in parents] == ["Intro", "Outro"]


def test_empty_text_gives_no_parents_in_either_mode() -> None:
    assert chunking.split_parent_child(" \n\n ", hierarchical("paragraph", max_tokens=50)) == []
    assert chunking.split_parent_child(" \n\n ", hierarchical("full-doc", max_tokens=50)) == []
