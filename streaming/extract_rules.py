"""Vocabulary of the context rules of token extraction, in several languages (pure).

Read by :mod:`streaming.extract_context`, whose docstring lists the rules and the class of
message each serves. Kept apart so the word lists can grow without burying the logic.
"""

from __future__ import annotations

import re

STRONG_WEIGHT = 10  # a strong chain word
HOME_WEIGHT = 15  # a chain word after a launch verb ("launched on Base")

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
