"""Account and workspace mails: their types, languages, subjects and the jinja2 renderer.

Mirrors Dify's ``libs/email_i18n.py``: one template per mail type and language under
``worker/domain/templates/mail/``, a subject per type and language, and a branded (Dify look) or
white-label (``application_title`` only) rendering chosen once for the whole deployment.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import jinja2

from worker.domain import errors


class EmailType(enum.StrEnum):
    """The mails the worker renders, spelled as Dify's ``EmailType`` values."""

    #: Code to set a new password for an existing account.
    RESET_PASSWORD = "reset_password"
    #: Password reset asked for an unknown address while sign-up is open: link to sign up.
    RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST = "reset_password_when_account_not_exist"
    #: Password reset asked for an unknown address while sign-up is closed.
    RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST_NO_REGISTER = (
        "reset_password_when_account_not_exist_no_register"
    )
    #: Invitation to join a workspace, with the activation link.
    INVITE_MEMBER = "invite_member"
    #: One-time code to sign in by e-mail.
    EMAIL_CODE_LOGIN = "email_code_login"
    #: Code sent to the current address before the login e-mail is changed.
    CHANGE_EMAIL_OLD = "change_email_old"
    #: Code sent to the new address to confirm it.
    CHANGE_EMAIL_NEW = "change_email_new"
    #: Notice that the login e-mail has been changed.
    CHANGE_EMAIL_COMPLETED = "change_email_completed"
    #: Code the owner enters to confirm a workspace ownership transfer.
    OWNER_TRANSFER_CONFIRM = "owner_transfer_confirm"
    #: Notice to the previous owner that the transfer is done.
    OWNER_TRANSFER_OLD_NOTIFY = "owner_transfer_old_notify"
    #: Notice to the new owner that the workspace is now theirs.
    OWNER_TRANSFER_NEW_NOTIFY = "owner_transfer_new_notify"
    #: Notice that the account has been deleted.
    ACCOUNT_DELETION_SUCCESS = "account_deletion_success"
    #: Code to confirm an account deletion.
    ACCOUNT_DELETION_VERIFICATION = "account_deletion_verification"
    #: Monday notice to a workspace's owner: documents disabled for lack of use.
    DOCUMENT_CLEAN_NOTIFY = "document_clean_notify"
    #: Alert to the operators: a queue holds more waiting jobs than the threshold.
    QUEUE_MONITOR_ALERT = "queue_monitor_alert"
    #: Enterprise raw mail: the caller brings subject and body, so there is no template here.
    ENTERPRISE_CUSTOM = "enterprise_custom"


class Language(enum.StrEnum):
    """Languages the mails are written in."""

    #: English, and the fallback for every code that is not Chinese.
    EN_US = "en-US"
    #: Simplified Chinese.
    ZH_HANS = "zh-Hans"


#: Language codes (lower case, ``_`` read as ``-``) that select Simplified Chinese.
CHINESE_CODES: Final = frozenset({"zh-hans", "zh-cn", "zh", "zh-sg"})


def resolve_language(code: str | None) -> Language:
    """Map an account's ``interface_language`` to a mail language.

    Dify only honours exactly ``zh-Hans``; we also accept the usual spellings of Simplified
    Chinese (``zh-CN``, ``zh``, ``zh_CN``, ``zh-SG``, any case). Anything else is English.
    """
    if code and code.strip().replace("_", "-").lower() in CHINESE_CODES:
        return Language.ZH_HANS
    return Language.EN_US


