"""Builds the indexing pipeline's adapters from the settings (called once by the runtime)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

from sqlalchemy import orm

from worker import db
from worker.config import EmbeddingProvider, MailType, Settings
from worker.domain.embedding import CachedEmbedder, LocalEmbedder, OpenAIEmbedder
from worker.domain.keywords import KeywordIndex
from worker.domain.mail import MailService
from worker.domain.mail_http import ResendMailer, SendGridMailer
from worker.domain.mail_templates import MailRenderer
from worker.domain.mailer import Mailer, SMTPMailer
from worker.domain.notion import NotionClient
from worker.domain.pipeline import Pipeline
from worker.domain.ports import Embedder
from worker.domain.storage import LocalStorage
from worker.domain.vectors import PgVectorStore
from worker.domain.website import WebsiteFetcher


def build_embedder(settings: Settings) -> Embedder:
    """The configured embedder behind the ``embeddings`` cache."""
    inner: Embedder
    if settings.embedding_provider is EmbeddingProvider.OPENAI:
        assert settings.embedding_base_url and settings.embedding_model  # validated at start-up
        key = settings.embedding_api_key
        inner = OpenAIEmbedder(
            settings.embedding_base_url,
            key.get_secret_value() if key else None,
            settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            timeout=settings.http_timeout,
        )
    else:
        inner = LocalEmbedder(settings.embedding_dimension)
    return CachedEmbedder(inner, _cache_session)


@contextlib.contextmanager
def _cache_session() -> Iterator[orm.Session]:
    """A session of the embedding cache's own, in a short transaction committed on exit.

    Deliberately not the job's unit of work: the cache is not job state, so a vector paid for
    stays cached whatever the job's outcome (a retry, or a rebuild after a failure, does not pay
    for it again), and a cache lookup never commits or holds the job's pending writes.
    """
    with db.new_session() as session, session.begin():
        yield session


def build_pipeline(settings: Settings) -> Pipeline:
    """Storage, embedder, vector and keyword stores, Notion and web clients."""
    token = settings.notion_integration_token
    crawl_key = settings.website_crawl_api_key
    return Pipeline(
        storage=LocalStorage(settings.storage_root),
        embedder=build_embedder(settings),
        vectors=PgVectorStore(),
        keywords=KeywordIndex(),
        website=functools.partial(
            WebsiteFetcher,
            timeout=settings.http_timeout,
            crawl_base_url=settings.website_crawl_base_url,
            crawl_api_key=crawl_key.get_secret_value() if crawl_key else None,
        ),
        notion=functools.partial(
            NotionClient,
            settings.notion_api_base_url,
            token.get_secret_value(),
            timeout=settings.http_timeout,
        )
        if token
        else None,
        batch_size=settings.indexing_batch_size,
    )


def build_mail(settings: Settings) -> MailService:
    """The configured mail backend (``None`` when ``MAIL_TYPE`` is unset) with the templates."""
    mailer: Mailer | None = None
    if settings.mail_type is MailType.SMTP:
        assert settings.smtp_server  # validated at start-up
        password = settings.smtp_password
        mailer = SMTPMailer(
            settings.smtp_server,
            settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password else None,
            use_tls=settings.smtp_use_tls,
            opportunistic_tls=settings.smtp_opportunistic_tls,
        )
    elif settings.mail_type is MailType.RESEND:
        assert settings.resend_api_key
        mailer = ResendMailer(
            settings.resend_api_key.get_secret_value(),
            base_url=settings.resend_api_url,
            timeout=settings.http_timeout,
        )
    elif settings.mail_type is MailType.SENDGRID:
        assert settings.sendgrid_api_key
        mailer = SendGridMailer(
            settings.sendgrid_api_key.get_secret_value(),
            base_url=settings.sendgrid_api_url,
            timeout=settings.http_timeout,
        )
    return MailService(
        mailer=mailer,
        backend=settings.mail_type.value if settings.mail_type else "none",
        sender=settings.mail_default_send_from or "",
        # white-label (Dify's branding feature) when a product title is configured
        renderer=MailRenderer(
            application_title=settings.mail_brand_title or "Dify",
            branded=settings.mail_brand_title is None,
        ),
        console_web_url=settings.console_web_url,
    )
