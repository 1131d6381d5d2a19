# Reference values for mixedmodels' inference tests (issue 4), written to
# tests/fixtures/inference/*.json. Run from the repository root:
#
#   Rscript tools/r/inference_fixtures.R
#
# Versions used: R 4.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, nlme (recommended).
# The data are the package's own CSV files with R's factor level orders, so R and Python fit
# exactly the same data. Tests never call R; they read the JSON this script writes.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(nlme)
  library(jsonlite)
  library(numDeriv)
})

data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/inference"
source("tools/r/fixture_io.R")   # load_data(), write_fixture()

sleep <- load_data("sleepstudy")
# an unbalanced version: drop every 7th row (R rows 1, 8, 15, ...; Python rows 0, 7, 14, ...)
sleep_unbal <- sleep[-seq(1, nrow(sleep), by = 7), ]
ortho <- load_data("Orthodont")
ortho_unbal <- ortho[-seq(1, nrow(ortho), by = 5), ]
cake <- load_data("cake")
pen <- load_data("Penicillin")
pastes <- load_data("Pastes")
dyes <- load_data("Dyestuff")

# id, data, formula, REML, and the Python data subset rule (documented for the tests)
models <- list(
  ss_reml = list(data = sleep, formula = Reaction ~ Days + (Days | Subject), REML = TRUE),
  ss_ml = list(data = sleep, formula = Reaction ~ Days + (Days | Subject), REML = FALSE),
  ss_uncorr = list(data = sleep, formula = Reaction ~ Days + (Days || Subject), REML = TRUE),
  ss_unbal = list(data = sleep_unbal, formula = Reaction ~ Days + (Days | Subject), REML = TRUE),
  pen = list(data = pen, formula = diameter ~ 1 + (1 | plate) + (1 | sample), REML = TRUE),
  ortho = list(data = ortho, formula = distance ~ age * Sex + (age | Subject), REML = TRUE),
  ortho_unbal = list(data = ortho_unbal, formula = distance ~ age * Sex + (1 | Subject),
                     REML = TRUE),
  ortho_unbal_ml = list(data = ortho_unbal, formula = distance ~ age * Sex + (1 | Subject),
                        REML = FALSE),
  cake = list(data = cake, formula = angle ~ recipe * temperature + (1 | recipe:replicate),
              REML = TRUE),
  pastes = list(data = pastes, formula = strength ~ 1 + (1 | batch/cask), REML = TRUE),
  dyestuff = list(data = dyes, formula = Yield ~ 1 + (1 | Batch), REML = TRUE)
)

fits <- lapply(models, function(m) lmerTest::lmer(m$formula, data = m$data, REML = m$REML))

coef_frame <- function(tab) {
  list(names = rownames(tab), estimate = unname(tab[, "Estimate"]),
       se = unname(tab[, "Std. Error"]), df = unname(tab[, "df"]),
       t = unname(tab[, "t value"]), p = unname(tab[, "Pr(>|t|)"]))
}

anova_frame <- function(tab) {
  list(terms = rownames(tab), sum_sq = unname(tab[, "Sum Sq"]),
       mean_sq = unname(tab[, "Mean Sq"]), num_df = unname(tab[, "NumDF"]),
       den_df = unname(tab[, "DenDF"]), F = unname(tab[, "F value"]),
       p = unname(tab[, "Pr(>F)"]))
}

# ---- Satterthwaite and Kenward-Roger: coefficient tables and F tests -----------------------
ddf_out <- list()
for (id in names(fits)) {
  fm <- fits[[id]]
  entry <- list(formula = deparse(models[[id]]$formula), REML = models[[id]]$REML,
                nobs = nobs(fm), theta = unname(getME(fm, "theta")), sigma = sigma(fm),
                satterthwaite = coef_frame(coef(summary(fm, ddf = "Satterthwaite"))))
  n_terms <- length(attr(terms(fm), "term.labels"))
  anovas <- list()
  for (type in c("1", "2", "3")) {
    if (n_terms == 0) next
    anovas[[paste0("satterthwaite_type", type)]] <-
      anova_frame(anova(fm, type = type, ddf = "Satterthwaite"))
  }
  if (isREML(fm)) {
    entry$kenward_roger <- coef_frame(coef(summary(fm, ddf = "Kenward-Roger")))
    if (n_terms > 0) {
      for (type in c("1", "3")) {
        anovas[[paste0("kenward_roger_type", type)]] <-
          anova_frame(anova(fm, type = type, ddf = "Kenward-Roger"))
      }
    }
  }
  entry$anova <- anovas
  ddf_out[[id]] <- entry
}
write_fixture(ddf_out, "ddf.json")

