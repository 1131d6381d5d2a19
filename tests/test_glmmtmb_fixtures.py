"""The glmmTMB reference fixtures (tests/fixtures/glmmtmb) are well formed and self-consistent.

No R needed: these read the committed JSON and CSV files. The consistency checks recompute what
a fixture says from its other fields (AIC from the objective, sigma from beta_disp, the family
parameter from psi), so a fixture written wrongly by tools/r/glmmtmb_fixtures.R fails here.
"""

from __future__ import annotations

import csv
import math

import pytest

from glmmtmb_fixtures import (
    FIXTURE_DIR,
    data_path,
    factor_levels,
    ids,
    load,
    load_all,
    parse_python,
    refused,
)

REL_TOL = 1e-9  # numbers recomputed from other fields of the same fixture (double rounding only)
MIN_PARITY_FITS = 40

FAMILIES_NEEDED = {
    "gaussian", "binomial", "betabinomial", "poisson", "genpois", "compois", "nbinom1",
    "nbinom2", "truncated_poisson", "truncated_genpois", "truncated_nbinom1",
    "truncated_nbinom2", "Gamma", "ziGamma", "beta", "tweedie", "t",
}
FAMILIES_NEWER = {"lognormal", "nbinom12"}
REQUIRED = ("id", "status", "python", "family", "link", "objective", "beta", "nobs", "data_file",
            "versions", "r_call", "convergence", "par")

ALL = [(kind, i) for kind in ("parity", "awkward", "newer", "newer_awkward") for i in ids(kind)]


def _close(a: float, b: float, rel: float = REL_TOL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=rel)


def test_corpus_size_and_families():
    parity = load_all("parity")
    assert len(parity) >= MIN_PARITY_FITS
    families = {fx["family"] for fx in parity.values()}
    assert families >= FAMILIES_NEEDED, sorted(FAMILIES_NEEDED - families)
    newer = {fx["family"] for fx in load_all("newer").values()}
    assert newer >= FAMILIES_NEWER, sorted(FAMILIES_NEWER - newer)


@pytest.mark.parametrize(("kind", "fixture_id"), ALL)
def test_fixture_well_formed(kind, fixture_id):
    fx = load(fixture_id, kind)
    missing = [k for k in REQUIRED if fx.get(k) is None]
    assert not missing, missing
    assert fx["id"] == fixture_id
    assert fx["status"] == ("parity" if kind in ("parity", "newer") else "awkward")
    assert math.isfinite(fx["objective"])
    assert fx["beta"] and all(math.isfinite(v) for v in fx["beta"].values())
    version = fx["versions"]["glmmTMB"]
    assert (version == "1.1.5") == (kind in ("parity", "awkward"))
    assert len(fx["par"]["names"]) == len(fx["par"]["values"])
    formula, opts = parse_python(fx["python"])
    assert "~" in formula
    assert opts["family"].startswith(fx["family"] + "(link=" + fx["link"] + ")")
    assert ("REML" in opts) == fx["REML"]
    if kind in ("parity", "newer"):
        conv = fx["convergence"]
        assert conv["code"] == 0 and conv["pdHess"] and not fx["warnings"]
        # the log-likelihood glmmTMB reports is minus half the objective
        assert _close(fx["logLik"], -fx["objective"] / 2)
        assert _close(fx["AIC"], fx["objective"] + 2 * fx["df"])
        assert _close(fx["BIC"], fx["objective"] + math.log(fx["nobs"]) * fx["df"])
        assert set(fx["se"]) == set(fx["beta"])
        if fx["vcov_full"] is not None:
            n = len(fx["vcov_full"]["names"])
            assert len(fx["vcov_full"]["matrix"]) == n
            assert all(len(row) == n for row in fx["vcov_full"]["matrix"])


@pytest.mark.parametrize(("kind", "fixture_id"), ALL)
def test_data_file_matches(kind, fixture_id):
    fx = load(fixture_id, kind)
    path = data_path(fx)
    assert path.is_file(), path
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        n_rows = sum(1 for _ in reader)
    assert n_rows >= fx["nobs"]
    for col, lev in factor_levels(str(path)).items():
        assert col in header
        assert len(lev) == len(set(lev))


@pytest.mark.parametrize("fixture_id", ids("parity") + ids("newer"))
def test_dispersion_conventions(fixture_id):
    """sigma() and predict(type="disp") follow from beta_disp as the conventions file says."""
    kind = "parity" if fixture_id in ids("parity") else "newer"
    fx = load(fixture_id, kind)
    fam, bd, sigma = fx["family"], fx["beta_disp"], fx["sigma"]
    if fam in ("binomial", "poisson", "truncated_poisson"):
        assert bd is None and sigma == 1
        return
    if len(bd) != 1:
        assert sigma is None  # glmmTMB's sigma() is NA for a dispersion model
        return
    (log_phi,) = bd.values()
    if fam == "gaussian":
        expected = math.exp(log_phi / 2) if kind == "parity" else math.exp(log_phi)
    elif fam in ("Gamma", "ziGamma"):
        expected = math.exp(-log_phi / 2)
    else:
        expected = math.exp(log_phi)
    assert _close(sigma, expected)
    disp = fx["predict_head"]["disp"]
    assert all(_close(d, expected) for d in disp)


@pytest.mark.parametrize("fixture_id", ids("parity") + ids("newer"))
def test_family_parameter_conventions(fixture_id):
    kind = "parity" if fixture_id in ids("parity") else "newer"
    fx = load(fixture_id, kind)
    pars = zip(fx["par"]["names"], fx["par"]["values"], strict=True)
    psi = [v for n, v in pars if n in ("psi", "thetaf")]
    if fx["family"] == "tweedie":
        (p,) = psi
        assert _close(fx["family_params"]["Tweedie power"], 1 + 1 / (1 + math.exp(-p)))
    elif fx["family"] == "t":
        (p,) = psi
        assert _close(fx["family_params"]["Student-t df"], math.exp(p))
    elif fx["family"] == "nbinom12":
        (p,) = psi
        assert _close(fx["family_extra"]["nbinom2_theta"], math.exp(p))
    else:
        assert psi == []


def test_same_model_two_ways():
    """Fixtures of one model written two ways agree (a check on the corpus itself)."""
    pairs = [("cbpp_binom", "cbpp_binom_prop_weights"), ("bb_cbind", "bb_prop_weights"),
             ("gauss_offset_arg", "gauss_offset_formula")]
    for a, b in pairs:
        fa, fb = load(a), load(b)
        assert math.isclose(fa["objective"], fb["objective"], rel_tol=1e-6), (a, b)
        for name, value in fa["beta"].items():
            assert math.isclose(value, fb["beta"][name], rel_tol=1e-4, abs_tol=1e-6), (a, b, name)


def test_refused_and_ids_unique():
    rows = refused()
    assert all({"id", "r_call", "error"} <= set(r) for r in rows)
    every = ids("parity") + ids("awkward")
    assert len(every) == len(set(every))  # an id is in one set only
    assert not set(r["id"] for r in rows) & set(every)
    assert (FIXTURE_DIR / "data" / "factor_levels.json").is_file()
