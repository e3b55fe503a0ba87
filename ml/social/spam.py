"""Spam in social calls (pure): one message's spam score from patterns and its shape.

Spam score of one message (:func:`spam_assessment`)
---------------------------------------------------
Each signal that fires has a weight ``w`` (:class:`SpamWeights`); the score is their noisy-OR
``1 - prod(1 - w)``: in [0, 1], never lowered by one more signal, and one pattern hit alone
stays under the hard rejection of 0.8 that :mod:`ml.social.scoring` applies.

=================  ======  ===================================================================
signal             weight  fires when
=================  ======  ===================================================================
``pattern:<re>``   0.60    each configured pattern (``SpamConfig.patterns``) matching the raw
                           text or its :func:`~ml.social.text.normalise_content` form
``referral_link``  0.35    a link with ``ref=``/``referral``/``invite=``/``aff=``/``code=`` in
                           its query, ``/ref/`` or ``/referral/`` in its path, or a Telegram bot
                           ``?start=`` payload
``caps``           0.25    ≥ 20 letters outside links, addresses and ``$``/``#`` tags, ≥ 70 %
                           of them upper-case
``links``          0.20    ≥ 4 links
``emoji``          0.20    ≥ 8 emoji, or ≥ 4 emoji making ≥ 25 % of the visible characters
``address_list``   0.20    ≥ 4 distinct addresses (a shill list, not a call)
``invite_link``    0.15    a private group invite (``t.me/+…``, ``t.me/joinchat``,
                           ``discord.gg/…``, ``discord.com/invite/…``)
``punctuation``    0.10    a run of 4 or more ``!`` or ``?``
=================  ======  ===================================================================

Coordinated waves across channels are in :mod:`ml.social.waves`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from ml.social.text import normalise_content

__all__ = ["SpamResult", "SpamWeights", "spam_assessment"]


class SpamWeights(BaseModel):
    """Weight of each spam signal in the noisy-OR (defaults: table in the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: float = Field(0.60, ge=0.0, le=1.0)
    referral_link: float = Field(0.35, ge=0.0, le=1.0)
    caps: float = Field(0.25, ge=0.0, le=1.0)
    links: float = Field(0.20, ge=0.0, le=1.0)
    emoji: float = Field(0.20, ge=0.0, le=1.0)
    address_list: float = Field(0.20, ge=0.0, le=1.0)
    invite_link: float = Field(0.15, ge=0.0, le=1.0)
    punctuation: float = Field(0.10, ge=0.0, le=1.0)


DEFAULT_SPAM_WEIGHTS = SpamWeights()


@dataclass(frozen=True, slots=True)
class SpamResult:
    """Spam score in [0, 1] and the signals that fired, in the order of the module table."""

    score: float
    reasons: tuple[str, ...]


_LINK = re.compile(
    r"(?i)(?:https?://|www\.)[^\s<>\"']+"
    r"|\b(?:t\.me|telegram\.me|discord\.gg|discord\.com/invite)/[^\s<>\"']+"
)
_REFERRAL = re.compile(
    r"(?i)[?&](?:ref|referral|refcode|ref_code|invite|inviter|aff|affiliate|code|start)=[^&\s]+"
    r"|/(?:ref|referral|refer)/[A-Za-z0-9_-]{3,}"
)
_INVITE = re.compile(
    r"(?i)\b(?:t\.me|telegram\.me)/(?:\+|joinchat/)|\bdiscord\.gg/|\bdiscord\.com/invite/"
)
_ADDRESS = re.compile(
    r"\b0[xX][0-9a-fA-F]{40}\b|(?<![A-Za-z0-9])[1-9A-HJ-NP-Za-km-z]{32,44}(?![A-Za-z0-9])"
)
_LONG_RUN = re.compile(r"[A-Za-z0-9]{25,}")
_TAG = re.compile(r"[$#]\w+")
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff]")
_SHOUT = re.compile(r"[!?]{4,}")




@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid spam pattern {pattern!r}: {error}") from error


def spam_assessment(
    text: str,
    *,
    patterns: Sequence[str],
    weights: SpamWeights = DEFAULT_SPAM_WEIGHTS,
) -> SpamResult:
    """Score how spam-like one message is (signals and weights in the module docstring).

    Parameters
    ----------
    text
        The message as received (not normalised).
    patterns
        Regular expressions (``SpamConfig.patterns``); each one that matches fires once.
    weights
        Weight of each signal.

    Returns
    -------
    SpamResult
        ``score = 1 - prod(1 - w)`` over the signals that fired, in [0, 1]; 0.0 and no reasons
        for a clean text. Deterministic; adding a signal never lowers the score.

    Raises
    ------
    ValueError
        A pattern that does not compile.
    """
    normalised = normalise_content(text)
    fired: list[tuple[str, float]] = []
    for pattern in dict.fromkeys(patterns):
        compiled = _compiled(pattern)
        if compiled.search(text) or compiled.search(normalised):
            fired.append((f"pattern:{pattern}", weights.pattern))
    links = _LINK.findall(text)
    if any(_REFERRAL.search(link) for link in links):
        fired.append(("referral_link", weights.referral_link))
    bare = _TAG.sub(" ", _LONG_RUN.sub(" ", _LINK.sub(" ", text)))
    letters = [c for c in bare if c.isalpha()]
    if len(letters) >= 20 and sum(c.isupper() for c in letters) >= 0.7 * len(letters):
        fired.append(("caps", weights.caps))
    if len(links) >= 4:
        fired.append(("links", weights.links))
    emoji = len(_EMOJI.findall(text))
    visible = sum(not c.isspace() for c in text)
    if emoji >= 8 or (emoji >= 4 and emoji >= 0.25 * visible):
        fired.append(("emoji", weights.emoji))
    addresses = {a.lower() if a[:2] in ("0x", "0X") else a for a in _ADDRESS.findall(text)}
    if len(addresses) >= 4:
        fired.append(("address_list", weights.address_list))
    if any(_INVITE.search(link) for link in links):
        fired.append(("invite_link", weights.invite_link))
    if _SHOUT.search(text):
        fired.append(("punctuation", weights.punctuation))
    clean = 1.0
    for _reason, weight in fired:
        clean *= 1.0 - weight
    return SpamResult(score=min(1.0, max(0.0, 1.0 - clean)), reasons=tuple(r for r, _ in fired))


# ----------------------------------------------------------------------------- waves
