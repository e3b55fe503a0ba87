"""discord.py messages to :class:`~streaming.events.Event`, and channel routing (pure).

What an Event carries for a Discord message:

* ``channel``: the channel id (a thread's own id for a message in a thread); ``raw`` has the
  guild, the parent channel and the configured id the message was routed by.
* ``text``: the content, then for each embed its title, description and fields (``name: value``),
  then the content of forwarded messages (``message_snapshots``), joined by newlines: call bots
  often post the contract only inside an embed or forward it from another server.
* ``attachments``: the attachment URLs (file names, types and sizes in ``raw["files"]``).
* ``author``: the author's username (``raw["author_id"]`` has the stable id).
* ``ts``: ``message.created_at`` (UTC, from the snowflake's timestamp as Discord sends it).

discord.py is imported by the callers; this module only reads attributes of its objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from resources.social_config import ChannelConfig
from streaming.events import Event
from streaming.extract import DEFAULT_CONFIG, ExtractionConfig

#: discord.MessageType values that carry user content (default, reply, slash-command output,
#: context-menu output, thread starter, poll result); everything else is a system notice.
CONTENT_MESSAGE_TYPES: frozenset[int] = frozenset({0, 19, 20, 21, 23, 46})


@dataclass(frozen=True, slots=True)
class DiscordRoutes:
    """Which configured entry a message belongs to.

    A ``ChannelConfig.id`` is a channel id, or a server (guild) id to follow all its channels
    (snowflakes are unique across kinds, so the two cannot be confused). A channel entry wins
    over its server's entry; a message in a thread is routed by the thread, then its parent
    channel, then the server.
    """

    by_id: Mapping[str, ChannelConfig]

    @classmethod
    def from_channels(cls, channels: Iterable[ChannelConfig]) -> DiscordRoutes:
        """Routes for the configured entries (the first entry wins on a repeated id)."""
        by_id: dict[str, ChannelConfig] = {}
        for channel in channels:
            by_id.setdefault(channel.id.strip(), channel)
        return cls(by_id)

    def route(self, channel_id: int | str, *, parent_id: int | str | None = None, guild_id: int | str | None = None) -> ChannelConfig | None:
        """The entry for a message in ``channel_id`` (with its parent and guild), or None."""
        for key in (channel_id, parent_id, guild_id):
            if key is not None and (found := self.by_id.get(str(key))) is not None:
                return found
        return None

    def route_message(self, message: Any) -> ChannelConfig | None:
        """:meth:`route` for a ``discord.Message``."""
        channel = message.channel
        guild_id = message.guild.id if message.guild is not None else getattr(channel, "guild_id", None)
        return self.route(channel.id, parent_id=getattr(channel, "parent_id", None), guild_id=guild_id)


def _embed_lines(embeds: Iterable[Any]) -> list[str]:
    lines: list[str] = []
    for embed in embeds:
        for part in (embed.title, embed.description):
            if part:
                lines.append(part)
        for embed_field in embed.fields:
            if embed_field.name or embed_field.value:
                lines.append(f"{embed_field.name}: {embed_field.value}")
    return lines


def message_text(message: Any) -> str:
    """Content, embed titles/descriptions/fields and forwarded contents, newline-joined."""
    parts = [message.content] if message.content else []
    parts += _embed_lines(message.embeds)
    for snapshot in getattr(message, "message_snapshots", None) or ():
        if snapshot.content:
            parts.append(snapshot.content)
        parts += _embed_lines(snapshot.embeds)
    return "\n".join(parts)


def _id(value: Any) -> str | None:
    return str(value) if value is not None else None


def _raw(message: Any, *, weight: float, configured_id: str | None) -> dict[str, Any]:
    channel = message.channel
    guild = message.guild
    reference = message.reference
    return {
        "guild_id": _id(guild.id if guild is not None else getattr(channel, "guild_id", None)),
        "guild_name": getattr(guild, "name", None),
        "channel_name": getattr(channel, "name", None),
        "parent_channel_id": _id(getattr(channel, "parent_id", None)),
        "configured_id": configured_id,
        "channel_weight": weight,
        "author_id": str(message.author.id),
        "author_bot": bool(message.author.bot),
        "webhook_id": _id(message.webhook_id),
        "message_type": message.type.value,
        "reply_to": _id(reference.message_id) if reference is not None else None,
        "forwarded": bool(getattr(message, "message_snapshots", None)),
        "files": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size} for a in message.attachments
        ],
        "embeds": len(message.embeds),
        "edited_at": message.edited_at.astimezone(UTC).isoformat() if message.edited_at else None,
    }


def discord_message_to_event(
    message: Any,
    *,
    weight: float,
    configured_id: str | None = None,
    extraction: ExtractionConfig = DEFAULT_CONFIG,
) -> Event | None:
    """One ``discord.Message`` as an :class:`~streaming.events.Event` (module docstring: fields).

    Parameters
    ----------
    message
        A ``discord.Message`` (as ``on_message`` receives it).
    weight
        The weight of the channel/server entry it was routed by, in (0, 1]; ``raw["channel_weight"]``.
    configured_id
        That entry's ``ChannelConfig.id`` (``raw["configured_id"]``).
    extraction
        Token extraction settings passed to :meth:`Event.from_message`.

    Returns
    -------
    Event or None
        None for system messages (joins, pins, boosts...) and for messages with no text, no
        embed text and no attachment.
    """
    if message.type.value not in CONTENT_MESSAGE_TYPES:
        return None
    text = message_text(message)
    attachments = tuple(attachment.url for attachment in message.attachments)
    if not text.strip() and not attachments:
        return None
    return Event.from_message(
        source="discord",
        channel=str(message.channel.id),
        message_id=str(message.id),
        author=message.author.name,
        text=text,
        ts=message.created_at,
        attachments=attachments,
        raw=_raw(message, weight=weight, configured_id=configured_id),
        config=extraction,
    )
