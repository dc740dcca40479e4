"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) whose replies the test can script."""

from __future__ import annotations

import email
import socket
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def html(self) -> str:
        part = self.message.get_payload(decode=True) if not self.message.is_multipart() else None
        if part is None:
            for sub in self.message.walk():
                if sub.get_content_type() == "text/html":
                    part = sub.get_payload(decode=True)
        assert isinstance(part, bytes)
        return part.decode()

    @property
    def subject(self) -> str:
        header = email.header.make_header(email.header.decode_header(self.message["Subject"]))
        return str(header)


@dataclass
class Handler:
    """Accepts every message unless the test queued replies for the DATA command."""

    received: list[Received] = field(default_factory=list)
    data_replies: deque[str] = field(default_factory=deque)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        self.received.append(
            Received(
                sender=envelope.mail_from,
                recipients=list(envelope.rcpt_tos),
                message=email.message_from_bytes(envelope.content),
            )
        )
        return "250 2.0.0 Ok: queued as TEST1"


class SMTPServer:
    """``with SMTPServer() as smtp:`` a server on 127.0.0.1:``smtp.port``; ``stop()`` early to
    test a server that is down."""

    def __init__(self, **controller_options: Any) -> None:
        self.handler = Handler()
        self._options = controller_options
        self.port = free_port()
        self._controller: Controller | None = None
        self.running = False

    def __enter__(self) -> SMTPServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        if not self.running:
            self._controller = Controller(
                self.handler, hostname="127.0.0.1", port=self.port, **self._options
            )
            self._controller.start()
            self.running = True

    def stop(self) -> None:
        if self.running and self._controller is not None:
            self._controller.stop()
            self.running = False

    @property
    def received(self) -> list[Received]:
        return self.handler.received
