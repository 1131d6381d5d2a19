# Reference fits of blme (blmer / bglmer) for tests/test_bayes_blme.py, written to
# tests/fixtures/blme/blme_fixtures.json. Run from the repository root:
#
#   Rscript tools/r/blme_fixtures.R
#
# Each case carries the R call and the same model spelled for Python ("py": formula, data,
# priors as {"dist": ..., "args": {...}} with Python argument names). Recorded per case:
#
# * objective    -- the penalized objective blme minimizes: its REML criterion / deviance
#                   plus the prior deviance (blme stores the two apart: REMLcrit() or
#                   deviance() is the likelihood part at the estimates, "penalty" the prior)
# * likelihood, penalty -- the two parts
# * theta, beta, sigma, se (sqrt(diag(vcov))) at the optimum
# * devfun_at    -- blme's deviance function (devFunOnly = TRUE) at perturbed parameters,
#                   for a tight test of the objective away from the optimum
# * printed      -- blme's print() of the fit (the prior lines are compared)
#
# Fits are tightened (BOBYQA to small tolerances, PIRLS to 1e-12) so that they pin down
# blme's optimum of its own objective rather than its default stopping point.
#
# Data: the bundled CSVs in src/mixedmodels/datasets/data with their factor level orders;
# simulated data sets are stored inside the fixture ("data_records").

suppressPackageStartupMessages({
  library(lme4)
  library(blme)
  library(jsonlite)
})

data_dir <- file.path("src", "mixedmodels", "datasets", "data")
out_dir <- file.path("tests", "fixtures", "blme")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
levels_all <- fromJSON(file.path(data_dir, "factor_levels.json"), simplifyVector = TRUE)

load_data <- function(name) {
  lev <- levels_all[[name]]
  cc <- setNames(rep("character", length(lev)), names(lev))
  df <- read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = cc)
  for (col in names(lev)) df[[col]] <- factor(df[[col]], levels = lev[[col]])
  df
}

lctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-11, maxfun = 1e5),
                     check.conv.singular = "ignore")
gctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(rhoend = 1e-10, maxfun = 1e5),
                      check.conv.singular = "ignore")

# -- simulated data sets --------------------------------------------------------------------
set.seed(20240511)
# meta-analysis (the FAQ's fixed residual variance): one estimate per study, known variance
meta <- data.frame(study = factor(sprintf("s%02d", 1:12)), V = round(runif(12, 0.05, 0.6), 4))
meta$y <- round(0.4 + rnorm(12, 0, 0.25) + rnorm(12, 0, sqrt(meta$V)), 4)
meta$w <- 1 / meta$V
# a random slope whose correlation lmer puts at -1 (singular vector term)
nsub <- 8
sing <- expand.grid(t = 0:4, g = factor(sprintf("g%d", 1:nsub)))
b0 <- rnorm(nsub, 0, 1)
sing$y <- round(2 + 0.5 * sing$t + b0[as.integer(sing$g)] - 0.05 * b0[as.integer(sing$g)] * sing$t +
                  rnorm(nrow(sing), 0, 1.2), 4)
# complete separation in a binary GLMM (glmer's estimate of the x effect runs away)
sep <- data.frame(g = factor(rep(sprintf("h%d", 1:10), each = 6)), x = rep(c(0, 0, 0, 1, 1, 1), 10))
sep$z <- round(rnorm(nrow(sep)), 4)
sep$y <- ifelse(sep$x == 1, 1, rbinom(nrow(sep), 1, 0.3))
# a binomial GLMM whose group variance glmer estimates as 0
gsing <- data.frame(g = factor(rep(sprintf("k%d", 1:6), each = 10)), x = round(rnorm(60), 4))
gsing$y <- rbinom(60, 1, plogis(-0.3 + 0.8 * gsing$x))

simulated <- list(meta = meta, sing = sing, sep = sep, gsing = gsing)
get_data <- function(name) if (!is.null(simulated[[name]])) simulated[[name]] else load_data(name)