# ---- lme's containment ("inner-outer") df -----------------------------------------------
cake$rr <- interaction(cake$recipe, cake$replicate)
lme_models <- list(
  ss_reml = lme(Reaction ~ Days, random = ~ Days | Subject, data = sleep),
  ss_unbal = lme(Reaction ~ Days, random = ~ Days | Subject, data = sleep_unbal),
  ortho = lme(distance ~ age * Sex, random = ~ age | Subject, data = ortho),
  ortho_unbal = lme(distance ~ age * Sex, random = ~ 1 | Subject, data = ortho_unbal),
  cake = lme(angle ~ recipe * temperature, random = ~ 1 | rr, data = cake),
  pastes = lme(strength ~ 1, random = ~ 1 | batch/cask, data = pastes),
  dyestuff = lme(Yield ~ 1, random = ~ 1 | Batch, data = dyes)
)
cont_out <- lapply(lme_models, function(fm) {
  tt <- summary(fm)$tTable
  av <- anova(fm)
  list(names = rownames(tt), df = unname(tt[, "DF"]), terms = rownames(av),
       term_den_df = unname(av[, "denDF"]))
})
write_fixture(cont_out, "containment.json")

# ---- likelihood-ratio tests (anova) --------------------------------------------------------
m2 <- lme4::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep, REML = FALSE)
m1 <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleep, REML = FALSE)
m0 <- lm(Reaction ~ Days, sleep)
a <- anova(m2, m1, m0)
m2r <- lme4::lmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), sleep)
m1r <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleep)
a_refit <- suppressMessages(anova(m2r, m1r))
a_norefit <- anova(m2r, m1r, refit = FALSE)
tab <- function(a) list(models = rownames(a), npar = unname(a[, "npar"]),
                        AIC = unname(a[, "AIC"]), BIC = unname(a[, "BIC"]),
                        logLik = unname(a[, "logLik"]), deviance = unname(a[, "deviance"]),
                        Chisq = unname(a[, "Chisq"]), Df = unname(a[, "Df"]),
                        p = unname(a[, "Pr(>Chisq)"]))
write_fixture(list(sleep_m2_m1_m0 = tab(a), sleep_reml_refit = tab(a_refit),
                   sleep_reml_norefit = tab(a_norefit)), "anova.json")

# ---- profiles, profile and Wald intervals -------------------------------------------------
prof_models <- c("ss_reml", "ss_uncorr", "ortho", "pen", "pastes", "dyestuff", "cake")
prof_out <- list()
for (id in prof_models) {
  fm <- lme4::lmer(models[[id]]$formula, data = models[[id]]$data, REML = models[[id]]$REML)
  pr <- profile(fm, signames = FALSE)
  ci <- confint(pr, level = 0.95)
  ci90 <- confint(pr, level = 0.90)
  wald <- confint(fm, method = "Wald", oldNames = FALSE)
  pdf <- as.data.frame(pr)
  pars <- levels(pdf$.par)
  curves <- lapply(setNames(pars, pars), function(p) {
    rows <- pdf[pdf$.par == p, ]
    list(value = unname(rows[[p]]), zeta = unname(rows$.zeta))
  })
  prof_out[[id]] <- list(
    names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
    lower90 = unname(ci90[, 1]), upper90 = unname(ci90[, 2]),
    wald_names = rownames(wald), wald_lower = unname(wald[, 1]),
    wald_upper = unname(wald[, 2]), curves = curves)
}
write_fixture(prof_out, "profile.json")

# ---- delta-method standard errors of the variance components (GLMM FAQ) -------------------
se_out <- list()
for (id in c("ss_ml", "ss_reml", "pen", "ortho")) {
  fm <- lme4::lmer(models[[id]]$formula, data = models[[id]]$data, REML = models[[id]]$REML)
  dd <- lme4:::devfun2(fm, useSc = TRUE, signames = FALSE)
  opt <- attr(dd, "optimum")
  np <- length(opt) - length(fixef(fm))
  pars <- opt[seq_len(np)]
  hh <- numDeriv::hessian(dd, pars)
  se_out[[id]] <- list(names = names(pars), estimate = unname(pars),
                       se = sqrt(diag(2 * solve(hh))))
}
write_fixture(se_out, "varcorr_se.json")

