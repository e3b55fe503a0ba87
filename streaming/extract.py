"""Token extraction: contract addresses and mints in social messages, with their chain (pure).

What counts as a token mention
------------------------------
- **Solana mint**: a run of 32-44 base58 characters (no ``0 O I l``) standing alone (no ASCII
  letter or digit touches it; ``_``, ``-``, ``/``, ``=``, punctuation, emoji and CJK may), that
  decodes to exactly 32 bytes and has both upper- and lower-case letters. The last rule drops
  case-damaged copies (DexScreener API links lower-case mints: ``8xedeh9...`` is not the mint
  ``8xEdEh9...``; a real 43-character key has no upper-case letter with probability ~1e-10).
  Its chain is ``"solana"`` by format.
- **EVM contract**: ``0x`` plus exactly 40 hex digits standing alone; all-lower and all-upper
  hex are accepted, mixed case must pass the EIP-55 checksum. Its chain comes from, in
  order: a link that holds it (``dexscreener.com/base/...``, ``bscscan.com/token/...``,
  ``?chain=``); a chain named right before it (``Base CA: 0x...``); chain words and links on
  its own line (``#BSC``, ``on Base``); those of the whole message; else
  ``config.default_evm_chain`` or ``"evm"`` (unknown EVM chain).

Text is read after zero-width characters are removed and percent-escapes decoded (``%20``
before a mint in an X search link is a space, not part of the address).

Not token mentions: transaction hashes (0x + 64 hex) and Solana signatures (86-88 base58
characters, 64 bytes), any 0x-hex of another length, BTC (bech32 ``bc1...`` has no upper
case; legacy ``1...``/``3...`` decode to 25 bytes), TRON ``T...`` (25 bytes), IPFS CIDs (46+
characters), hex without ``0x`` (commit hashes, image ids), ENS names, the Solana programs
and sysvars of :mod:`streaming.extract_programs` (a sourced table; wrapped SOL
included) and ``DEFAULT_EXCLUDED_EVM``, and addresses whose every occurrence is a wallet or
transaction: account and tx links (``solscan.io/account/...``, ``/tx/...``), wallet labels in
several languages (``Deployer:``, ``Dev wallet:``, ``кошелек разработчика:``, ``钱包：``),
"send ... to" phrases (presale and airdrop wallets), holder lists (``Top holders:``), and an
explorer ``/address/`` page when another address of the message is linked as a token (the
buyer line of a buy-bot post); or that sit in a link to an ignored host (GitHub, YouTube ...).
The rules and the class each serves are listed in :mod:`streaming.extract_context`.

Pairs: an address seen only in pair/pool chart links (``dexscreener.com/<chain>/<pair>``,
dextools ``pair-explorer``, GeckoTerminal ``pools``) is reported with ``kind="pair"``; the
validation resolves it to the pair's token through DexScreener. A launchpad vanity mint
(``...pump``, ``...bonk``) in such a link, or an address also pasted bare, is a token.

What text alone cannot decide: whether a bare EVM address is a token, a pair or a wallet; the
chain of an EVM address no word or link names (``"evm"``, resolved by DexScreener); whether a
DexScreener link holds a pair or a token (DexScreener accepts both; the pair lookup falls back
to the token); whether an unlabelled Solana key is a mint or a wallet.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from streaming.extract_codecs import b58_decoded_length, has_valid_checksum, to_checksum_address
from streaming.extract_config import (
    DEFAULT_CONFIG,
    SOLANA,
    UNKNOWN_EVM_CHAIN,
    ChainSpec,
    ExtractionConfig,
)
from streaming.extract_context import (
    ACCOUNT,
    IGNORED,
    NEUTRAL,
    PAIR,
    TOKEN,
    TX,
    WALLET,
    ContextRules,
    MessageContext,
)

__all__ = [
    "DEFAULT_CONFIG",
    "SOLANA",
    "UNKNOWN_EVM_CHAIN",
    "ChainSpec",
    "ExtractionConfig",
    "TokenExtractor",
    "TokenMention",
    "extract_tokens",
]

#: Maximal runs of 32+ ASCII letters/digits: every address candidate, never a piece of one
#: (a run that is long enough matches from its first character, and the possessive repeat
#: takes it to its last; no look-around needed, which keeps the scan fast).
_CANDIDATE = re.compile(r"[A-Za-z0-9]{32,}+")
_BASE58_RUN = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}")
_EVM_RUN = re.compile(r"0x[0-9a-fA-F]{40}")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
#: Suffixes of launchpad vanity mints (pump.fun, LetsBonk): DexScreener links these by mint.
_VANITY_MINT_SUFFIXES = ("pump", "bonk")

# Confidence that a mention is a token the message is about (documented in TokenMention).
_BASE_CONFIDENCE = 0.5
_TOKEN_ROLE_BONUS = 0.3
_KNOWN_CHAIN_BONUS = 0.1
_REPEATED_BONUS = 0.1


@dataclass(frozen=True, slots=True)
class TokenMention:
    """One token address found in a message.

    Attributes
    ----------
    chain
        ``"solana"``, an EVM chain name from the config (``"ethereum"``, ``"bsc"``,
        ``"base"`` ...), or ``"evm"`` when nothing named the chain of an EVM address.
    address
        Display form: a Solana mint exactly as written (base58 is case-sensitive); an EVM
        address in its EIP-55 checksummed form, whatever case the message used.
    evidence
        Why this chain: ``"format"`` (Solana), ``"link:<host>"`` (a link holding the address),
        ``"label:<chain>"`` (named right before it), ``"line word:#bsc"`` /
        ``"message link:<host>"`` (context), or ``"default"``.
    confidence
        In [0, 1]: 0.5 for a valid address, +0.3 when a chart/token link or a ``CA:``-style
        label marks it as a token, +0.1 when the chain is known (not the default), +0.1 when
        it occurs more than once.
    role
        ``"token"`` (a link or label says so) or ``"neutral"``.
    start, end
        Span of the first occurrence in the text (after zero-width characters are removed).
    occurrences
        How many times the address occurs in the message (any case, for EVM).
    kind
        ``"token"``, or ``"pair"`` for a DEX pair (pool) address: one seen only in pair/pool
        chart links (``dexscreener.com/<chain>/<pair>``, ``pair-explorer/``, ``pools/``).
        Validation resolves a pair to its base token through DexScreener's pairs endpoint.
    """

    chain: str
    address: str
    evidence: str
    confidence: float
    role: str
    start: int
    end: int
    occurrences: int
    kind: str = "token"

    @property
    def is_evm(self) -> bool:
        """True for an EVM contract (``0x`` + 40 hex), False for a Solana mint."""
        return self.address.startswith("0x")

    @property
    def key(self) -> str:
        """Identity of the address: lower-case for EVM, exact for Solana."""
        return self.address.lower() if self.is_evm else self.address


@dataclass(slots=True)
class _Group:
    """Every occurrence of one address (EVM grouped case-insensitively) in a message."""

    is_evm: bool
    spans: list[tuple[int, int]]
    display: str


class TokenExtractor:
    """Token extraction compiled for one :class:`ExtractionConfig`; reuse it across messages.

    Thread-safe: it holds only immutable compiled state (the caches it uses are
    ``functools.lru_cache``, which is thread-safe).
    """

    def __init__(self, config: ExtractionConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self._rules = ContextRules(config)
        self._excluded_solana = frozenset(config.excluded_solana)
        self._excluded_evm = frozenset(address.lower() for address in config.excluded_evm)
        self._default_chain = config.default_evm_chain or UNKNOWN_EVM_CHAIN

    def extract(self, text: str) -> list[TokenMention]:
        """Token mentions of ``text``; see :func:`extract_tokens`."""
        if len(text) < 32:
            return []
        if _ZERO_WIDTH.search(text):
            text = _ZERO_WIDTH.sub("", text)
        if "%" in text:
            text = _PERCENT_RUN.sub(_unquote, text)
        groups: dict[str, _Group] = {}
        for match in _CANDIDATE.finditer(text):
            run = match.group()
            key = self._classify(run)
            if key is None:
                continue
            group = groups.get(key)
            if group is None:
                groups[key] = _Group(run[:2] == "0x", [match.span()], run)
            else:
                group.spans.append(match.span())
        if not groups:
            return []
        context = MessageContext(self._rules, text)
        # Look at every occurrence first: the links found there are context for the others.
        resolved = [(group, self._role(group, context)) for group in groups.values()]
        # an explorer /address/ page is a wallet when another address is linked as a token
        other_token = any(role == TOKEN for _, (role, _) in resolved)
        mentions: list[TokenMention] = []
        for group, (role, link_chains) in resolved:
            if role == ACCOUNT:
                role = None if other_token else NEUTRAL
            if role is not None:
                mentions.extend(self._mentions(group, role, link_chains, context))
        mentions.sort(key=lambda mention: mention.start)
        return mentions

    def _classify(self, run: str) -> str | None:
        """Identity key of a valid, not excluded address candidate, else None.

        The key is the lower-cased address for EVM (``0x`` prefix) and the run itself for
        Solana (base58 has no ``x``, so the two never collide).
        """
        if run[:2] == "0x":
            if len(run) != 42 or not _EVM_RUN.fullmatch(run) or not has_valid_checksum(run):
                return None
            key = run.lower()
            return None if key in self._excluded_evm else key
        if (
            len(run) > 44
            or not _BASE58_RUN.fullmatch(run)
            or run == run.lower()
            or run == run.upper()
            or run in self._excluded_solana
            or b58_decoded_length(run) != 32
        ):
            return None
        return run

    @staticmethod
    def _role(group: _Group, context: MessageContext) -> tuple[str | None, dict[str, str]]:
        """Role of an address over all its occurrences (None: not a token) and its link chains.

        Occurrences in ignored links do not count; any token occurrence makes it a token;
        otherwise any wallet or transaction occurrence rules it out; an address seen only in
        pair links is a pair (except a launchpad vanity mint: DexScreener links it by mint);
        one also seen bare is a token (the poster pasted it); one seen only on explorer
        ``/address/`` pages is an account (decided against the other addresses).
        """
        roles = []
        link_chains: dict[str, str] = {}
        for start, end in group.spans:
            role, url = context.role(start, end)
            if role == IGNORED:
                continue
            roles.append(role)
            if url is not None and url.chain is not None:
                link_chains.setdefault(url.chain, url.host)
            if role == TOKEN and not group.is_evm:
                break  # a Solana mint needs no more: token wins, and its chain is known
        if TOKEN in roles:
            return TOKEN, link_chains
        if not roles or WALLET in roles or TX in roles:
            return None, link_chains
        if PAIR in roles:
            bare = NEUTRAL in roles or (not group.is_evm and group.display.endswith(_VANITY_MINT_SUFFIXES))
            return (TOKEN if bare else PAIR), link_chains
        if all(role == ACCOUNT for role in roles):
            return ACCOUNT, link_chains
        return NEUTRAL, link_chains

    def _mentions(
        self, group: _Group, role: str, link_chains: dict[str, str], context: MessageContext
    ) -> list[TokenMention]:
        start, end = group.spans[0]
        if group.is_evm:
            address = to_checksum_address(group.display)
            evm_links = {
                chain: host
                for chain, host in link_chains.items()
                if self._rules.family.get(chain) == "evm"
            }
            if evm_links:
                choices = [(chain, f"link:{host}") for chain, host in evm_links.items()]
            elif (labelled := context.chain_label(start)) is not None:
                choices = [(labelled, f"label:{labelled}")]
            else:
                near = context.evm_chain_near(start)
                choices = [near] if near is not None else [(self._default_chain, "default")]
        else:
            address = group.display
            choices = [(SOLANA, f"link:{link_chains[SOLANA]}" if SOLANA in link_chains else "format")]
        occurrences = len(group.spans)
        kind = "pair" if role == PAIR else "token"
        role = TOKEN if role == PAIR else role
        mentions = []
        for chain, evidence in choices:
            confidence = _BASE_CONFIDENCE
            confidence += _TOKEN_ROLE_BONUS if role == TOKEN else 0.0
            confidence += _KNOWN_CHAIN_BONUS if evidence != "default" else 0.0
            confidence += _REPEATED_BONUS if occurrences > 1 else 0.0
            confidence = round(min(confidence, 1.0), 2)
            if confidence >= self.config.min_confidence:
                mentions.append(
                    TokenMention(chain, address, evidence, confidence, role, start, end, occurrences, kind)
                )
        return mentions


def _unquote(match: re.Match[str]) -> str:
    """A run of percent-escapes, decoded (``%20`` -> space); undecodable bytes become U+FFFD."""
    return unquote(match.group(), errors="replace")


@lru_cache(maxsize=16)
def _extractor_for(config: ExtractionConfig) -> TokenExtractor:
    return TokenExtractor(config)


_DEFAULT_EXTRACTOR = TokenExtractor(DEFAULT_CONFIG)


def extract_tokens(text: str, *, config: ExtractionConfig = DEFAULT_CONFIG) -> list[TokenMention]:
    """Token addresses mentioned in a message, with chain, evidence and confidence.

    Parameters
    ----------
    text
        The message text as received (any platform; Markdown and links are fine).
    config
        Chains, hosts, labels and exclusions; compiled once per distinct config and cached.
        Hot loops with a custom config may hold a :class:`TokenExtractor` instead.

    Returns
    -------
    list[TokenMention]
        In order of first occurrence. Guarantees: each (chain, address identity) appears at
        most once (EVM identity is case-insensitive); every EVM address is 0x + 40 hex that
        passed EIP-55 when written in mixed case; every Solana address decodes to 32 bytes;
        no excluded address appears; the result depends on ``text`` and ``config`` only.
        An EVM address named by links of several chains yields one mention per chain.
    """
    extractor = _DEFAULT_EXTRACTOR if config is DEFAULT_CONFIG else _extractor_for(config)
    return extractor.extract(text)
