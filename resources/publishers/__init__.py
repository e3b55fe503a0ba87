"""Publishers: where signals leave Signalworks.

``telegram_bot`` is the Telegram Bot API client, ``flood`` its rate limiter and ``render`` the
pure HTML rendering it sends. Import the modules directly; this package imports nothing, so
importing the pure ``render`` helpers does not load httpx.
"""
