from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from worker.config import ConfigError, MailType, Settings


def test_defaults_apply_when_the_environment_is_empty() -> None:
    settings = Settings.from_env({})

    assert settings.database_url is None
    assert settings.embedded_database
    assert settings.data_dir == Path(".data")
    assert settings.smtp_port == 465
    assert not settings.mail_enabled


def test_reads_difys_environment_names() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u:p@db:5432/dify",
            "MAIL_TYPE": "smtp",
            "MAIL_DEFAULT_SEND_FROM": "Dify <no-reply@example.com>",
            "SMTP_SERVER": "smtp.example.com",
            "SMTP_PORT": "587",
            "SMTP_USERNAME": "user",
            "SMTP_PASSWORD": "secret",
            "SMTP_USE_TLS": "true",
            "SMTP_OPPORTUNISTIC_TLS": "true",
            "CONSOLE_WEB_URL": "https://console.example.com/",
            "WORKER_DATA_DIR": "/var/lib/worker",
            "UNRELATED": "ignored",
        }
    )

    assert settings.database_url == "postgresql://u:p@db:5432/dify"
    assert settings.mail_type is MailType.SMTP
    assert settings.smtp_port == 587
    assert settings.smtp_use_tls and settings.smtp_opportunistic_tls
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == "secret"
    assert settings.console_web_url == "https://console.example.com"
    assert settings.data_dir == Path("/var/lib/worker")


def test_empty_variables_count_as_unset() -> None:
    settings = Settings.from_env({"DATABASE_URL": "", "SMTP_PORT": "  ", "MAIL_TYPE": ""})

    assert settings.database_url is None
    assert settings.smtp_port == 465
    assert settings.mail_type is None


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"SMTP_PORT": "abc"}, "SMTP_PORT: Input should be a valid integer"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT: Input should be less than or equal to 65535"),
        ({"DATABASE_URL": "mysql://root@db/dify"}, "DATABASE_URL: unsupported scheme 'mysql'"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL: not a URL"),
        ({"MAIL_TYPE": "pigeon"}, "MAIL_TYPE: Input should be 'smtp', 'resend' or 'sendgrid'"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL: expected one of DEBUG"),
        ({"CONSOLE_WEB_URL": "console.example.com"}, "CONSOLE_WEB_URL: expected an http(s) URL"),
        ({"SMTP_USE_TLS": "maybe"}, "SMTP_USE_TLS: Input should be a valid boolean"),
        ({"WORKER_DB_CONNECT_TIMEOUT": "0"}, "WORKER_DB_CONNECT_TIMEOUT: Input should be greater"),
    ],
)
def test_invalid_settings_are_named_in_one_line(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)

    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_mail_backend_needs_its_settings() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"MAIL_TYPE": "smtp"})

    assert "MAIL_DEFAULT_SEND_FROM is required when MAIL_TYPE=smtp" in str(info.value)
    assert "SMTP_SERVER is required when MAIL_TYPE=smtp" in str(info.value)

    with pytest.raises(ConfigError, match="RESEND_API_KEY is required when MAIL_TYPE=resend"):
        Settings.from_env({"MAIL_TYPE": "resend", "MAIL_DEFAULT_SEND_FROM": "a@example.com"})


def test_opportunistic_tls_needs_tls() -> None:
    with pytest.raises(ConfigError, match="SMTP_OPPORTUNISTIC_TLS=true needs SMTP_USE_TLS=true"):
        Settings.from_env({"SMTP_OPPORTUNISTIC_TLS": "true"})


def test_secrets_stay_out_of_errors_and_repr() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DATABASE_URL": "mysql://root:hunter2@db/dify"})
    assert "hunter2" not in str(info.value)

    settings = Settings.from_env({"SMTP_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(settings)


def test_settings_are_frozen_and_built_by_field_name_in_tests() -> None:
    settings = Settings(smtp_port=2525)

    assert settings.smtp_port == 2525
    with pytest.raises(pydantic.ValidationError):
        settings.smtp_port = 25  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"WORKER_MAIL_BRAND_TITLE": "Lab =?utf-8?q?x=0D=0ABcc:_evil@attacker.test?="},
            "WORKER_MAIL_BRAND_TITLE: contains an RFC 2047 encoded word that decodes to a line",
        ),
        (
            {"WORKER_MAIL_BRAND_TITLE": "Lab =?utf-8?b?eA0KQmNjOiBldmlsQGF0dGFja2VyLnRlc3Q=?="},
            "WORKER_MAIL_BRAND_TITLE: contains an RFC 2047 encoded word",
        ),
        (
            {"WORKER_MAIL_BRAND_TITLE": "Acme\nBcc: evil@attacker.test"},
            "WORKER_MAIL_BRAND_TITLE: contains a line break",
        ),
        (
            {"MAIL_DEFAULT_SEND_FROM": "=?utf-8?q?Dify=0ABcc:_e@a.test?= <no-reply@dify.example>"},
            "MAIL_DEFAULT_SEND_FROM: name contains an RFC 2047 encoded word",
        ),
        (
            {"MAIL_DEFAULT_SEND_FROM": "no-reply@dify.example, evil@attacker.test"},
            "MAIL_DEFAULT_SEND_FROM: address",
        ),
    ],
)
def test_mail_settings_that_could_inject_headers_are_refused_in_one_line(
    env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)

    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_ordinary_mail_names_are_accepted() -> None:
    settings = Settings.from_env(
        {
            "WORKER_MAIL_BRAND_TITLE": "Acme AI 智能",
            "MAIL_DEFAULT_SEND_FROM": '"Acme, Inc." <a@acme.example>',
        }
    )

    assert settings.mail_brand_title == "Acme AI 智能"