source("tools/r/blme_multistart.R")  # num, vcov_se, perturbed, multistart, refit_call

entry <- function(name, r_call, py) {
  cat("case:", name, "\n")
  dat <- get_data(py$data)
  env <- new.env()
  env$dat <- dat
  m0 <- eval(parse(text = r_call), env)
  glmm <- isGLMM(m0)
  dcall <- sub("\\)\\s*$", ", devFunOnly = TRUE)", r_call)
  devfun <- eval(parse(text = dcall), env)
  pinfo <- environment(devfun)$parInfo
  if (glmm) {
    par_names <- c("theta", "beta")
    par0 <- c(getME(m0, "theta"), fixef(m0))
    lower <- c(getME(m0, "lower"), rep(-Inf, length(fixef(m0))))
  } else {
    par_names <- names(pinfo)
    par0 <- getME(m0, "theta")
    if (!is.null(pinfo$beta)) par0 <- c(par0, fixef(m0))
    if (!is.null(pinfo$sigma)) par0 <- c(par0, sigma(m0))
    lower <- unlist(lapply(pinfo, function(x) x$lower))
  }
  k <- length(getME(m0, "theta"))
  # other starts: lme4's (identity relative covariance), for GLMMs also with beta = 0
  s1 <- par0
  s1[seq_len(k)] <- ifelse(lower[seq_len(k)] == 0, 1, 0)
  starts <- list(s1)
  if (glmm) { s2 <- s1; s2[-(1:k)] <- 0; starts <- c(starts, list(s2)) }
  best <- multistart(devfun, par0, lower, starts)
  # refit by blme from the best point
  env$best <- best$par
  start_expr <- if (glmm) sprintf("list(theta = best[1:%d], fixef = best[-(1:%d)])", k, k) else {
    parts <- sprintf("theta = best[1:%d]", k)
    off <- k
    if (!is.null(pinfo$beta)) { parts <- c(parts, sprintf("beta = best[%d:%d]", off + 1, off + length(fixef(m0)))); off <- off + length(fixef(m0)) }
    if (!is.null(pinfo$sigma)) parts <- c(parts, sprintf("sigma = best[%d]", off + 1))
    paste0("list(", paste(parts, collapse = ", "), ")")
  }
  obj0 <- m0@devcomp$cmp[[if (glmm || !isREML(m0)) "dev" else "REML"]] + m0@devcomp$cmp[["penalty"]]
  m <- if (best$value >= obj0 - 1e-9) m0 else eval(parse(text = refit_call(r_call, start_expr)), env)
  dc <- m@devcomp$cmp
  lik <- if (glmm) dc[["dev"]] else if (isREML(m)) dc[["REML"]] else dc[["dev"]]
  penalty <- dc[["penalty"]]
  cat(sprintf("   blme default %.6f, multistart %.6f, refit %.6f\n",
              m0@devcomp$cmp[[if (glmm || !isREML(m0)) "dev" else "REML"]] + m0@devcomp$cmp[["penalty"]],
              best$value, lik + penalty))
  if (lik + penalty > best$value + 1e-6) {
    cat("   REFIT MOVED AWAY\n")
    return(NULL)
  }
  par <- if (glmm) c(getME(m, "theta"), fixef(m)) else {
    p <- getME(m, "theta")
    if (!is.null(pinfo$beta)) p <- c(p, fixef(m))
    if (!is.null(pinfo$sigma)) p <- c(p, sigma(m))
    p
  }
  at <- list()
  for (j in 1:2) {
    p <- if (j == 1) par else perturbed(par, lower)
    at[[j]] <- list(par = num(p), value = devfun(p))
  }
  printed <- capture.output(print(m))
  out <- list(
    name = name, r_call = r_call, py = py,
    objective = lik + penalty, likelihood = num(lik), penalty = num(penalty),
    blme_default_objective = num(m0@devcomp$cmp[[if (glmm || !isREML(m0)) "dev" else "REML"]] +
                                   m0@devcomp$cmp[["penalty"]]),
    theta = num(getME(m, "theta")), beta = num(fixef(m)), beta_names = names(fixef(m)),
    sigma = if (glmm) NULL else num(sigma(m)),
    se = num(vcov_se(m)), nobs = nobs(m),
    devfun_params = par_names, devfun_at = at,
    printed = printed
  )
  if (!is.null(simulated[[py$data]])) out$data_records <- simulated[[py$data]]
  out
}

