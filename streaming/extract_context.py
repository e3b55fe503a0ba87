r"""Message context for token extraction: links, chain words and labels around an address (pure).

Compiled once per :class:`~streaming.extract_config.ExtractionConfig` into
:class:`ContextRules`; a :class:`MessageContext` then answers, for one message and lazily
(chatter without any address never pays for it): which link an address sits in, what that
link says about chain and role, which label precedes the address, and which chain the words
of its line or of the whole message favour.

A link is the run of text around an address up to whitespace or one of ``<>"'`()[]{}|\^``,
when a host (``name.tld``, scheme optional) precedes the address in it. Only links that hold
an address are read: a chart link names the chain of the pair in it and of the message.

Rules, by the class of message they serve
-----------------------------------------
*Addresses that are not tokens* (roles of one occurrence, :meth:`MessageContext.role`):

1. A link decides first, by the path segment or query key right before the address:
   ``/tx/`` is a transaction, ``/account/`` ``/wallet/`` ``?a=`` a wallet, ``/token/`` a token,
   ``/pair/`` ``/pairs/`` ``/pair-explorer/`` ``/pool(s)/`` ``/lp/`` a **pair**, and a bare
   chart path ``dexscreener.com/<chain>/<address>`` (``pair_chart_hosts``) a pair too.
   An explorer's ``/address/`` page is an **account** page: a wallet when the message links
   another address as a token (buy-bot buyer lines), a token otherwise (``#code`` makes it a
   token: that is a contract's source).
2. Else the label right before the link or the address on its line (``CA:``, ``Dev wallet:``,
   ``кошелек разработчика:``, ``开发者钱包：`` ...; CJK labels match as a suffix of the last word,
   since CJK text has no spaces); a "send ... to" phrase (``send 1 SOL to``, ``envía a``,
   ``отправьте на``) makes a wallet.
3. Else the list it sits in: an address under a header line such as ``Top holders:``,
   ``Top 10 wallets``, ``Держатели:``, ``持有人：`` (same paragraph, no blank line between) is
   a wallet.

*Chain from context* (:meth:`MessageContext.evm_chain_near`, EVM addresses only):

4. Chain words of the config, in any script: Latin/Cyrillic words match as whole words,
   CJK/kana/hangul ones as substrings of the line. DEX and launchpad names are chain words
   (Aerodrome/BaseSwap -> Base, PancakeSwap/four.meme -> BSC); Uniswap is a *weak* Ethereum
   word, so any other hint outweighs it.
5. Structured fields name the chain: ``Chain: Base``, ``"chain": "base"``, ``network=bsc``,
   ``chainId: 8453``, ``Сеть: BSC``, ``链：BSC`` and the chain-emoji column ``⛓️ Base`` of bot
   posts (weight :data:`FIELD_WEIGHT`, above a link).
6. Of two chains in one sentence, the one the token lives on wins: a chain after a launch verb
   (``launched on``, ``live on``, ``deployed on``, ``только на``...) weighs
   :data:`~streaming.extract_rules.HOME_WEIGHT`; one named as a cost or an origin (``gas on ETH``, ``fees on``,
   ``bridged from``, ``from ETH``, ``cheaper than``) does not count.
"""

from __future__ import annotations

import re

from streaming.extract_rules import (
    ACCOUNT,
    ALNUM,
    CJK_SEND,
    FIELD,
    FIELD_WEIGHT,
    HOLDER_HEADER,
    IGNORED,
    NEUTRAL,
    PAIR,
    SEND_TO,
    SEND_VERBS,
    STRONG_WEIGHT,
    TOKEN,
    TX,
    URL_WEIGHT,
    WALLET,
    WEAK_CAP,
    ContextRules,
    UrlSpan,
    sentence_weight,
)

__all__ = ["ACCOUNT", "IGNORED", "NEUTRAL", "PAIR", "TOKEN", "TX", "WALLET", "ContextRules",
           "MessageContext", "UrlSpan"]


