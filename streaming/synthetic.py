"""A realistic synthetic social stream over the ``sim`` universe, for demos and tests (pure).

:func:`generate_stream` is a pure function of its arguments (seeded ``random.Random``, no
clock): the same seed gives the same messages, byte for byte. The stream holds what the social
path has to cope with:

* **calls** on Solana, Ethereum, Base and BSC with valid addresses (32-byte base58 mints,
  EIP-55 checksummed EVM contracts), DexScreener / pump.fun / explorer links and chain words;
* **echoes**: a call re-posted by 2-4 other channels within ``echo_window_s``, sometimes with
  the exact text (same ``content_md5``), sometimes reworded around the same address;
* **duplicates**: a message re-delivered with the same message id (a reconnect's backlog);
* **reposts**: the same text posted again in the same channel a few minutes later;
* **spam waves**: near-identical airdrop / wallet-drainer texts across many channels within
  ``spam_wave_s``; some shill a token contract (a Solana mint), so they are calls the
  validation has to reject;
* **perps signals** on sim perpetuals (``LONG SOL/USDT entry 190 SL 182 TP 205``);
* **chatter** without any token.

Channels differ in quality (how often their calls are well formed and echoed). Each record is a
raw message ``{source, channel, message_id, author, text, ts, raw}`` with ``source="replay"``
and ground truth in ``raw`` (``platform``, ``kind``, ``call_id``, ``chain``, ``address``,
``quality``), in arrival order. Apart from duplicates and same-channel reposts, no channel
posts the same normalised content twice.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ml.social.text import content_md5
from resources.exchanges.sim_assets import SIM_ASSETS
from streaming.extract_codecs import b58encode, to_checksum_address


@dataclass(frozen=True)
class ChannelProfile:
    """A synthetic channel: platform, call quality in [0, 1], relative chatter, perps or not."""

    name: str
    platform: str
    quality: float
    activity: float = 1.0
    perps: bool = False


DEFAULT_CHANNELS: tuple[ChannelProfile, ...] = (
    ChannelProfile("alpha_whales", "telegram", 0.85, 0.8),
    ChannelProfile("sol_gems_daily", "telegram", 0.6, 1.5),
    ChannelProfile("degen-lounge", "discord", 0.35, 3.0),
    ChannelProfile("base_builders", "telegram", 0.7, 0.7),
    ChannelProfile("bsc_moonshots", "telegram", 0.25, 1.2),
    ChannelProfile("chartwizard", "x", 0.55, 0.6),
    ChannelProfile("perp_signals_vip", "telegram", 0.6, 0.6, perps=True),
    ChannelProfile("futures-room", "discord", 0.45, 1.0, perps=True),
)

CHAIN_WEIGHTS: dict[str, float] = {"solana": 0.5, "ethereum": 0.2, "base": 0.15, "bsc": 0.15}

_SYLLABLES = ("MOON", "PEPE", "FROG", "INU", "CAT", "BONK", "CHAD", "GIGA", "TURBO", "NEKO",
              "WOJAK", "SIGMA", "BASED", "LAMBO", "ZOOM", "HODL", "KEK", "MEOW", "APE", "DEGEN")
_CALL_TEMPLATES: dict[str, tuple[str, ...]] = {
    "solana": (
        "🚀 New gem on SOL: ${t}\nCA: {a}\nhttps://dexscreener.com/solana/{a}",
        "${t} just launched on pump.fun 👀\nhttps://pump.fun/coin/{a}",
        "aping ${t} here, LFG\n{a}",
        "${t} chart looks clean\nhttps://dexscreener.com/solana/{a}\nhttps://rugcheck.xyz/tokens/{a}",
        "CA: {a}\n${t} | mcap 120k | LP burned ✅",
    ),
    "ethereum": (
        "ETH gem 💎 ${t}\nCA: {a}\nhttps://etherscan.io/token/{a}",
        "${t} on ethereum mainnet, early\nhttps://dexscreener.com/ethereum/{a}",
        "#ethereum ${t} contract {a}",
    ),
    "base": (
        "Base CA: {a}\n${t} 🔵 built on base",
        "${t} on Base 🔵 https://dexscreener.com/base/{a}",
        "new ${t} https://basescan.org/token/{a}",
    ),
    "bsc": (
        "#BSC ${t} 🟡 {a}",
        "${t} BSC gem https://dexscreener.com/bsc/{a}",
        "${t} bep20 CA: {a} https://bscscan.com/token/{a}",
    ),
}
_ECHO_PREFIXES = ("🔁 via {o}: ", "seen in {o} 👇 ", "Forwarded from {o}\n", "", "👀 ")
_SPAM_TEMPLATES = (
    "🎁 FREE AIRDROP {n} ${t} for early holders! Claim your tokens now: https://claim-{d}.xyz {e}",
    "⚠️ Wallet connect required to claim your {n} ${t} reward at https://{d}-airdrop.app {e}",
    "Guaranteed 100x on ${t} 🚀 DM me for the presale whitelist {e} spots left: {n}",
    "Send 0.5 SOL to get {n} ${t} back instantly! https://{d}.click {e}",
)
_CHATTER = (
    "gm {e}", "anyone watching {b}? {e}", "{b} looking heavy here", "{b} reclaiming the range {e}",
    "who's still holding {b}", "funding is flipping on {b}", "{b} chart is a work of art {e}",
    "taking profits on {b}, see you at the top", "{b} dump incoming? {e}", "wen {b} ath",
    "volume on {b} is wild today", "ngl {b} is the play this week {e}", "slept through the {b} pump again",
)
_EMOJI = ("🚀", "🔥", "💎", "👀", "🐸", "📈", "🤝", "🙏", "😂", "🫡", "⚡", "🧠")
_AUTHORS = ("satoshi_fan", "degenking", "moonboi", "ape_lord", "chartguy", "0xtrader", "solmaxi",
            "basedape", "whalewatch", "gm_enjoyer")


def _mint(rng: random.Random) -> str:
    """A valid Solana mint: 32 random bytes in base58, with both letter cases (always kept)."""
    while True:
        mint = b58encode(bytes(rng.getrandbits(8) for _ in range(32)))
        if len(mint) >= 43 and any(c.isupper() for c in mint) and any(c.islower() for c in mint):
            return mint


def _evm(rng: random.Random) -> str:
    return to_checksum_address("0x" + "".join(f"{rng.getrandbits(8):02x}" for _ in range(20)))


def _ticker(rng: random.Random) -> str:
    return rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES)


def _level(price: float) -> str:
    """A price printed the way signal channels do: four significant figures."""
    digits = max(0, 3 - math.floor(math.log10(price)))
    return f"{price:.{digits}f}"


class _Builder:
    """Accumulates messages, enforcing one normalised content per channel (except reposts)."""

    def __init__(self, rng: random.Random, start: datetime) -> None:
        self.rng = rng
        self.start = start
        self.rows: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, channel: ChannelProfile, offset_s: float, make: Callable[[], str], kind: str,
            **truth: Any) -> dict[str, Any]:
        text = make()
        for attempt in range(50):
            if (channel.name, content_md5(text)) not in self._seen:
                break
            text = make() if attempt < 40 else f"{make()} ({self.rng.randint(2, 10**6)})"
        self._seen.add((channel.name, content_md5(text)))
        return self._row(channel, offset_s, text, kind, truth)

    def repost(self, row: dict[str, Any], channel: ChannelProfile, offset_s: float) -> None:
        self._row(channel, offset_s, row["text"], "repost", dict(row["raw"]))

    def _row(self, channel: ChannelProfile, offset_s: float, text: str, kind: str,
             truth: dict[str, Any]) -> dict[str, Any]:
        author = channel.name if channel.platform == "x" else (
            "" if channel.platform == "telegram" else self.rng.choice(_AUTHORS))
        raw = {"synthetic": True, "platform": channel.platform, "quality": channel.quality, **truth, "kind": kind}
        row = {"source": "replay", "channel": channel.name, "message_id": "", "author": author,
               "text": text, "offset_s": offset_s, "raw": raw}
        self.rows.append(row)
        return row


def generate_stream(
    *,
    seed: int,
    start: datetime,
    minutes: int = 60,
    channels: Sequence[ChannelProfile] = DEFAULT_CHANNELS,
    calls_per_hour: float = 40.0,
    perps_per_hour: float = 12.0,
    chatter_per_hour: float = 20.0,
    spam_waves: int | None = None,
    echo_probability: float = 0.6,
    echo_window_s: float = 300.0,
    repost_probability: float = 0.08,
    duplicate_rate: float = 0.04,
    spam_wave_s: float = 120.0,
    shill_probability: float = 0.5,
) -> list[dict[str, Any]]:
    """A deterministic synthetic stream of raw messages (see the module docstring).

    Parameters
    ----------
    seed
        Seed of every random choice.
    start
        Timezone-aware time of the stream's beginning; every ``ts`` lies in
        ``[start, start + minutes)`` (UTC, ISO-8601).
    minutes
        Length of the stream.
    calls_per_hour, perps_per_hour, chatter_per_hour
        Rates of original calls, perps signals (per perps channel) and chatter (per unit of
        channel activity).
    spam_waves
        Number of spam waves (default: one per 30 minutes, at least one).
    echo_probability, echo_window_s
        Chance a call is echoed (scaled by the origin's quality) and the delay bound in seconds.
    repost_probability, duplicate_rate
        Chance a call is re-posted in its own channel; share of messages re-delivered.
    spam_wave_s
        Seconds a spam wave lasts.
    shill_probability
        Chance a spam wave shills a token: every message of the wave then ends with
        ``CA: <mint>`` (``raw`` has its ``chain`` and ``address``). Drawn from a generator of its
        own, so the rest of the stream does not depend on it.

    Returns
    -------
    list of dict
        Raw messages in arrival order (re-delivered duplicates arrive after the original).
    """
    if start.utcoffset() is None:
        raise ValueError("start must be timezone-aware")
    rng = random.Random(seed)
    duration = minutes * 60.0
    builder = _Builder(rng, start.astimezone(UTC))
    callers = [c for c in channels if not c.perps]
    perps_channels = [c for c in channels if c.perps]
    chains, weights = zip(*CHAIN_WEIGHTS.items(), strict=True)

    for index in range(round(calls_per_hour * minutes / 60)):
        origin = rng.choices(callers, weights=[0.3 + c.quality for c in callers])[0]
        chain = rng.choices(chains, weights=weights)[0]
        address = _mint(rng) if chain == "solana" else _evm(rng)
        ticker = _ticker(rng)
        at = rng.uniform(0, duration * 0.9)
        truth = {"call_id": f"call-{index}", "chain": chain, "address": address, "ticker": ticker}
        templates = _CALL_TEMPLATES[chain]
        call = builder.add(origin, at, lambda t=templates, k=ticker, a=address: rng.choice(t).format(t=k, a=a),
                           "call", **truth)
        if rng.random() < echo_probability * (0.5 + origin.quality) and len(callers) > 1:
            others = [c for c in callers if c is not origin]
            for echo_channel in rng.sample(others, min(len(others), rng.randint(2, 4))):
                when = min(duration - 1, at + rng.uniform(5, echo_window_s))
                if rng.random() < 0.4:
                    builder.add(echo_channel, when, lambda c=call: c["text"], "echo", **truth)
                else:
                    builder.add(echo_channel, when, lambda t=templates, k=ticker, a=address, o=origin.name:
                                rng.choice(_ECHO_PREFIXES).format(o=o) + rng.choice(t).format(t=k, a=a),
                                "echo", **truth)
        if rng.random() < repost_probability:
            builder.repost(call, origin, min(duration - 1, at + rng.uniform(20, 240)))

    perps = [a for a in SIM_ASSETS if a.has_perp]
    for channel in perps_channels:
        for _ in range(round(perps_per_hour * minutes / 60)):
            asset = rng.choice(perps)
            side = rng.choice(("LONG", "SHORT"))
            entry = asset.anchor_price * rng.uniform(0.97, 1.03)
            sign = 1 if side == "LONG" else -1
            stop = entry * (1 - sign * rng.uniform(0.02, 0.06))
            target = entry * (1 + sign * rng.uniform(0.03, 0.12))
            leverage = rng.choice(("", " 5x", " 10x", " 20x"))

            def signal(a: str = asset.base, s: str = side, e: float = entry, sl: float = stop,
                       tp: float = target, lev: str = leverage) -> str:
                return f"{s} {a}/USDT{lev} entry {_level(e)} SL {_level(sl)} TP {_level(tp)} {rng.choice(_EMOJI)}"

            builder.add(channel, rng.uniform(0, duration), signal, "perp", base=asset.base, side=side)

    waves = spam_waves if spam_waves is not None else max(1, minutes // 30)
    for wave in range(waves):
        template, ticker = rng.choice(_SPAM_TEMPLATES), _ticker(rng)
        domain = ticker.lower()
        at = rng.uniform(0, max(0.0, duration - spam_wave_s))
        hit = rng.sample(list(channels), min(len(channels), rng.randint(5, 8)))
        shill = random.Random(f"{seed}:shill:{wave}")
        mint = _mint(shill) if shill.random() < shill_probability else None
        truth = {"wave": f"wave-{wave}"} | ({"chain": "solana", "address": mint} if mint else {})
        for channel in hit:
            builder.add(channel, at + rng.uniform(0, spam_wave_s), lambda tpl=template, t=ticker, d=domain, m=mint:
                        tpl.format(t=t, d=d, n=rng.choice((500, 1000, 5000)), e=rng.choice(_EMOJI))
                        + (f" CA: {m}" if m else ""), "spam", **truth)

    bases = [a.base for a in SIM_ASSETS]
    for channel in channels:
        for _ in range(round(chatter_per_hour * channel.activity * minutes / 60)):
            builder.add(channel, rng.uniform(0, duration), lambda: rng.choice(_CHATTER).format(
                b=rng.choice(bases), e=rng.choice(_EMOJI)), "chatter")

    return _finish(builder, rng, duration, duplicate_rate)


def _finish(builder: _Builder, rng: random.Random, duration: float, duplicate_rate: float) -> list[dict[str, Any]]:
    """Assign platform-style message ids in time order, add re-deliveries, order by arrival."""
    rows = sorted(builder.rows, key=lambda r: r["offset_s"])
    counters: dict[str, int] = {}
    for row in rows:
        channel, platform = row["channel"], row["raw"]["platform"]
        counters[channel] = counters.get(channel, 0) + 1
        offset_ms = int(row["offset_s"] * 1000)
        ms = int(builder.start.timestamp() * 1000) + offset_ms
        if platform == "telegram":
            row["message_id"] = str(1000 + counters[channel])
        else:  # Discord / X snowflakes: milliseconds since the platform epoch, shifted by 22 bits
            epoch = 1420070400000 if platform == "discord" else 1288834974657
            row["message_id"] = str(((ms - epoch) << 22) + counters[channel])
        row["ts"] = (builder.start + timedelta(milliseconds=offset_ms)).isoformat()
        row["arrival_s"] = row["offset_s"]
    copies = []
    for row in rows:
        if row["raw"]["kind"] != "repost" and rng.random() < duplicate_rate:
            copy = {**row, "raw": {**row["raw"], "kind": "duplicate"}}
            copy["arrival_s"] = min(duration, row["offset_s"] + rng.uniform(1, 60))
            copies.append(copy)
    ordered = sorted(rows + copies, key=lambda r: r["arrival_s"])
    return [{k: v for k, v in row.items() if k not in ("offset_s", "arrival_s")} for row in ordered]


def write_stream(path: Path, **kwargs: Any) -> int:
    """Write :func:`generate_stream` (``kwargs`` forwarded) as JSONL to ``path``; returns the count."""
    rows = generate_stream(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    """``python -m streaming.synthetic OUT.jsonl [--seed N] [--minutes M] [--start ISO]``."""
    parser = argparse.ArgumentParser(prog="python -m streaming.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--start", default="2025-01-01T00:00:00+00:00", help="ISO-8601 with offset")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    count = write_stream(args.out, seed=args.seed, start=start, minutes=args.minutes)
    print(f"wrote {count} messages to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