gr <- function(...) list(by_group = list(...))
pr <- function(dist, ...) list(dist = dist, args = list(...))

cases <- list(
  # -- the FAQ's singular fit and its stabilization --------------------------------------
  entry("dyestuff2_default_reml",
        "blmer(Yield ~ 1 + (1 | Batch), dat, control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = TRUE,
             cov_prior = "default")),
  entry("dyestuff2_default_ml",
        "blmer(Yield ~ 1 + (1 | Batch), dat, REML = FALSE, control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = FALSE,
             cov_prior = "default")),
  entry("dyestuff_default_reml",
        "blmer(Yield ~ 1 + (1 | Batch), dat, control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff", REML = TRUE,
             cov_prior = "default")),
  entry("dyestuff2_gamma_var",
        "blmer(Yield ~ 1 + (1 | Batch), dat, cov.prior = gamma(shape = 2, rate = 0.5, posterior.scale = 'var'), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = TRUE,
             cov_prior = pr("gamma", shape = 2, rate = 0.5, posterior_scale = "var"))),
  entry("dyestuff2_invgamma_default",
        "blmer(Yield ~ 1 + (1 | Batch), dat, cov.prior = invgamma, control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = TRUE,
             cov_prior = pr("invgamma"))),
  entry("sleepstudy_default_reml",
        "blmer(Reaction ~ Days + (Days | Subject), dat, control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = TRUE, cov_prior = "default")),
  entry("sleepstudy_invwishart_ml",
        "blmer(Reaction ~ Days + (Days | Subject), dat, REML = FALSE, cov.prior = invwishart, control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = FALSE, cov_prior = pr("invwishart"))),
  entry("sleepstudy_wishart_scale_reml",
        "blmer(Reaction ~ Days + (Days | Subject), dat, cov.prior = wishart(df = 5, scale = diag(c(2, 0.5))), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = TRUE, cov_prior = pr("wishart", df = 5, scale = list(c(2, 0), c(0, 0.5))))),
  entry("sleepstudy_uncorrelated_gamma",
        "blmer(Reaction ~ Days + (1 | Subject) + (0 + Days | Subject), dat, cov.prior = gamma, control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
             data = "sleepstudy", REML = TRUE, cov_prior = pr("gamma"))),
  entry("singular_slope_default",
        "blmer(y ~ t + (t | g), dat, control = lctrl)",
        list(fun = "blmer", formula = "y ~ t + (t | g)", data = "sing", REML = TRUE,
             cov_prior = "default")),
  entry("penicillin_by_group",
        "blmer(diameter ~ 1 + (1 | plate) + (1 | sample), dat, cov.prior = list(plate ~ gamma(shape = 2, rate = 0.5, posterior.scale = 'var'), sample ~ invgamma(shape = 1, scale = 2)), control = lctrl)",
        list(fun = "blmer", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", data = "Penicillin",
             REML = TRUE,
             cov_prior = gr(plate = pr("gamma", shape = 2, rate = 0.5, posterior_scale = "var"),
                            sample = pr("invgamma", shape = 1, scale = 2)))),
  entry("penicillin_one_group_only",
        "blmer(diameter ~ 1 + (1 | plate) + (1 | sample), dat, cov.prior = sample ~ wishart, control = lctrl)",
        list(fun = "blmer", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", data = "Penicillin",
             REML = TRUE, cov_prior = gr(sample = pr("wishart")))),
  # -- priors on the absolute scale (common.scale = FALSE): sigma no longer profiles linearly --
  entry("dyestuff_gamma_sd_absolute",
        "blmer(Yield ~ 1 + (1 | Batch), dat, cov.prior = gamma(shape = 2, rate = 0.02, common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff", REML = TRUE,
             cov_prior = pr("gamma", shape = 2, rate = 0.02, common_scale = FALSE))),
  entry("dyestuff_invgamma_var_absolute",
        "blmer(Yield ~ 1 + (1 | Batch), dat, cov.prior = invgamma(shape = 2, scale = 500, posterior.scale = 'var', common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff", REML = TRUE,
             cov_prior = pr("invgamma", shape = 2, scale = 500, posterior_scale = "var",
                            common_scale = FALSE))),
  entry("sleepstudy_wishart_absolute",
        "blmer(Reaction ~ Days + (Days | Subject), dat, cov.prior = wishart(df = 4, scale = diag(c(400, 30)), common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = TRUE, cov_prior = pr("wishart", df = 4, scale = list(c(400, 0), c(0, 30)),
                                         common_scale = FALSE))),
  entry("sleepstudy_invwishart_sqrt_absolute",
        "blmer(Reaction ~ Days + (Days | Subject), dat, REML = FALSE, cov.prior = invwishart(df = 4, scale = diag(c(300, 20)), common.scale = FALSE, posterior.scale = 'sqrt'), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = FALSE, cov_prior = pr("invwishart", df = 4, scale = list(c(300, 0), c(0, 20)),
                                          common_scale = FALSE, posterior_scale = "sqrt"))),
  # -- fixed-effect priors ----------------------------------------------------------------
  entry("sleepstudy_normal_fixef",
        "blmer(Reaction ~ Days + (Days | Subject), dat, fixef.prior = normal(sd = c(10, 2.5)), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = TRUE, cov_prior = "default", fixef_prior = pr("normal", sd = c(10, 2.5)))),
  entry("sleepstudy_normal_fixef_absolute",
        "blmer(Reaction ~ Days + (Days | Subject), dat, REML = FALSE, fixef.prior = normal(sd = c(100, 5), common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
             REML = FALSE, cov_prior = "default",
             fixef_prior = pr("normal", sd = c(100, 5), common_scale = FALSE))),
  entry("dyestuff_t_fixef",
        "blmer(Yield ~ 1 + (1 | Batch), dat, REML = FALSE, fixef.prior = t(df = 4, mean = 1400, scale = 400), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff", REML = FALSE,
             cov_prior = "default", fixef_prior = pr("t", df = 4, mean = 1400, scale = 400))),
  entry("sleepstudy_t_fixef_absolute",
        "blmer(Reaction ~ Days + (1 | Subject), dat, REML = FALSE, fixef.prior = t(df = 3, mean = c(250, 0), scale = c(100, 4), common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "Reaction ~ Days + (1 | Subject)", data = "sleepstudy",
             REML = FALSE, cov_prior = "default",
             fixef_prior = pr("t", df = 3, mean = c(250, 0), scale = c(100, 4),
                              common_scale = FALSE))),
  # -- residual priors ----------------------------------------------------------------------
  entry("meta_point_sigma",
        "blmer(y ~ 1 + (1 | study), dat, weights = w, resid.prior = point(1.0), cov.prior = NULL, control = lctrl)",
        list(fun = "blmer", formula = "y ~ 1 + (1 | study)", data = "meta", REML = TRUE,
             weights = "w", cov_prior = NULL, resid_prior = pr("point", value = 1.0))),
  entry("meta_point_sigma_ml_prior",
        "blmer(y ~ 1 + (1 | study), dat, REML = FALSE, weights = w, resid.prior = point(1.0), cov.prior = gamma(shape = 1.5, rate = 1, common.scale = FALSE), control = lctrl)",
        list(fun = "blmer", formula = "y ~ 1 + (1 | study)", data = "meta", REML = FALSE,
             weights = "w", cov_prior = pr("gamma", shape = 1.5, rate = 1, common_scale = FALSE),
             resid_prior = pr("point", value = 1.0))),
  entry("dyestuff_resid_invgamma",
        "blmer(Yield ~ 1 + (1 | Batch), dat, resid.prior = invgamma(shape = 2, scale = 3000), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff", REML = TRUE,
             cov_prior = "default", resid_prior = pr("invgamma", shape = 2, scale = 3000))),
  entry("dyestuff2_resid_gamma",
        "blmer(Yield ~ 1 + (1 | Batch), dat, REML = FALSE, resid.prior = gamma(shape = 3, rate = 0.2), control = lctrl)",
        list(fun = "blmer", formula = "Yield ~ 1 + (1 | Batch)", data = "Dyestuff2", REML = FALSE,
             cov_prior = "default", resid_prior = pr("gamma", shape = 3, rate = 0.2))),
  # -- bglmer -----------------------------------------------------------------------------
  entry("cbpp_default",
        "bglmer(cbind(incidence, size - incidence) ~ period + (1 | herd), dat, family = binomial, control = gctrl)",
        list(fun = "bglmer", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
             data = "cbpp", family = "binomial", cov_prior = "default")),
  entry("cbpp_normal_fixef",
        "bglmer(cbind(incidence, size - incidence) ~ period + (1 | herd), dat, family = binomial, fixef.prior = normal, control = gctrl)",
        list(fun = "bglmer", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
             data = "cbpp", family = "binomial", cov_prior = "default",
             fixef_prior = pr("normal"))),
  entry("cbpp_t_fixef_gamma",
        "bglmer(cbind(incidence, size - incidence) ~ period + (1 | herd), dat, family = binomial, fixef.prior = t(df = 5, scale = c(9, 1)), cov.prior = gamma(shape = 2, rate = 1), control = gctrl)",
        list(fun = "bglmer", formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
             data = "cbpp", family = "binomial", cov_prior = pr("gamma", shape = 2, rate = 1),
             fixef_prior = pr("t", df = 5, scale = c(9, 1)))),
  entry("separation_normal_fixef",
        "bglmer(y ~ x + z + (1 | g), dat, family = binomial, fixef.prior = normal(sd = c(3, 3)), control = gctrl)",
        list(fun = "bglmer", formula = "y ~ x + z + (1 | g)", data = "sep", family = "binomial",
             cov_prior = "default", fixef_prior = pr("normal", sd = c(3, 3)))),
  entry("glmm_singular_default",
        "bglmer(y ~ x + (1 | g), dat, family = binomial, control = gctrl)",
        list(fun = "bglmer", formula = "y ~ x + (1 | g)", data = "gsing", family = "binomial",
             cov_prior = "default")),
  entry("contraception_vector_invwishart",
        "bglmer(use ~ age + urban + (urban | district), dat, family = binomial, cov.prior = invwishart, control = gctrl)",
        list(fun = "bglmer", formula = "use ~ age + urban + (urban | district)", data = "Contraception",
             family = "binomial", cov_prior = pr("invwishart"))),
  entry("grouseticks_poisson_normal",
        "bglmer(TICKS ~ YEAR + cHEIGHT + (1 | LOCATION), dat, family = poisson, fixef.prior = normal(sd = c(5, 2)), control = gctrl)",
        list(fun = "bglmer", formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", data = "grouseticks",
             family = "poisson", cov_prior = "default", fixef_prior = pr("normal", sd = c(5, 2))))
)

cases <- Filter(Negate(is.null), cases)
versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 blme = as.character(packageVersion("blme")))
write_json(list(versions = versions, cases = cases), file.path(out_dir, "blme_fixtures.json"),
           auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
cat("wrote", length(cases), "cases\n")
