# Reference values for mixedmodels' prediction and diagnostics tests (issue 9, part A),
# written to tests/fixtures/diag/*.json. Run from the repository root:
#
#   Rscript tools/r/diag_fixtures.R
#
# Versions used: R 4.2, lme4 1.1-31, nlme 3.1-162, glmmTMB 1.1.5, lmtest 0.9-40, ape 5.7,
# car 3.1-1, pscl 1.5.5, bbmle 1.0.25. The data are the package's CSV files with R's factor
# level orders. Tests never call R.
#
# lme4 1.1-31 has no predict(se.fit = TRUE) and no vcov(full = TRUE) (both came with lme4
# 1.1-36); their definition -- the joint covariance of (b, beta) given theta,
# s^2 D C^{-1} D' with C the penalized least-squares system -- is computed here from
# getME's matrices with dense algebra (an independent computation of what
# src/mixedmodels/prediction/joint.py does with sparse solves).
#
# DHARMa is not installed: its tests call base R / lmtest / ape / car functions on the scaled
# residuals (ks.test, lmtest::dwtest, ape::Moran.I, car::leveneTest, binom.test), and those
# are computed here on fixed residual vectors.

suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(glmmTMB)
  library(jsonlite)
  library(lmtest)
  library(ape)
  library(car)
  library(pscl)
  library(bbmle)
})

data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/diag"
source("tools/r/fixture_io.R")   # load_data(), write_fixture()

versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 nlme = as.character(packageVersion("nlme")),
                 glmmTMB = as.character(packageVersion("glmmTMB")))

# ---------------------------------------------------------------------------------------
# The FAQ's Orthodont recipe with nlme::lme. The FAQ builds its grid with
# expand.grid(Sex = c("Female", "Male")), whose factor levels (Female, Male) differ from
# Orthodont's (Male, Female): model.matrix then codes the grid with the wrong contrast and
# the FAQ's SE column belongs to the other sex. Both are recorded: `faq_as_printed` (the
# FAQ's code verbatim) and the grid coded with the data's levels (the right numbers).
ortho <- load_data("Orthodont")
fm1 <- lme(distance ~ age * Sex, random = ~ 1 + age | Subject, data = ortho)
grid <- expand.grid(age = c(8, 10, 12, 14), Sex = c("Female", "Male"))
faq <- grid
faq$pred <- predict(fm1, faq, level = 0)
Dm <- model.matrix(formula(fm1)[-2], faq)
pv <- diag(Dm %*% vcov(fm1) %*% t(Dm))
faq$SE <- sqrt(pv)
faq$SE2 <- sqrt(pv + fm1$sigma^2)
right <- grid
right$Sex <- factor(as.character(right$Sex), levels = levels(ortho$Sex))
D2 <- model.matrix(~ age * Sex, right)
pv2 <- diag(D2 %*% vcov(fm1) %*% t(D2))
right$pred <- as.vector(D2 %*% fixef(fm1))
right$SE <- sqrt(pv2)
right$SE2 <- sqrt(pv2 + fm1$sigma^2)
right$Sex <- as.character(right$Sex)
faq$Sex <- as.character(faq$Sex)

# ---------------------------------------------------------------------------------------
# lme4's joint covariance (vcov(full = TRUE) of lme4 >= 1.1-36), dense
joint_cov <- function(m, W, s2) {
  X <- getME(m, "X")
  ZL <- as.matrix(getME(m, "Z") %*% t(getME(m, "Lambdat")))
  q <- ncol(ZL)
  M <- cbind(ZL, X)
  C <- crossprod(M, W * M)
  C[cbind(seq_len(q), seq_len(q))] <- C[cbind(seq_len(q), seq_len(q))] + 1
  D <- as.matrix(Matrix::bdiag(t(as.matrix(getME(m, "Lambdat"))), diag(ncol(X))))
  s2 * D %*% solve(C) %*% t(D)
}

