"""Rebuild ``token_calls_classes.jsonl``: labelled messages for the classes of issue 12.

Run from the repository root (needs ``../shared/fixtures``)::

    .venv/bin/python -m tests.streaming.corpus.build_corpus_classes

Every message text is written here by hand, one template per message, for one class each:
chain from DEX/launchpad names, from other languages, from structured payloads and emoji
columns of bot posts, from sentences naming two chains; wallets labelled as wallets (several
languages), "send ... to" presale/airdrop wallets, buy-bot buyer lines linking ``/address/``
pages, top-holder lists; Solana program ids; DEX pair links; percent-encoded addresses.

Addresses are real and each carries its provenance in ``address_sources``: tokens and pairs
from ``token_lists/address_ground_truth.csv`` (the row's chain, symbol and its own source),
public exchange hot wallets and an ENS-named wallet (each named), the fixture deployer wallet
of ``signals/memecoin_call_texts.jsonl``, and program ids from the sourced table of
``streaming/extract_programs.py``. Addresses already in ``token_calls.jsonl`` are not reused.
Labels are written with the template, never by the extractor: ``expected`` holds each token
or pair a careful reader takes from the text, with its chain and ``kind``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from streaming.extract_programs import SOLANA_PROGRAMS
from tests.support.fixtures import shared_fixtures_dir

OUT = Path(__file__).with_name("token_calls_classes.jsonl")
OLD = Path(__file__).with_name("token_calls.jsonl")
CSV_SOURCE = "token_lists/address_ground_truth.csv"

#: Public wallets: exchange hot wallets (as labelled on the chains' explorers) and vitalik.eth.
WALLETS_EVM = {
    "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045": "vitalik.eth (public ENS name), a wallet",
    "0x28C6c06298d514Db089934071355E5743bf21d60": "Binance 14 hot wallet (Etherscan label)",
    "0x21a31Ee1afC51d94C2eFcCAa2092aD1028285549": "Binance 15 hot wallet (Etherscan label)",
}
WALLETS_SOL = {
    "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM": "deployer wallet in signals/memecoin_call_texts.jsonl",
    "5tzFkiKscXHK5ZXCGbXZxdw7gTjjD1mBwuoFbhUvuAi9": "Binance 2 hot wallet (Solscan label)",
    "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM": "Binance hot wallet (Solscan label)",
}
PROGRAMS = {p.name: p for p in SOLANA_PROGRAMS}

Label = tuple[str, str, str]  # chain, address, kind
#: A one-token message: (chain of the address drawn, text with ``{a}``/``{a_lower}``, chain the
#: text supports, note[, required mint suffix]).
Row = tuple[str, ...]
Made = list[tuple[str, list[Label], str]]


class Pools:
    """Real addresses by chain and kind, handed out in file order without repetition."""

    def __init__(self, fixtures: Path) -> None:
        old = OLD.read_text(encoding="utf-8")
        rows = [r for r in csv.DictReader((fixtures / CSV_SOURCE).open(encoding="utf-8"))
                if r["address"] not in old and r["address"].lower() not in old.lower()]
        self.rows = {(r["chain"], r["kind"]): [] for r in rows}
        for r in rows:
            if r["kind"] == "pair" and r["chain"] != "solana" and len(r["address"]) != 42:
                continue
            if r["chain"] == "solana" and r["address"].startswith("So111"):
                continue
            self.rows[(r["chain"], r["kind"])].append(r)
        self.sources: dict[str, str] = {}

    def take(self, chain: str, kind: str = "token", suffix: str = "") -> str:
        pool = self.rows[(chain, kind)]
        for index, row in enumerate(pool):
            if row["address"].endswith(suffix):
                pool.pop(index)
                name = (row["symbol"] or row["name"])[:40]
                self.sources[row["address"]] = f"{CSV_SOURCE}: {chain} {kind} {name} (from {row['source']})"
                return row["address"]
        raise RuntimeError(f"no {chain} {kind} left")

    def wallet(self, evm: bool, index: int = 0) -> str:
        table = WALLETS_EVM if evm else WALLETS_SOL
        address = list(table)[index % len(table)]
        self.sources[address] = table[address]
        return address

    def program(self, name: str) -> str:
        program = PROGRAMS[name]
        self.sources[program.address] = f"streaming/extract_programs.py: {program.name} ({program.source})"
        return program.address





CHAIN_DEX: tuple[Row, ...] = (
    ("base", "new Aerodrome pool just opened 🛫\n{a}\nLP locked", "base", "aerodrome"),
    ("base", "aped on BaseSwap: {a} tiny mc", "base", "baseswap"),
    ("base", "{a}\n\nliquidity on aerodrome, vol picking up", "base", "aerodrome after"),
    ("ethereum", "Uniswap V2 stealth 🥷\n{a}\ntax 0/0", "ethereum", "uniswap v2 alone"),
    ("ethereum", "live on uniswap v3 👉 {a}", "ethereum", "uniswap v3 alone"),
    ("ethereum", "{a} univ2 pair, renounced, LP burnt", "ethereum", "univ2"),
    ("base", "Uniswap V3 on Base: {a}", "base", "uniswap plus a chain"),
    ("bsc", "PancakeSwap listing in 10 min\n\n{a}", "bsc", "pancakeswap"),
    ("bsc", "four.meme bonding curve 80% filled 🔥 {a}", "bsc", "four.meme word"),
    ("bsc", "graduated from fourmeme to pancake swap\n{a}", "bsc", "fourmeme"),
    ("solana", "Raydium pool live\n{a}", "solana", "raydium"),
    ("solana", "pump.fun KOTH right now {a}", "solana", "pump.fun", "pump"),
    ("solana", "Meteora DLMM farm on {a} paying 400% apr", "solana", "meteora"),
    ("solana", "Jupiter verified ✅ {a}", "solana", "jupiter"),
    ("solana", "Moonshot launch 🌙\n{a}", "solana", "moonshot"),
)


CHAIN_LANGUAGE: tuple[Row, ...] = (
    ("ethereum", "以太坊新币 {a} 刚上线", "ethereum", "zh ethereum"),
    ("bsc", "币安智能链 土狗 合约：{a}", "bsc", "zh bsc"),
    ("base", "Base链 新盘 {a} 冲", "base", "zh base"),
    ("ethereum", "Новый токен на Эфириуме\nКонтракт: {a}", "ethereum", "ru ethereum"),
    ("base", "Запустились в сети Base 🔵 {a}", "base", "ru base"),
    ("bsc", "Токен в сети BSC, адрес контракта: {a}", "bsc", "ru bsc"),
    ("base", "Nuevo token en la red de Base\nContrato: {a}", "base", "es base"),
    ("bsc", "lanzamos en la red de BSC hoy! {a}", "bsc", "es bsc"),
    ("base", "Token novo na rede Base, endereço do contrato: {a}", "base", "pt base"),
    ("ethereum", "イーサリアム の新しいミームコイン {a}", "ethereum", "ja ethereum"),
    ("ethereum", "이더리움 신규 토큰 {a}", "ethereum", "ko ethereum"),
)


CHAIN_STRUCTURED: tuple[Row, ...] = (
    ("base", '{{"ca": "{a}", "chain": "base"}}', "base", "json"),
    ("bsc", '{{"token":"{a_lower}","network":"bsc","mc":48000}}', "bsc", "json network"),
    ("ethereum", '{{"chainId": 1, "address": "{a}"}}', "ethereum", "json chain id"),
    ("base", "Name: Doge Base\nChain: Base\nCA: {a}\nMC: $120K", "base", "key-value"),
    ("bsc", "CA: {a}\nNetwork: BNB Chain\nTax: 0/0", "bsc", "network after the CA"),
    ("ethereum", "Blockchain: Ethereum | Contract: {a}", "ethereum", "pipe columns"),
    ("base", "chain=base ca={a} liq=12k", "base", "query-like text"),
    ("bsc", "Сеть: BSC\nКонтракт: {a}", "bsc", "ru field"),
    ("base", "链：Base\n合约：{a}", "base", "zh field"),
    ("ethereum", "🪙 $PEPU\n⛓️ Ethereum\n📝 {a}\n💧 Liq: 40 ETH", "ethereum", "emoji column"),
    ("base", "🚨 NEW PAIR 🚨\n⛓ Base\n💊 {a}\n👥 Holders: 212\n📈 Vol: $88K", "base", "emoji column"),
    ("bsc", "🔔 Signal\n🔗 Chain: BSC\n📄 CA: {a}\n💰 MC: 230K", "bsc", "emoji + key"),
    ("base", "Token: $BRETTY | Chain: Base | Dex: Uniswap | CA: {a}", "base", "chain field beats uniswap"),
)


CHAIN_SENTENCE: tuple[Row, ...] = (
    ("base", "gas on ETH is insane so we launched on Base\n{a}", "base", "two chains"),
    ("base", "bridged from Ethereum, now live on Base: {a}", "base", "origin and home"),
    ("bsc", "fees on ETH killed us, relaunched on BSC 👉 {a}", "bsc", "fees on"),
    ("ethereum", "not on Base, not on BSC: only on Ethereum. {a}", "ethereum", "only on"),
    ("base", "cheaper than Ethereum, deployed on Base 🔵 {a}", "base", "cheaper than"),
    ("bsc", "moved from Base to BSC, new contract {a}", "bsc", "moved from"),
    ("ethereum", "Solana is too crowded, we launched on Ethereum {a}", "ethereum", "solana named first"),
    ("base", "{a}\nETH gas 40 gwei lol, good thing this is built on Base", "base", "gas word, built on"),
    ("bsc", "Ethereum version rugged, launching on BSC instead: {a}", "bsc", "launching on"),
    ("ethereum", "{a}\nno chain given here, just the address", "evm", "no chain at all"),
)


def wallets(p: Pools) -> Made:
    out = []
    w, a = p.wallet(True, 0), p.take("base")
    out.append((f"CA: {a}\nDev wallet: {w}\n#Base", [("base", a, "token")], "dev wallet"))
    w, m = p.wallet(False, 1), p.take("solana", suffix="pump")
    out.append((f"{m}\ndev address: {w} (holds 2%)", [("solana", m, "token")], "dev address label"))
    w = p.wallet(False, 2)
    out.append((f"Presale is LIVE 🔥 send 1-5 SOL to {w} to join the presale", [], "presale wallet"))
    w = p.wallet(True, 1)
    out.append((f"whitelist open, send 0.1 ETH to {w} before 20:00 UTC", [], "whitelist send"))
    w, a = p.wallet(True, 2), p.take("bsc")
    out.append((f"Контракт: {a}\nКошелек разработчика: {w}\nСеть: BSC", [("bsc", a, "token")], "ru dev wallet"))
    w, m = p.wallet(False, 0), p.take("solana")
    out.append((f"合约：{m}\n开发者钱包：{w}", [("solana", m, "token")], "zh dev wallet"))
    w = p.wallet(False, 1)
    out.append((f"Preventa abierta: envía SOL a {w} y recibe tokens al instante", [], "es send"))
    w, a = p.wallet(True, 0), p.take("ethereum")
    out.append((f"Contrato en la red de Ethereum: {a}\nBilletera del dev: {w}", [("ethereum", a, "token")], "es dev wallet"))
    w = p.wallet(False, 2)
    out.append((f"Пресейл! Отправьте SOL на {w}", [], "ru send"))
    w, m = p.wallet(False, 1), p.take("solana", suffix="pump")
    out.append((f"CA {m}\nCarteira do dev: {w}", [("solana", m, "token")], "pt dev wallet"))
    w = p.wallet(False, 0)
    out.append((f"空投！发送到 {w} 即可参与", [], "zh send"))
    w, a = p.wallet(True, 1), p.take("base")
    out.append((f"smart money wallet: {w} just bought {a} on Base", [("base", a, "token")], "tracked wallet"))
    w, a = p.wallet(True, 2), p.take("bsc")
    out.append((f"Kontrat: {a} #BSC\nGeliştirici cüzdanı: {w}", [("bsc", a, "token")], "tr dev wallet"))
    w, m = p.wallet(False, 2), p.take("solana")
    out.append((f"Contrat : {m}\nPortefeuille du dev : {w}", [("solana", m, "token")], "fr dev wallet"))
    w = p.wallet(True, 0)
    out.append((f"Gửi 0.2 BNB đến {w} để tham gia presale", [], "vi send"))
    w, m = p.wallet(False, 0), p.take("solana", suffix="pump")
    out.append((f"deployer address {w}\nmint address {m}", [("solana", m, "token")], "deployer address vs mint address"))
    return out


def buy_bots(p: Pools) -> Made:
    out = []
    for chain, host in (("base", "basescan.org"), ("ethereum", "etherscan.io"), ("bsc", "bscscan.com")):
        token, w = p.take(chain), p.wallet(True, len(out))
        out.append((f"🟢 $TOKEN Buy!\n💵 0.8 ETH ($2,990)\n👤 [{w[:6]}…{w[-4:]}](https://{host}/address/{w}) | Txn\n"
                    f"🪙 https://{host}/token/{token}\n📊 MC $410K", [(chain, token, "token")], "buyer /address/ link"))
    token, w = p.take("bsc"), p.wallet(True, 1)
    out.append((f"BUY 🟢🟢🟢\nBuyer: https://bscscan.com/address/{w}\nToken: https://bscscan.com/token/{token}",
                [("bsc", token, "token")], "buyer label and /address/"))
    m, w = p.take("solana", suffix="pump"), p.wallet(False, 1)
    out.append((f"🟢 Buy {m[:4]}…\n👤 https://solscan.io/account/{w}\n🪙 https://solscan.io/token/{m}",
                [("solana", m, "token")], "solana buyer account"))
    a = p.take("base")
    out.append((f"contract source verified: https://basescan.org/address/{a}#code", [("base", a, "token")], "#code page"))
    a = p.take("ethereum")
    out.append((f"new deploy 👀 https://etherscan.io/address/{a}", [("ethereum", a, "token")], "a lone /address/ page"))
    return out


def holder_lists(p: Pools) -> Made:
    out = []
    m = p.take("solana")
    w0, w1, w2 = (p.wallet(False, i) for i in range(3))
    out.append((f"CA: {m}\n\nTop holders:\n1. {w0} 4.1%\n2. {w1} 3.3%\n3. {w2} 2.9%", [("solana", m, "token")], "top holders"))
    a = p.take("base")
    e0, e1 = p.wallet(True, 0), p.wallet(True, 1)
    out.append((f"#Base {a}\n\nTop 10 wallets\n- {e0}\n- {e1}", [("base", a, "token")], "top wallets"))
    a = p.take("bsc")
    out.append((f"Контракт: {a}\n\nДержатели:\n{e0} — 5%\n{e1} — 2%\n#BSC", [("bsc", a, "token")], "ru holders"))
    m = p.take("solana")
    out.append((f"合约：{m}\n\n前十持有人：\n{w1}\n{w2}", [("solana", m, "token")], "zh holders"))
    m = p.take("solana", suffix="pump")
    out.append((f"Holders:\n{w0} 12%\n{w2} 8%\n\nCA: {m}", [("solana", m, "token")], "list before the CA"))
    return out


def programs(p: Pools) -> Made:
    out = []
    m = p.take("solana")
    out.append((f"CA {m}\npool created via Raydium CPMM ({p.program('Raydium CPMM')})", [("solana", m, "token")], "raydium cpmm"))
    out.append((f"LaunchLab program {p.program('Raydium LaunchLab (bonk.fun)')} is upgraded again", [], "launchlab"))
    out.append((f"Metaplex Core: {p.program('Metaplex Core')}", [], "metaplex core"))
    out.append((f"openbook market program {p.program('OpenBook v2')}", [], "openbook v2"))
    m = p.take("solana", suffix="pump")
    out.append((f"{m}\nmigrated via {p.program('Meteora Dynamic Bonding Curve')} to DAMM v2 {p.program('Meteora DAMM v2')}",
                [("solana", m, "token")], "meteora programs"))
    out.append((f"Moonshot program id: {p.program('Moonshot (moon.it)')}", [], "moonshot"))
    out.append((f"swaps route through {p.program('Jupiter aggregator v4')} and {p.program('Orca Whirlpool')}", [], "aggregators"))
    out.append((f"serum {p.program('Serum DEX v3')} phoenix {p.program('Phoenix')}", [], "order books"))
    m = p.take("solana")
    out.append((f"{m} minted with Metaplex Bubblegum {p.program('Metaplex Bubblegum')}", [("solana", m, "token")], "bubblegum"))
    return out


def pairs(p: Pools) -> Made:
    out = []
    for _ in range(4):
        pair = p.take("solana", "pair")
        out.append((f"📈 https://dexscreener.com/solana/{pair}", [("solana", pair, "pair")], "dexscreener pair only"))
    pair, m = p.take("solana", "pair"), p.take("solana")
    out.append((f"CA: {m}\nchart: https://dexscreener.com/solana/{pair}", [("solana", m, "token"), ("solana", pair, "pair")], "token and its pair"))
    pair = p.take("solana", "pair")
    out.append((f"https://www.geckoterminal.com/solana/pools/{pair}", [("solana", pair, "pair")], "geckoterminal pool"))
    pair = p.take("solana", "pair")
    out.append((f"birdeye chart https://birdeye.so/pair/{pair}?chain=solana", [("solana", pair, "pair")], "birdeye pair"))
    pair = p.take("bsc", "pair")
    out.append((f"📊 https://www.dextools.io/app/en/bnb/pair-explorer/{pair}", [("bsc", pair, "pair")], "dextools pair"))
    pair, a = p.take("bsc", "pair"), p.take("bsc")
    out.append((f"CA {a}\nhttps://dexscreener.com/bsc/{pair.lower()}", [("bsc", a, "token"), ("bsc", pair, "pair")], "bsc pair"))
    pair = p.take("solana", "pair")
    out.append((f"chart https://www.defined.fi/sol/{pair}", [("solana", pair, "pair")], "defined.fi pair"))
    m = p.take("solana", suffix="pump")
    out.append((f"https://dexscreener.com/solana/{m}", [("solana", m, "token")], "pump mint on dexscreener"))
    pair = p.take("solana", "pair")
    out.append((f"photon: https://photon-sol.tinyastro.io/en/lp/{pair}", [("solana", pair, "pair")], "photon lp"))
    return out


def encoded(p: Pools) -> Made:
    out = []
    m = p.take("solana")
    out.append((f"search it: https://x.com/search?q=%20{m}&src=typed_query", [("solana", m, "token")], "%20 before a mint"))
    m = p.take("solana", suffix="pump")
    out.append((f"https://x.com/search?q=%24TICK%20OR%20{m}&f=live", [("solana", m, "token")], "%24 and %20"))
    a = p.take("base")
    out.append((f"https://t.me/share/url?url=https%3A%2F%2Fbasescan.org%2Ftoken%2F{a}", [("base", a, "token")], "encoded link"))
    a = p.take("bsc")
    out.append((f"https://twitter.com/search?q=%22{a}%22", [("evm", a, "token")], "%22 quotes, no chain"))
    m = p.take("solana")
    out.append((f"https://www.google.com/search?q=ca%3A{m}", [("solana", m, "token")], "%3A colon"))
    a = p.take("ethereum")
    out.append((f"check https://x.com/search?q=%F0%9F%9A%80{a}%20erc20", [("ethereum", a, "token")], "encoded emoji glued"))
    pair = p.take("solana", "pair")
    out.append((f"https://x.com/intent/post?text=chart%3A%20https%3A%2F%2Fdexscreener.com%2Fsolana%2F{pair}",
                [("solana", pair, "pair")], "encoded pair link"))
    return out


def from_table(rows: tuple[Row, ...]) -> Callable[[Pools], Made]:
    """Messages of a table: each row's address drawn from its chain's pool."""

    def make(p: Pools) -> Made:
        out: Made = []
        for draw, text, chain, note, *suffix in rows:
            a = p.take(draw, suffix=suffix[0] if suffix else "")
            out.append((text.format(a=a, a_lower=a.lower()), [(chain, a, "token")], note))
        return out

    return make


CLASSES: dict[str, Callable[[Pools], Made]] = {
    "chain-dex": from_table(CHAIN_DEX), "chain-language": from_table(CHAIN_LANGUAGE),
    "chain-structured": from_table(CHAIN_STRUCTURED), "chain-sentence": from_table(CHAIN_SENTENCE),
    "wallet-label": wallets, "wallet-buybot": buy_bots, "wallet-holders": holder_lists,
    "program": programs, "pair": pairs, "encoded": encoded,
}


def build() -> list[dict[str, object]]:
    pools = Pools(shared_fixtures_dir())
    items: list[dict[str, object]] = []
    for category, make in CLASSES.items():
        for text, labels, note in make(pools):
            used = {a: s for a, s in pools.sources.items() if a in text or a.lower() in text.lower()}
            items.append({
                "id": f"c{len(items) + 1:03d}", "category": category, "text": text,
                "expected": [{"chain": c, "address": a, "kind": k} for c, a, k in labels],
                "note": note, "address_sources": used,
            })
    return items


def main() -> None:
    items = build()
    with OUT.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} messages to {OUT}")


if __name__ == "__main__":
    main()
