"""The simulator's daily process: one log price per UTC day start for every asset.

Layers, all seeded from ``(seed, tag, asset id, block)`` through :class:`numpy.random.SeedSequence`:

- a market-wide volatility regime, a 3-state Markov chain over days (calm, normal, turbulent);
- BTC: log price = anchor + ``y``, ``y`` an Ornstein-Uhlenbeck deviation driven by Student-t
  innovations scaled by the regime, a per-day log-normal volatility jitter and rare jumps;
- every other asset: log price = anchor + ``beta`` * (BTC deviation since listing) + its own OU
  deviation with the same kind of innovations, plus, for memes, rare multi-day pumps that bleed
  most of their gain back over three times as many days.

Days are produced in blocks of ``block_days``; each block has its own random stream and the
recursion state carries over, so extending the cache never changes a day already produced and
any process rebuilding it from GENESIS gets the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from resources.exchanges.sim_assets import ANCHOR_DATE, GENESIS, SimAsset

# Stream tags (first spawn-key word) so no two kinds of draws ever share a stream.
TAG_REGIME = 1
TAG_DAILY = 2
TAG_INTRADAY = 3
TAG_DERIVATIVES = 4

ANCHOR_DAY = (ANCHOR_DATE - GENESIS.date()).days


@dataclass(frozen=True)
class SimParams:
    """Every parameter of the simulated market (dimensionless unless a unit is given)."""

    block_days: int = 256
    regime_vol: tuple[float, float, float] = (0.7, 1.0, 1.4)
    regime_transitions: tuple[tuple[float, float, float], ...] = (
        (0.97, 0.03, 0.0),
        (0.02, 0.96, 0.02),
        (0.0, 0.06, 0.94),
    )
    t_dof: float = 4.0  # Student-t degrees of freedom of daily innovations
    vol_jitter: float = 0.2  # log-normal sd of the per-day volatility multiplier
    mean_reversion_days: float = 60.0  # OU time scale of the deviation from the anchor
    jump_prob: float = 0.01  # daily probability of a jump
    jump_scale: float = 2.5  # jump sd in units of the day's sigma
    idio_floor: float = 0.3  # idiosyncratic sigma >= this fraction of the asset's vol
    pump_prob: float = 1 / 120  # daily probability that a meme starts a pump
    pump_days: tuple[int, int] = (2, 6)  # pump length, inclusive range
    pump_drift: tuple[float, float] = (0.10, 0.30)  # log drift per pump day
    bleed_ratio: int = 3  # bleed length = ratio * pump length
    bleed_giveback: float = 0.9  # share of the pump's gain given back while bleeding
    pump_vol: float = 1.6  # sigma multiplier on pump days
    pump_volume: float = 5.0  # volume multiplier on pump days (half of it while bleeding)
    turnover: tuple[tuple[str, float], ...] = (("major", 0.0015), ("alt", 0.004), ("meme", 0.015))
    volume_regime_power: float = 1.2  # volume ~ regime_vol ** power
    volume_noise: float = 0.35  # log-normal sd of daily volume
    # intraday
    hourly_vol_sigma: float = 0.65  # log-normal sd of per-hour volatility multipliers
    intraday_jumps: tuple[tuple[str, float], ...] = (("major", 0.4), ("alt", 1.2), ("meme", 2.0))
    intraday_jump_scale: float = 1.6  # in units of the hour's sigma
    wick_scale: float = 0.3  # mean wick (exponential) in units of the minute's sigma
    meme_spike_prob: float = 0.002  # per minute
    meme_spike_size: tuple[float, float] = (5.0, 25.0)
    # derivatives
    perp_volume_factor: float = 4.0  # perp volume / spot volume
    premium_base: float = 0.0001  # per 8 h, the neutral funding level
    premium_momentum: float = 0.004  # premium per unit of ~3-day log return
    premium_noise: float = 0.00015
    premium_cap: float = 0.005
    funding_clamp: float = 0.0005  # Binance-style clamp of (interest - premium)
    funding_cap: float = 0.0075
    # open interest value / market cap in normal activity (Binance USD-M in 2024, roughly: BTC 0.5-0.8 %,
    # large alts 1-3 %, DOGE / PEPE 3-8 %)
    oi_mcap_share: tuple[tuple[str, float], ...] = (("major", 0.005), ("alt", 0.015), ("meme", 0.04))
    oi_activity_range: tuple[float, float] = (0.6, 1.6)  # clip of sqrt(10-day activity / normal)
    oi_momentum: float = 0.3

    def turnover_of(self, segment: str) -> float:
        return dict(self.turnover)[segment]

    def oi_share_of(self, segment: str) -> float:
        return dict(self.oi_mcap_share)[segment]

    def jumps_per_day(self, segment: str) -> float:
        return dict(self.intraday_jumps)[segment]


def rng_for(seed: int, *words: int) -> np.random.Generator:
    """A PCG64 generator for ``seed`` and a spawn key (tag, asset id, day or block ...)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=words))