# ---- parametric bootstrap LRT (PBmodcomp), reference distribution summary ------------------
set.seed(20240611)
pb <- PBmodcomp(m2, m1, nsim = 1000, seed = 20240611)
ref <- pb$ref
spb <- summary(pb)
write_fixture(list(
  LRT = unname(pb$test["LRT", "stat"]), LRT_df = unname(pb$test["LRT", "df"]),
  LRT_p = unname(pb$test["LRT", "p.value"]), PB_p = unname(pb$test["PBtest", "p.value"]),
  nsim = length(ref), n_ok = sum(!is.na(ref)), n_pos = sum(ref > 0, na.rm = TRUE),
  ref_mean = mean(ref, na.rm = TRUE), ref_var = var(ref, na.rm = TRUE),
  ref_pos_mean = mean(ref[ref > 0], na.rm = TRUE), ref_pos_var = var(ref[ref > 0], na.rm = TRUE),
  ref_zero_share = mean(ref <= 0, na.rm = TRUE),
  ref_quantiles = unname(quantile(ref, c(0.5, 0.9, 0.95, 0.99), na.rm = TRUE)),
  summary_tests = rownames(spb$test), summary_stat = unname(spb$test[, "stat"]),
  summary_p = unname(spb$test[, "p.value"])
), "pbmodcomp.json")

cat("fixtures written to", out_dir, "\n")

# ---- RLRT (RLRsim's formulas, written out: RLRsim itself is not installable on R 4.2) ------
# exactRLRT(m) for one random effect: 2 * (restricted logLik(m) - restricted logLik(lm)),
# with RLRsim's reml.H0; and the eigenvalues mu of Z'(I - P_X)Z that drive the null
# distribution (RLRTSim: squared singular values of t(qr.resid(qr(X), Z)), scaled by max).
lm0 <- lm(Reaction ~ Days, sleep)
X <- model.matrix(lm0)
n <- nrow(X)
p <- ncol(X)
res <- resid(lm0)
detXtX <- det(crossprod(qr.R(qr(X))))
reml_H0 <- -((n - p) * log(2 * pi) + (n - p) * log(sum(res^2)) + log(detXtX) + (n - p) -
               (n - p) * log(n - p))
m_int <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleep)
m_slope <- lme4::lmer(Reaction ~ Days + (0 + Days | Subject), sleep)
Z_slope <- as.matrix(getME(m_slope, "Z"))
mu <- svd(t(qr.resid(qr(X), Z_slope)), nu = 0, nv = 0)$d^2
write_fixture(list(
  reml_H0_half = reml_H0 / 2,
  rlrt_intercept_vs_lm = 2 * c(logLik(m_int)) - reml_H0,
  rlrt_slope_m2_vs_m1 = 2 * (c(logLik(m2r)) - c(logLik(m1r))),
  mu_slope = mu / max(mu)
), "rlrt.json")

# ---- GLMMs and GLMs: likelihood-ratio tests, profile and Wald intervals --------------------
cbpp_d <- load_data("cbpp")
gm1 <- lme4::glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp_d, binomial)
gm0 <- lme4::glmer(cbind(incidence, size - incidence) ~ 1 + (1 | herd), cbpp_d, binomial)
g0 <- glm(cbind(incidence, size - incidence) ~ period, cbpp_d, family = binomial)
grouse <- load_data("grouseticks")
gp <- glm(TICKS ~ YEAR + cHEIGHT, grouse, family = poisson)
glm_tab <- function(fm) list(coef = unname(coef(fm)),
                             se = unname(sqrt(diag(vcov(fm)))),
                             logLik = c(logLik(fm)), df = attr(logLik(fm), "df"),
                             deviance = deviance(fm))
pr_g <- profile(gm1, signames = FALSE)
ci_g <- confint(pr_g)
pdf_g <- as.data.frame(pr_g)
wald_g <- confint(gm1, method = "Wald", oldNames = FALSE)
write_fixture(list(
  anova_gm1_gm0 = tab(anova(gm1, gm0)),
  anova_gm1_glm = tab(anova(gm1, g0)),
  glm_binomial = glm_tab(g0),
  glm_poisson = glm_tab(gp),
  gm1_theta = unname(getME(gm1, "theta")), gm1_beta = unname(fixef(gm1)),
  gm1_deviance = -2 * c(logLik(gm1)),
  profile = list(names = rownames(ci_g), lower = unname(ci_g[, 1]), upper = unname(ci_g[, 2]),
                 curves = lapply(setNames(levels(pdf_g$.par), levels(pdf_g$.par)), function(p) {
                   rows <- pdf_g[pdf_g$.par == p, ]
                   list(value = unname(rows[[p]]), zeta = unname(rows$.zeta))
                 })),
  wald = list(names = rownames(wald_g), lower = unname(wald_g[, 1]),
              upper = unname(wald_g[, 2]))
), "glmm.json")
