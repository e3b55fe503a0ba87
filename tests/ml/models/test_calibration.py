"""Calibration metrics: known answers on hand-made probabilities; temperature scaling fitted on
held-out rows improves an overconfident model on later rows."""

from __future__ import annotations

import numpy as np
import pytest

from ml.models.calibration import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    log_loss,
    reliability_table,
)


def test_brier_known_answers() -> None:
    assert brier_score(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([0, 2])) == pytest.approx(1.0)
    assert brier_score(np.array([[0.5, 0.25, 0.25]]), np.array([0])) == pytest.approx(0.375)
    assert brier_score(np.full((4, 3), 1 / 3), np.array([0, 1, 2, 0])) == pytest.approx(2 / 3)


def test_ece_and_reliability_known_answer() -> None:
    # Four rows at confidence 0.85 (bin 8 of 10), three right: gap 0.10.
    # Two rows at confidence 0.55 (bin 5), both right: gap 0.45.
    proba = np.array([[0.85, 0.10, 0.05]] * 4 + [[0.25, 0.55, 0.20]] * 2)
    y = np.array([0, 0, 0, 2, 1, 1])
    assert expected_calibration_error(proba, y, n_bins=10) == pytest.approx((4 * 0.10 + 2 * 0.45) / 6)
    table = reliability_table(proba, y, n_bins=10)
    assert table.height == 10
    assert table["count"].to_list() == [0, 0, 0, 0, 0, 2, 0, 0, 4, 0]
    bin8 = table.row(8, named=True)
    assert (bin8["lower"], bin8["upper"]) == pytest.approx((0.8, 0.9))
    assert bin8["mean_confidence"] == pytest.approx(0.85)
    assert bin8["accuracy"] == pytest.approx(0.75)
    assert table.row(0, named=True)["accuracy"] is None


def test_perfectly_calibrated_bins_have_zero_ece() -> None:
    proba = np.array([[0.75, 0.25, 0.0]] * 4)
    assert expected_calibration_error(proba, np.array([0, 0, 0, 1])) == pytest.approx(0.0)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        brier_score(np.array([[0.5, 0.2, 0.2]]), np.array([0]))
    with pytest.raises(ValueError, match="labels"):
        brier_score(np.array([[0.5, 0.25, 0.25]]), np.array([3]))
    with pytest.raises(ValueError, match="shape"):
        expected_calibration_error(np.array([[0.5, 0.25, 0.25]]), np.array([0, 1]))


def test_temperature_one_is_identity_and_keeps_the_top_class() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    np.testing.assert_allclose(apply_temperature(proba, 1.0), proba)
    softened = apply_temperature(proba, 3.0)
    np.testing.assert_allclose(softened.sum(axis=1), 1.0)
    assert (softened.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert (softened.max(axis=1) < proba.max(axis=1)).all()


def _overconfident_model(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True class probabilities from random logits; the model reports them sharpened (logits x 3)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(n, 3))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in true])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)
    return sharp, y


def test_temperature_fitted_on_held_out_rows_improves_later_rows() -> None:
    proba, y = _overconfident_model(4000, seed=11)
    held_out, later = slice(0, 2000), slice(2000, 4000)
    scaler = fit_temperature(proba[held_out], y[held_out])
    assert scaler.held_out_rows == 2000
    assert scaler.temperature == pytest.approx(3.0, rel=0.15)  # undoes the planted sharpening
    calibrated = scaler.apply(proba[later])
    assert brier_score(calibrated, y[later]) < brier_score(proba[later], y[later]) - 0.02
    assert expected_calibration_error(calibrated, y[later]) < 0.5 * expected_calibration_error(proba[later], y[later])
    assert log_loss(calibrated, y[later]) < log_loss(proba[later], y[later])


def test_a_calibrated_model_keeps_temperature_near_one() -> None:
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 1.5, size=(3000, 3))
    true = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in true])
    assert fit_temperature(true, y).temperature == pytest.approx(1.0, abs=0.1)
