"""Models over candles and features: pure code, heavy libraries imported inside the functions that fit."""