_NOT_DELIMITER = re.compile(r"[^\s<>\"'`()\[\]{}|\\^]*")
_HOST = re.compile(
    r"(?:[A-Za-z][A-Za-z0-9+.-]*://)?((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24})(?::\d{1,5})?(?=[/?#])"
)
_WORD = re.compile(r"[#$]?[^\W_](?:[\w.'-]*[^\W_])?")
_MAX_LINK = 512
_TX_SEGMENTS = frozenset({"tx", "txs", "transaction", "transactions", "block", "blocks", "signature"})
_WALLET_SEGMENTS = frozenset(
    {"account", "accounts", "wallet", "wallets", "profile", "user", "users", "portfolio", "holder"}
)
_TOKEN_SEGMENTS = frozenset(
    {"token", "tokens", "coin", "coins", "swap", "trade", "terminal", "chart", "meme"}
)
_PAIR_SEGMENTS = frozenset({"pair", "pairs", "pool", "pools", "pair-explorer", "lp"})
_ACCOUNT_SEGMENTS = frozenset({"address", "addresses"})
_NEUTRAL_SEGMENTS = frozenset({"contract"})
_CODE_ANCHORS = ("#code", "#readcontract", "#writecontract", "#contracts")
_WALLET_QUERY_KEYS = frozenset({"a", "wallet", "owner", "maker", "account", "user"})
_TOKEN_QUERY_KEYS = frozenset(
    {"address", "token", "tokenaddress", "ca", "mint", "outputcurrency", "inputcurrency",
     "outputmint", "inputmint"}
)
_LABEL_WINDOW = 48


