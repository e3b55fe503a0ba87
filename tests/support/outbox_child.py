"""A publish run in its own process, racing another: python -m tests.support.outbox_child URL LOG NAME."""

from __future__ import annotations

import json
import os
import random
import sys
import time

from resources.publishers.outbox import Outbox
from resources.warehouse.engine import make_engine


def main() -> None:
    url, log_path, name = sys.argv[1:4]
    outbox = Outbox(make_engine(url))
    print("ready", flush=True)
    sys.stdin.readline()  # both children start together

    signals = outbox.pending()
    random.Random(name).shuffle(signals)  # the two runs walk the outbox in different orders
    outcomes: dict[str, int] = {}
    for signal in signals:
        def send(signal_id: int = signal.signal_id, token: str = signal.base_token) -> str:
            time.sleep(0.02)  # the chat's round trip, while the claim is held
            fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{name} {signal_id} {token}\n".encode())
            os.close(fd)
            return f"{name}-{signal_id}"

        status = outbox.deliver(signal, "alpha_chat", send).status
        outcomes[status] = outcomes.get(status, 0) + 1
    print(json.dumps(outcomes), flush=True)


if __name__ == "__main__":
    main()