#: Context each templated mail type needs from its caller (``application_title`` and
#: ``branded`` are added by the renderer). ``enterprise_custom`` has no entry.
REQUIRED_VARIABLES: Final[dict[EmailType, frozenset[str]]] = {
    EmailType.RESET_PASSWORD: frozenset({"to", "code"}),
    EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST: frozenset({"to", "sign_up_url"}),
    EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST_NO_REGISTER: frozenset({"to"}),
    EmailType.INVITE_MEMBER: frozenset({"to", "inviter_name", "workspace_name", "url"}),
    EmailType.EMAIL_CODE_LOGIN: frozenset({"to", "code"}),
    EmailType.CHANGE_EMAIL_OLD: frozenset({"to", "code"}),
    EmailType.CHANGE_EMAIL_NEW: frozenset({"to", "code"}),
    EmailType.CHANGE_EMAIL_COMPLETED: frozenset({"to", "email"}),
    EmailType.OWNER_TRANSFER_CONFIRM: frozenset({"to", "code", "WorkspaceName"}),
    EmailType.OWNER_TRANSFER_OLD_NOTIFY: frozenset({"to", "WorkspaceName", "NewOwnerEmail"}),
    EmailType.OWNER_TRANSFER_NEW_NOTIFY: frozenset({"to", "WorkspaceName"}),
    EmailType.ACCOUNT_DELETION_SUCCESS: frozenset({"to", "email"}),
    EmailType.ACCOUNT_DELETION_VERIFICATION: frozenset({"to", "code"}),
    EmailType.DOCUMENT_CLEAN_NOTIFY: frozenset({"to", "userName", "knowledge_details", "url"}),
    EmailType.QUEUE_MONITOR_ALERT: frozenset(
        {"to", "queue_name", "queue_length", "threshold", "alert_time"}
    ),
}

_RESET_EN = "Reset Your {{ application_title }} Password"
_RESET_ZH = "重置您的 {{ application_title }} 密码"

#: Subject templates (jinja2 syntax, rendered without escaping) per type and language.
#: English follows Dify; the deletion subjects say ``application_title`` instead of "Dify.AI" so
#: that white-label mails never name Dify.
SUBJECTS: Final[dict[EmailType, dict[Language, str]]] = {
    EmailType.RESET_PASSWORD: {
        Language.EN_US: "Set Your {{ application_title }} Password",
        Language.ZH_HANS: "设置您的 {{ application_title }} 密码",
    },
    EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST: {
        Language.EN_US: _RESET_EN,
        Language.ZH_HANS: _RESET_ZH,
    },
    EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST_NO_REGISTER: {
        Language.EN_US: _RESET_EN,
        Language.ZH_HANS: _RESET_ZH,
    },
    EmailType.INVITE_MEMBER: {
        Language.EN_US: "Join {{ application_title }} Workspace Now",
        Language.ZH_HANS: "立即加入 {{ application_title }} 工作空间",
    },
    EmailType.EMAIL_CODE_LOGIN: {
        Language.EN_US: "{{ application_title }} Login Code",
        Language.ZH_HANS: "{{ application_title }} 登录验证码",
    },
    EmailType.CHANGE_EMAIL_OLD: {
        Language.EN_US: "Check your current email",
        Language.ZH_HANS: "验证您当前的邮箱",
    },
    EmailType.CHANGE_EMAIL_NEW: {
        Language.EN_US: "Confirm your new email address",
        Language.ZH_HANS: "确认您的新邮箱地址",
    },
    EmailType.CHANGE_EMAIL_COMPLETED: {
        Language.EN_US: "Your login email has been changed",
        Language.ZH_HANS: "您的登录邮箱已更改",
    },
    EmailType.OWNER_TRANSFER_CONFIRM: {
        Language.EN_US: "Verify Your Request to Transfer Workspace Ownership",
        Language.ZH_HANS: "验证您转移工作空间所有权的请求",
    },
    EmailType.OWNER_TRANSFER_OLD_NOTIFY: {
        Language.EN_US: "Workspace ownership has been transferred",
        Language.ZH_HANS: "工作空间所有权已转移",
    },
    EmailType.OWNER_TRANSFER_NEW_NOTIFY: {
        Language.EN_US: "You are now the owner of {{ WorkspaceName }}",
        Language.ZH_HANS: "您已成为工作空间 {{ WorkspaceName }} 的所有者",
    },
    EmailType.ACCOUNT_DELETION_SUCCESS: {
        Language.EN_US: "Your {{ application_title }} Account Has Been Successfully Deleted",
        Language.ZH_HANS: "您的 {{ application_title }} 账户已成功删除",
    },
    EmailType.ACCOUNT_DELETION_VERIFICATION: {
        Language.EN_US: "{{ application_title }} Account Deletion and Verification",
        Language.ZH_HANS: "{{ application_title }} 账户删除验证码",
    },
    EmailType.DOCUMENT_CLEAN_NOTIFY: {
        Language.EN_US: "{{ application_title }} Knowledge Base Auto-disable Notification",
        Language.ZH_HANS: "{{ application_title }} 知识库自动禁用通知",
    },
    EmailType.QUEUE_MONITOR_ALERT: {
        Language.EN_US: "Alert: queue {{ queue_name }} has {{ queue_length }} waiting jobs",
        Language.ZH_HANS: "告警：队列 {{ queue_name }} 有 {{ queue_length }} 个待处理任务",  # noqa: RUF001
    },
}


