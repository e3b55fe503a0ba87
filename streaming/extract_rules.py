"""Compiled rules of token extraction: roles, weights, vocabulary in several languages (pure).

:class:`ContextRules` is everything of an :class:`~streaming.extract_config.ExtractionConfig`
that reading a message's context needs, precompiled once; the module-level tables are the
language-level vocabulary (send verbs, launch verbs, holder-list headers, structured chain
fields). :mod:`streaming.extract_context` applies them; its docstring lists the rules and the
class of message each serves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streaming.extract_config import ExtractionConfig

# Roles of one occurrence of an address.
TOKEN = "token"  # a chart / token page / launchpad link, or a "CA:"-style label
NEUTRAL = "neutral"  # nothing says either way
WALLET = "wallet"  # an account/profile link or a "Deployer:"-style label
TX = "tx"  # inside a transaction or block link
IGNORED = "ignored"  # inside a link to a host that is never about tokens
PAIR = "pair"  # inside a pair/pool chart link
ACCOUNT = "account"  # an explorer's /address/ page: a wallet or a contract

WEAK_WEIGHT = 1  # a weak chain word (ETH is also the gas of Base, Arbitrum ...)
WEAK_CAP = 5  # weak words never add up to a strong one
URL_WEIGHT = 20  # a link naming the chain, anywhere in the message
FIELD_WEIGHT = 25  # a structured field ("Chain: Base", '"chain": "base"', "⛓️ Base")
STRONG_WEIGHT = 10  # a strong chain word
HOME_WEIGHT = 15  # a chain word after a launch verb ("launched on Base")
ALNUM = re.compile(r"[^\W_]+")
CHAIN_QUERY_KEYS = frozenset({"chain", "chainid", "chain_id", "network", "chainname", "blockchain"})

CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uff00-\uffef]")
FIELD = re.compile(
    r"(?:(?<![^\W_])(?:chain|network|blockchain|chain_?id|chain id|net|сеть|блокчейн|red|rede|réseau"
    r"|netzwerk|ağ)\s*[\"']?\s*[:=：]|(?:链|网络|公链|区块链)\s*[:=：]?|⛓\ufe0f?)\s*[\"']?[^\w#\n]{0,6}"
    r"([#$]?[\w.-]+(?: [\w.-]+)?)",
    re.IGNORECASE,
)
HOLDER_HEADER = re.compile(
    r"^[^\w]*(?:top\s*\d*\s*(?:holders?|wallets?|buyers?|traders?)|holders?(?: list| distribution)?"
    r"|wallets|insiders|snipers|bundlers?|(?:топ\s*\d*\s*)?(?:держател\w*|холдер\w*|кошельки)"
    r"|(?:前\s*(?:\d+|十)\s*|十大)?(?:持有人|持仓|持币地址|钱包)|(?:principales |maiores )?holders)\b[^\n]{0,24}$",
    re.IGNORECASE,
)
SEND_VERBS = frozenset(
    {"send", "sent", "sending", "transfer", "deposit", "pay", "contribute", "donate", "envía",
     "envia", "enviar", "envie", "envíe", "deposita", "отправьте", "отправь", "отправить",
     "переведите", "перевести", "gönder", "envoyez", "envoyer", "sende", "sendet", "gửi"}
)
SEND_TO = frozenset({"to", "into", "a", "para", "на", "à", "an", "đến", "vào"})
CJK_SEND = ("发送到", "转账到", "转到", "打到", "发到")
LAUNCH_VERBS = frozenset(
    {"launched", "launching", "launch", "live", "deployed", "deploying", "deploy", "built",
     "born", "native", "listed", "listing", "stealth", "trading", "exclusively", "only", "now",
     "relaunched", "migrated", "moved", "лаунч", "запустились", "запущен", "только", "lanzado",
     "lanzamos", "lançado", "solo", "só", "上线"}
)
ORIGIN_WORDS = frozenset(
    {"from", "than", "unlike", "vs", "gas", "fees", "fee", "gwei", "bridged", "bridge", "от", "desde",
     "not", "no", "never", "не", "нет"}
)

def sentence_weight(words: list[str], index: int, key: str, weight: int) -> int:
    """Weight of the chain word ``key`` at ``words[index]`` given the two words before it.

    ``launched on <chain>`` names the token's home (:data:`HOME_WEIGHT`); ``gas on <chain>``,
    ``from <chain>``, ``cheaper than <chain>`` name a cost or an origin (0: not counted).
    """
    before = words[max(0, index - 3) : index]
    if key.startswith(("on ", "в ", "на ", "na ", "en ")):
        before.append(key.split(" ", 1)[0])
    elif before and before[-1] in ("on", "to", "onto", "в", "на", "en", "em", "sur", "auf"):
        pass
    else:
        before = before[-1:]
    if not before:
        return weight
    if before[-1] in ORIGIN_WORDS or (len(before) > 1 and before[-2] in ORIGIN_WORDS):
        return 0
    if len(before) > 1 and before[-2] in LAUNCH_VERBS:
        return max(weight, HOME_WEIGHT)
    return weight


@dataclass(frozen=True, slots=True)
class UrlSpan:
    """One link in a message: its span in the text, host, the chain it names, and its kind."""

    start: int
    end: int
    host: str
    chain: str | None
    aggregator: bool
    ignored: bool
    pair_chart: bool = False


def _suffix_lookup(host: str, table: dict[str, str]) -> str | None:
    """Value of the longest key that is ``host`` or a parent domain of it."""
    while True:
        if host in table:
            return table[host]
        dot = host.find(".")
        if dot < 0:
            return None
        host = host[dot + 1 :]


def _label_key(label: str) -> str:
    """``"C/A:"`` -> ``"c a"``: labels compare as lower-case alphanumeric words."""
    return " ".join(ALNUM.findall(label.lower()))


class ContextRules:
    """Everything in an :class:`ExtractionConfig` that reading context needs, precompiled."""

    def __init__(self, config: ExtractionConfig) -> None:
        self.host_chain: dict[str, str] = {}
        self.slug_chain: dict[str, str] = {}
        self.id_chain: dict[str, str] = {}
        self.family: dict[str, str] = {}
        self.words: dict[str, tuple[str, int]] = {}
        for spec in config.all_chains:  # later entries (extra_chains) win
            self.family[spec.name] = spec.family
            self.host_chain.update(dict.fromkeys(spec.explorer_hosts, spec.name))
            self.slug_chain.update(dict.fromkeys(spec.slugs, spec.name))
            self.id_chain.update(dict.fromkeys((str(i) for i in spec.chain_ids), spec.name))
            if spec.family != "evm":
                continue
            for weight, words in ((WEAK_WEIGHT, spec.weak_words), (STRONG_WEIGHT, spec.words)):
                for word in words:
                    keys = [word] if word[0] in "#$" else [word, "#" + word, "$" + word]
                    self.words.update(dict.fromkeys(keys, (spec.name, weight)))
        self.first_words = frozenset(key.split(" ")[0] for key in self.words)
        self.phrase_starts = frozenset(key.split(" ")[0] for key in self.words if " " in key)
        self.longest_phrase = max((key.count(" ") + 1 for key in self.words), default=1)
        self.cjk_words = {key: hit for key, hit in self.words.items() if CJK.search(key)}
        self.names: dict[str, str] = {}
        for spec in config.all_chains:
            self.names[spec.name] = spec.name
            self.names.update(dict.fromkeys(spec.words, spec.name))
        self.aggregators = dict.fromkeys(config.aggregator_hosts, "1")
        self.pair_charts = dict.fromkeys(config.pair_chart_hosts, "1")
        self.ignored = dict.fromkeys(config.ignored_hosts, "1")
        self.labels: dict[str, str] = dict.fromkeys(map(_label_key, config.token_labels), TOKEN)
        self.labels.update(dict.fromkeys(map(_label_key, config.wallet_labels), WALLET))
        # CJK labels have no word boundary: they match as a suffix of the last word
        self.cjk_labels = sorted(
            ((key.replace(" ", ""), role) for key, role in self.labels.items() if CJK.search(key)),
            key=lambda item: -len(item[0]),
        )
        self.longest_label = max((key.count(" ") + 1 for key in self.labels), default=1)

    def link(self, start: int, end: int, host: str, url: str) -> UrlSpan:
        """The chain and kind of the link ``url`` (host ``host``) found at ``[start, end)``.

        The chain comes from a ``chain=``/``chainId=``-style query value, else (on an
        aggregator) the first path segment that is a chain slug (also as a ``-slug`` suffix),
        else the host (an explorer or single-chain site), else None.
        """
        host = host.lower()
        if host.startswith("www."):
            host = host[4:]
        chain = None
        path, _, query = url.partition("?")
        for pair in query.split("#", 1)[0].split("&") if query else ():
            key, _, value = pair.partition("=")
            if key.lower() in CHAIN_QUERY_KEYS:
                value = value.lower()
                chain = self.slug_chain.get(value) or self.id_chain.get(value)
                if chain:
                    break
        aggregator = _suffix_lookup(host, self.aggregators) is not None
        if chain is None and aggregator:
            for segment in path.split("#", 1)[0].lower().split("/")[3 if "://" in path else 1 :]:
                chain = self.slug_chain.get(segment) or self.slug_chain.get(segment.rsplit("-", 1)[-1])
                if chain:
                    break
        if chain is None:
            chain = _suffix_lookup(host, self.host_chain)
        ignored = _suffix_lookup(host, self.ignored) is not None
        pair_chart = _suffix_lookup(host, self.pair_charts) is not None
        return UrlSpan(start, end, host, chain, aggregator, ignored, pair_chart)

    def field_chain(self, value: str) -> str | None:
        """Chain named by the value of a ``Chain:``-style field (slug, name, word or chain id)."""
        value = value.lower().strip(".-")
        for candidate in (value, value.split(" ", 1)[0]):
            chain = (self.slug_chain.get(candidate) or self.id_chain.get(candidate)
                     or self.names.get(candidate) or self.names.get(candidate.lstrip("#$")))
            if chain is not None:
                return chain
        return None
