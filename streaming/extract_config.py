"""Typed, frozen configuration of token extraction: chains, hosts, labels, exclusions (pure).

The defaults describe the chains that call channels use (DexScreener chain ids are the chain
names). A custom EVM chain is one more :class:`ChainSpec` in ``ExtractionConfig.extra_chains``::

    ExtractionConfig(extra_chains=(
        ChainSpec(name="sonic", words=("sonic", "#s"), explorer_hosts=("sonicscan.org",),
                  slugs=("sonic",), chain_ids=(146,)),
    ))
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from streaming.extract_programs import SOLANA_PROGRAM_IDS

ChainName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]

#: Chain given to an EVM address when nothing in the message names its chain.
UNKNOWN_EVM_CHAIN = "evm"
SOLANA = "solana"


def _lower_all(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(" ".join(value.lower().split()) for value in values if value.strip())


class ChainSpec(BaseModel):
    """How one chain shows itself in a message.

    Attributes
    ----------
    name
        Chain name used in :class:`~streaming.extract.TokenMention` (DexScreener's chain id
        where DexScreener has one: ``ethereum``, ``bsc``, ``base``, ``solana`` ...).
    family
        ``"evm"`` (0x + 40-hex contracts) or ``"solana"`` (base58 32-byte mints).
    words
        Strong chain words and phrases (used for EVM chains: a base58 mint is Solana by its
        format alone), matched case-insensitively as whole words, bare or
        with a ``#``/``$`` prefix; an entry that starts with ``#`` or ``$`` matches only that
        form (``"#s"`` matches ``#S`` but not a lone ``S``).
    weak_words
        Words that only hint at the chain (``ETH`` is also the gas token of Base and
        Arbitrum): any strong word or any URL outweighs them.
    explorer_hosts
        Hosts (and their subdomains) whose links imply the chain: explorers and
        single-chain launchpads or DEXes (``bscscan.com``, ``pump.fun``).
    slugs
        Names of the chain in multi-chain aggregator paths and ``?chain=`` query values
        (``dexscreener.com/<slug>/...``, ``gmgn.ai/<slug>/token/...``).
    chain_ids
        Numeric ids in ``?chainId=`` query values (EIP-155 ids for EVM chains).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ChainName
    family: Literal["evm", "solana"] = "evm"
    words: tuple[str, ...] = ()
    weak_words: tuple[str, ...] = ()
    explorer_hosts: tuple[str, ...] = ()
    slugs: tuple[str, ...] = ()
    chain_ids: tuple[int, ...] = ()

    @field_validator("words", "weak_words", "explorer_hosts", "slugs")
    @classmethod
    def _normalise(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _lower_all(values)


DEFAULT_CHAINS: tuple[ChainSpec, ...] = (
    ChainSpec(
        name="ethereum",
        words=("ethereum", "#ethereum", "erc20", "erc-20", "eth chain", "eth mainnet", "on eth",
               "eth network", "ethereum mainnet",
               # other languages: zh, ru, ja, ko, es/pt
               "以太坊", "以太坊链", "эфириум", "эфириуме", "в эфире", "на эфире", "сеть ethereum",
               "イーサリアム", "이더리움", "red de ethereum", "rede ethereum", "en ethereum"),
        # Uniswap is on every chain, but with no other hint a Uniswap V2/V3 call is Ethereum's
        weak_words=("eth", "uniswap", "uniswap v2", "uniswap v3", "univ2", "univ3", "uni v2", "uni v3"),
        explorer_hosts=("etherscan.io", "etherscan.com", "eth.blockscout.com"),
        slugs=("ethereum", "eth", "ether"),
        chain_ids=(1,),
    ),
    ChainSpec(
        name="bsc",
        words=("bsc", "bnb chain", "bnbchain", "bnb smart chain", "binance smart chain", "bep20",
               "bep-20", "pancakeswap", "pancake swap", "four.meme", "fourmeme", "four meme",
               "币安智能链", "币安链", "bsc链", "bnb链", "сеть bsc", "сети bsc", "red bsc", "red de bsc",
               "rede bsc", "red bnb", "red de bnb"),
        weak_words=("bnb",),
        explorer_hosts=("bscscan.com", "bsctrace.com", "four.meme", "poocoin.app",
                        "pancakeswap.finance"),
        slugs=("bsc", "bnb", "binance-smart-chain", "bnb-chain", "bnbchain"),
        chain_ids=(56,),
    ),
    ChainSpec(
        name="base",
        words=("on base", "base chain", "basechain", "base network", "base mainnet", "#base",
               "base l2", "built on base", "aerodrome", "baseswap", "clanker",
               "red de base", "rede base", "rede da base", "na base", "сеть base", "сети base",
               "base链", "base 链", "base网络", "в base"),
        explorer_hosts=("basescan.org", "base.blockscout.com", "aerodrome.finance", "baseswap.fi",
                        "clanker.world"),
        slugs=("base",),
        chain_ids=(8453,),
    ),
    ChainSpec(
        name="arbitrum",
        words=("arbitrum", "arbitrum one", "#arb", "arb chain", "on arb"),
        weak_words=("arb",),
        explorer_hosts=("arbiscan.io",),
        slugs=("arbitrum", "arbitrum-one", "arbitrum_one", "arb"),
        chain_ids=(42161,),
    ),
    ChainSpec(
        name="polygon",
        words=("polygon", "polygon pos", "#matic", "#pol"),
        weak_words=("matic",),
        explorer_hosts=("polygonscan.com",),
        slugs=("polygon", "polygon_pos", "polygon-pos", "matic"),
        chain_ids=(137,),
    ),
    ChainSpec(
        name="optimism",
        words=("optimism", "op mainnet", "#op"),
        explorer_hosts=("optimistic.etherscan.io",),
        slugs=("optimism", "op"),
        chain_ids=(10,),
    ),
    ChainSpec(
        name="avalanche",
        words=("avalanche", "c-chain", "#avax"),
        weak_words=("avax",),
        explorer_hosts=("snowtrace.io", "snowscan.xyz", "avascan.info"),
        slugs=("avalanche", "avax", "avalanche-c-chain"),
        chain_ids=(43114,),
    ),
    ChainSpec(
        name="fantom",
        words=("fantom", "#ftm"),
        weak_words=("ftm",),
        explorer_hosts=("ftmscan.com",),
        slugs=("fantom", "ftm"),
        chain_ids=(250,),
    ),
    ChainSpec(
        name="linea",
        words=("linea",),
        explorer_hosts=("lineascan.build",),
        slugs=("linea",),
        chain_ids=(59144,),
    ),
    ChainSpec(
        name="blast",
        words=("#blast", "on blast", "blast l2", "blast chain"),
        explorer_hosts=("blastscan.io",),
        slugs=("blast",),
        chain_ids=(81457,),
    ),
    ChainSpec(
        name="zksync",
        words=("zksync", "zk sync", "zksync era"),
        explorer_hosts=("explorer.zksync.io", "era.zksync.network"),
        slugs=("zksync", "zksync-era"),
        chain_ids=(324,),
    ),
    ChainSpec(
        name=SOLANA,
        family="solana",
        # a base58 mint is Solana by format; these words only document the chain's DEXes
        words=("solana", "raydium", "jupiter", "pump.fun", "pumpfun", "pumpswap", "meteora",
               "moonshot", "letsbonk", "bonk.fun", "索拉纳", "солана"),
        explorer_hosts=("solscan.io", "explorer.solana.com", "solana.fm", "solanabeach.io",
                        "pump.fun", "rugcheck.xyz", "raydium.io", "jup.ag",
                        "photon-sol.tinyastro.io", "meteora.ag", "moonshot.money", "moon.it",
                        "letsbonk.fun", "bonk.fun"),
        slugs=("solana", "sol"),
        chain_ids=(1399811149,),
    ),
)

#: Multi-chain sites whose path or query names the chain (``dexscreener.com/base/0x...``).
DEFAULT_AGGREGATOR_HOSTS: tuple[str, ...] = (
    "dexscreener.com", "dextools.io", "geckoterminal.com", "gmgn.ai", "defined.fi", "ave.ai",
    "birdeye.so", "app.uniswap.org", "coinmarketcap.com", "dexview.com", "bullx.io",
    "photon.tinyastro.io",
)

#: Aggregators whose bare chart path ``/<chain>/<address>`` holds a *pair* (pool) address.
DEFAULT_PAIR_CHART_HOSTS: tuple[str, ...] = ("dexscreener.com", "defined.fi")

#: Hosts whose links are never about a token (video, images, code): addresses there are skipped.
DEFAULT_IGNORED_HOSTS: tuple[str, ...] = (
    "github.com", "gist.github.com", "youtube.com", "youtu.be", "imgur.com", "giphy.com",
    "tenor.com",
)

#: Words that, right before an address, say it is a token.
DEFAULT_TOKEN_LABELS: tuple[str, ...] = (
    "ca", "c/a", "contract", "contract address", "token address", "token", "mint", "address",
    "addy", "new ca", "mint address", "token ca",
    # es, pt, ru, tr, fr, de, vi
    "contrato", "dirección del contrato", "direccion del contrato", "endereço do contrato",
    "contrato do token", "контракт", "адрес контракта", "адрес токена", "токен", "kontrat",
    "sözleşme", "contrat", "adresse du contrat", "vertrag", "hợp đồng",
    # CJK labels match as the end of the word before the address
    "合约", "合约地址", "代币地址", "コントラクト", "컨트랙트",
)

#: Words that, right before an address, say it is a wallet (deployer, dev ...), not a token.
DEFAULT_WALLET_LABELS: tuple[str, ...] = (
    "deployer", "dev", "dev wallet", "developer", "creator", "owner", "wallet", "whale",
    "insider", "sniper", "treasury", "team wallet", "marketing wallet", "buyer", "seller",
    "sender", "recipient", "fee wallet",
    "dev address", "deployer address", "creator address", "owner address", "wallet address",
    "holder", "top holder", "holder address", "presale", "presale wallet", "presale address",
    "deposit address", "receiving address", "receiving wallet", "payment address", "donations",
    "donation address", "smart wallet", "smart money", "kol wallet", "tracked wallet", "maker",
    "trader", "buyer wallet", "dev's wallet", "whale wallet", "insider wallet",
    # es, pt, ru, tr, fr, de, vi
    "billetera", "billetera del dev", "wallet del dev", "cartera", "monedero", "carteira",
    "carteira do dev", "кошелек", "кошелёк", "кошелек разработчика", "кошелёк разработчика",
    "кошелек дева", "кошелёк дева", "холдер", "держатель", "cüzdan", "geliştirici cüzdanı",
    "portefeuille", "portefeuille du dev", "entwickler wallet", "ví", "ví dev",
    "钱包", "钱包地址", "开发者", "开发者钱包", "持有人", "庄家", "ウォレット", "지갑",
)

#: Solana programs and sysvars: valid 32-byte keys that are never a call (the
#: runtime's programs, the SPL token family, Metaplex, OpenBook/Serum/Phoenix, Raydium AMM v4 /
#: CLMM / CPMM / LaunchLab, Meteora DLMM / DAMM / DBC, Moonshot, pump.fun and PumpSwap, Jupiter,
#: Orca, and wrapped SOL, the quote side of every SOL pair): the documented, sourced table of
#: :mod:`streaming.extract_programs`.
DEFAULT_EXCLUDED_SOLANA: tuple[str, ...] = SOLANA_PROGRAM_IDS

#: EVM addresses that are valid but never a token call: the zero address, the ``dEaD`` burn
#: address, the ``0xEeee...`` native-coin placeholder, Permit2, and the Uniswap V2/V3
#: factories and routers (V2 Router02, V3 SwapRouter, SwapRouter02, Universal Router) and
#: the PancakeSwap V2 router, which appear in "approve"/"swap via" messages.
DEFAULT_EXCLUDED_EVM: tuple[str, ...] = (
    "0x0000000000000000000000000000000000000000",
    "0x000000000000000000000000000000000000dEaD",
    "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE",
    "0x000000000022D473030F116dDEE9F6B43aC78BA3",
    "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f",
    "0x1F98431c8aD98523631AE4a59f267346ea31F984",
    "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D",
    "0xE592427A0AEce92De3Edee1F18E0157C05861564",
    "0x68b3465833fb72A70ecDF485E0e4C7bD8665Fc45",
    "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD",
    "0x10ED43C718714eb63d5aA57B78B54704E256024E",
)


class ExtractionConfig(BaseModel):
    """Parameters of :func:`~streaming.extract.extract_tokens` (frozen, hashable).

    Attributes
    ----------
    chains
        The built-in chain table; replace it to drop chains.
    extra_chains
        Custom chains, added after ``chains``; on a shared host, slug or word they win.
    default_evm_chain
        Chain of an EVM address whose message names no chain; ``None`` gives
        :data:`UNKNOWN_EVM_CHAIN` (``"evm"``): the chain is decided downstream (DexScreener).
    aggregator_hosts, ignored_hosts, pair_chart_hosts
        See :data:`DEFAULT_AGGREGATOR_HOSTS`, :data:`DEFAULT_IGNORED_HOSTS` and
        :data:`DEFAULT_PAIR_CHART_HOSTS`.
    token_labels, wallet_labels
        Labels right before an address (``CA:``, ``Deployer:``); see the defaults.
    excluded_solana, excluded_evm
        Valid addresses that are never reported (EVM compared case-insensitively).
    min_confidence
        Mentions below this confidence are dropped (0 keeps every valid address).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    chains: tuple[ChainSpec, ...] = DEFAULT_CHAINS
    extra_chains: tuple[ChainSpec, ...] = ()
    default_evm_chain: ChainName | None = None
    aggregator_hosts: tuple[str, ...] = DEFAULT_AGGREGATOR_HOSTS
    ignored_hosts: tuple[str, ...] = DEFAULT_IGNORED_HOSTS
    pair_chart_hosts: tuple[str, ...] = DEFAULT_PAIR_CHART_HOSTS
    token_labels: tuple[str, ...] = DEFAULT_TOKEN_LABELS
    wallet_labels: tuple[str, ...] = DEFAULT_WALLET_LABELS
    excluded_solana: tuple[str, ...] = DEFAULT_EXCLUDED_SOLANA
    excluded_evm: tuple[str, ...] = DEFAULT_EXCLUDED_EVM
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0

    @field_validator("aggregator_hosts", "ignored_hosts", "pair_chart_hosts", "token_labels",
                     "wallet_labels")
    @classmethod
    def _normalise(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return _lower_all(values)

    @property
    def all_chains(self) -> tuple[ChainSpec, ...]:
        """``chains`` then ``extra_chains``."""
        return self.chains + self.extra_chains


DEFAULT_CONFIG = ExtractionConfig()
