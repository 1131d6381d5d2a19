# Profile-likelihood intervals of glmmTMB 1.1.5 for the covariance-structure parameters
# (tests/test_structures_parity.py::test_structure_profile_intervals):
#   Rscript tools/r/structures_profile_fixtures.R   (from the repository root)
# glmmTMB profiles its internal theta ("theta_" rows: log sd, and its correlation
# parameters on their unconstrained scale); the test maps those ends to the natural scale.
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
long <- read.csv("tests/fixtures/structures/data/long.csv", stringsAsFactors = FALSE)
long$ftime <- factor(long$time)
models <- list(
  ar1_pois = list(formula = yc ~ x + ar1(0 + ftime | subject), family = poisson()),
  diag_pois = list(formula = yc ~ x + diag(1 + x | subject), family = poisson())
)
out <- lapply(models, function(m) {
  fit <- glmmTMB(m$formula, data = long, family = m$family)
  t0 <- proc.time()[["user.self"]]
  # one theta at a time: glmmTMB's spline through the profile fails (NaN) for some
  th <- which(names(fit$fit$par) == "theta")
  ci <- t(sapply(th, function(k) tryCatch(confint(fit, method = "profile", parm = k)[1, 1:2],
                                          error = function(e) c(NA, NA))))
  rownames(ci) <- paste0("theta_", seq_along(th))
  list(formula = deparse(m$formula), family = m$family$family,
       objective = -2 * as.numeric(logLik(fit)),
       theta = unname(fit$fit$par[names(fit$fit$par) == "theta"]),
       rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       seconds = proc.time()[["user.self"]] - t0,
       glmmTMB = as.character(packageVersion("glmmTMB")))
})
dir.create("tests/fixtures/structures_profile", showWarnings = FALSE)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/structures_profile/profiles.json")
