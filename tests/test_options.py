"""mm.options(coef_names="r"): R's coefficient names everywhere results label fixed
effects, in this thread only."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import mixedmodels as mm

R_NAMES = ["(Intercept)", "period2", "period3", "period4"]


@pytest.fixture(scope="module")
def fits():
    cbpp = mm.datasets.load("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (mm.glmer(f, cbpp, family="binomial"),
                mm.glmmtmb(f, cbpp, family="binomial"),
                mm.lmer("incidence ~ period + (1 | herd)", cbpp))


def test_r_names_in_every_table(fits):
    for m in fits:
        assert list(m.fixef.index)[1] == "period[T.2]"
        with mm.options(coef_names="r"):
            assert list(m.fixef.index) == R_NAMES
            assert list(m.vcov.index) == R_NAMES and list(m.se.index) == R_NAMES
            assert "period2" in str(m.summary()) and "period[T.2]" not in str(m.summary())
            assert list(m.coef_table().index) == R_NAMES
        assert list(m.fixef.index)[1] == "period[T.2]"      # back after the block


def test_options_are_per_thread(fits):
    m = fits[0]
    seen = {}

    def other():
        seen["names"] = list(m.fixef.index)

    with mm.options(coef_names="r"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert list(m.fixef.index) == R_NAMES
    assert seen["names"][0] == "Intercept"


def test_bad_options():
    with pytest.raises(ValueError, match="unknown option"):
        mm.set_options(names="r")
    with pytest.raises(ValueError, match="coef_names"):
        mm.set_options(coef_names="R style")
    assert mm.get_options()["coef_names"] == "python"


def test_r_names_keep_the_values(fits):
    """Only the labels change: the covariances (looked up by the layout's own names) and the
    tables built on them are the same numbers, also for a fit made under the option."""
    for m in fits:
        se, vcov = m.se.to_numpy(), m.vcov.to_numpy()
        with mm.options(coef_names="r"):
            np.testing.assert_array_equal(m.se.to_numpy(), se)
            np.testing.assert_array_equal(m.vcov.to_numpy(), vcov)
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings(), mm.options(coef_names="r"):
        warnings.simplefilter("ignore")
        z = mm.glmmtmb("count ~ mined + (1 | site)", sal, family="poisson",
                       ziformula="~ mined")
        zi_se = z.coef_table("zi")["Std. Error"].to_numpy()
        chisq = z.anova_table(component="zi")["Chisq"].to_numpy()
    assert np.all(np.isfinite(zi_se)) and np.all(np.isfinite(chisq))
    np.testing.assert_allclose(chisq, (z.fixef_zi.to_numpy()[1] / zi_se[1]) ** 2, rtol=1e-10)
