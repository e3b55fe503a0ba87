"""One identity for a token across chains, bridges and wrappers (pure).

:func:`base_token_key` is what the ``tokens`` table stores in ``base_token``: two
``(chain, address)`` pairs with the same key are the same asset for context counting,
blacklisting and de-duplication of signals.

Rules, in order:

1. The chain is stripped and lower-cased (DexScreener chain ids: ``ethereum``, ``bsc``,
   ``base``, ``arbitrum``, ``polygon``, ``solana`` ...; ``evm`` when the chain of an EVM address
   is unknown, as :mod:`streaming.extract` reports it).
2. The address is normalised (:func:`normalise_address`): EVM addresses (``0x`` + 40 hex, on an
   :data:`EVM_CHAINS` chain or in that format on any chain) are lower-cased, since EIP-55 case is
   only a checksum; anything else (Solana base58 mints, which are case-sensitive) is kept as
   written, without surrounding whitespace.
3. A known bridged or wrapped major from the alias table maps to its asset key (``"usdc"``,
   ``"usdt"``, ``"dai"``, ``"eth"``, ``"btc"``, ``"sol"``, ``"bnb"``). An EVM address on the
   unknown chain ``evm`` maps when every alias of that address, on whichever EVM chain, names
   the same asset (``0x4200...0006`` is WETH on every OP-stack chain).
4. Otherwise the key is ``f"{chain}:{address}"``: the same address on two chains is two tokens,
   because a contract address says nothing about what is deployed there on another chain.

The default alias table
-----------------------
A small curated set of majors, every address copied from the token lists in
``shared/fixtures/token_lists/``: the *Uniswap Labs Default* list v22.21.0 (EIP-155 chain ids:
1 ethereum, 10 optimism, 56 bsc, 137 polygon, 8453 base, 42161 arbitrum, 43114 avalanche; its
Solana entries use chain id 501000101) and the *Solana Token List* v0.3.3 (chain id 101).
A test re-reads both lists and checks every entry. Only 1:1 claims on the same asset are
aliased (native and bridged USDC, USDT0, WETH, WBTC, cbBTC, tBTC, Wormhole SOL, wrapped SOL,
WBNB); staked derivatives (cbETH, mSOL, JitoSOL ...) are different assets and are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "DEFAULT_ALIASES",
    "EVM_CHAINS",
    "UNKNOWN_EVM_CHAIN",
    "base_token_key",
    "build_aliases",
    "normalise_address",
]

#: The chain name of an EVM address whose chain nothing in the message named.
UNKNOWN_EVM_CHAIN = "evm"

#: DexScreener chain ids of EVM chains (the chains :mod:`streaming.extract` detects), plus
#: :data:`UNKNOWN_EVM_CHAIN`.
EVM_CHAINS: frozenset[str] = frozenset(
    {
        "ethereum", "bsc", "base", "arbitrum", "polygon", "optimism", "avalanche", "fantom",
        "linea", "blast", "zksync", UNKNOWN_EVM_CHAIN,
    }
)  # fmt: skip

_EVM_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")

# (asset key, chain, address as published, token list entry) — see the module docstring.
# fmt: off
_CURATED: tuple[tuple[str, str, str, str], ...] = (
    ("usdc", "ethereum", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", "uniswap 1 USDC"),
    ("usdc", "optimism", "0x0b2C639c533813f4Aa9D7837CAf62653d097Ff85", "uniswap 10 USDC"),
    ("usdc", "optimism", "0x7F5c764cBc14f9669B88837ca1490cCa17c31607", "uniswap 10 USDC.e"),
    ("usdc", "bsc", "0x8AC76a51cc950d9822D68b83fE1Ad97B32Cd580d", "uniswap 56 USDC"),
    ("usdc", "polygon", "0x3c499c542cEF5E3811e1192ce70d8cC03d5c3359", "uniswap 137 USDC"),
    ("usdc", "polygon", "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174", "uniswap 137 USDC.e"),
    ("usdc", "base", "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", "uniswap 8453 USDC"),
    ("usdc", "arbitrum", "0xaf88d065e77c8cC2239327C5EDb3A432268e5831", "uniswap 42161 USDC"),
    ("usdc", "arbitrum", "0xFF970A61A04b1cA14834A43f5dE4533eBDDB5CC8", "uniswap 42161 USDC.e"),
    ("usdc", "avalanche", "0xB97EF9Ef8734C71904D8002F8b6Bc66Dd9c48a6E", "uniswap 43114 USDC"),
    ("usdc", "solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "uniswap 501000101 USDC"),
    ("usdc", "solana", "A9mUU4qviSctJVPJdBJWkb28deg915LYJKrzQ19ji3FM", "solana 101 USDCet"),
    ("usdt", "ethereum", "0xdAC17F958D2ee523a2206206994597C13D831ec7", "uniswap 1 USDT"),
    ("usdt", "optimism", "0x94b008aA00579c1307B0EF2c499aD98a8ce58e58", "uniswap 10 USDT"),
    ("usdt", "optimism", "0x01bFF41798a0BcF287b996046Ca68b395DbC1071", "uniswap 10 USDT0"),
    ("usdt", "bsc", "0x55d398326f99059fF775485246999027B3197955", "uniswap 56 USDT"),
    ("usdt", "polygon", "0xc2132D05D31c914a87C6611C10748AEb04B58e8F", "uniswap 137 USDT"),
    ("usdt", "arbitrum", "0xFd086bC7CD5C481DCC9C85ebE478A1C0b69FCbb9", "uniswap 42161 USDT0"),
    ("usdt", "avalanche", "0x9702230A8Ea53601f5cD2dc00fDBc13d4dF4A8c7", "uniswap 43114 USDT"),
    ("usdt", "solana", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", "uniswap 501000101 USDT"),
    ("dai", "ethereum", "0x6B175474E89094C44Da98b954EedeAC495271d0F", "uniswap 1 DAI"),
    ("dai", "optimism", "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", "uniswap 10 DAI"),
    ("dai", "arbitrum", "0xDA10009cBd5D07dd0CeCc66161FC93D7c9000da1", "uniswap 42161 DAI"),
    ("dai", "bsc", "0x1AF3F329e8BE154074D8769D1FFa4eE058B1DBc3", "uniswap 56 DAI"),
    ("dai", "polygon", "0x8f3Cf7ad23Cd3CaDbD9735AFf958023239c6A063", "uniswap 137 DAI"),
    ("dai", "base", "0x50c5725949A6F0c72E6C4a641F24049A917DB0Cb", "uniswap 8453 DAI"),
    ("eth", "ethereum", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "uniswap 1 WETH"),
    ("eth", "optimism", "0x4200000000000000000000000000000000000006", "uniswap 10 WETH"),
    ("eth", "base", "0x4200000000000000000000000000000000000006", "uniswap 8453 WETH"),
    ("eth", "bsc", "0x2170Ed0880ac9A755fd29B2688956BD959F933F8", "uniswap 56 WETH"),
    ("eth", "polygon", "0x7ceB23fD6bC0adD59E62ac25578270cFf1b9f619", "uniswap 137 WETH"),
    ("eth", "arbitrum", "0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", "uniswap 42161 WETH"),
    ("eth", "avalanche", "0x49D5c2BdFfac6CE2BFdB6640F4F80f226bc10bAB", "uniswap 43114 WETH"),
    ("eth", "solana", "7vfCXTUXx5WJV5JADk17DUJ4ksgau7utNKj4b963voxs", "uniswap 501000101 WETH"),
    ("btc", "ethereum", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", "uniswap 1 WBTC"),
    ("btc", "ethereum", "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf", "uniswap 1 cbBTC"),
    ("btc", "ethereum", "0x18084fbA666a33d37592fA2633fD49a74DD93a88", "uniswap 1 tBTC"),
    ("btc", "optimism", "0x68f180fcCe6836688e9084f035309E29Bf0A2095", "uniswap 10 WBTC"),
    ("btc", "polygon", "0x1BFD67037B42Cf73acF2047067bd4F2C47D9BfD6", "uniswap 137 WBTC"),
    ("btc", "base", "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf", "uniswap 8453 cbBTC"),
    ("btc", "base", "0x236aa50979D5f3De3Bd1Eeb40E81137F22ab794b", "uniswap 8453 tBTC"),
    ("btc", "arbitrum", "0x2f2a2543B76A4166549F7aaB2e75Bef0aefC5B0f", "uniswap 42161 WBTC"),
    ("btc", "arbitrum", "0xcbB7C0000aB88B473b1f5aFd9ef808440eed33Bf", "uniswap 42161 cbBTC"),
    ("btc", "arbitrum", "0x7E2a1eDeE171C5B19E6c54D73752396C0A572594", "uniswap 42161 tBTC"),
    ("btc", "avalanche", "0x50b7545627a5162F82A992c33b87aDc75187B218", "uniswap 43114 WBTC"),
    ("btc", "solana", "3NZ9JMVBmGAqocybic2c7LQCJScmgsAZ6vQqTDzcqmJh", "uniswap 501000101 WBTC"),
    ("btc", "solana", "6DNSN2BJsaPFdFFc1zP37kkeNe4Usc1Sqkzr9C9vPWcU", "uniswap 501000101 TBTC"),
    ("sol", "solana", "So11111111111111111111111111111111111111112", "uniswap 501000101 SOL"),
    ("sol", "ethereum", "0xD31a59c85aE9D8edEFeC411D448f90841571b89c", "uniswap 1 SOL"),
    ("sol", "optimism", "0xba1Cf949c382A32a09A17B2AdF3587fc7fA664f1", "uniswap 10 SOL"),
    ("sol", "bsc", "0xfA54fF1a158B5189Ebba6ae130CEd6bbd3aEA76e", "uniswap 56 SOL"),
    ("sol", "arbitrum", "0xb74Da9FE2F96B9E0a5f4A3cf0b92dd2bEC617124", "uniswap 42161 SOL"),
    ("sol", "avalanche", "0xFE6B19286885a4F7F55AdAD09C3Cd1f906D2478F", "uniswap 43114 SOL"),
    ("bnb", "bsc", "0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c", "uniswap 56 WBNB"),
)
# fmt: on


def normalise_address(chain: str, address: str) -> tuple[str, str]:
    """The normal form ``(chain, address)`` that keys and alias tables use.

    Parameters
    ----------
    chain
        DexScreener chain id, any case (``"Base"`` -> ``"base"``).
    address
        Token contract address or Solana mint, as written.

    Returns
    -------
    tuple[str, str]
        Chain stripped and lower-cased; an EVM-format address lower-cased, anything else only
        stripped (base58 is case-sensitive).

    Raises
    ------
    ValueError
        Empty chain or address, or an address on an :data:`EVM_CHAINS` chain that is not
        ``0x`` + 40 hex digits.
    """
    chain_n = chain.strip().lower()
    address_n = address.strip()
    if not chain_n or not address_n:
        raise ValueError(f"chain and address must be non-empty, got {chain!r}, {address!r}")
    if _EVM_ADDRESS.fullmatch(address_n):
        return chain_n, address_n.lower()
    if chain_n in EVM_CHAINS:
        raise ValueError(
            f"{address!r} is not an EVM address (0x + 40 hex) but chain is {chain_n!r}"
        )
    return chain_n, address_n


def build_aliases(entries: Iterable[tuple[str, str, str]]) -> Mapping[tuple[str, str], str]:
    """A read-only alias table from ``(asset key, chain, address)`` entries, normalised.

    Raises
    ------
    ValueError
        One ``(chain, address)`` given two different asset keys.
    """
    table: dict[tuple[str, str], str] = {}
    for key, chain, address in entries:
        pair = normalise_address(chain, address)
        if table.setdefault(pair, key) != key:
            raise ValueError(f"{pair} is aliased to both {table[pair]!r} and {key!r}")
    return MappingProxyType(table)


#: The curated default alias table, ``(chain, address) -> asset key`` in normal form.
DEFAULT_ALIASES: Mapping[tuple[str, str], str] = build_aliases(
    (key, chain, address) for key, chain, address, _source in _CURATED
)


def _evm_index(aliases: Mapping[tuple[str, str], str]) -> dict[str, set[str]]:
    index: dict[str, set[str]] = {}
    for (chain, address), key in aliases.items():
        if chain in EVM_CHAINS or _EVM_ADDRESS.fullmatch(address):
            index.setdefault(address, set()).add(key)
    return index


_DEFAULT_EVM_INDEX = _evm_index(DEFAULT_ALIASES)


def base_token_key(
    chain: str,
    address: str,
    *,
    aliases: Mapping[tuple[str, str], str] = DEFAULT_ALIASES,
) -> str:
    """The identity a token shares across chains and wrappers (rules in the module docstring).

    Parameters
    ----------
    chain
        DexScreener chain id (``"evm"`` for an EVM address on an unknown chain).
    address
        Contract address or mint, as written.
    aliases
        ``(chain, address) -> asset key`` in the normal form of :func:`normalise_address`
        (build one with :func:`build_aliases`); default :data:`DEFAULT_ALIASES`.

    Returns
    -------
    str
        The alias's asset key (``"usdc"``), else ``"<chain>:<address>"`` in normal form.
        Deterministic; independent of the case of ``chain`` and of an EVM address.

    Raises
    ------
    ValueError
        As :func:`normalise_address`.
    """
    pair = normalise_address(chain, address)
    key = aliases.get(pair)
    if key is not None:
        return key
    chain_n, address_n = pair
    if chain_n == UNKNOWN_EVM_CHAIN:
        index = _DEFAULT_EVM_INDEX if aliases is DEFAULT_ALIASES else _evm_index(aliases)
        keys = index.get(address_n, set())
        if len(keys) == 1:
            return next(iter(keys))
    return f"{chain_n}:{address_n}"
