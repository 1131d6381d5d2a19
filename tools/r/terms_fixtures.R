# Reference values for the term tests, convergence tools and model summaries (issue 9,
# part B), written to tests/fixtures/terms/*.json. Run from the repository root:
#
#   Rscript tools/r/terms_fixtures.R
#
# Versions used: R 4.2, lme4 1.1-31, glmmTMB 1.1.5, car 3.1-1, RLRsim 3.1-8, pbkrtest 0.5.2,
# performance 0.10.2 with insight 0.19.0. The data are the package's own CSV files with R's
# factor level orders (unordered factors), so R and Python fit the same data. Tests never
# call R; they read the JSON this script writes.

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(car)
  library(RLRsim)
  library(pbkrtest)
  library(performance)
  library(jsonlite)
})

data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/terms"
source("tools/r/fixture_io.R")   # load_data(), write_fixture()

num <- function(x) { x <- unname(x); if (length(x) == 0 || is.null(x)) NA else as.numeric(x) }

datasets <- list(
  sleepstudy = load_data("sleepstudy"),
  Orthodont = load_data("Orthodont"),
  cake = load_data("cake"),
  Penicillin = load_data("Penicillin"),
  Pastes = load_data("Pastes"),
  Dyestuff = load_data("Dyestuff"),
  Dyestuff2 = load_data("Dyestuff2"),
  cbpp = load_data("cbpp"),
  grouseticks = load_data("grouseticks"),
  Contraception = load_data("Contraception"),
  Salamanders = load_data("Salamanders"),
  Owls = load_data("Owls"),
  gammasim = load_data("gammasim")
)

# A model: fitter ("lmer", "glmer", "glmer.nb", "glmmTMB"), data set, formula (the same
# string is parsed by the Python tests), and the fitter's other arguments.
fit_model <- function(spec) {
  # the call names the data set and holds the formula, so that update() (drop1, and
  # insight's null model) can evaluate it again
  f <- as.formula(spec$formula)
  ctr <- spec$contrasts
  if (!is.null(ctr)) ctr <- lapply(ctr, function(x) paste0("contr.", x))
  args <- list(formula = f, data = as.name(spec$data))
  if (!is.null(ctr)) args$contrasts <- ctr
  fam <- if (!is.null(spec$family)) call(spec$family, link = spec$link)
  switch(spec$fitter,
    lmer = do.call("lmer", c(args, REML = isTRUE(spec$REML))),
    glmer = do.call("glmer", c(args, family = fam)),
    glmer.nb = do.call("glmer.nb", args),
    glmmTMB = do.call("glmmTMB", c(args, family = fam,
                                   ziformula = as.formula(if (is.null(spec$zi)) "~0"
                                                          else spec$zi),
                                   REML = isTRUE(spec$REML))))
}
for (nm in names(datasets)) assign(nm, datasets[[nm]], envir = globalenv())

frame_rows <- function(tab) {
  out <- list()
  for (i in seq_len(nrow(tab))) {
    row <- lapply(as.list(tab[i, , drop = FALSE]), num)
    out[[rownames(tab)[i]]] <- row
  }
  out
}

