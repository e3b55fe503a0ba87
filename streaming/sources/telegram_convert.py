"""Telethon messages to :class:`~streaming.events.Event` (pure: no network, no client calls).

Telethon is imported here, at module level, so this module (and :mod:`streaming.sources.telegram`)
must only be imported by the sidecar, never by the Dagster code location.

What an Event carries for a Telegram message:

* ``channel``: the configured channel key (``ChannelConfig.id``: ``@username`` or the numeric id
  as written in ``config/sources.yaml``), so downstream weight and window look-ups use the same key.
* ``text``: the message text, which for a photo/document/video is its caption. A *hidden* link
  (a ``MessageEntityTextUrl``: a label whose target is not visible) has its URL written after the
  label (``"Chart https://dexscreener.com/..."``): call channels hide contract-bearing links behind
  labels, and that is also what :func:`~ml.social.text.normalise_content` makes of the Markdown
  ``[Chart](https://...)`` another platform would post, so cross-posts still de-duplicate.
* ``attachments``: ``photo:<id>``, ``document:<mime>:<id>`` or ``<kind>`` (``poll``, ``geo``,
  ``contact``, ``dice``...); link previews are not attachments (their URL is in the text).
* ``author``: the post signature (``post_author``) of a channel post, ``""`` for an unsigned one;
  in groups the sender's username, else its numeric id.
* ``raw``: JSON-ready metadata: chat id and title, views, forwards, replies, ``reply_to``,
  ``grouped_id`` (album), forward header, links, file name, channel weight.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from telethon import helpers, utils
from telethon.tl import types
from telethon.tl.custom.message import Message

from streaming.events import Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig

logger = logging.getLogger(__name__)


def describe_media(media: Any) -> tuple[str, ...]:
    """Attachment references of a Telethon ``MessageMedia`` (empty for none or a link preview).

    Parameters
    ----------
    media
        ``message.media``: a ``telethon.tl.types.MessageMedia*`` object or None.

    Returns
    -------
    tuple of str
        ``("photo:<photo id>",)``, ``("document:<mime type>:<document id>",)`` or
        ``("<kind>",)`` for other media (``MessageMediaPoll`` -> ``"poll"``); ids make two
        different pictures differ in :func:`~ml.social.text.content_md5`.
    """
    if media is None or isinstance(media, types.MessageMediaEmpty | types.MessageMediaWebPage):
        return ()
    if isinstance(media, types.MessageMediaPhoto):
        photo = media.photo
        return (f"photo:{photo.id}",) if isinstance(photo, types.Photo) else ("photo",)
    if isinstance(media, types.MessageMediaDocument):
        document = media.document
        if isinstance(document, types.Document):
            return (f"document:{document.mime_type or 'application/octet-stream'}:{document.id}",)
        return ("document",)
    kind = type(media).__name__.removeprefix("MessageMedia")
    return (kind.lower() or "media",)


def _file_name(media: Any) -> str | None:
    document = getattr(media, "document", None)
    if not isinstance(document, types.Document):
        return None
    for attribute in document.attributes:
        if isinstance(attribute, types.DocumentAttributeFilename):
            return attribute.file_name
    return None


def text_with_hidden_links(text: str, entities: list[Any] | None) -> tuple[str, list[str]]:
    """``text`` with each hidden link's URL written after its label, and every link's URL.

    Parameters
    ----------
    text
        ``message.message`` (text or caption) as Telegram sent it.
    entities
        ``message.entities``; offsets and lengths are in UTF-16 code units (Telegram's unit).

    Returns
    -------
    (str, list of str)
        The text (unchanged when there is no ``MessageEntityTextUrl`` whose URL the label does
        not already show) and the URLs of ``MessageEntityTextUrl`` and ``MessageEntityUrl``
        entities in text order.
    """
    if not entities:
        return text, []
    surrogated = helpers.add_surrogate(text)
    links: list[str] = []
    inserts: list[tuple[int, str]] = []
    for entity in sorted(entities, key=lambda e: e.offset):
        if isinstance(entity, types.MessageEntityTextUrl):
            links.append(entity.url)
            label = surrogated[entity.offset : entity.offset + entity.length]
            if entity.url not in label:
                inserts.append((entity.offset + entity.length, " " + entity.url))
        elif isinstance(entity, types.MessageEntityUrl):
            links.append(helpers.del_surrogate(surrogated[entity.offset : entity.offset + entity.length]))
    for position, addition in reversed(inserts):
        surrogated = surrogated[:position] + addition + surrogated[position:]
    return helpers.del_surrogate(surrogated), links


def _author(message: Message) -> str:
    if message.post_author:
        return message.post_author
    if message.post:
        return ""  # an unsigned channel post: the channel itself speaks
    sender = message.sender
    username = getattr(sender, "username", None)
    if username:
        return username
    return str(message.sender_id) if message.sender_id is not None else ""


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _forward(header: Any) -> dict[str, Any] | None:
    if header is None:
        return None
    return {
        "from_id": utils.get_peer_id(header.from_id) if header.from_id is not None else None,
        "from_name": header.from_name,
        "channel_post": header.channel_post,
        "post_author": header.post_author,
        "date": _iso(header.date),
    }


def _raw(message: Message, *, channel_key: str, weight: float, links: list[str]) -> dict[str, Any]:
    chat = message.chat
    reply = message.reply_to
    return {
        "chat_id": message.chat_id,
        "chat_title": getattr(chat, "title", None),
        "chat_username": getattr(chat, "username", None),
        "configured_id": channel_key,
        "channel_weight": weight,
        "sender_id": message.sender_id,
        "post": bool(message.post),
        "post_author": message.post_author,
        "views": message.views,
        "forwards": message.forwards,
        "replies": message.replies.replies if message.replies is not None else None,
        "reply_to": getattr(reply, "reply_to_msg_id", None),
        "grouped_id": str(message.grouped_id) if message.grouped_id is not None else None,
        "edit_date": _iso(message.edit_date),
        "fwd_from": _forward(message.fwd_from),
        "via_bot_id": message.via_bot_id,
        "links": links,
        "file_name": _file_name(message.media),
    }


def message_to_event(
    message: Message,
    *,
    channel_key: str,
    weight: float,
    extraction: ExtractionConfig = DEFAULT_CONFIG,
) -> Event | None:
    """One Telethon message as an :class:`~streaming.events.Event` (module docstring: fields).

    Parameters
    ----------
    message
        A ``telethon.tl.custom.Message`` (what ``events.NewMessage.Event.message`` is), with
        its entities attached by Telethon (``_finish_init``) so ``sender``/``chat`` resolve.
    channel_key
        The ``ChannelConfig.id`` the message's chat was configured as; becomes ``Event.channel``.
    weight
        The channel's weight in (0, 1], recorded as ``raw["channel_weight"]``.
    extraction
        Token extraction settings passed to :meth:`Event.from_message`.

    Returns
    -------
    Event or None
        None for service messages (joins, pins...) and for messages with neither text nor media.
        ``ts`` is ``message.date`` in UTC (Telethon gives aware UTC datetimes; a naive one is
        taken as UTC).
    """
    if not isinstance(message, types.Message):
        return None
    text, links = text_with_hidden_links(message.message or "", message.entities)
    attachments = describe_media(message.media)
    if not text.strip() and not attachments:
        return None
    if message.date is None:
        logger.warning("telegram message %s in %s has no date; skipped", message.id, channel_key)
        return None
    ts = message.date if message.date.tzinfo else message.date.replace(tzinfo=UTC)
    return Event.from_message(
        source="telegram",
        channel=channel_key,
        message_id=str(message.id),
        author=_author(message),
        text=text,
        ts=ts,
        attachments=attachments,
        raw=_raw(message, channel_key=channel_key, weight=weight, links=links),
        config=extraction,
    )
