"""Token extraction throughput on a realistic synthetic message stream.

The stream is seeded and mixes what a listener hears: chatter and perp-signal posts without
addresses (70 %), token calls in the shapes of real call posts (20 %: call bots with many
links, KOL one-liners, Discord Markdown, explorer and chart links) built around real
addresses from ``token_lists/address_ground_truth.csv``, and spam (10 %: long link-heavy
texts, tx hashes, wallets). Calls repeat addresses, as channels do. Four of the ten call shapes
are those of issue 12: a pair link with a percent-encoded search link, a JSON payload naming
the chain, a buy-bot post with a buyer's ``/address/`` link and a ``⛓️`` column, and a
two-chain sentence with a holder list.

Reported: messages per second for :func:`streaming.extract.extract_tokens` and for the whole
:meth:`streaming.events.Event.from_message` (extraction plus the content digest), in steady
state (caches warm, best of three passes) and cold (first pass); plus a worst case where every
call carries an address never seen before (each costs a pure-Python Keccak for EIP-55).
Target: 20,000 messages/s for extraction in steady state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.report import Target

TARGET_PER_SECOND = 20_000

# Real addresses (token_lists/address_ground_truth.csv; DexScreener recordings of 2025-11).
SOLANA = (
    "GMpuhpZtgguWDJLqhYVS4epZGXjDRiboGSdzAqWupump", "CfvFDmLP982VJZMf6NTF1RvzrnKsoSs5MposAUEFpump",
    "HHdZa55p6myzJN4ZVGCftotUcX4ZR3tkBzMhzasMpump", "HuvERiQtHL4FRhHWD5h29RyspyPXZLPGz1v5D9aspump",
    "8xEdEh9JaqXyCftRXJNQD4UjTwvBuBbeatXFZSQW55VL", "USD1ttGY1N17NEEHLmELoaybftRBUSErhqYiQzvEmuB",
    "44sHXMkPeciUpqhecfCysVs7RcaxeM24VPMauQouBREV", "GMvCfcZg8YvkkQmwDaAzCtHDrrEtgE74nQpQ7xNabonk",
    "vEHiuRmd8WvCkswH8Xy4VXTEMXA7JScik47XZkDbonk", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
)
EVM = (
    ("base", "0xaF2E4F3E10B8d06ecEcABBB7F8A7022c6EAb7B07"), ("base", "0xd85c31854c2B0Fb40aaA9E2Fc4Da23C21f829d46"),
    ("base", "0x56C1491AC64800CA93a7c7E8b2637097D104DecE"), ("bsc", "0x8d0D000Ee44948FC98c9B98A4FA4921476f08B0d"),
    ("bsc", "0xAf0a4F23254F6654B11902929E1227CbD10d6059"), ("bsc", "0xb30dbfefC47CD8812bd59e0aBF08A02D80A04444"),
    ("bsc", "0x2144EE54286bA4461292Dc6f517049033eb95823"), ("base", "0x461DEb53515CaC6c923EeD9Eb7eD5Be80F4e0b07"),
)
DEPLOYER = "TSLvdd1pWpHVjahSpsvCXUbgwsL3JAcvokwaKt1eokM"
# Recorded Raydium/Meteora pairs (token_lists/address_ground_truth.csv, from the DexScreener recordings).
SOLANA_PAIRS = ("BCDdHonby65iduz3Ev3c9v5XjNkzyu5e56KRFHpBM4T9", "4qpDaAUb5oUrFH7EomqoEvvTjQeh9D4svZ48sUk7JVrk",
                "7M6U5dMcQF4MxfN344D9M9tKCnf35DnJqABrbQawvSv2")
CHATTER = (
    "gm frens ☕", "SOL looks ready to send, BTC dominance dropping 📉", "who's still holding?",
    "anyone got the CA for the cat coin? chart looked insane 📈", "LFG 🚀🚀🚀", "rugged again 💀",
    "📍SIGNAL ID: #0980📍\nCOIN: $ETH/USDT (5-10x)\nDirection: SHORT📉\nENTRY: 1880 - 1920\n"
    "Target 1: 1850\nTarget 2: 1800\nTarget 3: 1740\nStop: 1990",
    "⚡️⚡️ #RDNT/USDT ⚡️⚡️\nExchanges: Binance Futures\nSignal Type: Regular (Short)\n"
    "Leverage: Cross (20x)\nEntry Targets: 0.2915\nTake-Profit Targets:\n1) 0.2886\n2) 0.2857\n"
    "3) 0.2828\nStop Targets: 0.3061",
    "FTM/USDT (Long)\nLeverage: 3.0X\nEntry Targets:\n1) 0.4315\n2) 0.3879\nTake-Profit Targets:\n"
    "1) 0.4450\n2) 0.4600\nStop Targets: 0.3650",
    "market is cooked today, waiting for the fed", "dev is based, community takeover soon 🫡",
    "Coin: #GMT/USDT\n\nShort Set-up\n\nLev: 5-10x\n\n#GMT already broke down the descending triangle",
)


def _call(rng: random.Random, solana: Callable[[], str], evm: Callable[[], tuple[str, str]]) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        m = solana()
        return (f"🤖 0xBot AI Agent | Solana Network\n🏖 Meme | Pump💊\n\n🛒 Token Address:\n{m}\n\n"
                f"📊 Initial MC: $79.54K\n💧 Liquidity: 86.8 SOL | $16.25K\n\n"
                f"💼 Top 10 holders: (https://solscan.io/token/{m}#holders) 24.2%\n"
                f"🛠️ Deployer (https://solscan.io/account/{DEPLOYER}) 0.0 SOL\n\n"
                f"🔗 BULLX (https://bullx.io/terminal?chainId=1399811149&address={m}) | "
                f"PHOTON (https://photon-sol.tinyastro.io/en/lp/{m}) | "
                f"TROJAN (https://t.me/diomedes_trojanbot?start=r-bh00-{m}) | "
                f"RUGCHECK (https://rugcheck.xyz/tokens/{m}) | SCREEN (https://dexscreener.com/solana/{m})")
    if kind == 1:
        return f"aping this rn {solana()} 🚀🚀 nfa"
    if kind == 2:
        return f"**CA:** `{solana()}`\n> dev doxxed, LP burned 🔥"
    if kind == 6:  # a pair link and a percent-encoded search link (issue 12 shapes)
        m = solana()
        return (f"chart https://dexscreener.com/solana/{SOLANA_PAIRS[rng.randrange(len(SOLANA_PAIRS))]}\n"
                f"search https://x.com/search?q=%24GEM%20{m}&f=live")
    chain, address = evm()
    if kind == 7:
        return f'{{"ca": "{address}", "chain": "{chain}", "mc": 48000}}'
    if kind == 8:
        host = "bscscan.com" if chain == "bsc" else "basescan.org"
        return (f"🟢 Buy!\n💵 0.8 ETH\n👤 https://{host}/address/0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045\n"
                f"🪙 https://{host}/token/{address}\n⛓️ {chain.upper()}")
    if kind == 9:
        return f"gas on ETH is insane so we launched on {chain.upper()}\nCA: {address}\nTop holders:\n1. {DEPLOYER} 4%"
    if kind == 3:
        return f"🔥 New gem\nCA: {address}\nChart: https://dexscreener.com/{chain}/{address.lower()}"
    if kind == 4:
        return f"#{chain.upper()} gem just launched 💎\n\n{address}\n\nLP locked 1 year, tax 0/0"
    return f"{address}\ncontract verified ✅ https://{'bscscan.com' if chain == 'bsc' else 'basescan.org'}/token/{address}"


def _spam(rng: random.Random) -> str:
    tx = "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
    return (
        "🎁🎁 MEGA AIRDROP 🎁🎁 Claim now at https://claim-airdrop.example.com/?utm_source=tg&ref=1234 "
        "before it ends!!! Connect wallet, approve, receive 5000 USDT instantly. "
        f"Proof: https://etherscan.io/tx/{tx} ✅✅ Send 0.1 ETH to "
        f"0xd8dA6BF26964aF9D7eEd9e03E53415D37aA96045 and get 1 ETH back. "
        "Join https://t.me/+AbCdEfGhIjKl https://discord.gg/abcdef " * rng.randint(1, 3)
    )


def make_stream(n: int, *, seed: int = 42, unique_addresses: bool = False) -> list[str]:
    """``n`` messages: 70 % chatter, 20 % calls, 10 % spam (seeded, deterministic)."""
    rng = random.Random(seed)

    def solana() -> str:
        if unique_addresses:
            from streaming.extract_codecs import b58encode

            while True:
                mint = b58encode(rng.randbytes(32))
                if mint != mint.lower() and mint != mint.upper():
                    return mint
        return rng.choice(SOLANA)

    def evm() -> tuple[str, str]:
        if unique_addresses:
            from streaming.extract_codecs import to_checksum_address

            return rng.choice(("base", "bsc")), to_checksum_address("0x" + rng.randbytes(20).hex())
        return rng.choice(EVM)

    stream = []
    for _ in range(n):
        draw = rng.random()
        if draw < 0.7:
            stream.append(rng.choice(CHATTER))
        elif draw < 0.9:
            stream.append(_call(rng, solana, evm))
        else:
            stream.append(_spam(rng))
    return stream


def _rate(function: Callable[[str], object], stream: list[str], repeats: int) -> tuple[float, float]:
    """(cold rate of the first pass, best rate of ``repeats`` further passes), messages/s."""
    timings = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for text in stream:
            function(text)
        timings.append(time.perf_counter() - start)
    return len(stream) / timings[0], len(stream) / min(timings[1:])


def run(quick: bool = False) -> list[Target]:
    """Print messages/s for extraction and for whole events; return the target for the summary."""
    from streaming.events import Event
    from streaming.extract import extract_tokens
    from streaming.extract_codecs import b58_decoded_length, to_checksum_address

    n = 5_000 if quick else 50_000
    repeats = 2 if quick else 3
    b58_decoded_length.cache_clear()
    to_checksum_address.cache_clear()
    stream = make_stream(n)
    calls = sum(1 for text in stream if extract_tokens(text))
    b58_decoded_length.cache_clear()
    to_checksum_address.cache_clear()
    mean_chars = sum(map(len, stream)) / len(stream)
    ts = datetime(2025, 11, 6, tzinfo=UTC)

    def event(text: str) -> Event:
        return Event.from_message(source="replay", channel="bench", message_id="1", author="a", text=text, ts=ts)

    cold, steady = _rate(extract_tokens, stream, repeats)
    _, events = _rate(event, stream, repeats)
    unique = make_stream(n // 5, seed=7, unique_addresses=True)
    b58_decoded_length.cache_clear()
    to_checksum_address.cache_clear()
    worst, _ = _rate(extract_tokens, unique, 1)
    target = Target("extract_tokens, steady state", steady, TARGET_PER_SECOND, "messages/s")
    print(f"token extraction: {n:,} messages (mean {mean_chars:.0f} chars, {calls:,} with tokens)")
    print(f"  extract_tokens, steady state : {steady:>10,.0f} messages/s  "
          f"(target {TARGET_PER_SECOND:,}: {target.verdict})")
    print(f"  extract_tokens, cold caches  : {cold:>10,.0f} messages/s")
    print(f"  Event.from_message (+ md5)   : {events:>10,.0f} messages/s")
    print(f"  every address new (worst)    : {worst:>10,.0f} messages/s  ({len(unique):,} messages)")
    return [target]


if __name__ == "__main__":
    run()
