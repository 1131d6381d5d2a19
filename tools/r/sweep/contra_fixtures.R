# Fixtures of lane contra: glmer Bernoulli fits with a random slope whose default
# (gradient) fit stopped at a saddle -- the slope's Cholesky diagonal at zero, stationary
# because the deviance is even in it -- below lme4's optimum (notes in
# benchmarks/results/contra_notes.md), written to tests/fixtures/sweep/contra_*.json.
# Run from the repository root:  Rscript tools/r/sweep/contra_fixtures.R
# R 4.2, lme4 1.1-31.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/sweep"
source("tools/r/fixture_io.R")

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
contra <- load_data("Contraception")
form <- use ~ age + urban + (age | district)
# lme4's BOBYQA refitted tightly: the optimum (lme4's default nloptwrap stops at the same
# saddle as our old default on the full data, recorded for reference)
tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(rhoend = 1e-9, maxfun = 1e5))

fit_of <- function(m) list(
  logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
  beta = unname(fixef(m)), beta_names = names(fixef(m)), isSingular = isSingular(m))

cases <- list(full = NA, drop16 = "16", drop20 = "20")
out <- list(versions = versions, formula = deparse(form), family = "binomial")
for (nm in names(cases)) {
  d <- contra
  if (!is.na(cases[[nm]])) d <- droplevels(d[d$district != cases[[nm]], ])
  m <- suppressMessages(glmer(form, d, family = binomial, control = tight))
  m0 <- suppressMessages(glmer(form, d, family = binomial))
  out[[nm]] <- list(drop_district = cases[[nm]], nobs = nobs(m), tight = fit_of(m),
                    default = fit_of(m0))
}
write_fixture(out, "contra_saddle.json")