# prediction rows (z, x) for new data of a model with one term (re | g): Z in lme4's
# layout (level by level, the term's effects together)
pred_se <- function(m, newdata, re.form, Cmat, re_vars) {
  X <- model.matrix(delete.response(terms(m)), newdata,
                    contrasts.arg = attr(getME(m, "X"), "contrasts"))
  q <- length(getME(m, "b"))
  Z <- matrix(0, nrow(X), q)
  if (!identical(re.form, NA)) {
    g <- getME(m, "flist")[[1]]
    lev <- match(as.character(newdata[[names(getME(m, "flist"))[1]]]), levels(g))
    zn <- cbind(1, as.matrix(newdata[re_vars]))
    p <- ncol(zn)
    for (k in seq_len(p)) Z[cbind(seq_len(nrow(X)), (lev - 1) * p + k)] <- zn[, k]
  }
  M <- cbind(Z, X)
  sqrt(rowSums((M %*% Cmat) * M))
}

sleep <- load_data("sleepstudy")
ss <- lmer(Reaction ~ Days + (Days | Subject), sleep)
ss_C <- joint_cov(ss, rep(1, nrow(sleep)), sigma(ss)^2)
ss_new <- data.frame(Days = c(0, 4.5, 9, 2, 7), Subject = c("308", "309", "372", "308", "335"))
ss_new$Subject <- factor(ss_new$Subject, levels = levels(sleep$Subject))
ss_cond <- pred_se(ss, ss_new, NULL, ss_C, "Days")
ss_pop <- pred_se(ss, ss_new, NA, as.matrix(Matrix::bdiag(
  matrix(0, length(getME(ss, "b")), length(getME(ss, "b"))), as.matrix(vcov(ss)))), "Days")
ss_fit_cond <- sqrt(rowSums((cbind(as.matrix(getME(ss, "Z")), getME(ss, "X")) %*% ss_C) *
                            cbind(as.matrix(getME(ss, "Z")), getME(ss, "X"))))

# crossed random effects, REML, with an unbalanced subset
pen <- load_data("Penicillin")
pm <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen)
pm_C <- joint_cov(pm, rep(1, nrow(pen)), sigma(pm)^2)
pm_M <- cbind(as.matrix(getME(pm, "Z")), getME(pm, "X"))
pm_se <- sqrt(rowSums((pm_M %*% pm_C) * pm_M))

# glmer: FAQ recipe at the population level (vcov: lme4's Hessian-based one), joint
# covariance with the PIRLS working weights for conditional predictions
cbpp <- load_data("cbpp")
# tight PIRLS and optimizer (tools/r/glmm_fixtures.R: glmer's defaults stop ~6e-4 deviance
# units short of the optimum, and its Hessian picks up the PIRLS noise)
tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(rhoend = 1e-9, maxfun = 1e5))
gm <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, family = binomial,
            control = tight)
Wg <- gm@resp$sqrtWrkWt()^2
gm_C <- joint_cov(gm, Wg, 1)
gm_M <- cbind(as.matrix(getME(gm, "Z")), getME(gm, "X"))
gm_cond <- sqrt(rowSums((gm_M %*% gm_C) * gm_M))
gX <- getME(gm, "X")
gm_pop <- sqrt(rowSums((gX %*% as.matrix(vcov(gm))) * gX))
gm_eta <- predict(gm)
gm_eta0 <- predict(gm, re.form = NA)

write_fixture(list(
  versions = versions,
  faq_orthodont = list(model = "lme(distance ~ age*Sex, random = ~1 + age | Subject)",
                       sigma = fm1$sigma, logLik = as.numeric(logLik(fm1)),
                       faq_as_printed = faq, right_levels = right),
  lmer_sleep = list(formula = "Reaction ~ Days + (Days | Subject)",
                    newdata = ss_new, fit_cond = as.vector(predict(ss, ss_new)),
                    fit_pop = as.vector(predict(ss, ss_new, re.form = NA)),
                    se_cond = as.vector(ss_cond), se_pop = as.vector(ss_pop),
                    se_fitting_rows = as.vector(ss_fit_cond), sigma = sigma(ss)),
  lmer_penicillin = list(formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
                         se_fitting_rows = as.vector(pm_se)),
  glmer_cbpp = list(formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                    eta = as.vector(gm_eta), eta_pop = as.vector(gm_eta0),
                    se_cond = as.vector(gm_cond), se_pop = as.vector(gm_pop),
                    objective = -2 * as.numeric(logLik(gm)))
), "predict_lme4.json")