def template_name(email_type: EmailType, language: Language) -> str:
    """Name of the body template of ``email_type`` in ``language``, relative to the loader."""
    return f"mail/{email_type.value}.{language.value}.html"


@dataclass(frozen=True, kw_only=True)
class RenderedMail:
    """A mail ready to send: one-line subject and HTML body."""

    #: Plain-text subject, whitespace collapsed to single spaces (safe as a header value).
    subject: str
    #: HTML body; every context value in it is escaped.
    html: str
    #: Language the mail was written in, after fallback.
    language: Language


class MailRenderer:
    """Renders mail subjects and bodies from the package templates.

    Parameters
    ----------
    application_title
        Product name shown in subjects, bodies and, when not ``branded``, the header.
    branded
        ``True`` for Dify's own look ("Dify" wordmark in the header); ``False`` for white-label
        mails that only ever name ``application_title``.
    """

    def __init__(self, application_title: str = "Dify", branded: bool = True) -> None:
        if not application_title.strip():
            raise ValueError("application_title must not be blank")
        self.application_title = application_title
        self.branded = branded
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("worker.domain", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Subjects are plain text (a mail header), so they must not be HTML-escaped.
        subject_env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        self._subjects = {
            (email_type, language): subject_env.from_string(subject)
            for email_type, by_language in SUBJECTS.items()
            for language, subject in by_language.items()
        }

    def render(
        self, email_type: EmailType, language_code: str | None, context: Mapping[str, object]
    ) -> RenderedMail:
        """Render the subject and body of one mail.

        Parameters
        ----------
        email_type
            Which mail; every type but ``enterprise_custom`` has templates.
        language_code
            The recipient's interface language, resolved by `resolve_language`.
        context
            Template variables; must hold the type's `REQUIRED_VARIABLES` (``None`` counts as
            missing). ``application_title`` and ``branded`` come from the renderer and override
            any value given here.

        Raises
        ------
        errors.PermanentError
            The type has no template, or required variables are missing.
        """
        if email_type not in REQUIRED_VARIABLES:
            raise errors.PermanentError(
                f"{email_type.value} mails bring their own body and have no template"
            )
        missing = sorted(
            name for name in REQUIRED_VARIABLES[email_type] if context.get(name) is None
        )
        if missing:
            raise errors.PermanentError(
                f"{email_type.value} mail is missing template variables: {', '.join(missing)}"
            )
        language = resolve_language(language_code)
        full_context = {
            **context,
            "application_title": self.application_title,
            "branded": self.branded,
        }
        html = self._env.get_template(template_name(email_type, language)).render(full_context)
        subject = self._subjects[email_type, language].render(full_context)
        return RenderedMail(subject=" ".join(subject.split()), html=html, language=language)
