"""Solana program ids and well-known non-token accounts that token extraction never reports (pure).

A program id is a valid 32-byte base58 key, so by format alone it looks like a mint; call posts
paste them in "swap via ..." lines, bot footers and scam "approve" texts. The table below is the
list the extractor excludes (:data:`~streaming.extract_config.DEFAULT_EXCLUDED_SOLANA`).

Sources
-------
The maintained Python source, ``solana`` (solana-py 0.41.0 on PyPI, with ``solders``), ships only
the runtime's native programs, sysvars and the SPL token family (``solana.constants``,
``spl.token.constants``, ``spl.memo.constants``): those entries are marked ``solana-py``. No
packaged list covers the DEX and launchpad programs, so those are kept here by hand, each with
the public place its id is published (the project's developer docs or its open-source program
repository), and each was checked against public code that calls the program. A test checks that
every id decodes to 32 bytes and that the table has no duplicate.
"""

from __future__ import annotations

from typing import NamedTuple


class SolanaProgram(NamedTuple):
    """One excluded account: its id, what it is, and where that id is published."""

    address: str
    name: str
    source: str


_SOLANA_PY = "solana-py 0.41.0 (PyPI): solana.constants / spl.*.constants"
_RAYDIUM = "Raydium docs, 'Program addresses' (docs.raydium.io); github.com/raydium-io"
_METEORA = "Meteora docs, 'Program IDs' (docs.meteora.ag); github.com/MeteoraAg"
_METAPLEX = "Metaplex developer docs (developers.metaplex.com); github.com/metaplex-foundation"
_JUPITER = "Jupiter developer docs (dev.jup.ag); github.com/jup-ag"