# ---------------------------------------------------------------------------------------
# glmmTMB's predict(se.fit = TRUE) on new data: zero-inflated NB (Salamanders), population
# level and conditional, every type; a Poisson model with an offset (Owls)
sal <- load_data("Salamanders")
zinb <- glmmTMB(count ~ spp + mined + (1 | site), zi = ~ spp + mined, family = nbinom2, sal)
sal_new <- data.frame(spp = c("GP", "DM", "EC-L", "DF", "PR", "GP"),
                      mined = c("yes", "no", "no", "yes", "no", "no"),
                      site = c("R-1", "R-5", "VF-3", "VF-11", "R-12", "VF-1"))
sal_new$spp <- factor(sal_new$spp, levels = levels(sal$spp))
sal_new$mined <- factor(sal_new$mined, levels = levels(sal$mined))
sal_new$site <- factor(sal_new$site, levels = levels(sal$site))
tmb_pred <- function(fit, newdata, re.form) {
  out <- list()
  for (tp in c("link", "response", "conditional", "zprob", "zlink")) {
    p <- predict(fit, newdata = newdata, re.form = re.form, type = tp, se.fit = TRUE)
    out[[tp]] <- list(fit = as.vector(p$fit), se_fit = as.vector(p$se.fit))
  }
  out
}
owls <- load_data("Owls")
op <- glmmTMB(SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) +
                (1 | Nest), family = poisson, owls)
owls_new <- data.frame(FoodTreatment = c("Deprived", "Satiated", "Satiated"),
                       ArrivalTime = c(22.5, 24, 28.1), logBroodSize = log(c(2, 4, 5)),
                       Nest = c("Bochet", "Forel", "Trey"))
owls_new$FoodTreatment <- factor(owls_new$FoodTreatment, levels = levels(owls$FoodTreatment))
owls_new$Nest <- factor(owls_new$Nest, levels = levels(owls$Nest))
op_link <- predict(op, owls_new, se.fit = TRUE)
op_resp <- predict(op, owls_new, se.fit = TRUE, type = "response")
op_pop <- predict(op, owls_new, se.fit = TRUE, re.form = NA)
# REML: the conditional fixed effects are random effects of the Laplace problem
ssr <- glmmTMB(Reaction ~ Days + (Days | Subject), sleep, REML = TRUE)
ssr_p <- predict(ssr, ss_new, se.fit = TRUE)
ssr_pop <- predict(ssr, ss_new, se.fit = TRUE, re.form = NA)

write_fixture(list(
  versions = versions,
  salamanders_zinb2 = list(formula = "count ~ spp + mined + (1 | site)",
                           ziformula = "~spp + mined", family = "nbinom2",
                           objective = -2 * as.numeric(logLik(zinb)),
                           newdata = sal_new, cond = tmb_pred(zinb, sal_new, NULL),
                           pop = tmb_pred(zinb, sal_new, NA)),
  owls_poisson = list(formula = paste("SiblingNegotiation ~ FoodTreatment + ArrivalTime +",
                                      "offset(logBroodSize) + (1 | Nest)"),
                      newdata = owls_new,
                      link = list(fit = as.vector(op_link$fit), se_fit = as.vector(op_link$se.fit)),
                      response = list(fit = as.vector(op_resp$fit),
                                      se_fit = as.vector(op_resp$se.fit)),
                      pop = list(fit = as.vector(op_pop$fit), se_fit = as.vector(op_pop$se.fit))),
  sleep_reml = list(formula = "Reaction ~ Days + (Days | Subject)", newdata = ss_new,
                    cond = list(fit = as.vector(ssr_p$fit), se_fit = as.vector(ssr_p$se.fit)),
                    pop = list(fit = as.vector(ssr_pop$fit), se_fit = as.vector(ssr_pop$se.fit)))
), "predict_glmmtmb.json")

