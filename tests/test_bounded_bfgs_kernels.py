"""The projected BFGS's unrolled float kernels equal the loops they replace, bit for bit."""

from __future__ import annotations

import math
import random

import pytest

from mixedmodels.optim.bounded_bfgs import _dot, _free_max, dot_of_size

SPECIALS = [0.0, -0.0, 1e-300, -1e300, 1e308, math.inf, -math.inf, math.nan]


def _draw(rng: random.Random, k: int) -> list[float]:
    return [rng.choice(SPECIALS) if rng.random() < 0.2 else rng.uniform(-1e3, 1e3)
            for _ in range(k)]


def _same(a: float, b: float) -> bool:
    """Equal as floats, a zero's sign and NaN included."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7])
def test_unrolled_dot_is_the_loop(k):
    rng = random.Random(k)
    dot = dot_of_size(k)
    for _ in range(2000):
        a, b = _draw(rng, k), _draw(rng, k)
        assert _same(dot(a, b), _dot(a, b))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_unrolled_dot_refuses_other_lengths(k):
    with pytest.raises(ValueError):
        dot_of_size(k)([1.0] * k, [1.0] * (k + 1))


def test_free_max_is_the_generator_max():
    rng = random.Random(0)
    for _ in range(5000):
        k = rng.randint(0, 5)
        g = _draw(rng, k)
        active = [rng.random() < 0.3 for _ in range(k)]
        want = max((abs(g[i]) for i in range(k) if not active[i]), default=0.0)
        assert _same(_free_max(g, active), want)
