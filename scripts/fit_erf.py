"""Fit the rational approximation of erf in cpp/src/ops/cpu/vector_math.h (erf_f32).

erf(a) ~ a * P(a^2) / Q(a^2) on [0, A], Q(0) = 1, with A where erf rounds to 1 in float32;
the coefficients minimise the largest absolute error over a dense grid by the differential
correction algorithm (each step a linear program: |a P - erf Q| <= e * Q_previous). Prints
the error in exact arithmetic and when evaluated as the C++ does (float32, fused
multiply-adds), and the coefficients to paste.

    .venv/bin/python scripts/fit_erf.py [--degrees 5 5] [--limit 3.92]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import linprog
from scipy.special import erf


def fit(limit: float, p_degree: int, q_degree: int, steps: int = 30):
    grid = np.unique(
        np.concatenate(
            [
                np.linspace(0.0, limit, 4000)[1:],
                limit * (1.0 - np.cos(np.linspace(0.0, np.pi / 2, 3000)))[1:],
            ]
        )
    )
    target = erf(grid)
    t = grid * grid
    terms = np.concatenate(
        [
            np.stack([grid * t**i for i in range(p_degree + 1)], 1),
            np.stack([-target * t**i for i in range(1, q_degree + 1)], 1),
        ],
        1,
    )
    unknowns = terms.shape[1]
    cost = np.zeros(unknowns + 1)
    cost[-1] = 1.0
    q_previous = np.ones_like(t)
    best = None
    for _ in range(steps):
        bound = -q_previous[:, None]
        constraints = np.concatenate(
            [np.concatenate([terms, bound], 1), np.concatenate([-terms, bound], 1)]
        )
        result = linprog(
            cost,
            A_ub=constraints,
            b_ub=np.concatenate([target, -target]),
            bounds=[(None, None)] * unknowns + [(0.0, None)],
            method="highs",
        )
        p = result.x[: p_degree + 1]
        q = np.concatenate([[1.0], result.x[p_degree + 1 : unknowns]])
        q_values = np.polyval(q[::-1], t)
        if np.any(q_values <= 0.0):
            break
        error = np.max(np.abs(grid * np.polyval(p[::-1], t) / q_values - target))
        if best is None or error < best[0]:
            best = (error, p, q)
        q_previous = q_values
    return best


def horner_f32(coefficients: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Horner's rule as the C++ runs it: float32 coefficients, one rounding per fused step."""
    c = coefficients.astype(np.float32)
    value = np.full_like(t, c[-1])
    for coefficient in c[-2::-1]:
        value = (value.astype(np.float64) * t + np.float64(coefficient)).astype(np.float32)
    return value


def float32_error(p: np.ndarray, q: np.ndarray, limit: float) -> float:
    x = np.linspace(-12.0, 12.0, 2_000_001).astype(np.float32)
    a = np.minimum(np.abs(x), np.float32(limit))
    t = (a * a).astype(np.float32)
    y = (a * horner_f32(p, t)).astype(np.float32) / horner_f32(q, t)
    y = np.where(x < 0, -y, y)
    return float(np.max(np.abs(y.astype(np.float64) - erf(x.astype(np.float64)))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degrees", type=int, nargs=2, default=(5, 5), metavar=("P", "Q"))
    parser.add_argument("--limit", type=float, default=3.92)
    args = parser.parse_args()
    error, p, q = fit(args.limit, *args.degrees)
    in_float32 = float32_error(p, q, args.limit)
    print(f"max |error| exact arithmetic {error:.3g}, float32 {in_float32:.3g}")
    for name, coefficients in (("P", p), ("Q", q)):
        literals = ", ".join(f"{float(np.float32(c)):.9g}f" for c in coefficients)
        print(f"{name} (constant term first): {literals}")


if __name__ == "__main__":
    main()