def student_t(rng: np.random.Generator, dof: float, size: int) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(dof, size) / math.sqrt(dof / (dof - 2.0))


class RegimeChain:
    """Market-wide volatility regime per day since GENESIS (0 calm, 1 normal, 2 turbulent)."""

    def __init__(self, seed: int, params: SimParams) -> None:
        self._seed = seed
        self._params = params
        self._cum = np.cumsum(np.asarray(params.regime_transitions), axis=1)
        self._states = np.empty(0, dtype=np.int8)
        self._state = 1

    def multipliers(self, start: int, stop: int) -> np.ndarray:
        """Volatility multipliers of days ``[start, stop)`` (days since GENESIS)."""
        self._ensure(stop)
        return np.asarray(self._params.regime_vol)[self._states[start:stop]]

    def _ensure(self, n_days: int) -> None:
        block = self._params.block_days
        while self._states.size < n_days:
            b = self._states.size // block
            draws = rng_for(self._seed, TAG_REGIME, 0, b).random(block)
            out = np.empty(block, dtype=np.int8)
            state = self._state
            for i, u in enumerate(draws):
                out[i] = state
                state = int(np.searchsorted(self._cum[state], u, side="right"))
                state = min(state, 2)
            self._state = state
            self._states = np.concatenate([self._states, out])


def anchor_log(asset: SimAsset, days: np.ndarray) -> np.ndarray:
    """Anchor log price at the start of ``days`` (days since GENESIS)."""
    g0 = asset.listing_day
    lo, hi = math.log(asset.start_price), math.log(asset.anchor_price)
    if g0 >= ANCHOR_DAY:
        return np.full(days.shape, hi)
    frac = np.clip((days - g0) / (ANCHOR_DAY - g0), 0.0, 1.0)
    return lo + (hi - lo) * frac