# ---------------------------------------------------------------------------------------
# The R functions behind DHARMa's tests, on fixed residual vectors (set.seed: the vectors
# are stored, so Python recomputes the tests on the same numbers)
set.seed(20240901)
u50 <- runif(50)
u300 <- rbeta(300, 1.2, 1)                       # slightly non-uniform
ks <- function(x, alt) {
  t <- suppressWarnings(ks.test(x, "punif", alternative = alt))
  list(statistic = unname(t$statistic), p_value = t$p.value)
}
ar <- as.numeric(arima.sim(list(ar = 0.4), n = 150))
ar_u <- pnorm(ar / sd(ar))
dw <- function(x, alt) {
  t <- dwtest(x ~ 1, order.by = seq_along(x), alternative = alt)
  list(statistic = unname(t$statistic), p_value = t$p.value)
}
xy <- cbind(runif(60), runif(60))
mor_x <- runif(60) + 0.5 * xy[, 1]
W <- 1 / as.matrix(dist(xy)); diag(W) <- 0
mor <- Moran.I(mor_x, W)
grp <- factor(rep(c("a", "b", "c", "d"), times = c(20, 25, 30, 25)))
lev_y <- runif(100) * c(1, 1, 1.6, 1)[as.integer(grp)]
lev <- leveneTest(lev_y ~ grp)
bt <- binom.test(7, 300, p = 2 / 251)
# PIT bounds of DHARMa's getQuantile on an integer simulation matrix
sims <- matrix(rpois(20 * 30, 3), 20, 30)
obs <- rpois(20, 3.3)
cont_sims <- matrix(rnorm(15 * 40), 15, 40)
cont_obs <- rnorm(15)
# DHARMa's ecdf (its definition restated: the step heights cumsum(counts)/(n + 1) at the
# distinct values, linear in between, 0 below and 1 above)
trad <- sapply(1:15, function(i) {
  x <- sort(cont_sims[i, ]); v <- unique(x)
  f <- approxfun(v, cumsum(tabulate(match(x, v))) / (length(x) + 1), method = "linear",
                 yleft = 0, yright = 1, ties = "ordered")
  f(cont_obs[i])
})
write_fixture(list(
  versions = list(R = R.version.string, lmtest = as.character(packageVersion("lmtest")),
                  ape = as.character(packageVersion("ape")),
                  car = as.character(packageVersion("car"))),
  ks = list(u50 = u50, u300 = u300,
            u50_two = ks(u50, "two.sided"), u50_less = ks(u50, "less"),
            u50_greater = ks(u50, "greater"), u300_two = ks(u300, "two.sided"),
            u300_greater = ks(u300, "greater")),
  dw = list(x150 = ar_u, x40 = ar_u[1:40], x150_two = dw(ar_u, "two.sided"),
            x150_greater = dw(ar_u, "greater"), x40_two = dw(ar_u[1:40], "two.sided"),
            x40_greater = dw(ar_u[1:40], "greater"), x40_less = dw(ar_u[1:40], "less"),
            u50_two = dw(u50, "two.sided")),
  moran = list(x = mor_x, coords = xy, observed = mor$observed, expected = mor$expected,
               sd = mor$sd, p_value = mor$p.value),
  levene = list(y = lev_y, group = as.character(grp), F = lev$`F value`[1],
                p_value = lev$`Pr(>F)`[1]),
  binom = list(k = 7, n = 300, p0 = 2 / 251, p_value = bt$p.value),
  pit = list(simulated = sims, observed = obs,
             lower = rowMeans(sims < obs), upper = rowMeans(sims <= obs)),
  traditional = list(simulated = cont_sims, observed = cont_obs, residuals = trad)
), "dharma_tests.json")

