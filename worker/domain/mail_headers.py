"""Header values that cannot add a header or a line, whatever the email library decodes.

The email library (``policy.default``) decodes RFC 2047 encoded words when a header is set and
writes the decoded text back out: ``Lab =?utf-8?q?x=0D=0ABcc:_evil@attacker.test?=`` has no
literal CR/LF yet becomes a ``Bcc:`` line. So every value bound for a header is checked as given
*and* with each encoded word decoded; and the serialised header block is parsed back and must
hold exactly the headers written, with the same values, so that no Python patch level can
reintroduce the hole unnoticed.

Addresses are bare RFC 5321 mailboxes (``user@example.com``) within its lengths: 64 octets
before the ``@``, 255 after, 254 in all.
"""

from __future__ import annotations

import re
from email import errors as email_errors
from email import policy
from email.header import decode_header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import make_msgid
from typing import Final

from worker.domain.errors import PermanentError

#: RFC 5321 limits, in octets.
MAX_LOCAL_PART: Final = 64
MAX_DOMAIN: Final = 255
MAX_ADDRESS: Final = 254

#: Line breaks in any spelling (``str.splitlines`` splits on all of them) and every other
#: control character but TAB: none has a place in a header value.
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
#: The same in decoded octets, whatever their charset.
_CONTROL_OCTETS = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
#: An RFC 2047 encoded word, as leniently as the email library's parser reads one (it also
#: decodes words glued to other text or inside quotes).
_ENCODED_WORD = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?]*\?=")
_ADDRESS = re.compile(r"^[^@\s<>\"(),;:\\\[\]]+@[^@\s<>\"(),;:\\\[\]]+\.[^@\s<>\"(),;:\\\[\]]+$")
_NAMED_ADDRESS = re.compile(r"^(?P<name>[^<>]*)<(?P<address>[^<>]*)>$")
#: A header line of the serialised block: a field name, or a folded continuation.
_HEADER_LINE = re.compile(rb"^(?:[!-9;-~]+:|[ \t])[ -~\t]*$")


_DECODES_TO_CONTROL = (
    "contains an RFC 2047 encoded word that decodes to a line break or control character"
)


def problem(value: str) -> str | None:
    """Why ``value`` cannot go in a header, or ``None`` when it can."""
    if _FORBIDDEN.search(value):
        return "contains a line break or control character"
    words = [value, *_ENCODED_WORD.findall(value)]
    if any(_decodes_to_control(word) for word in words):
        return _DECODES_TO_CONTROL
    return None


def _decodes_to_control(text: str) -> bool:
    """Whether ``text`` holds a control once its encoded words are decoded: by the email
    library itself (lenient, as when sending), or octet by octet in any charset."""
    if _FORBIDDEN.search(str(policy.default.header_factory("subject", text))):
        return True
    try:
        parts = decode_header(text)
    except (email_errors.HeaderParseError, ValueError):
        return False  # what the library cannot decode it keeps as plain text
    return any(
        _CONTROL_OCTETS.search(raw if isinstance(raw, bytes) else raw.encode(errors="replace"))
        for raw, _ in parts
    )


def check_header(value: str, what: str) -> str:
    """``value`` if it can go in a header; see :func:`problem`.

    Raises
    ------
    PermanentError
        ``value`` holds a line break or control character, literally or in an encoded word.
    """
    reason = problem(value)
    if reason:
        raise PermanentError(f"{what} {reason}, refusing to send")
    return value


def address_problem(address: str) -> str | None:
    """Why ``address`` is not a bare e-mail address we can send to, or ``None``."""
    reason = problem(address)
    if reason:
        return reason
    if len(address.encode()) > MAX_ADDRESS:
        return f"is longer than {MAX_ADDRESS} characters (RFC 5321)"
    if not _ADDRESS.match(address):
        return "is not a valid e-mail address"
    local, _, domain = address.rpartition("@")
    if len(local.encode()) > MAX_LOCAL_PART:
        return f"has more than {MAX_LOCAL_PART} characters before the @ (RFC 5321)"
    if len(domain.encode()) > MAX_DOMAIN:
        return f"has more than {MAX_DOMAIN} characters after the @ (RFC 5321)"
    if _ENCODED_WORD.search(address):
        return "contains an RFC 2047 encoded word, which mail software would decode"
    return None


def check_address(address: str, what: str = "recipient") -> str:
    """A bare e-mail address (``user@example.com``, surrounding blanks dropped).

    Raises
    ------
    PermanentError
        Line breaks, display names, encoded words, RFC 5321 lengths exceeded, or not an
        address at all. Long values are shortened in the message.
    """
    stripped = address.strip()
    reason = address_problem(stripped)
    if reason:
        shown = stripped if len(stripped) <= 80 else f"{stripped[:40]}...({len(stripped)} chars)"
        raise PermanentError(f"{what} {shown!r} {reason}")
    return stripped