class DailyPath:
    """Daily series of one asset, cached and extended block by block.

    Local day ``k`` is UTC day ``listing_day + k``. ``logp[k]`` is the log price (USD) at the
    start of local day ``k`` (= close of day ``k - 1``); day ``k`` closes at ``logp[k + 1]``.
    """

    def __init__(
        self,
        asset: SimAsset,
        seed: int,
        params: SimParams,
        regime: RegimeChain,
        factor: DailyPath | None,
    ) -> None:
        self.asset = asset
        self.g0 = asset.listing_day
        self._seed = seed
        self._p = params
        self._regime = regime
        self._factor = factor
        self.logp = np.array([math.log(asset.start_price)])
        self.sigma = np.empty(0)  # sigma of the intraday bridge (BTC: total; others: idio)
        self.sigma_total = np.empty(0)  # sigma of the whole daily log return
        self.volume_usd = np.empty(0)  # expected daily spot volume in USD
        self.hl_draws = np.empty((0, 2))  # uniforms for the approximate daily high / low
        self.pump = np.empty(0, dtype=np.int8)  # 0 none, 1 pumping, 2 bleeding
        # the listing day opens exactly at start_price (anchor + y)
        self._y = math.log(asset.start_price) - float(anchor_log(asset, np.array([self.g0]))[0])
        self._carry_drift = np.zeros(0)
        self._carry_flag = np.zeros(0, dtype=np.int8)
        self._busy_until = 0  # local day before which no new pump may start

    @property
    def n_days(self) -> int:
        return self.sigma.size

    def ensure(self, n_days: int) -> None:
        """Make sure local days ``[0, n_days)`` exist."""
        while self.sigma.size < n_days:
            self._extend()

    def deviation(self, start: int, stop: int) -> np.ndarray:
        """``logp - anchor`` at the start of UTC days ``[start, stop]`` (BTC's factor deviation)."""
        self.ensure(stop - self.g0)
        days = np.arange(start, stop + 1)
        return self.logp[start - self.g0 : stop - self.g0 + 1] - anchor_log(self.asset, days)

    def _extend(self) -> None:
        p, asset = self._p, self.asset
        block = p.block_days
        k0 = self.sigma.size
        b = k0 // block
        days = self.g0 + k0 + np.arange(block)  # UTC days since GENESIS
        rng = rng_for(self._seed, TAG_DAILY, asset.asset_id, b)
        regime = self._regime.multipliers(int(days[0]), int(days[-1]) + 1)
        jitter = np.exp(p.vol_jitter * rng.standard_normal(block) - p.vol_jitter**2 / 2)
        eps = student_t(rng, p.t_dof, block)
        jump = (rng.random(block) < p.jump_prob) * rng.standard_normal(block) * p.jump_scale
        volume_noise = np.exp(p.volume_noise * rng.standard_normal(block) - p.volume_noise**2 / 2)
        hl = rng.random((block, 2))
        drift, flags = self._pumps(rng, block)

        vol_mult = np.where(flags == 1, p.pump_vol, 1.0)
        if self._factor is None:
            sigma = asset.vol * regime * jitter
            sigma_total = sigma
            factor_dev = None
        else:
            f = self._factor
            f.ensure(int(days[-1]) + 1 - f.g0)
            btc_sigma = f.sigma_total[days - f.g0]
            idio = math.sqrt(
                max(asset.vol**2 - (asset.beta * f.asset.vol) ** 2, (p.idio_floor * asset.vol) ** 2)
            )
            sigma = idio * regime * jitter * vol_mult
            sigma_total = np.sqrt((asset.beta * btc_sigma) ** 2 + sigma**2)
            since = f.deviation(self.g0, self.g0)[0]
            factor_dev = f.deviation(int(days[0]) + 1, int(days[-1]) + 1) - since

        shocks = sigma * (eps + jump) + drift
        phi = 1.0 - 1.0 / p.mean_reversion_days
        powers = phi ** np.arange(1, block + 1)
        y = powers * (self._y + np.cumsum(shocks / powers))  # y at the start of days + 1
        self._y = float(y[-1])
        logp_next = anchor_log(asset, days + 1) + y
        if factor_dev is not None:
            logp_next = logp_next + asset.beta * factor_dev
        price_open = np.exp(np.concatenate([self.logp[-1:], logp_next[:-1]]))
        volume_mult = np.where(
            flags == 1, p.pump_volume, np.where(flags == 2, p.pump_volume / 2, 1.0)
        )
        volume = (
            p.turnover_of(asset.segment)
            * asset.supply
            * price_open
            * regime**p.volume_regime_power
            * volume_noise
            * volume_mult
        )
        self.logp = np.concatenate([self.logp, logp_next])
        self.sigma = np.concatenate([self.sigma, sigma])
        self.sigma_total = np.concatenate([self.sigma_total, sigma_total])
        self.volume_usd = np.concatenate([self.volume_usd, volume])
        self.hl_draws = np.concatenate([self.hl_draws, hl])
        self.pump = np.concatenate([self.pump, flags])

    def _pumps(self, rng: np.random.Generator, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Meme pump drift (log per day) and flags for one block, carrying overflow forward."""
        p = self._p
        u_start, u_len, u_size = rng.random(block), rng.random(block), rng.random(block)
        longest = p.pump_days[1] * (1 + p.bleed_ratio)
        drift = np.zeros(block + longest)
        flags = np.zeros(block + longest, dtype=np.int8)
        drift[: self._carry_drift.size] = self._carry_drift
        flags[: self._carry_flag.size] = self._carry_flag
        if self.asset.segment == "meme":
            k0 = self.sigma.size
            for i in np.flatnonzero(u_start < p.pump_prob):
                if k0 + i < self._busy_until:
                    continue
                n_pump = p.pump_days[0] + int(u_len[i] * (p.pump_days[1] - p.pump_days[0] + 1))
                size = p.pump_drift[0] + (p.pump_drift[1] - p.pump_drift[0]) * u_size[i]
                n_bleed = p.bleed_ratio * n_pump
                drift[i : i + n_pump] += size
                flags[i : i + n_pump] = 1
                drift[i + n_pump : i + n_pump + n_bleed] -= (
                    p.bleed_giveback * size * n_pump / n_bleed
                )
                flags[i + n_pump : i + n_pump + n_bleed] = 2
                self._busy_until = k0 + i + n_pump + n_bleed
        self._carry_drift, self._carry_flag = drift[block:], flags[block:]
        return drift[:block], flags[:block]