# ---------------------------------------------------------------------------------------
# Zero-inflation and model comparison (Salamanders)
pois_glm <- glm(count ~ spp + mined, family = poisson, data = sal)
zip_glm <- zeroinfl(count ~ spp + mined | spp + mined, dist = "poisson", data = sal)
vu <- capture.output(vres <- pscl::vuong(pois_glm, zip_glm))
# pscl prints its table; recompute the statistics it prints from its own definition
p1 <- dpois(sal$count, fitted(pois_glm))
p2 <- predprob(zip_glm)[cbind(seq_len(nrow(sal)), sal$count + 1)]
mdiff <- log(p1) - log(p2)
k1 <- length(coef(pois_glm)); k2 <- length(coef(zip_glm)); n <- length(mdiff)
vz <- c(raw = sum(mdiff) / (sd(mdiff) * sqrt(n)),
        aic = sum(mdiff - (k1 - k2) / n) / (sd(mdiff) * sqrt(n)),
        bic = sum(mdiff - (k1 - k2) * log(n) / (2 * n)) / (sd(mdiff) * sqrt(n)))
g_pois <- glmmTMB(count ~ spp + mined + (1 | site), family = poisson, data = sal)
g_zip <- glmmTMB(count ~ spp + mined + (1 | site), zi = ~ spp + mined, family = poisson,
                 data = sal)
g_nb <- glmmTMB(count ~ spp + mined + (1 | site), family = nbinom2, data = sal)
tab <- AICctab(g_pois, g_zip, g_nb, zinb, weights = TRUE, base = TRUE, logLik = TRUE,
               nobs = nrow(sal), mnames = c("pois", "zip", "nb", "zinb"))
tab_names <- attr(tab, "row.names")
tab <- as.data.frame(unclass(tab))
an <- anova(g_pois, g_zip)
zip_p0 <- predict(g_zip, type = "zprob") +
  (1 - predict(g_zip, type = "zprob")) * dpois(0, predict(g_zip, type = "conditional"))
write_fixture(list(
  versions = list(R = R.version.string, pscl = as.character(packageVersion("pscl")),
                  bbmle = as.character(packageVersion("bbmle")),
                  glmmTMB = as.character(packageVersion("glmmTMB"))),
  vuong = list(models = c("glm(count ~ spp + mined, poisson)",
                          "zeroinfl(count ~ spp + mined | spp + mined)"),
               z = as.list(vz), p_raw = pnorm(vz[["raw"]]), printed = vu,
               logLik = c(as.numeric(logLik(pois_glm)), as.numeric(logLik(zip_glm)))),
  aictab = list(names = tab_names, columns = as.list(tab),
                logLik = list(pois = as.numeric(logLik(g_pois)), zip = as.numeric(logLik(g_zip)),
                           nb = as.numeric(logLik(g_nb)), zinb = as.numeric(logLik(zinb)))),
  zi_lrt = list(chisq = an$Chisq[2], df = an$`Chi Df`[2], p_naive = an$`Pr(>Chisq)`[2]),
  expected_zeros = list(
    observed = sum(sal$count == 0),
    pois = sum(dpois(0, fitted(g_pois))),
    nb = sum(dnbinom(0, size = sigma(g_nb), mu = fitted(g_nb))),
    zip = sum(zip_p0),
    zip_var = sum(zip_p0 * (1 - zip_p0)))
), "zero_inflation.json")

# ---------------------------------------------------------------------------------------
# glmmTMB's se.fit for every predict type of a model with zero-inflation and dispersion
# formulas (the "disp" type included)
zinbd <- glmmTMB(count ~ mined + (1 | site), zi = ~ mined, disp = ~ mined, family = nbinom2,
                 sal)
tmb_pred_all <- function(fit, newdata, re.form) {
  out <- list()
  for (tp in c("link", "response", "conditional", "zprob", "zlink", "disp")) {
    p <- predict(fit, newdata = newdata, re.form = re.form, type = tp, se.fit = TRUE)
    out[[tp]] <- list(fit = as.vector(p$fit), se_fit = as.vector(p$se.fit))
  }
  out
}
write_fixture(list(
  formula = "count ~ mined + (1 | site)", ziformula = "~mined", dispformula = "~mined",
  family = "nbinom2", objective = -2 * as.numeric(logLik(zinbd)), newdata = sal_new,
  fixef = lapply(fixef(zinbd), function(b) as.list(b)),
  cond = tmb_pred_all(zinbd, sal_new, NULL), pop = tmb_pred_all(zinbd, sal_new, NA)
), "predict_glmmtmb_disp.json")