SOLANA_PROGRAMS: tuple[SolanaProgram, ...] = (
    # runtime, sysvars and the SPL token family (maintained: solana-py)
    SolanaProgram("11111111111111111111111111111111", "System program", _SOLANA_PY),
    SolanaProgram("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "SPL Token", _SOLANA_PY),
    SolanaProgram("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb", "SPL Token-2022", _SOLANA_PY),
    SolanaProgram("ATokenGPvbdGVxr1b2hvZbsiqW5xWH25efTNsLJA8knL", "Associated Token Account", _SOLANA_PY),
    SolanaProgram("MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr", "SPL Memo v2", _SOLANA_PY),
    SolanaProgram("Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo", "SPL Memo v1", "Solana Program Library docs (spl.solana.com/memo)"),
    SolanaProgram("ComputeBudget111111111111111111111111111111", "Compute Budget", "Solana docs, native programs"),
    SolanaProgram("Stake11111111111111111111111111111111111111", "Stake program", _SOLANA_PY),
    SolanaProgram("Vote111111111111111111111111111111111111111", "Vote program", _SOLANA_PY),
    SolanaProgram("Config1111111111111111111111111111111111111", "Config program", _SOLANA_PY),
    SolanaProgram("BPFLoaderUpgradeab1e11111111111111111111111", "BPF upgradeable loader", _SOLANA_PY),
    SolanaProgram("AddressLookupTab1e1111111111111111111111111", "Address lookup table", _SOLANA_PY),
    SolanaProgram("Ed25519SigVerify111111111111111111111111111", "Ed25519 signature verify", _SOLANA_PY),
    SolanaProgram("KeccakSecp256k11111111111111111111111111111", "Secp256k1 verify", _SOLANA_PY),
    SolanaProgram("SysvarRent111111111111111111111111111111111", "Rent sysvar", _SOLANA_PY),
    SolanaProgram("SysvarC1ock11111111111111111111111111111111", "Clock sysvar", _SOLANA_PY),
    SolanaProgram("Sysvar1nstructions1111111111111111111111111", "Instructions sysvar", "Solana docs, sysvars"),
    SolanaProgram("SysvarRecentB1ockHashes11111111111111111111", "Recent blockhashes sysvar", "Solana docs, sysvars"),
    SolanaProgram("So11111111111111111111111111111111111111112", "Wrapped SOL (the quote side of every SOL pair)", _SOLANA_PY),
    SolanaProgram("namesLPneVptA9Z5rqUDD9tMTWEJwofgaYwp8cawRkX", "SPL Name Service", "Solana Program Library (github.com/solana-labs/solana-program-library)"),
    # NFTs
    SolanaProgram("metaqbxxUerdq28cj1RbAWkYQm3ybzjb6a8bt518x1s", "Metaplex Token Metadata", _METAPLEX),
    SolanaProgram("CoREENxT6tW1HoK8ypY1SxRMZTcVPm7R94rH4PZNhX7d", "Metaplex Core", _METAPLEX),
    SolanaProgram("BGUMAp9Gq7iTEuizy4pqaxsTyUCBK68MDfK752saRPUY", "Metaplex Bubblegum", _METAPLEX),
    SolanaProgram("CndyV3LdqHUfDLmE5naZjVN8rBZz4tqhdefbAnjHG3JR", "Metaplex Candy Machine v3", _METAPLEX),
    # order books
    SolanaProgram("srmqPvymJeFKQ4zGQed1GFppgkRHL9kaELCbyksJtPX", "OpenBook v1", "github.com/openbook-dex/program"),
    SolanaProgram("opnb2LAfJYbRMAHHvqjCwQxanZn7ReEHp1k81EohpZb", "OpenBook v2", "github.com/openbook-dex/openbook-v2"),
    SolanaProgram("9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", "Serum DEX v3", "github.com/project-serum/serum-dex"),
    SolanaProgram("PhoeNiXZ8ByJGLkxNfZRnkUfjvmuYqLR89jjFHGqdXY", "Phoenix", "github.com/Ellipsis-Labs/phoenix-v1"),
    # AMMs, aggregators and launchpads
    SolanaProgram("675kPX9MHTjS2zt1qfr1NYHuzeLXfQM9H24wFSUt1Mp8", "Raydium AMM v4", _RAYDIUM),
    SolanaProgram("CAMMCzo5YL8w4VFF8KVHrK22GGUsp5VTaW7grrKgrWqK", "Raydium CLMM", _RAYDIUM),
    SolanaProgram("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C", "Raydium CPMM", _RAYDIUM),
    SolanaProgram("LanMV9sAd7wArD4vJFi2qDdfnVhFxYSUg6eADduJ3uj", "Raydium LaunchLab (bonk.fun)", _RAYDIUM),
    SolanaProgram("routeUGWgWzqBWFcrCfv8tritsqukccJPu3q5GPP3xS", "Raydium AMM routing", _RAYDIUM),
    SolanaProgram("LockrWmn6K5twhz3y9w1dQERbmgSaRkfnTeTKbpofwE", "Raydium LP locker", _RAYDIUM),
    SolanaProgram("LBUZKhRxPF3XUpBCjp4YzTKgLccjZhTSDM9YuVaPwxo", "Meteora DLMM", _METEORA),
    SolanaProgram("Eo7WjKq67rjJQSZxS6z3YkapzY3eMj6Xy8X5EQVn5UaB", "Meteora Dynamic AMM (pools)", _METEORA),
    SolanaProgram("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG", "Meteora DAMM v2", _METEORA),
    SolanaProgram("dbcij3LWUppWqq96dh6gJWwBifmcGfLSB5D4DuSMaqN", "Meteora Dynamic Bonding Curve", _METEORA),
    SolanaProgram("24Uqj9JCLxUeoC3hGfh5W3s9FM9uCHDS2SG3LYwBpyTi", "Meteora Dynamic Vault", _METEORA),
    SolanaProgram("MoonCVVNZFSYkqNXP6bxHLPL6QQJiMagDL3qcqUQTrG", "Moonshot (moon.it)", "Moonshot SDK (github.com/wen-moon-ser/moonshot-sdk)"),
    SolanaProgram("6EF8rrecthR5Dkzon8Nwu78hRvfCKubJ14M5uBEwF6P", "pump.fun bonding curve", "pump.fun public IDL (github.com/pump-fun/pump-public-docs)"),
    SolanaProgram("pAMMBay6oceH9fJKBRHGP5D4bD4sWpmSwMn52FMfXEA", "PumpSwap AMM", "pump.fun public IDL (github.com/pump-fun/pump-public-docs)"),
    SolanaProgram("boop8hVGQGqehUK2iVEMEnMrL5RbjywRzHKBmBE7ry4", "boop.fun launchpad", "boop.fun program as used by public launchpad parsers"),
    SolanaProgram("JUP6LkbZbjS1jKKwapdHNy74zcZ3tLUZoi5QNyVTaV4", "Jupiter aggregator v6", _JUPITER),
    SolanaProgram("JUP4Fb2cqiRUcaTHdrPC8h2gNsA2ETXiPDD33WcGuJB", "Jupiter aggregator v4", _JUPITER),
    SolanaProgram("jupoNjAxXgZ4rjzxzPMP4oxduvQsQtZzyknqvzYNrNu", "Jupiter limit order", _JUPITER),
    SolanaProgram("DCA265Vj8a9CEuX1eb1LWRnDT7uK6q1xMipnNyatn23M", "Jupiter DCA", _JUPITER),
    SolanaProgram("whirLbMiicVdio4qvUfM5KAg6Ct8VwpYzGff3uctyCc", "Orca Whirlpool", "Orca developer docs; github.com/orca-so/whirlpools"),
    SolanaProgram("9W959DqEETiGZocYWCQPaJ6sBmUzgfxXfqGeTEdp3aQP", "Orca token swap v2", "Orca developer docs"),
    SolanaProgram("SwaPpA9LAaLfeLi3a68M4DjnLqgtticKg6CnyNwgAC8", "SPL Token Swap", "Solana Program Library (spl.solana.com/token-swap)"),
)

#: The ids of :data:`SOLANA_PROGRAMS`, in table order.
SOLANA_PROGRAM_IDS: tuple[str, ...] = tuple(program.address for program in SOLANA_PROGRAMS)
