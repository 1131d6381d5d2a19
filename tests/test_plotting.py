"""mm.plotting: every plot renders to PNG with the Agg backend, has the axes and artists it
should, draws the numbers it claims (interval ends, bands), and stays out of pyplot (no
double display in notebooks, no open figures piling up)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from scipy import stats

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import mixedmodels as mm  # noqa: E402
from mixedmodels import plotting  # noqa: E402


def render(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    return data


@pytest.fixture(scope="module")
def sleep_fit():
    sleep = mm.datasets.load("sleepstudy")
    return mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def cbpp_fit():
    return mm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    mm.datasets.load("cbpp"), family="binomial")


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plot registered its figure with pyplot"


def test_caterpillar(sleep_fit):
    fig = plotting.caterpillar(sleep_fit, level=0.9)
    render(fig)
    axes = [a for a in fig.axes if a.get_visible()]
    assert len(axes) == 2 and axes[0].get_title() == "Subject: Intercept"
    re = sleep_fit.ranef(cond_var=True)["Subject"]
    z = stats.norm.ppf(0.95)
    segs = axes[0].collections[0].get_segments()       # the interval bars, sorted levels
    ordered = re.sort_values("Intercept")
    np.testing.assert_allclose([s[1][0] - s[0][0] for s in segs],
                               2 * z * ordered["Intercept_condsd"].to_numpy())
    assert [t.get_text() for t in axes[0].get_yticklabels()] == list(ordered.index)


def test_caterpillar_glmmtmb_zi_component():
    sal = mm.datasets.load("Salamanders")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = mm.glmmtmb("count ~ mined + (1 | site)", sal, ziformula="~1 + (1 | site)",
                       family="poisson")
    fig = plotting.caterpillar(m, component="zi")
    render(fig)
    assert fig.axes[0].get_title() == "site: Intercept"


def test_residual_panel(cbpp_fit):
    fig = plotting.residual_panel(cbpp_fit)
    render(fig)
    titles = [a.get_title() for a in fig.axes]
    assert titles == ["Residuals vs fitted", "Normal QQ", "Scale-location"]
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets[:, 1], cbpp_fit.residuals("pearson").to_numpy())


def test_simulated_residual_panel(cbpp_fit):
    res = mm.simulate_residuals(cbpp_fit, n_sim=80, seed=1)
    fig = res.plot()
    render(fig)
    qq, vs = fig.axes
    texts = [t.get_text() for t in qq.texts]
    assert any(t.startswith("uniformity: p =") for t in texts)
    assert any(t.startswith("dispersion") for t in texts)
    assert len(vs.lines) == 6                     # 3 quantile lines + 3 curves
    np.testing.assert_allclose(np.sort(qq.collections[0].get_offsets()[:, 1]),
                               np.sort(res.scaled))


def test_profile_plot_marks_the_interval(sleep_fit):
    prof = sleep_fit.profile(which=["sigma", "Days"])
    fig = prof.plot(level=0.9)
    render(fig)
    ci = prof.confint(0.9)
    ax = next(a for a in fig.axes if a.get_visible())
    vlines = sorted(line.get_xdata()[0] for line in ax.lines
                    if len(set(line.get_xdata())) == 1)
    np.testing.assert_allclose(vlines, ci.loc["sigma", ["lower", "upper"]].to_numpy())
    hlines = sorted({line.get_ydata()[0] for line in ax.lines
                     if len(set(line.get_ydata())) == 1})
    np.testing.assert_allclose(hlines, [-stats.norm.ppf(0.95), 0, stats.norm.ppf(0.95)])
    with pytest.raises(KeyError, match="no profile"):
        prof.plot(params=["nope"])


def test_effect_plot_band_is_the_confidence_interval(cbpp_fit, sleep_fit):
    fig = plotting.effect_plot(sleep_fit, "Days", data=True)
    render(fig)
    ax = fig.axes[0]
    grid = plotting.effect_grid(sleep_fit, "Days")
    pred = sleep_fit.predict(grid, re_form="~0", interval="confidence")
    np.testing.assert_allclose(ax.lines[0].get_ydata(), pred["fit"])
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(pred["lower"].min())
    assert band.max() == pytest.approx(pred["upper"].max())
    fig = plotting.effect_plot(cbpp_fit, "period")          # categorical: error bars
    render(fig)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["1", "2", "3", "4"]


def test_plots_into_given_axes(sleep_fit):
    from matplotlib.figure import Figure

    fig = Figure()
    axes = fig.subplots(1, 3)
    assert plotting.residual_panel(sleep_fit, ax=axes) is fig
    with pytest.raises(ValueError, match="needs 3 axes"):
        plotting.residual_panel(sleep_fit, ax=axes[:2])
    with pytest.raises(KeyError, match="not a column"):
        plotting.effect_plot(sleep_fit, "age")


def test_residuals_is_the_residual_panel(sleep_fit):
    fig = plotting.residuals(sleep_fit)
    render(fig)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets()[:, 1],
                               sleep_fit.residuals("pearson", scaled=True).to_numpy())


def test_allfit_plot_draws_differences_from_the_best_fit(sleep_fit):
    import pandas as pd

    rows = {}
    for name in ("bobyqa", "nelder_mead", "lbfgsb"):
        f = sleep_fit.update(optimizer=name)
        rows[name] = {"objective": f.objective,
                      **{f"theta[{i}]": t for i, t in enumerate(f.theta)},
                      **{f"beta[{k}]": v for k, v in f.fixef.items()}, "converged": True}
    rows["broken"] = {"objective": np.nan, "converged": False}
    table = pd.DataFrame(rows).T
    fig = plotting.allfit_plot(table)
    render(fig)
    titles = [a.get_title() for a in fig.axes if a.get_visible()]
    assert titles == ["objective", "theta[0]", "theta[1]", "theta[2]", "beta[Intercept]",
                      "beta[Days]"]
    best = pd.to_numeric(table["objective"]).idxmin()
    ax = fig.axes[1]
    ok = ax.collections[0].get_offsets()
    expected = (pd.to_numeric(table["theta[0]"]) - table.loc[best, "theta[0]"])[:3]
    np.testing.assert_allclose(ok[:, 0], expected.to_numpy(dtype=float))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == \
        [*table.index[:3], "broken (failed)"]
    one = plotting.allfit_plot(table, params=["beta[Days]"])
    assert len([a for a in one.axes if a.get_visible()]) == 1
    with pytest.raises(KeyError, match="no allfit column"):
        plotting.allfit_plot(table, params=["gamma"])
    with pytest.raises(TypeError, match="needs the result of mm"):
        plotting.allfit_plot(sleep_fit)
    with pytest.raises(ValueError, match="no optimizer produced a fit"):
        plotting.allfit_plot(table.loc[["broken"]])


def test_allfit_result_plot(sleep_fit):
    res = mm.allfit(sleep_fit, optimizers=["bobyqa", "nelder_mead"])
    fig = res.plot()
    render(fig)
    titles = [a.get_title() for a in fig.axes if a.get_visible()]
    assert titles[0] == "objective" and "sigma" in titles
    assert len(titles) == 1 + len(sleep_fit.theta) + len(sleep_fit.fixef) + 1
    ax = fig.axes[titles.index("sigma")]
    best = res.best()
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0],
                               res.table["sigma"] - res.table.loc[best, "sigma"])
