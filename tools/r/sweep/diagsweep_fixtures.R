# Fixtures of lane diagsweep (tools/r/sweep/diagsweep.R found the problems; notes in
# benchmarks/results/diagsweep_notes.md), written to tests/fixtures/sweep/diagsweep_*.json.
# Run from the repository root:  Rscript tools/r/sweep/diagsweep_fixtures.R
# R 4.2, lme4 1.1-31, glmmTMB 1.1.5, performance 0.10.2.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/sweep"
source("tools/r/fixture_io.R")

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))

# lmer's residual types (residuals.merMod: deviance and pearson are sqrt(w) (y - mu),
# working and response y - mu), with prior weights and with NA rows dropped
sleep <- load_data("sleepstudy")
sleep$w3 <- 1 + (seq_len(nrow(sleep)) - 1) %% 3
# a tight optimizer: lme4's default stops ~1e-5 short in the random effects
tight <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-10, maxfun = 1e5))
mw <- lmer(Reaction ~ Days + (Days | Subject), sleep, weights = w3, control = tight)
sleep_na <- sleep
sleep_na$Reaction[c(3, 17, 40, 41, 150)] <- NA
mn <- lmer(Reaction ~ Days + (Days | Subject), sleep_na, control = tight)
types <- c("deviance", "pearson", "working", "response")
res_of <- function(m) setNames(lapply(types, function(t) unname(residuals(m, type = t))), types)
write_fixture(list(
  versions = versions,
  weighted = list(formula = "Reaction ~ Days + (Days | Subject)", weights = "1 + (row - 1) %% 3",
                  REML = TRUE, residuals = res_of(mw)),
  na_rows = list(formula = "Reaction ~ Days + (Days | Subject)", na = c(3, 17, 40, 41, 150),
                 REML = TRUE, residuals = res_of(mn),
                 rows = as.integer(names(residuals(mn))))
), "diagsweep_lmer_resid.json")

# glmmTMB 1.1.5's Pearson residuals, (y - mu) / sqrt(V(mu)) without the dispersion or the
# prior weights (ours include both: GlmmTMBResult.residuals), with its overdispersion
# statistic (performance::check_overdispersion)
suppressPackageStartupMessages({ library(glmmTMB); library(performance) })
cbpp <- load_data("cbpp")
cbpp$w3 <- 1 + (seq_len(nrow(cbpp)) - 1) %% 3
tb <- glmmTMB(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
              family = binomial, weights = w3)
gs <- load_data("gammasim")
tg <- glmmTMB(y ~ x + (1 | g), gs, family = Gamma(link = "log"))
od <- check_overdispersion(tb)
write_fixture(list(
  versions = c(versions, glmmTMB = as.character(packageVersion("glmmTMB")),
               performance = as.character(packageVersion("performance"))),
  binom_weights = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                       weights = "1 + (row - 1) %% 3",
                       pearson = unname(residuals(tb, type = "pearson")),
                       overdispersion_chisq = od$chisq_statistic),
  gamma = list(formula = "y ~ x + (1 | g)", sigma = sigma(tg),
               pearson = unname(residuals(tg, type = "pearson")))
), "diagsweep_tmb_pearson.json")

# performance's r2_nakagawa / icc of glmmTMB beta (logit) and generalized Poisson models,
# on simulated data written beside the fixture (20 groups of 5)
set.seed(3)
fs <- data.frame(g = factor(sprintf("g%02d", rep(1:20, each = 5))), x = round(rnorm(100), 6))
b <- rnorm(20, sd = 0.6)[as.integer(fs$g)]
mu <- plogis(-0.3 + 0.5 * fs$x + b)
fs$p <- round(rbeta(100, mu * 8, (1 - mu) * 8), 8)
fs$cnt <- rpois(100, exp(1.5 + 0.4 * fs$x + b))
write.csv(fs, file.path(out_dir, "diagsweep_famsim.csv"), row.names = FALSE)
fs <- read.csv(file.path(out_dir, "diagsweep_famsim.csv"))
fs$g <- factor(fs$g)
r2_of <- function(m) {
  r <- r2_nakagawa(m)
  i <- icc(m)
  v <- insight::get_variance(m)
  list(logLik = as.numeric(logLik(m)), sigma = sigma(m),
       r2 = list(conditional = unname(r$R2_conditional), marginal = unname(r$R2_marginal)),
       icc = list(adjusted = unname(i$ICC_adjusted), unadjusted = unname(i$ICC_unadjusted)),
       distribution = unname(v$var.distribution))
}
fb <- glmmTMB(p ~ x + (1 | g), fs, family = beta_family())
fg <- glmmTMB(cnt ~ x + (1 | g), fs, family = genpois())
write_fixture(list(
  versions = c(versions, glmmTMB = as.character(packageVersion("glmmTMB")),
               performance = as.character(packageVersion("performance")),
               insight = as.character(packageVersion("insight"))),
  data = "diagsweep_famsim.csv",
  beta = c(list(formula = "p ~ x + (1 | g)", family = "beta"), r2_of(fb)),
  genpois = c(list(formula = "cnt ~ x + (1 | g)", family = "genpois"), r2_of(fg))
), "diagsweep_r2_families.json")
