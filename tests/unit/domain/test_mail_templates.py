from __future__ import annotations

import itertools
import re
from importlib import resources

import pytest
from markupsafe import escape

from worker.domain.errors import PermanentError
from worker.domain.mail_templates import (
    REQUIRED_VARIABLES,
    SUBJECTS,
    EmailType,
    Language,
    MailRenderer,
    resolve_language,
    template_name,
)

TEMPLATED_TYPES = [t for t in EmailType if t is not EmailType.ENTERPRISE_CUSTOM]

#: A value for every variable any template needs; the tricky characters prove escaping.
SAMPLE_VALUES: dict[str, str] = {
    "to": "alice+mail@example.com",
    "code": "493021",
    "url": "https://console.example.com/activate?email=a%40b.c&token=tok-123",
    "sign_up_url": "https://console.example.com/signup?from=reset&lang=en",
    "inviter_name": "Bob O'Neil",
    "workspace_name": "R&D <Lab>",
    "email": "alice.new@example.com",
    "WorkspaceName": 'Acme "Core" & Co',
    "NewOwnerEmail": "carol@example.com",
    "userName": "Dana <Ops>",
    "knowledge_details": "Knowledge base R&D: 3 documents",
    "queue_name": "dataset",
    "queue_length": "250",
    "threshold": "200",
    "alert_time": "2026-12-01 10:00:00",
}

RENDERERS = {
    "branded": MailRenderer(),
    "unbranded": MailRenderer(application_title="Acme", branded=False),
}


def context_for(email_type: EmailType) -> dict[str, object]:
    return {name: SAMPLE_VALUES[name] for name in REQUIRED_VARIABLES[email_type]}


@pytest.mark.parametrize("renderer_name", sorted(RENDERERS))
@pytest.mark.parametrize("language", list(Language))
@pytest.mark.parametrize("email_type", TEMPLATED_TYPES)
def test_renders_every_type_in_every_language_from_exactly_its_required_variables(
    email_type: EmailType, language: Language, renderer_name: str
) -> None:
    renderer = RENDERERS[renderer_name]
    context = context_for(email_type)

    mail = renderer.render(email_type, language.value, context)

    assert mail.language is language
    assert mail.subject.strip()
    assert "{{" not in mail.subject and "}}" not in mail.subject
    assert "\n" not in mail.subject
    assert "{{" not in mail.html and "{%" not in mail.html
    for value in context.values():
        assert str(escape(value)) in mail.html
    assert renderer.application_title in mail.html
    if renderer.branded:
        assert "Dify" in mail.html
    else:
        assert "dify" not in mail.html.lower()
        assert "dify" not in mail.subject.lower()


@pytest.mark.parametrize("email_type", TEMPLATED_TYPES)
def test_chinese_mails_are_written_in_chinese(email_type: EmailType) -> None:
    mail = RENDERERS["branded"].render(email_type, "zh-Hans", context_for(email_type))

    assert '<html lang="zh-Hans">' in mail.html
    assert re.search(r"[\u4e00-\u9fff]", mail.subject)
    assert "This email was sent" not in mail.html


def test_user_controlled_html_is_escaped_in_the_body() -> None:
    context = context_for(EmailType.INVITE_MEMBER) | {"inviter_name": "<script>alert(1)</script>"}

    mail = MailRenderer().render(EmailType.INVITE_MEMBER, "en-US", context)

    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html


def test_links_are_shown_as_anchor_and_as_plain_text() -> None:
    context = context_for(EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST)
    url = str(escape(SAMPLE_VALUES["sign_up_url"]))

    mail = MailRenderer().render(EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST, "en-US", context)

    assert f'<a href="{url}"' in mail.html
    assert f">{url}</a>" in mail.html