class MessageContext:
    """Lazily computed context of one message (see the module docstring)."""

    __slots__ = ("_before", "_hits", "_links", "rules", "text")

    def __init__(self, rules: ContextRules, text: str) -> None:
        self.rules = rules
        self.text = text
        self._links: dict[int, UrlSpan | None] = {}
        self._hits: list[tuple[int, str, int, str]] | None = None
        self._before: dict[int, list[str]] = {}

    def link_at(self, start: int, end: int) -> UrlSpan | None:
        """The link that holds the address at ``[start, end)``, if any."""
        text = self.text
        low = max(0, start - _MAX_LINK)
        head = _NOT_DELIMITER.match(text[low:start][::-1])
        link_start = start - (head.end() if head else 0)
        if link_start in self._links:
            return self._links[link_start]
        prefix = text[link_start:start]
        link = None
        if "/" in prefix or "?" in prefix:
            hosts = list(_HOST.finditer(prefix))  # the last host: a link nested in a share link
            host = hosts[-1] if hosts else None
            if host is not None:
                tail = _NOT_DELIMITER.match(text, end, min(len(text), end + _MAX_LINK))
                link_end = tail.end() if tail else end
                url_start = link_start + host.start()
                link = self.rules.link(url_start, link_end, host.group(1), text[url_start:link_end])
        self._links[link_start] = link
        return link

    def role(self, start: int, end: int) -> tuple[str, UrlSpan | None]:
        """Role of the occurrence ``[start, end)`` and the link that holds it.

        A link decides first (its path segment or query key before the address, then its
        kind); else a label right before the link or the address; else :data:`NEUTRAL`.
        """
        url = self.link_at(start, end)
        if url is not None:
            role = self._url_role(url, start, end)
            if role not in (NEUTRAL, ACCOUNT):
                return role, url
            anchor = url.start
        else:
            role, anchor = NEUTRAL, start
        label = self._label_role(anchor)
        if label != NEUTRAL:
            return label, url
        if self._in_holder_list(anchor):
            return WALLET, url
        return role, url

    def _url_role(self, url: UrlSpan, start: int, end: int) -> str:
        if url.ignored:
            return IGNORED
        before = self.text[url.start : start]
        if "?" in before:
            cut = max(before.rfind("&"), before.rfind("?"))
            key = before[cut + 1 :].partition("=")[0].lower()
            if key in _WALLET_QUERY_KEYS:
                return WALLET
            return TOKEN if key in _TOKEN_QUERY_KEYS else NEUTRAL
        previous = before.rstrip("/").rsplit("/", 1)[-1].lower()
        if previous in _TX_SEGMENTS:
            return TX
        if previous in _WALLET_SEGMENTS:
            return WALLET
        if previous in _TOKEN_SEGMENTS:
            return TOKEN
        if previous in _PAIR_SEGMENTS:
            return PAIR
        if previous in _ACCOUNT_SEGMENTS:
            after = self.text[end : url.end].lower()
            return TOKEN if after.startswith(_CODE_ANCHORS) else ACCOUNT
        if previous in _NEUTRAL_SEGMENTS or not url.aggregator:
            return NEUTRAL
        if url.pair_chart and url.chain is not None and self.rules.slug_chain.get(previous):
            return PAIR
        return TOKEN

    def _words_before(self, anchor: int) -> list[str]:
        """Lower-case alphanumeric words in the window before ``anchor`` on its line (a copy)."""
        words = self._before.get(anchor)
        if words is None:
            text = self.text
            line_start = text.rfind("\n", 0, anchor) + 1
            words = ALNUM.findall(text[max(line_start, anchor - _LABEL_WINDOW) : anchor].lower())
            self._before[anchor] = words
        return list(words)

    def _label_role(self, anchor: int) -> str:
        """Role named by the last words before ``anchor`` on its line (only symbols between)."""
        words = self._words_before(anchor)
        if not words:
            return NEUTRAL
        labels = self.rules.labels
        for size in range(min(self.rules.longest_label, len(words)), 0, -1):
            role = labels.get(" ".join(words[-size:]))
            if role is not None:
                return role
        last = words[-1]
        if not last.isascii():
            for label, role in self.rules.cjk_labels:
                if last.endswith(label):
                    return role
            if last.endswith(CJK_SEND):
                return WALLET
        if last in SEND_TO and not SEND_VERBS.isdisjoint(words[-7:-1]):
            return WALLET
        return NEUTRAL

    def _in_holder_list(self, anchor: int) -> bool:
        """Whether the line of ``anchor`` sits under a holder-list header in its paragraph."""
        text = self.text
        end = text.rfind("\n", 0, anchor)
        for _ in range(12):
            if end < 0:
                return False
            start = text.rfind("\n", 0, end) + 1
            line = text[start:end].strip()
            if not line:
                return False
            if HOLDER_HEADER.match(line):
                return True
            end = start - 1
        return False

    def chain_label(self, anchor: int) -> str | None:
        """EVM chain named right before ``anchor`` (``Base CA: 0x...``, ``BSC: 0x...``).

        The last word before the address, after skipping token labels (``CA``, ``contract``,
        ``address`` ...), is looked up as a chain slug or chain word.
        """
        words = self._words_before(anchor)
        rules = self.rules
        while words and rules.labels.get(words[-1]) == TOKEN:
            words.pop()
        if not words:
            return None
        chain = rules.slug_chain.get(words[-1])
        if chain is None:
            hit = rules.words.get(words[-1])
            chain = hit[0] if hit is not None and hit[1] >= STRONG_WEIGHT else None
        if len(words) > 1 and sentence_weight(words, len(words) - 1, words[-1], 1) == 0:
            return None  # "not on Base 0x...", "from ETH 0x...": not where the token lives
        return chain if chain is not None and rules.family.get(chain) == "evm" else None

    def _word_hits(self) -> list[tuple[int, str, int, str]]:
        """(position, chain, weight, evidence) of every EVM chain word and chain-naming link.

        Links count once :meth:`link_at` has seen them, so call this after every occurrence
        of every address has been looked at. Word positions are those of the word's first
        occurrence on its line (they only order hits and place them on a line).
        """
        if self._hits is None:
            rules = self.rules
            hits = [
                (url.start, url.chain, URL_WEIGHT, "link:" + url.host)
                for url in self._links.values()
                if url is not None and url.chain is not None and rules.family.get(url.chain) == "evm"
            ]
            for match in FIELD.finditer(self.text):
                chain = rules.field_chain(match.group(1))
                if chain is not None and rules.family.get(chain) == "evm":
                    hits.append((match.start(), chain, FIELD_WEIGHT, "field:" + match.group(1).lower()))
            offset = 0
            for line in self.text.lower().split("\n"):
                words = _WORD.findall(line)
                if not rules.first_words.isdisjoint(words):
                    hits.extend(self._line_hits(words, line, offset))
                if not line.isascii():
                    for key, (chain, weight) in rules.cjk_words.items():
                        if key in line:
                            hits.append((offset + line.find(key), chain, weight, "word:" + key))
                offset += len(line) + 1
            hits.sort()
            self._hits = hits
        return self._hits

    def _line_hits(self, words: list[str], line: str, offset: int) -> list[tuple[int, str, int, str]]:
        """Chain words of one line; at each occurrence the longest phrase wins (``bnb chain``
        over ``bnb``). Only the words the table knows are visited, not every word."""
        rules = self.rules
        table, starts = rules.words, rules.phrase_starts
        hits = []
        for word in rules.first_words.intersection(words):
            position = offset + line.find(word)
            index = -1
            while (index := _next_index(words, word, index + 1)) >= 0:
                sizes = range(min(rules.longest_phrase, len(words) - index), 0, -1) if word in starts else (1,)
                for size in sizes:
                    key = " ".join(words[index : index + size]) if size > 1 else word
                    hit = table.get(key)
                    if hit is not None:
                        weight = sentence_weight(words, index, key, hit[1])
                        if weight:
                            hits.append((position, hit[0], weight, "word:" + key))
                        break
        return hits

    def evm_chain_near(self, position: int) -> tuple[str, str] | None:
        """Chain favoured by the words and links around ``position``, with the evidence.

        The address's own line decides when it holds a strong word or a chain link; else the
        whole message. Per chain, strong words and links add up, weak words add at most
        :data:`WEAK_CAP`; the best total wins, ties go to the chain named first. The evidence
        is the heaviest hit of the winner, e.g. ``"line word:#bsc"`` or
        ``"message link:dexscreener.com"``.
        """
        hits = self._word_hits()
        if not hits:
            return None
        text = self.text
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line_end = len(text) if line_end < 0 else line_end
        local = [hit for hit in hits if line_start <= hit[0] < line_end]
        if any(hit[2] >= STRONG_WEIGHT for hit in local):
            return _best(local, "line")
        return _best(hits, "message")


def _next_index(words: list[str], word: str, start: int) -> int:
    """Index of ``word`` in ``words`` from ``start`` on, or -1."""
    try:
        return words.index(word, start)
    except ValueError:
        return -1


def _best(hits: list[tuple[int, str, int, str]], scope: str) -> tuple[str, str]:
    strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    first: dict[str, int] = {}
    heaviest: dict[str, tuple[int, str]] = {}
    for position, chain, weight, evidence in hits:
        first.setdefault(chain, position)
        bucket = strong if weight >= STRONG_WEIGHT else weak
        bucket[chain] = bucket.get(chain, 0) + weight
        if chain not in heaviest or weight > heaviest[chain][0]:
            heaviest[chain] = (weight, evidence)
    scores = {chain: strong.get(chain, 0) + min(weak.get(chain, 0), WEAK_CAP) for chain in first}
    chain = max(scores, key=lambda name: (scores[name], -first[name]))
    return chain, f"{scope} {heaviest[chain][1]}"