# ---------------------------------------------------------------------------------------
# drop1(m, test = "Chisq"): lme4's drop1.merMod (ML refits via extractAIC's refitML) and
# stats' drop1.default for glmmTMB (its logLik as it is).
drop1_models <- list(
  ortho_add_reml = list(fitter = "lmer", data = "Orthodont",
                        formula = "distance ~ age + Sex + (1 | Subject)", REML = TRUE),
  ortho_int_ml = list(fitter = "lmer", data = "Orthodont",
                      formula = "distance ~ age * Sex + (age | Subject)", REML = FALSE),
  cake_add = list(fitter = "lmer", data = "cake",
                  formula = "angle ~ recipe + temp + (1 | recipe:replicate)", REML = TRUE),
  cbpp = list(fitter = "glmer", data = "cbpp", family = "binomial", link = "logit",
              formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  contra = list(fitter = "glmer", data = "Contraception", family = "binomial",
                link = "logit",
                formula = "use ~ age + urban + livch + (1 | district)"),
  ticks_nb = list(fitter = "glmer.nb", data = "grouseticks",
                  formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"),
  sal_nb2 = list(fitter = "glmmTMB", data = "Salamanders", family = "nbinom2", link = "log",
                 formula = "count ~ mined + spp + (1 | site)"),
  sal_zip = list(fitter = "glmmTMB", data = "Salamanders", family = "poisson", link = "log",
                 formula = "count ~ mined + cover + (1 | site)", zi = "~ mined")
)
drop1_out <- lapply(drop1_models, function(spec) {
  m <- fit_model(spec)
  tab <- as.data.frame(drop1(m, test = "Chisq"))
  list(spec = spec, table = frame_rows(tab), columns = names(tab))
})
write_fixture(drop1_out, "drop1.json")

# ---------------------------------------------------------------------------------------
# lmerTest's drop1 (F tests of the droppable terms, Satterthwaite or Kenward-Roger df; no
# refits). lmerTest is not attached (its lmer would replace lme4's above): the fits are
# converted with as_lmerModLmerTest, whose S3 drop1 method the loaded namespace registers.
drop1_f_models <- list(
  ortho_int = list(fitter = "lmer", data = "Orthodont", REML = TRUE,
                   formula = "distance ~ age * Sex + (age | Subject)"),
  cake_add = list(fitter = "lmer", data = "cake", REML = TRUE,
                  formula = "angle ~ recipe + temp + (1 | recipe:replicate)"),
  ss_quad_ml = list(fitter = "lmer", data = "sleepstudy", REML = FALSE,
                    formula = "Reaction ~ Days + I(Days^2) + (Days | Subject)")
)
drop1_f_out <- lapply(drop1_f_models, function(spec) {
  m <- lmerTest::as_lmerModLmerTest(fit_model(spec))
  tabs <- lapply(c(satterthwaite = "Satterthwaite", `kenward-roger` = "Kenward-Roger"),
                 function(ddf) tryCatch(frame_rows(as.data.frame(drop1(m, ddf = ddf))),
                                        error = function(e) NA))   # KR: REML fits only
  list(spec = spec, tables = tabs)
})
write_fixture(drop1_f_out, "drop1_f.json")

# ---------------------------------------------------------------------------------------
# car::Anova(m, type = 2 | 3): Wald chi-square tests (glmmTMB's Anova.glmmTMB for glmmTMB,
# with component = "cond" and "zi").
anova_models <- list(
  ortho_int = list(fitter = "lmer", data = "Orthodont",
                   formula = "distance ~ age * Sex + (age | Subject)", REML = TRUE),
  cake_full = list(fitter = "lmer", data = "cake",
                   formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
                   REML = TRUE),
  cake_sum = list(fitter = "lmer", data = "cake",
                  formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
                  REML = TRUE, contrasts = list(recipe = "sum", temperature = "sum")),
  cbpp = list(fitter = "glmer", data = "cbpp", family = "binomial", link = "logit",
              formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  contra_int = list(fitter = "glmer", data = "Contraception", family = "binomial",
                    link = "logit",
                    formula = "use ~ age * urban + livch + (urban | district)"),
  contra_sum = list(fitter = "glmer", data = "Contraception", family = "binomial",
                    link = "logit", contrasts = list(urban = "sum", livch = "sum"),
                    formula = "use ~ age * urban + livch * urban + (1 | district)"),
  ticks_int = list(fitter = "glmer", data = "grouseticks", family = "poisson", link = "log",
                   formula = "TICKS ~ YEAR * cHEIGHT + (1 | LOCATION)"),
  sal_zip = list(fitter = "glmmTMB", data = "Salamanders", family = "poisson", link = "log",
                 formula = "count ~ spp * mined + (1 | site)", zi = "~ mined + cover"),
  sal_nb2 = list(fitter = "glmmTMB", data = "Salamanders", family = "nbinom2", link = "log",
                 formula = "count ~ spp + mined * cover + (1 | site)")
)
cond_fixef <- function(m, component = "cond") {
  if (inherits(m, "glmmTMB")) fixef(m)[[component]] else fixef(m)
}
cond_vcov <- function(m, component = "cond") {
  if (inherits(m, "glmmTMB")) as.matrix(vcov(m)[[component]]) else as.matrix(vcov(m))
}
anova_out <- lapply(anova_models, function(spec) {
  m <- fit_model(spec)
  # the estimates the tables were computed from: the tests apply the Python tables to
  # them too, separating the Wald algebra from (small) differences in the fits
  res <- list(spec = spec, beta = num(cond_fixef(m)), vcov = unname(cond_vcov(m)),
              names = names(cond_fixef(m)))
  if (spec$fitter == "glmmTMB" && !is.null(spec$zi)) {
    res$zi_beta <- num(cond_fixef(m, "zi"))
    res$zi_vcov <- unname(cond_vcov(m, "zi"))
  }
  for (type in c("II", "III")) {
    res[[paste0("type", type)]] <- frame_rows(as.data.frame(Anova(m, type = type)))
    if (spec$fitter == "glmmTMB" && !is.null(spec$zi)) {
      res[[paste0("zi_type", type)]] <- frame_rows(as.data.frame(
        Anova(m, type = type, component = "zi")))
    }
  }
  res
})
write_fixture(anova_out, "anova_wald.json")

# ---------------------------------------------------------------------------------------
# RLRsim::exactLRT(m, m0): ML fit with one random effect against a linear model. The
# statistic is exact; the p-value and the null distribution's quantiles come from 10^5
# simulated values (the tests compare them within Monte-Carlo error).
lrt_models <- list(
  sleep_q0 = list(data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)",
                  null = "Reaction ~ Days"),
  sleep_q1 = list(data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)",
                  null = "Reaction ~ 1"),
  ortho_q1 = list(data = "Orthodont", formula = "distance ~ age + Sex + (1 | Subject)",
                  null = "distance ~ age"),
  dyes = list(data = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)", null = "Yield ~ 1"),
  ortho_slope = list(data = "Orthodont", formula = "distance ~ age + (0 + age | Subject)",
                     null = "distance ~ age")
)
probs <- c(0.5, 0.75, 0.9, 0.95, 0.99)
lrt_out <- lapply(lrt_models, function(spec) {
  d <- datasets[[spec$data]]
  m <- lmer(as.formula(spec$formula), d, REML = FALSE)
  m0 <- lm(as.formula(spec$null), d)
  res <- suppressMessages(exactLRT(m, m0, nsim = 100000, seed = 1))
  list(spec = spec, statistic = num(res$statistic), p_value = num(res$p.value),
       quantiles = num(quantile(res$sample, probs)), probs = probs,
       mass_at_zero = mean(res$sample == 0), nsim = 100000)
})
write_fixture(lrt_out, "exact_lrt.json")

# ---------------------------------------------------------------------------------------
# performance::r2_nakagawa and icc (insight::get_variance's components).
r2_models <- list(
  ss_slope = list(fitter = "lmer", data = "sleepstudy", REML = TRUE,
                  formula = "Reaction ~ Days + (Days | Subject)"),
  ss_int_ml = list(fitter = "lmer", data = "sleepstudy", REML = FALSE,
                   formula = "Reaction ~ Days + (1 | Subject)"),
  ss_uncorr = list(fitter = "lmer", data = "sleepstudy", REML = TRUE,
                   formula = "Reaction ~ Days + (Days || Subject)"),
  ortho = list(fitter = "lmer", data = "Orthodont", REML = TRUE,
               formula = "distance ~ age * Sex + (age | Subject)"),
  pen = list(fitter = "lmer", data = "Penicillin", REML = TRUE,
             formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  pastes = list(fitter = "lmer", data = "Pastes", REML = TRUE,
                formula = "strength ~ 1 + (1 | batch/cask)"),
  cake = list(fitter = "lmer", data = "cake", REML = TRUE,
              formula = "angle ~ recipe + temp + (1 | recipe:replicate)"),
  cbpp_logit = list(fitter = "glmer", data = "cbpp", family = "binomial", link = "logit",
                    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  cbpp_probit = list(fitter = "glmer", data = "cbpp", family = "binomial", link = "probit",
                     formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  cbpp_cloglog = list(fitter = "glmer", data = "cbpp", family = "binomial",
                      link = "cloglog",
                      formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  contra_slope = list(fitter = "glmer", data = "Contraception", family = "binomial",
                      link = "logit",
                      formula = "use ~ age + urban + livch + (urban | district)"),
  ticks_pois = list(fitter = "glmer", data = "grouseticks", family = "poisson", link = "log",
                    formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"),
  ticks_olre = list(fitter = "glmer", data = "grouseticks", family = "poisson", link = "log",
                    formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX)"),
  ticks_nb = list(fitter = "glmer.nb", data = "grouseticks",
                  formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"),
  owls_pois = list(fitter = "glmer", data = "Owls", family = "poisson", link = "log",
                   formula = paste("SiblingNegotiation ~ FoodTreatment + ArrivalTime +",
                                   "offset(logBroodSize) + (1 | Nest)")),
  tmb_gauss = list(fitter = "glmmTMB", data = "sleepstudy", family = "gaussian",
                   link = "identity", formula = "Reaction ~ Days + (Days | Subject)"),
  tmb_nb2 = list(fitter = "glmmTMB", data = "Salamanders", family = "nbinom2", link = "log",
                 formula = "count ~ mined + spp + (1 | site)"),
  tmb_nb1 = list(fitter = "glmmTMB", data = "Salamanders", family = "nbinom1", link = "log",
                 formula = "count ~ mined + cover + (1 | site)"),
  tmb_zip = list(fitter = "glmmTMB", data = "Salamanders", family = "poisson", link = "log",
                 formula = "count ~ mined + cover + (1 | site)", zi = "~ mined"),
  tmb_binom = list(fitter = "glmmTMB", data = "cbpp", family = "binomial", link = "logit",
                   formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  tmb_zinb2 = list(fitter = "glmmTMB", data = "Salamanders", family = "nbinom2", link = "log",
                   formula = "count ~ mined + spp + (1 | site)", zi = "~ mined"),
  tmb_gamma_log = list(fitter = "glmmTMB", data = "gammasim", family = "Gamma", link = "log",
                       formula = "y ~ x + (1 | g)"),
  tmb_gamma_inverse = list(fitter = "glmmTMB", data = "gammasim", family = "Gamma",
                           link = "inverse", formula = "y ~ x + (1 | g)"),
  ticks_sqrt = list(fitter = "glmer", data = "grouseticks", family = "poisson", link = "sqrt",
                    formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)"),
  dyes2_singular = list(fitter = "lmer", data = "Dyestuff2", REML = TRUE,
                        formula = "Yield ~ 1 + (1 | Batch)")
)
r2_out <- lapply(r2_models, function(spec) {
  m <- fit_model(spec)
  v <- suppressWarnings(insight::get_variance(m))
  r2 <- suppressWarnings(r2_nakagawa(m))
  ic <- suppressWarnings(icc(m))
  icc_adj <- if (is.data.frame(ic)) ic$ICC_adjusted else NA
  icc_unadj <- if (is.data.frame(ic)) ic$ICC_unadjusted else NA
  # icc(by_group = TRUE): the ICC of each grouping factor (random intercepts)
  ibg <- tryCatch(suppressWarnings(icc(m, by_group = TRUE)), error = function(e) NULL)
  by_group <- if (is.data.frame(ibg)) as.list(setNames(ibg$ICC, ibg$Group)) else NA
  vi <- v$var.intercept
  var_intercept <- if (is.null(vi)) NA else as.list(vi)
  list(spec = spec,
       var_fixed = num(v$var.fixed), var_random = num(v$var.random),
       var_residual = num(v$var.residual), var_distribution = num(v$var.distribution),
       var_dispersion = num(v$var.dispersion),
       r2_conditional = num(r2$R2_conditional), r2_marginal = num(r2$R2_marginal),
       icc_adjusted = num(icc_adj), icc_unadjusted = num(icc_unadj),
       icc_by_group = by_group, var_intercept = var_intercept,
       sigma = num(sigma(m)), loglik = num(logLik(m)))
})
write_fixture(r2_out, "r2_icc.json")

# ---------------------------------------------------------------------------------------
# lme4::rePCA: per grouping factor, the singular values of the block-diagonal relative
# covariance factor and summary(prcomp)'s importance rows.
pca_models <- r2_models[c("ss_slope", "ss_uncorr", "ortho", "pen", "contra_slope")]
pca_out <- lapply(pca_models, function(spec) {
  m <- fit_model(spec)
  p <- rePCA(m)
  groups <- lapply(p, function(pc) {
    imp <- summary(pc)$importance
    list(sdev = num(pc$sdev), proportion = num(imp[2, ]), cumulative = num(imp[3, ]))
  })
  list(spec = spec, groups = groups, theta = num(getME(m, "theta")))
})
write_fixture(pca_out, "re_pca.json")

# ---------------------------------------------------------------------------------------
# lme4's checkScaleX: which fixed-effects matrices draw "Some predictor variables are on
# very different scales: consider rescaling".
scale_cases <- list(
  plain = list(data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)"),
  days_1000 = list(data = "sleepstudy", formula = "Reaction ~ I(Days * 1000) + (1 | Subject)"),
  days_small = list(data = "sleepstudy",
                    formula = "Reaction ~ I(Days / 2000) + (1 | Subject)"),
  days_500 = list(data = "sleepstudy", formula = "Reaction ~ I(Days * 500) + (1 | Subject)"),
  two_scales = list(data = "Orthodont",
                    formula = "distance ~ I(age * 40) + I((age - 11)^2 / 40) + (1 | Subject)"),
  binary_big = list(data = "Orthodont",
                    formula = "distance ~ Sex + I(age * 300) + (1 | Subject)"),
  days_tiny = list(data = "sleepstudy", formula = "Reaction ~ I(Days / 20000) + (1 | Subject)"),
  ratio_big = list(data = "Orthodont",
                   formula = "distance ~ I(age * 20) + I((age - 11)^2 / 200) + (1 | Subject)")
)
scale_out <- lapply(scale_cases, function(spec) {
  d <- datasets[[spec$data]]
  warned <- FALSE
  withCallingHandlers(
    lmer(as.formula(spec$formula), d),
    warning = function(w) {
      if (grepl("very different scales", conditionMessage(w))) warned <<- TRUE
      invokeRestart("muffleWarning")
    })
  X <- model.matrix(lme4::nobars(as.formula(spec$formula)), d)
  list(spec = spec, warned = warned,
       col_sd = num(apply(X[, apply(X, 2, function(z) !all(z %in% c(0, 1))), drop = FALSE],
                          2, sd)))
})
write_fixture(scale_out, "scale_x.json")

# ---------------------------------------------------------------------------------------
# pbkrtest's Kenward-Roger quantities at the ML estimates of a linear mixed model (what the
# GLMM method must reduce to for a Gaussian identity-link glmer fit): the adjusted
# covariance, the df of each coefficient and the F test of each term.
kr_models <- list(
  ss_slope = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)",
                  tests = list(Days = "Days")),
  ortho_int = list(data = "Orthodont", formula = "distance ~ age * Sex + (1 | Subject)",
                   tests = list(`age:Sex` = "age:SexFemale", Sex = "SexFemale"))
)
kr_out <- lapply(kr_models, function(spec) {
  d <- datasets[[spec$data]]
  m <- lmer(as.formula(spec$formula), d, REML = FALSE)
  Phi <- as.matrix(vcov(m))
  SigmaG <- pbkrtest:::get_SigmaG(m)
  X <- getME(m, "X")
  PhiA <- pbkrtest:::vcovAdj_internal(Phi, SigmaG, X)
  p <- ncol(X)
  ddf <- sapply(seq_len(p), function(j) {
    L <- matrix(0, 1, p); L[1, j] <- 1; pbkrtest:::Lb_ddf(L, Phi, PhiA)
  })
  ftests <- lapply(spec$tests, function(cols) {
    L <- matrix(0, length(cols), p)
    for (i in seq_along(cols)) L[i, match(cols[i], colnames(X))] <- 1
    st <- pbkrtest:::.KR_adjust(PhiA, Phi, L, fixef(m), 0)
    list(ndf = num(st$ndf), ddf = num(st$ddf), Fstat = num(st$Fstat),
         F_scaling = num(st$F.scaling), p_value = num(st$p.value))
  })
  list(spec = spec, names = colnames(X), beta = num(fixef(m)), PhiA = unname(as.matrix(PhiA)), Phi = unname(Phi),
       ddf = num(ddf), ftests = ftests, theta = num(getME(m, "theta")),
       sigma = num(sigma(m)))
})
write_fixture(kr_out, "kr_lmm_ml.json")

cat("wrote", length(list.files(out_dir)), "fixtures to", out_dir, "\n")
