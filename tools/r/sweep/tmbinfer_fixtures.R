# Fixtures of lane tmbinfer (tests/test_sweep_tmbinfer.py), glmmTMB 1.1.5:
#   Rscript tools/r/sweep/tmbinfer_fixtures.R   (from the repository root)
# vcov(full = TRUE) (theta on glmmTMB's log-sd / correlation-parameter scale), the Wald
# confint rows (Std.Dev rows = exp of the log-sd interval), ranef(condVar = TRUE) (sdreport's
# conditional variances, including the parameters' uncertainty) for a scalar, a 2 x 2
# unstructured, a diag and an ar1 term.
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
r6 <- function(x) round(x, 6)
set.seed(4242)
n_g <- 12; per <- 6; n <- n_g * per
gi <- rep(seq_len(n_g), each = per)
d <- data.frame(g = factor(sprintf("g%02d", gi)), x = r6(rnorm(n)), z = r6(runif(n, -1, 1)))
d$tt <- factor(sprintf("t%d", rep(seq_len(per), n_g)))
b0 <- rnorm(n_g, 0, 0.6)[gi]; b1 <- rnorm(n_g, 0, 0.4)[gi]
eta <- 0.4 + 0.3 * d$x + b0 + b1 * d$x
d$y_pois <- rpois(n, exp(eta))
d$trials <- sample(5:12, n, TRUE)
d$succ <- rbinom(n, d$trials, plogis(eta - 0.4))
pr <- plogis(eta - 0.4)
d$y_beta <- r6(pmin(pmax(rbeta(n, pr * 8 * exp(0.4 * d$z), (1 - pr) * 8 * exp(0.4 * d$z)), 1e-4), 1 - 1e-4))
d$y_ar <- rpois(n, exp(eta - b1 * d$x + unlist(lapply(seq_len(n_g), function(i)
  as.numeric(arima.sim(list(ar = 0.6), per)) * 0.5))))
models <- list(
  pois_ri = list(formula = "y_pois ~ x + (1 | g)", family = poisson(), disp = "~1", fam = "poisson"),
  binom_us = list(formula = "cbind(succ, trials - succ) ~ x + (x | g)", family = binomial(),
                  disp = "~1", fam = "binomial"),
  beta_diag = list(formula = "y_beta ~ x + diag(1 + x | g)", family = beta_family(), disp = "~z",
                   fam = "beta"),
  pois_ar1 = list(formula = "y_ar ~ x + ar1(0 + tt | g)", family = poisson(), disp = "~1",
                  fam = "poisson"))
out <- lapply(models, function(m) {
  fit <- glmmTMB(as.formula(m$formula), data = d, family = m$family,
                 dispformula = as.formula(m$disp))
  vf <- vcov(fit, full = TRUE)
  ci <- confint(fit, method = "wald")
  fr <- ranef(fit, condVar = TRUE)$cond$g
  cv <- attr(fr, "condVar")
  list(formula = m$formula, family = m$fam, disp = m$disp, pdHess = fit$sdr$pdHess,
       convergence = fit$fit$convergence, loglik = as.numeric(logLik(fit)),
       vcov_full_names = colnames(vf), vcov_full = unname(vf),
       wald_rows = rownames(ci), wald_lower = unname(ci[, 1]), wald_upper = unname(ci[, 2]),
       ranef = unname(as.matrix(fr)),
       condvar_diag = t(apply(cv, 3, function(a) diag(as.matrix(a)))))
})
dir.create("tests/fixtures/sweep", showWarnings = FALSE, recursive = TRUE)
writeLines(toJSON(list(data = d, models = out, glmmTMB = as.character(packageVersion("glmmTMB"))),
                  digits = NA, auto_unbox = TRUE, pretty = FALSE, dataframe = "columns"),
           "tests/fixtures/sweep/tmbinfer_inference.json")
