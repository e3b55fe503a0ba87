"""Rebuild ``token_calls.jsonl``: labelled call/chatter messages around real addresses.

Run from the repository root (needs ``../shared/fixtures``)::

    .venv/bin/python -m tests.streaming.corpus.build_corpus

Addresses are real: tokens and pairs from ``token_lists/address_ground_truth.csv`` (itself
derived from the Uniswap default list, the Solana token registry and DexScreener
recordings), a deployer wallet from ``signals/memecoin_call_texts.jsonl``, and well-known
non-token strings (BIP examples, the TRON USDT contract, Solana program ids). Message texts
are composed in the styles of the real call posts in ``signals/`` (call bots, KOL posts,
Discord Markdown), plus a few real perp-signal texts from ``signals/cryptobotcz_signal_texts.jsonl``
(MIT) as address-free negatives. Labels are written by the templates, never by the extractor:
``expected`` lists every token address a careful reader would take from the text, with the
chain the text supports (``"evm"`` when an EVM address comes with no chain at all).
Deliberate design choices shown as negatives: case-damaged (lower-cased) Solana mints, EVM
addresses with a broken EIP-55 checksum, wallets and program ids.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

from streaming.extract_codecs import b58encode, keccak256
from tests.support.fixtures import shared_fixtures_dir

OUT = Path(__file__).with_name("token_calls.jsonl")
CSV_SOURCE = "token_lists/address_ground_truth.csv"
EVM_CHAINS = ("ethereum", "bsc", "base", "arbitrum", "polygon", "optimism", "avalanche")
DEX_SLUG = {c: c for c in EVM_CHAINS}
EXPLORER = {"ethereum": "etherscan.io", "bsc": "bscscan.com", "base": "basescan.org",
            "arbitrum": "arbiscan.io", "polygon": "polygonscan.com",
            "optimism": "optimistic.etherscan.io", "avalanche": "snowtrace.io"}
WORD = {"ethereum": "Ethereum", "bsc": "#BSC", "base": "#Base", "arbitrum": "Arbitrum",
        "polygon": "Polygon", "optimism": "Optimism", "avalanche": "Avalanche"}
GECKO = {"ethereum": "eth", "bsc": "bsc", "base": "base", "arbitrum": "arbitrum",
         "polygon": "polygon_pos", "optimism": "optimism", "avalanche": "avax"}
DEXTOOLS = {"ethereum": "ether", "bsc": "bnb", "base": "base", "arbitrum": "arbitrum",
            "polygon": "polygon", "optimism": "optimism", "avalanche": "avalanche"}
DEPLOYER = "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM"  # signals/memecoin_call_texts.jsonl
EVM_WALLET = "0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045"  # vitalik.eth, a wallet
REAL_SIGNAL_ROWS = (0, 6, 12, 17, 26, 37, 42, 52, 62, 74)  # cryptobotcz_signal_texts.jsonl

Entry = dict[str, object]


class Pools:
    """Real addresses by chain, drawn without repetition from a seeded generator."""

    def __init__(self, fixtures: Path, rng: random.Random) -> None:
        self.rng = rng
        rows = list(csv.DictReader((fixtures / CSV_SOURCE).open(encoding="utf-8")))
        tokens = [r for r in rows if r["kind"] == "token"]
        self.pairs = {c: [r["address"] for r in rows if r["kind"] == "pair" and r["chain"] == c
                          and len(r["address"]) == 42] for c in EVM_CHAINS}
        self.pairs_solana = [r["address"] for r in rows if r["kind"] == "pair" and r["chain"] == "solana"]
        self.solana = [r["address"] for r in tokens if r["chain"] == "solana"
                       and not r["address"].startswith("So111")]
        self.pump = [a for a in self.solana if a.endswith("pump")]
        self.evm = {c: [r["address"] for r in tokens if r["chain"] == c] for c in EVM_CHAINS}
        for pool in (self.solana, self.pump, *self.evm.values()):
            rng.shuffle(pool)
        self.used: set[str] = set()

    def take(self, pool: list[str]) -> str:
        for address in pool:
            if address not in self.used:
                self.used.add(address)
                return address
        raise RuntimeError("address pool exhausted")

    def sol(self) -> str:
        return self.take(self.solana)

    def pumpfun(self) -> str:
        return self.take(self.pump)

    def evm_of(self, chain: str) -> str:
        return self.take(self.evm[chain])


def entry(category: str, text: str, expected: list[tuple[str, str]], note: str = "") -> Entry:
    return {"category": category, "text": text,
            "expected": [{"chain": c, "address": a} for c, a in expected],
            "note": note, "address_source": CSV_SOURCE}


def solana_calls(p: Pools) -> list[Entry]:
    out = []
    for _ in range(3):
        m = p.pumpfun()
        out.append(entry("call", f"🟢 NEW LAUNCH on pump.fun\n\nCA: {m}\n\n📈 https://pump.fun/coin/{m}\n🔎 https://rugcheck.xyz/tokens/{m}", [("solana", m)]))
    for _ in range(3):
        m = p.sol()
        out.append(entry("call", m, [("solana", m)], "bare mint"))
    for _ in range(3):
        m = p.sol()
        out.append(entry("call", f"aping this rn {m} 🚀🚀 nfa", [("solana", m)]))
    for _ in range(3):
        m = p.pumpfun()
        out.append(entry("call", f"**CA:** `{m}`\n> dev doxxed, LP burned 🔥", [("solana", m)], "discord markdown"))
    for _ in range(3):
        m = p.pumpfun()
        out.append(entry("call", f"⚡ Quick buy: https://t.me/BonkBot_bot?start=ref_q9x1z_ca_{m} | https://t.me/maestro?start={m}", [("solana", m)], "trading-bot deep links"))
    for _ in range(3):
        m = p.sol()
        out.append(entry("call", f"chart 👉 https://birdeye.so/token/{m}?chain=solana\nholders look clean", [("solana", m)]))
    for _ in range(3):
        m = p.sol()
        out.append(entry("call", f"$GEM {m} 🧵 thread below https://x.com/i/communities/1986325936162160923", [("solana", m)], "X style"))
    for _ in range(2):
        m = p.pumpfun()
        out.append(entry("call", f"🤖 Call Bot | Solana\n🏖 Meme | Pump💊\n\n🛒 Token Address:\n{m}\n\n📊 MC: $78.23K\n💧 Liq: 86.8 SOL\n\n🛠️ Deployer (https://solscan.io/account/{DEPLOYER}) 0.0 SOL\n\n🔗 SCREEN (https://dexscreener.com/solana/{m}) | GMGN (https://gmgn.ai/sol/token/{m}) | PHOTON (https://photon-sol.tinyastro.io/en/lp/{m})", [("solana", m)], "bot post; deployer wallet must not count"))
    for _ in range(2):
        m = p.sol()
        out.append(entry("call", f"swap here https://jup.ag/swap/SOL-{m}", [("solana", m)], "WSOL-side swap link"))
    return out


def evm_calls(p: Pools) -> list[Entry]:
    out = []
    templates: list[tuple[str, Callable[[str, str], str]]] = [
        ("dexscreener", lambda c, a: f"🔥 New gem\nCA: {a}\nChart: https://dexscreener.com/{DEX_SLUG[c]}/{a.lower()}"),
        ("explorer", lambda c, a: f"{a}\n\ncontract verified ✅ https://{EXPLORER[c]}/token/{a}"),
        ("word", lambda c, a: f"{WORD[c]} gem just launched 💎\n\n{a}\n\nLP locked 1 year, tax 0/0"),
        ("gecko", lambda c, a: f"pool is live: https://www.geckoterminal.com/{GECKO[c]}/pools/{a.lower()}"),
        ("dextools", lambda c, a: f"📊 https://www.dextools.io/app/en/{DEXTOOLS[c]}/pair-explorer/{a} 👀"),
        ("label", lambda c, a: f"{c.upper() if c == 'bsc' else c.capitalize()} CA: {a}"),
    ]
    chains = list(EVM_CHAINS)
    for index, (name, make) in enumerate(templates):
        for offset in range(3):
            chain = chains[(index + offset * 2) % len(chains)]
            address = p.evm_of(chain)
            out.append(entry("call", make(chain, address), [(chain, address)], f"chain from {name}"))
    for chain in ("arbitrum", "base", "bsc"):
        a = p.evm_of(chain)
        out.append(entry("call", f"buy link: https://app.uniswap.org/swap?chain={chain}&outputCurrency={a}", [(chain, a)], "uniswap ?chain="))
    a = p.evm_of("base")
    out.append(entry("call", f"New gem on #Base 🔵\n\nCA: {a}\nLP: 2.5 ETH locked\nMC 45k, buy tax 0, sells 0\ngas is cheap, ETH flowing in", [("base", a)], "strong #Base beats weak ETH"))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"ERC20 stealth launch\n{a}\nrenounced", [("ethereum", a)]))
    a = p.evm_of("bsc")
    out.append(entry("call", f"BEP20 token {a} listed on PancakeSwap", [("bsc", a)]))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"{a} ETH gem, LP locked", [("ethereum", a)], "weak word only"))
    for chain in ("ethereum", "base", "arbitrum", "polygon", "bsc"):
        a = p.evm_of(chain)
        out.append(entry("call", f"this one 👇\n{a}\nDYOR", [("evm", a)], "no chain in the text"))
    a = p.evm_of("base")
    out.append(entry("call", f"contract: {a.lower()} (base chain)", [("base", a)], "lower-case address"))
    a = p.evm_of("bsc")
    out.append(entry("call", f"CA {a}\nsame as {a.lower()} 👈 copy either\nbnb chain", [("bsc", a)], "same address twice"))
    for chain in ("bsc", "ethereum"):
        token, pair = p.evm_of(chain), p.pairs[chain][0]
        out.append(entry("call", f"CA: {token}\nchart: https://dexscreener.com/{chain}/{pair}", [(chain, token), (chain, pair)], "chain from the pair link of the message"))
    return out


def mixed(p: Pools) -> list[Entry]:
    out = []
    b, s = p.evm_of("base"), p.sol()
    out.append(entry("mixed", f"two plays today:\nSOL: {s}\nBase: {b}", [("solana", s), ("base", b)]))
    e, bsc = p.evm_of("ethereum"), p.evm_of("bsc")
    out.append(entry("mixed", f"ETH chain: {e}\nBSC: {bsc}", [("ethereum", e), ("bsc", bsc)], "one chain per line"))
    s1, s2 = p.pumpfun(), p.pumpfun()
    out.append(entry("mixed", f"1) {s1}\n2) {s2}\n3) still waiting", [("solana", s1), ("solana", s2)]))
    a, c = p.evm_of("arbitrum"), p.evm_of("polygon")
    out.append(entry("mixed", f"Arbitrum: https://arbiscan.io/token/{a}\nPolygon: https://polygonscan.com/token/{c}", [("arbitrum", a), ("polygon", c)]))
    return out


def formatting(p: Pools) -> list[Entry]:
    out = []
    m = p.pumpfun()
    out.append(entry("format", f"(CA: {m})", [("solana", m)], "parentheses"))
    a = p.evm_of("bsc")
    out.append(entry("format", f"合约地址：{a} 🚀 币安智能链 #BSC", [("bsc", a)], "CJK and full-width colon"))
    m = p.sol()
    out.append(entry("format", f"ca -> {m}.", [("solana", m)], "trailing full stop"))
    a = p.evm_of("ethereum")
    out.append(entry("format", f"\"{a}\"!! on eth", [("ethereum", a)], "quotes"))
    a = p.evm_of("base")
    out.append(entry("format", f"CA: {a[:20]}\u200b{a[20:]} on Base", [("base", a)], "zero-width space inside"))
    m = p.pumpfun()
    out.append(entry("format", f"🚀🚀🚀{m}🚀🚀🚀", [("solana", m)], "emoji glued"))
    m = p.sol()
    out.append(entry("format", f"||{m}|| spoiler for holders", [("solana", m)], "discord spoiler"))
    a = p.evm_of("avalanche")
    out.append(entry("format", f"Avalanche C-Chain\n\n\t{a}\t\n\n", [("avalanche", a)], "tabs and blank lines"))
    return out


def more_calls(p: Pools) -> list[Entry]:
    """Other real-world shapes: pair links, launchpads, buy bots, migrations, split lines."""
    out = []
    for pair in p.pairs_solana[:2]:
        m = p.sol()
        out.append(entry("call", f"CA: {m}\n📈 https://dexscreener.com/solana/{pair}", [("solana", m), ("solana", pair)], "pool address in the chart link"))
    a = p.evm_of("base")
    out.append(entry("call", f"👀 https://birdeye.so/token/{a}?chain=base", [("base", a)]))
    a = p.evm_of("bsc")
    out.append(entry("call", f"fresh on https://four.meme/token/{a.lower()}", [("bsc", a)], "launchpad host"))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"https://pancakeswap.finance/swap?outputCurrency={a}&chain=eth", [("ethereum", a)], "query chain beats host"))
    a = p.evm_of("bsc")
    out.append(entry("call", f"https://pancakeswap.finance/swap?outputCurrency={a}", [("bsc", a)], "host default"))
    m = p.pumpfun()
    out.append(entry("call", f"CA 👇👇\n\n{m}\n\n(tap to copy)", [("solana", m)], "label on the previous line"))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"ca: {a[:2] + a[2:].upper()} (eth)", [("ethereum", a)], "all-upper hex body"))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"verified: https://etherscan.io/address/{a}#code", [("ethereum", a)], "explorer address page"))
    m = p.sol()
    out.append(entry("call", f"https://solscan.io/token/{m}", [("solana", m)]))
    m = p.sol()
    out.append(entry("call", f"https://explorer.solana.com/address/{m}", [("solana", m)]))
    old, new = p.pumpfun(), p.pumpfun()
    out.append(entry("call", f"⚠️ MIGRATED ⚠️\nNew CA: {new}\n(old CA: {old} is dead, don't buy)", [("solana", new), ("solana", old)], "both are token addresses"))
    token = p.evm_of("base")
    out.append(entry("call", f"🟢 Buy!\n💵 0.42 ETH\n👤 Buyer: {EVM_WALLET}\n🪙 Token: {token}\n#Base", [("base", token)], "buy-bot post; buyer wallet must not count"))
    m = p.sol()
    out.append(entry("call", f"🔁 Forwarded from Alpha Calls\n\n{m}\n\nsize: 2 SOL, TP 3x", [("solana", m)]))
    a = p.evm_of("arbitrum")
    out.append(entry("call", f"$TICKER on Arbitrum https://t.co/Ab12Cd34Ef\n{a}", [("arbitrum", a)], "X style with t.co"))
    a = p.evm_of("polygon")
    out.append(entry("call", f"Polygon (MATIC) gem {a} 100x potential", [("polygon", a)]))
    a = p.evm_of("optimism")
    out.append(entry("call", f"https://optimistic.etherscan.io/token/{a}", [("optimism", a)], "subdomain explorer beats etherscan.io"))
    a = p.evm_of("ethereum")
    out.append(entry("call", f"CA: {a[:21]}\n{a[21:]}", [("evm", a)], "address broken over two lines (a reader can join it)"))
    return out


def negatives(p: Pools, rng: random.Random) -> list[Entry]:
    tx = "0x" + keccak256(b"corpus tx").hex()
    sig = b58encode(bytes(rng.getrandbits(8) for _ in range(64)))
    lower_mint = p.pumpfun()
    broken = p.evm_of("ethereum")
    flip = next(i for i, ch in enumerate(broken) if i > 1 and ch.isalpha())
    broken = broken[:flip] + broken[flip].swapcase() + broken[flip + 1 :]
    cases = [
        (f"tx confirmed ✅ https://etherscan.io/tx/{tx}", "EVM transaction hash"),
        (f"bought 3 SOL worth, sig: {sig}", "Solana signature (64 bytes)"),
        ("send BTC to 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa or 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "legacy BTC addresses (25 bytes)"),
        ("segwit bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4 taproot bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297", "bech32 BTC"),
        ("USDT on TRON: TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t (TRC20)", "TRON address (25 bytes)"),
        ("gm vitalik.eth and nick.eth 👋", "ENS names"),
        ("token program TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA and system 11111111111111111111111111111111", "Solana program ids"),
        ("swap So11111111111111111111111111111111111111112 -> USDC on raydium 675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8", "wrapped SOL and Raydium program"),
        ("0x1234567890abcdef1234567890abcdef123456 and 0x1234567890abcdef1234567890abcdef1234567890", "hex of the wrong length"),
        (f"CA: {broken}", "broken EIP-55 checksum (one letter's case flipped)"),
        (f"chart: https://dexscreener.com/solana/{lower_mint.lower()}", "lower-cased (case-damaged) mint"),
        ("fixed in https://github.com/freqtrade/freqtrade/commit/c9ae5e1e9ff25bb55dd61f5e5519f7c479291edb", "commit hash, no 0x"),
        ("https://cdn.dexscreener.com/cms/images/c662556af90aa395fa4d4b4ba4c24e2e6b99032c2e948fb4284bc643f10f560c?width=64&height=64", "image hash in a URL"),
        (f"🛠️ Deployer (https://solscan.io/account/{DEPLOYER}) 0.0 SOL", "deployer wallet link"),
        (f"Dev wallet: {EVM_WALLET}", "wallet label"),
        ("metadata on ipfs://QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "IPFS CID"),
        ("USDC on Sui 0xdba34672e30cb065b1f93e3ab55318768fd6fef66c15942c9f7cb846e2f900e7::usdc::USDC", "Sui coin type"),
        ("approve router 0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D first, burn to 0x000000000000000000000000000000000000dEaD", "router and burn address"),
        ("4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R4k3Dyjzvzp8eMZWUX 7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgA", "base58 noise of the wrong length"),
        ("WAGMIWAGMIWAGMIWAGMIWAGMIWAGMIWAGMIWAGMI LFGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG", "long shouting"),
        (f"🎁 AIRDROP: send 1 SOL to {DEPLOYER} and get 2 back!!!", "scam: a wallet with no label"),
    ]
    return [entry("negative", text, [], note) for text, note in cases]


def chatter(fixtures: Path) -> list[Entry]:
    rows = [json.loads(line) for line in (fixtures / "signals/cryptobotcz_signal_texts.jsonl").open(encoding="utf-8")]
    out = []
    for index in REAL_SIGNAL_ROWS:
        row = rows[index]
        item = entry("chatter", row["text"], [], f"real perp signal ({row['channel_hint']})")
        item["address_source"] = f"signals/cryptobotcz_signal_texts.jsonl:{row['source_path']}:{row['source_line']}"
        out.append(item)
    for text in ("gm frens ☕ who's up", "SOL looks ready to send, BTC dominance dropping",
                 "anyone got the CA for the cat coin? chart looked insane 📈",
                 "Join our VIP 👉 https://t.me/+AbCdEfGhIjKl and get 30s early calls",
                 "rugged again 💀 lost 2 ETH on base today"):
        item = entry("chatter", text, [], "composed chatter")
        item["address_source"] = ""
        out.append(item)
    return out


def build(seed: int = 20240601) -> list[Entry]:
    fixtures = shared_fixtures_dir()
    rng = random.Random(seed)
    pools = Pools(fixtures, rng)
    items = solana_calls(pools) + evm_calls(pools) + more_calls(pools) + mixed(pools)
    items += formatting(pools)
    items += negatives(pools, rng) + chatter(fixtures)
    for number, item in enumerate(items, start=1):
        item["id"] = f"m{number:03d}"
    return items


def main() -> None:
    items = build()
    with OUT.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    print(f"wrote {len(items)} messages to {OUT}")


if __name__ == "__main__":
    main()