def test_subjects_are_plain_text_with_placeholders_filled() -> None:
    context = context_for(EmailType.OWNER_TRANSFER_NEW_NOTIFY)

    english = MailRenderer().render(EmailType.OWNER_TRANSFER_NEW_NOTIFY, "en-US", context)
    login = MailRenderer("Acme", branded=False).render(
        EmailType.EMAIL_CODE_LOGIN, "en-US", context_for(EmailType.EMAIL_CODE_LOGIN)
    )

    assert english.subject == 'You are now the owner of Acme "Core" & Co'
    assert login.subject == "Acme Login Code"


def test_subject_newlines_from_user_values_are_collapsed() -> None:
    context = context_for(EmailType.OWNER_TRANSFER_NEW_NOTIFY) | {
        "WorkspaceName": "Evil\r\nBcc: x@example.com"
    }

    mail = MailRenderer().render(EmailType.OWNER_TRANSFER_NEW_NOTIFY, "en-US", context)

    assert mail.subject == "You are now the owner of Evil Bcc: x@example.com"


def test_renderer_values_override_application_title_and_branded_in_the_context() -> None:
    context = context_for(EmailType.EMAIL_CODE_LOGIN) | {
        "application_title": "Dify",
        "branded": True,
    }

    mail = MailRenderer("Acme", branded=False).render(EmailType.EMAIL_CODE_LOGIN, "en", context)

    assert "Dify" not in mail.html
    assert mail.subject == "Acme Login Code"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("zh-Hans", Language.ZH_HANS),
        ("zh-CN", Language.ZH_HANS),
        ("zh", Language.ZH_HANS),
        ("zh_CN", Language.ZH_HANS),
        ("zh-SG", Language.ZH_HANS),
        ("ZH-HANS", Language.ZH_HANS),
        ("zh-cn", Language.ZH_HANS),
        ("en-US", Language.EN_US),
        ("fr-FR", Language.EN_US),
        ("zh-Hant", Language.EN_US),
        ("", Language.EN_US),
        (None, Language.EN_US),
        ("🙂 not a language", Language.EN_US),
    ],
)
def test_resolves_language_codes_falling_back_to_english(
    code: str | None, expected: Language
) -> None:
    assert resolve_language(code) is expected


def test_unknown_language_renders_the_english_template() -> None:
    mail = MailRenderer().render(
        EmailType.RESET_PASSWORD, "fr-FR", context_for(EmailType.RESET_PASSWORD)
    )

    assert mail.language is Language.EN_US
    assert mail.subject == "Set Your Dify Password"
    assert '<html lang="en">' in mail.html


def test_missing_variable_is_a_permanent_error_naming_type_and_variable() -> None:
    context = context_for(EmailType.INVITE_MEMBER)
    del context["workspace_name"]
    context["url"] = None

    message = "invite_member mail is missing template variables: url, workspace_name"
    with pytest.raises(PermanentError, match=re.escape(message)):
        MailRenderer().render(EmailType.INVITE_MEMBER, "en-US", context)


def test_enterprise_custom_is_not_rendered_here() -> None:
    with pytest.raises(PermanentError, match="enterprise_custom"):
        MailRenderer().render(EmailType.ENTERPRISE_CUSTOM, "en-US", {"to": "a@example.com"})


def test_blank_application_title_is_refused() -> None:
    with pytest.raises(ValueError, match="application_title"):
        MailRenderer(application_title="  ", branded=False)


def test_every_templated_type_has_variables_and_a_subject_in_every_language() -> None:
    assert set(REQUIRED_VARIABLES) == set(TEMPLATED_TYPES)
    assert set(SUBJECTS) == set(TEMPLATED_TYPES)
    for by_language in SUBJECTS.values():
        assert set(by_language) == set(Language)
    for variables in REQUIRED_VARIABLES.values():
        assert "to" in variables


def test_template_files_on_disk_match_types_and_languages() -> None:
    folder = resources.files("worker.domain") / "templates" / "mail"
    on_disk = {entry.name for entry in folder.iterdir() if entry.name != "base.html"}

    expected = {
        template_name(email_type, language).removeprefix("mail/")
        for email_type, language in itertools.product(TEMPLATED_TYPES, Language)
    }

    assert on_disk == expected
