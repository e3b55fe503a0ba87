"""Per-row reference loops written from the docstring definitions (one symbol at a time)."""

from __future__ import annotations

import math

import numpy as np

NAN = math.nan


def order_blocks(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, k: int, max_age: int, *, bullish: bool
) -> tuple[list[float], list[float], list[bool]]:
    """Active order block (top, bottom) and revisit flag at every bar, one bar at a time."""
    n = len(c)
    ref = h if bullish else lo
    swing: list | None = None  # [confirmed_at, level, broken]
    last_opposite: int | None = None
    block: list | None = None  # [born, top, bottom]
    tops, bottoms, touches = [], [], []
    for i in range(n):
        j = i - k
        if j - k >= 0:
            left, right = ref[j - k : j], ref[j + 1 : j + k + 1]
            if bullish and ref[j] > max(left) and ref[j] >= max(right):
                swing = [i, ref[j], False]
            if not bullish and ref[j] < min(left) and ref[j] <= min(right):
                swing = [i, ref[j], False]
        if swing is not None and not swing[2] and i - swing[0] <= max_age:
            beyond = c[i] > swing[1] if bullish else c[i] < swing[1]
            if beyond:
                swing[2] = True
                if last_opposite is not None and i - last_opposite <= max_age:
                    block = [i, h[last_opposite], lo[last_opposite]]
        if (c[i] < o[i]) if bullish else (c[i] > o[i]):
            last_opposite = i
        if block is not None:
            expired = i - block[0] > max_age
            broken = c[i] < block[2] if bullish else c[i] > block[1]
            if expired or broken:
                block = None
        if block is None:
            tops.append(NAN)
            bottoms.append(NAN)
            touches.append(False)
        else:
            tops.append(block[1])
            bottoms.append(block[2])
            touches.append(i > block[0] and lo[i] <= block[1] and h[i] >= block[2])
    return tops, bottoms, touches


def fair_value_gaps(h: np.ndarray, lo: np.ndarray) -> dict[str, list]:
    out: dict[str, list] = {k: [] for k in ("bull", "bear", "top", "bottom", "size")}
    for i in range(len(h)):
        if i < 2:
            values = (None, None, NAN, NAN, NAN)
        elif lo[i] > h[i - 2]:
            values = (True, False, lo[i], h[i - 2], (lo[i] - h[i - 2]) / h[i - 2] * 100.0)
        elif h[i] < lo[i - 2]:
            values = (False, True, lo[i - 2], h[i], (lo[i - 2] - h[i]) / h[i] * 100.0)
        else:
            values = (False, False, NAN, NAN, NAN)
        for key, value in zip(("bull", "bear", "top", "bottom", "size"), values, strict=True):
            out[key].append(value)
    return out


def td_counts(c: np.ndarray, lookback: int = 4, cap: int = 13) -> tuple[list, list]:
    up, down, u, d = [], [], 0, 0
    for i in range(len(c)):
        if i < lookback:
            up.append(None)
            down.append(None)
            continue
        u = u + 1 if c[i] > c[i - lookback] else 0
        d = d + 1 if c[i] < c[i - lookback] else 0
        up.append(min(u, cap))
        down.append(min(d, cap))
    return up, down


def divergence(c: np.ndarray, rsi: np.ndarray, bars: int) -> list:
    out: list = []
    for i in range(len(c)):
        if i < bars or math.isnan(rsi[i]) or math.isnan(rsi[i - bars]):
            out.append(None)
        elif c[i] < c[i - bars] and rsi[i] > rsi[i - bars]:
            out.append(1)
        elif c[i] > c[i - bars] and rsi[i] < rsi[i - bars]:
            out.append(-1)
        else:
            out.append(0)
    return out


def crosses(fast: np.ndarray, slow: np.ndarray, warmup: int) -> tuple[list, list]:
    up, down = [], []
    for i in range(len(fast)):
        if i < warmup:
            up.append(None)
            down.append(None)
        else:
            up.append(bool(fast[i] > slow[i] and fast[i - 1] <= slow[i - 1]))
            down.append(bool(fast[i] < slow[i] and fast[i - 1] >= slow[i - 1]))
    return up, down
