"""Signals: routing rules and message payloads shared by social and market signals (pure)."""