def check_sender(sender: str) -> Address:
    """The From header's address for ``sender`` (``addr`` or ``Name <addr>``).

    Raises
    ------
    PermanentError
        See :func:`sender_problem`.
    """
    reason = sender_problem(sender)
    if reason:
        raise PermanentError(f"sender {reason}, refusing to send")
    name, address = split_sender(sender)
    return Address(display_name=name, addr_spec=address)


def sender_problem(sender: str) -> str | None:
    """Why ``sender`` cannot be the From header, or ``None`` when it can."""
    name, address = split_sender(sender)
    reason = problem(name)
    if reason:
        return f"name {reason}"
    reason = address_problem(address)
    if reason:
        return f"address {address!r} {reason}"
    try:
        Address(display_name=name, addr_spec=address)
    except (email_errors.HeaderParseError, ValueError) as exc:
        return f"is not an address or 'Name <address>': {exc}"
    return None


def split_sender(sender: str) -> tuple[str, str]:
    """``("Name", "addr@host")`` of ``Name <addr@host>``; ``("", addr)`` of a bare address.

    The name is taken as written (without surrounding double quotes), never parsed: the
    email library quotes it as needed when it writes the header.
    """
    match = _NAMED_ADDRESS.match(sender.strip())
    if match is None:
        return "", sender.strip()
    name = match["name"].strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = name[1:-1]
    return name, match["address"].strip()


def bare(sender: str) -> str:
    """The address of ``Name <addr@host>`` or of a bare address."""
    return split_sender(sender)[1]


def compose(*, sender: str, to: str, subject: str) -> EmailMessage:
    """A message with From, To, Subject and Message-ID set from checked values only; the
    addresses must read back from their headers exactly as given.

    Raises
    ------
    PermanentError
        A value could add a header or a line, or is not an address.
    """
    recipient = check_address(to)
    origin = check_sender(sender)
    email = EmailMessage()
    try:
        email["From"] = origin
        email["To"] = Address(addr_spec=recipient)
        email["Subject"] = check_header(subject, "subject")
    except (email_errors.HeaderParseError, ValueError) as exc:
        raise PermanentError(f"cannot write the message's headers: {exc}") from exc
    email["Message-ID"] = make_msgid(domain=origin.domain)
    read_back = [a.addr_spec for name in ("From", "To") for a in email[name].addresses]
    if read_back != [origin.addr_spec, recipient]:
        raise PermanentError("sender or recipient does not read back as given, refusing to send")
    return email


def serialize(email: EmailMessage) -> bytes:
    """The message as sent over SMTP, once its header block is proven to be what was set.

    The block is parsed back: it must hold the same headers in the same order with the same
    values (up to whitespace, which the library trims and folds), and each line must be a
    header or a folded continuation of printable ASCII.

    Raises
    ------
    PermanentError
        The email library wrote something else (a value it decoded into extra lines), or
        cannot write a value at all (an encoded word decoding to invalid text).
    """
    try:
        data = email.as_bytes(policy=policy.SMTP)
    except (UnicodeError, ValueError, email_errors.HeaderParseError) as exc:
        raise PermanentError(f"cannot write the message's headers: {exc}") from exc
    head, _, _ = data.partition(b"\r\n\r\n")
    if not _reads_back(email, head):
        raise PermanentError(
            "the message's headers would not be sent as given (a value decodes into extra "
            "lines), refusing to send"
        )
    return data


def _reads_back(email: EmailMessage, head: bytes) -> bool:
    """Whether the serialised header block ``head`` holds exactly ``email``'s headers."""
    if not all(_HEADER_LINE.match(line) for line in head.split(b"\r\n")):
        return False
    block = head + b"\r\n\r\n"
    # names by the plain (compat32) parser, which only splits lines and never fails
    names = [name.lower() for name in BytesHeaderParser(policy=policy.compat32).parsebytes(block)]
    if names != [name.lower() for name in email.keys()]:
        return False
    try:
        parsed = BytesHeaderParser(policy=policy.default).parsebytes(block)
        return _values(parsed) == _values(email)
    except (email_errors.HeaderParseError, ValueError, TypeError, AttributeError, IndexError):
        return False  # the library's structured parser trips over some names it wrote


def _values(message: Message) -> list[str]:
    """Each header's decoded value, whitespace collapsed (the library trims and folds it)."""
    return [" ".join(str(value).split()) for value in message.values()]
