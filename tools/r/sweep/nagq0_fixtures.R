# lme4 nAGQ = 0 fit of grouseticks (Poisson, two scalar terms) for tests/test_sweep_nagq0.py:
# the criterion whose gradient search used to fail at the optimum (rounding) and fall back
# to BOBYQA. Writes tests/fixtures/sweep/nagq0_grouseticks.json.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
data(grouseticks, package = "lme4")
m <- glmer(TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION), grouseticks,
           family = poisson, nAGQ = 0)
out <- list(deviance = unname(deviance(m)), objective = -2 * as.numeric(logLik(m)),
            theta = unname(getME(m, "theta")), beta = unname(fixef(m)),
            beta_names = names(fixef(m)), lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/sweep/nagq0_grouseticks.json")
