"""Parameters of the price processes the Monte Carlo simulates (frozen, validated).

Units: every rate is *per unit of time* and ``dt`` (in the simulators) is the step length in the
same unit. Estimated from 1h candles with ``dt=1``, the unit is one hour: ``mu=1e-4`` is a drift
of 0.01 % per hour and 720 steps are 30 days.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat


class GBMParams(BaseModel):
    """Geometric Brownian motion ``dS = mu S dt + sigma S dW``.

    ``mu`` is the arithmetic drift (``E[S_t] = S_0 exp(mu t)``); the log-price drifts at
    ``mu - sigma**2 / 2``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mu: float = Field(allow_inf_nan=False)
    sigma: float = Field(ge=0.0, allow_inf_nan=False)

    def scaled_volatility(self, multiplier: PositiveFloat) -> GBMParams:
        """The same drift with ``sigma`` multiplied (a volatility stress)."""
        return self.model_copy(update={"sigma": self.sigma * multiplier})


class MertonParams(BaseModel):
    """Merton jump diffusion: GBM plus compound-Poisson log-normal jumps.

    Jumps arrive at ``jump_intensity`` per unit of time; each multiplies the price by ``exp(Y)``
    with ``Y ~ N(jump_mean, jump_std**2)``. The drift is compensated so that
    ``E[S_t] = S_0 exp(mu t)`` whatever the jumps are.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mu: float = Field(allow_inf_nan=False)
    sigma: float = Field(ge=0.0, allow_inf_nan=False)
    jump_intensity: float = Field(ge=0.0, allow_inf_nan=False)
    jump_mean: float = Field(allow_inf_nan=False)
    jump_std: float = Field(ge=0.0, allow_inf_nan=False)

    @property
    def jump_compensator(self) -> float:
        """``kappa = E[exp(Y)] - 1``: the mean relative price change of one jump."""
        return math.expm1(self.jump_mean + 0.5 * self.jump_std**2)

    def scaled_volatility(self, multiplier: PositiveFloat) -> MertonParams:
        """Diffusion ``sigma`` and ``jump_std`` multiplied (a volatility stress); drift, jump
        intensity and mean jump unchanged."""
        return self.model_copy(update={"sigma": self.sigma * multiplier,
                                       "jump_std": self.jump_std * multiplier})
