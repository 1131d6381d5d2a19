# Reference fits for the R-side tests (tests/test_rside_*.py): nlme's gls / lme with every
# correlation and variance class, metafor / blme for a known residual variance, MASS::glmmPQL.
# Run from the repository root:
#
#   Rscript tools/r/rside_fixtures.R
#
# Writes tests/fixtures/rside/<data>.csv (the data both sides read) and
# tests/fixtures/rside/fixtures.json: per model the R call, the Python call (evaluated by the
# tests with `mm` in scope), and nlme's estimates -- logLik, coefficients, standard errors,
# sigma, random-effect covariance, correlation and variance parameters on the natural scale,
# intervals() with nlme's defaults and with a finer apVar step (.relStep = 1e-4; nlme's
# default 6e-6 makes fdHess noisy for parameters near 0) -- its fit time (median of
# `reps`), and a refit with tight tolerances ("tight") that shows where nlme's defaults stop
# early. Tests never call R.

suppressPackageStartupMessages({
  library(nlme)
  library(MASS)
  library(metafor)
  library(blme)
  library(jsonlite)
})

out_dir <- file.path("tests", "fixtures", "rside")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
set.seed(20240611)
reps <- 7

write_data <- function(df, name) {
  write.csv(df, file.path(out_dir, paste0(name, ".csv")), row.names = FALSE)
  invisible(name)
}
read_data <- function(name, factors) {
  df <- read.csv(file.path(out_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (f in factors) df[[f]] <- factor(df[[f]])
  df
}

# -- data ------------------------------------------------------------------------------------
ov <- as.data.frame(Ovary)
ov <- data.frame(Mare = sprintf("M%02d", as.integer(as.character(ov$Mare))),
                 Time = ov$Time, follicles = ov$follicles,
                 sin2pi = sin(2 * pi * ov$Time), cos2pi = cos(2 * pi * ov$Time))
write_data(ov, "ovary")

orth <- as.data.frame(Orthodont)
orth <- data.frame(distance = orth$distance, age = orth$age,
                   Subject = as.character(orth$Subject), Sex = as.character(orth$Sex),
                   occasion = (orth$age - 6) / 2)
write_data(orth, "orthodont")

bw <- as.data.frame(BodyWeight)
bw <- data.frame(weight = bw$weight, Time = bw$Time,
                 Rat = sprintf("R%02d", as.integer(as.character(bw$Rat))),
                 Diet = paste0("D", bw$Diet))
write_data(bw, "bodyweight")

# serial data: 40 subjects, up to 7 whole-number visits with gaps, years shifted to 2001..,
# ARMA(1,1) errors, a random intercept, heteroscedastic by arm
sim_serial <- function() {
  rows <- list()
  for (s in 1:40) {
    visits <- sort(sample(0:9, sample(4:7, 1)))
    e <- arima.sim(list(ar = 0.6, ma = 0.3), n = 10)[visits + 1]
    arm <- if (s %% 2) "ctl" else "trt"
    sd_e <- if (arm == "ctl") 1 else 1.6
    rows[[s]] <- data.frame(subj.id = sprintf("S%02d", s), year = 2001 + visits,
                            arm = arm, dose = round(runif(length(visits), 0.5, 4), 2),
                            y = 10 + 0.5 * visits + (arm == "trt") + rnorm(1, 0, 1.2) +
                              sd_e * e)
  }
  do.call(rbind, rows)
}
write_data(sim_serial(), "serial")

# spatial data: 24 sites with 10 plots each, exponential correlation with a nugget within
# sites, a random site effect; coordinates in metres on a shifted grid
sim_spatial <- function() {
  rows <- list()
  for (s in 1:24) {
    east <- 5e5 + round(runif(10, 0, 200), 1)
    north <- 4e6 + round(runif(10, 0, 200), 1)
    D <- as.matrix(dist(cbind(east, north)))
    C <- 0.7 * exp(-D / 60) + 0.3 * diag(10)
    e <- drop(t(chol(C)) %*% rnorm(10))
    elev <- round(runif(10, 100, 300))
    rows[[s]] <- data.frame(site.id = sprintf("G%02d", s), east = east, north = north,
                            elev = elev, y = 3 + 0.01 * elev + rnorm(1, 0, 0.8) + 1.5 * e)
  }
  do.call(rbind, rows)
}
write_data(sim_spatial(), "spatial")

# one spatial field (no groups) of 80 points
sim_field <- function() {
  x <- runif(80, 0, 10); yy <- runif(80, 0, 10)
  D <- as.matrix(dist(cbind(x, yy)))
  C <- 0.8 * exp(-(D / 2.5)^2) + 0.2 * diag(80)
  data.frame(x = round(x, 3), yy = round(yy, 3),
             z = 1 + 0.3 * x + drop(t(chol(C)) %*% rnorm(80)))
}
write_data(sim_field(), "field")

# counts with AR(1) on the link scale, for glmmPQL
sim_counts <- function() {
  rows <- list()
  for (g in 1:30) {
    e <- arima.sim(list(ar = 0.5), n = 8) * 0.4
    x <- round(rnorm(8), 3)
    rows[[g]] <- data.frame(unit = sprintf("U%02d", g), t = 1:8, x = x,
                            count = rpois(8, exp(0.5 + 0.4 * x + rnorm(1, 0, 0.5) + e)))
  }
  do.call(rbind, rows)
}
write_data(sim_counts(), "counts")

# heteroscedastic data for the constant-plus-power variance: sd = 2 + x^1.5
sim_hetero <- function() {
  g <- rep(sprintf("H%02d", 1:20), each = 15)
  x <- round(runif(300, 0.5, 6), 3)
  u <- rnorm(20, 0, 2)[as.integer(factor(g))]
  data.frame(grp = g, x = x, y = 1 + 0.5 * x + u + (2 + x^1.5) * rnorm(300))
}
write_data(sim_hetero(), "hetero")

bac <- data.frame(y = as.integer(bacteria$y == "y"), trt = as.character(bacteria$trt),
                  late = as.integer(bacteria$week > 2), week = bacteria$week,
                  ID = as.character(bacteria$ID))
write_data(bac, "bacteria")

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
bcg <- data.frame(trial = sprintf("T%02d", bcg$trial), yi = as.numeric(bcg$yi),
                  vi = as.numeric(bcg$vi), ablat = bcg$ablat, w = 1 / as.numeric(bcg$vi))
write_data(bcg, "bcg")

sim_meta <- function() {
  k <- 30
  vi <- runif(k, 0.01, 0.3)
  data.frame(study.name = sprintf("study_%02d", 1:k), vi = vi, w = 1 / vi,
             year = sample(1990:2020, k, replace = TRUE),
             est = 0.4 + rnorm(k, 0, 0.25) + rnorm(k, 0, sqrt(vi)))
}
write_data(sim_meta(), "meta")

datasets <- list(
  ovary = read_data("ovary", "Mare"), orthodont = read_data("orthodont", c("Subject", "Sex")),
  bodyweight = read_data("bodyweight", c("Rat", "Diet")),
  serial = read_data("serial", c("subj.id", "arm")),
  spatial = read_data("spatial", "site.id"), field = read_data("field", character()),
  counts = read_data("counts", "unit"), hetero = read_data("hetero", "grp"), bacteria = read_data("bacteria", c("trt", "ID")),
  bcg = read_data("bcg", "trial"), meta = read_data("meta", "study.name"))

# -- extraction ---------------------------------------------------------------------------
median_ms <- function(expr_fun) {
  expr_fun()                                   # warm-up
  t <- replicate(reps, system.time(expr_fun())[["elapsed"]])
  1000 * median(t)
}

nat <- function(x) if (is.null(x)) NULL else as.list(x)

structs <- function(m) {
  ms <- m$modelStruct
  out <- list()
  if (!is.null(ms$corStruct)) out$cor_params <- as.numeric(coef(ms$corStruct, FALSE))
  if (!is.null(ms$varStruct)) {
    vs <- ms$varStruct
    # varIdent (alone or in a varComb): every stratum, the reference's 1 included
    v <- if (inherits(vs, c("varIdent", "varComb"))) coef(vs, FALSE, allCoef = TRUE) else
      coef(vs, FALSE)
    out$var_params <- as.numeric(v)
    out$var_names <- names(v)
  }
  out
}

ints <- function(iv) {
  lapply(iv[setdiff(names(iv), c("fixed", "coef"))], function(x) {
    if (is.list(x) && !is.matrix(x)) x <- x[[1]]
    x <- as.matrix(if (is.null(dim(x))) t(x) else x)
    list(lower = as.numeric(x[, 1]), est = as.numeric(x[, 2]), upper = as.numeric(x[, 3]),
         names = rownames(x))
  })
}

record <- function(m, kind) {
  out <- list(logLik = as.numeric(logLik(m)), coef = as.numeric(if (kind == "gls") coef(m)
                                                                else fixef(m)),
              coef_names = names(if (kind == "gls") coef(m) else fixef(m)),
              se = as.numeric(sqrt(diag(vcov(m)))), sigma = m$sigma)
  out <- c(out, structs(m))
  if (kind == "lme") {
    out$re_cov <- unclass(as.matrix(getVarCov(m)))
    dimnames(out$re_cov) <- NULL
  }
  out
}

models <- list()
add <- function(name, data, kind, r_call, py_call, intervals = TRUE, tight = NULL, ...) {
  env <- list2env(list(d = datasets[[data]]), parent = globalenv())
  fit <- function() eval(parse(text = r_call), env)
  m <- fit()
  rec <- record(m, kind)
  rec$name <- name
  rec$data <- data
  rec$kind <- kind
  rec$r_call <- r_call
  rec$py_call <- py_call
  rec$nlme_ms <- median_ms(fit)
  if (intervals) {
    # nlme refuses intervals when its approximate covariance is not positive definite
    rec$intervals <- tryCatch(ints(intervals(m)), error = function(e) conditionMessage(e))
    fine <- sub("\\)$", paste0(", control = ", if (kind == "gls") "glsControl" else "lmeControl",
                               "(.relStep = 1e-4))"), r_call)
    rec$intervals_fine <- tryCatch(ints(intervals(eval(parse(text = fine), env))),
                                   error = function(e) conditionMessage(e))
  }
  if (!is.null(tight)) {
    # several calls (other starting values); the best fit is nlme's "tight" answer
    fits <- lapply(tight, function(call) tryCatch(eval(parse(text = call), env),
                                                  error = function(e) NULL))
    fits <- Filter(Negate(is.null), fits)
    best <- fits[[which.max(vapply(fits, function(f) as.numeric(logLik(f)), 0))]]
    if (as.numeric(logLik(best)) > rec$logLik) rec$tight <- record(best, kind)
  }
  extra <- list(...)
  for (k in names(extra)) rec[[k]] <- extra[[k]]
  models[[name]] <<- rec
  cat(sprintf("%-28s logLik %.6f  (%.1f ms)\n", name, rec$logLik, rec$nlme_ms))
}

# -- gls: every correlation class -------------------------------------------------------------
add("ovary_gls_ar1", "ovary", "gls",
    "gls(follicles ~ sin2pi + cos2pi, d, correlation = corAR1(form = ~ 1 | Mare))",
    "mm.gls('follicles ~ sin2pi + cos2pi', d, correlation=mm.cor_ar1(form='~ 1 | Mare'))")
add("ovary_gls_arma11", "ovary", "gls",
    "gls(follicles ~ sin2pi + cos2pi, d, correlation = corARMA(form = ~ 1 | Mare, p = 1, q = 1))",
    "mm.gls('follicles ~ sin2pi + cos2pi', d, correlation=mm.cor_arma(form='~ 1 | Mare', p=1, q=1))")
add("ovary_gls_arma20_ml", "ovary", "gls",
    "gls(follicles ~ sin2pi + cos2pi, d, correlation = corARMA(form = ~ 1 | Mare, p = 2), method = 'ML')",
    "mm.gls('follicles ~ sin2pi + cos2pi', d, correlation=mm.cor_arma(form='~ 1 | Mare', p=2), method='ML')")
add("ovary_gls_car1", "ovary", "gls",
    "gls(follicles ~ sin2pi + cos2pi, d, correlation = corCAR1(form = ~ Time | Mare))",
    "mm.gls('follicles ~ sin2pi + cos2pi', d, correlation=mm.cor_car1(form='~ Time | Mare'))")
add("orth_gls_cs", "orthodont", "gls",
    "gls(distance ~ age * Sex, d, correlation = corCompSymm(form = ~ 1 | Subject))",
    "mm.gls('distance ~ age * Sex', d, correlation=mm.cor_comp_symm(form='~ 1 | Subject'))")
add("orth_gls_symm_ident", "orthodont", "gls",
    "gls(distance ~ age * Sex, d, correlation = corSymm(form = ~ occasion | Subject), weights = varIdent(form = ~ 1 | occasion))",
    "mm.gls('distance ~ age * Sex', d, correlation=mm.cor_symm(form='~ occasion | Subject'), variance=mm.var_ident(form='~ 1 | occasion'))")
add("serial_gls_ar1_gaps", "serial", "gls",
    "gls(y ~ year + arm, d, correlation = corAR1(form = ~ year | subj.id))",
    "mm.gls('y ~ year + arm', d, correlation=mm.cor_ar1(form='~ year | subj.id'))")
add("serial_gls_arma11_ident", "serial", "gls",
    "gls(y ~ year + arm, d, correlation = corARMA(form = ~ year | subj.id, p = 1, q = 1), weights = varIdent(form = ~ 1 | arm))",
    "mm.gls('y ~ year + arm', d, correlation=mm.cor_arma(form='~ year | subj.id', p=1, q=1), variance=mm.var_ident(form='~ 1 | arm'))")
# other starting values for the spatial classes with a nugget (nlme's default start, 0.9
# or 1.1 times the smallest distance, can leave it at a local optimum)
starts <- function(call, ranges) {
  grid <- expand.grid(r = ranges, n = c(0.05, 0.2, 0.5))
  mapply(function(r, n) sub("nugget = TRUE", sprintf("nugget = TRUE, value = c(%g, %g)", r, n),
                            call, fixed = TRUE), grid$r, grid$n)
}
for (cls in c("Exp", "Gaus", "Spher", "Lin", "Ratio")) {
  py <- paste0("cor_", tolower(cls))
  add(paste0("bw_gls_", tolower(cls)), "bodyweight", "gls",
      sprintf("gls(weight ~ Time * Diet, d, correlation = cor%s(form = ~ Time | Rat))", cls),
      sprintf("mm.gls('weight ~ Time * Diet', d, correlation=mm.%s(form='~ Time | Rat'))", py))
  call <- sprintf("gls(z ~ x, d, correlation = cor%s(form = ~ x + yy, nugget = TRUE))", cls)
  add(paste0("field_gls_", tolower(cls), "_nugget"), "field", "gls", call,
      sprintf("mm.gls('z ~ x', d, correlation=mm.%s(form='~ x + yy', nugget=True))", py),
      tight = starts(call, c(1, 2.5, 5, 8)))
}
add("spatial_gls_exp_manhattan", "spatial", "gls",
    "gls(y ~ elev, d, correlation = corExp(form = ~ east + north | site.id, metric = 'manhattan'))",
    "mm.gls('y ~ elev', d, correlation=mm.cor_exp(form='~ east + north | site.id', metric='manhattan'))")

# -- gls: every variance function -------------------------------------------------------------
add("bw_gls_power_time", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, weights = varPower(form = ~ Time))",
    "mm.gls('weight ~ Time * Diet', d, variance=mm.var_power(form='~ Time'))")
add("bw_gls_power_fitted", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, weights = varPower())",
    "mm.gls('weight ~ Time * Diet', d, variance=mm.var_power())")
add("bw_gls_power_strata", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, weights = varPower(form = ~ Time | Diet))",
    "mm.gls('weight ~ Time * Diet', d, variance=mm.var_power(form='~ Time | Diet'))")
add("bw_gls_varexp", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, weights = varExp(form = ~ Time))",
    "mm.gls('weight ~ Time * Diet', d, variance=mm.var_exp(form='~ Time'))")
add("hetero_gls_constpower", "hetero", "gls",
    "gls(y ~ x, d, weights = varConstPower(form = ~ x))",
    "mm.gls('y ~ x', d, variance=mm.var_const_power(form='~ x'))")
add("bw_gls_fixed", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, weights = varFixed(~ Time))",
    "mm.gls('weight ~ Time * Diet', d, variance=mm.var_fixed('~ Time'))", intervals = FALSE)
add("bw_gls_comb_ar1", "bodyweight", "gls",
    "gls(weight ~ Time * Diet, d, correlation = corCAR1(form = ~ Time | Rat), weights = varComb(varIdent(form = ~ 1 | Diet), varPower(form = ~ Time)))",
    "mm.gls('weight ~ Time * Diet', d, correlation=mm.cor_car1(form='~ Time | Rat'), variance=[mm.var_ident(form='~ 1 | Diet'), mm.var_power(form='~ Time')])")
add("orth_gls_ident_ml", "orthodont", "gls",
    "gls(distance ~ age * Sex, d, weights = varIdent(form = ~ 1 | Sex), method = 'ML')",
    "mm.gls('distance ~ age * Sex', d, variance=mm.var_ident(form='~ 1 | Sex'), method='ML')")
add("serial_gls_exp_dose", "serial", "gls",
    "gls(y ~ year + arm, d, weights = varExp(form = ~ dose | arm))",
    "mm.gls('y ~ year + arm', d, variance=mm.var_exp(form='~ dose | arm'))")

# -- lme -------------------------------------------------------------------------------------
add("ovary_lme_ar1", "ovary", "lme",
    "lme(follicles ~ sin2pi + cos2pi, d, random = ~ 1 | Mare, correlation = corAR1())",
    "mm.lmer('follicles ~ sin2pi + cos2pi + (1 | Mare)', d, correlation=mm.cor_ar1())")
add("ovary_lme_arma11_ml", "ovary", "lme",
    "lme(follicles ~ sin2pi + cos2pi, d, random = ~ 1 | Mare, correlation = corARMA(p = 1, q = 1), method = 'ML')",
    "mm.lmer('follicles ~ sin2pi + cos2pi + (1 | Mare)', d, correlation=mm.cor_arma(p=1, q=1), REML=False)")
add("ovary_lme_slope_car1", "ovary", "lme",
    "lme(follicles ~ sin2pi + cos2pi, d, random = ~ sin2pi | Mare, correlation = corCAR1(form = ~ Time))",
    "mm.lmer('follicles ~ sin2pi + cos2pi + (sin2pi | Mare)', d, correlation=mm.cor_car1(form='~ Time'))")
add("orth_lme_ident", "orthodont", "lme",
    "lme(distance ~ age * Sex, d, random = ~ 1 | Subject, weights = varIdent(form = ~ 1 | Sex))",
    "mm.lmer('distance ~ age * Sex + (1 | Subject)', d, variance=mm.var_ident(form='~ 1 | Sex'))")
# (a random intercept and compound symmetry in the same groups are one parameter: the
# correlation acts within rats, the random intercept between diets)
add("bw_lme_cs_nested", "bodyweight", "lme",
    "lme(weight ~ Time, d, random = ~ 1 | Diet, correlation = corCompSymm(form = ~ 1 | Diet/Rat))",
    "mm.lmer('weight ~ Time + (1 | Diet)', d, correlation=mm.cor_comp_symm(form='~ 1 | Diet/Rat'))")
add("bw_lme_car1_power", "bodyweight", "lme",
    "lme(weight ~ Time * Diet, d, random = ~ Time | Rat, correlation = corCAR1(form = ~ Time), weights = varPower())",
    "mm.lmer('weight ~ Time * Diet + (Time | Rat)', d, correlation=mm.cor_car1(form='~ Time'), variance=mm.var_power())")
add("bw_lme_exp_ml", "bodyweight", "lme",
    "lme(weight ~ Time * Diet, d, random = ~ 1 | Rat, correlation = corExp(form = ~ Time), method = 'ML')",
    "mm.lmer('weight ~ Time * Diet + (1 | Rat)', d, correlation=mm.cor_exp(form='~ Time'), REML=False)")
add("serial_lme_arma11", "serial", "lme",
    "lme(y ~ year + arm, d, random = ~ 1 | subj.id, correlation = corARMA(form = ~ year | subj.id, p = 1, q = 1))",
    "mm.lmer('y ~ year + arm + (1 | subj.id)', d, correlation=mm.cor_arma(form='~ year | subj.id', p=1, q=1))")
add("orth_lme_symm_nested", "orthodont", "lme",
    "lme(distance ~ age, d, random = ~ 1 | Sex, correlation = corSymm(form = ~ occasion | Sex/Subject))",
    "mm.lmer('distance ~ age + (1 | Sex)', d, correlation=mm.cor_symm(form='~ occasion | Sex/Subject'))",
    intervals = FALSE)
add("hetero_lme_constpower", "hetero", "lme",
    "lme(y ~ x, d, random = ~ 1 | grp, weights = varConstPower(form = ~ x))",
    "mm.lmer('y ~ x + (1 | grp)', d, variance=mm.var_const_power(form='~ x'))")
for (cls in c("Exp", "Gaus", "Spher", "Lin", "Ratio")) {
  py <- paste0("cor_", tolower(cls))
  call <- sprintf("lme(y ~ elev, d, random = ~ 1 | site.id, correlation = cor%s(form = ~ east + north | site.id, nugget = TRUE))", cls)
  add(paste0("spatial_lme_", tolower(cls), "_nugget"), "spatial", "lme", call,
      sprintf("mm.lmer('y ~ elev + (1 | site.id)', d, correlation=mm.%s(form='~ east + north | site.id', nugget=True))", py),
      tight = starts(call, c(30, 60, 120, 200)))
}
# lme with a known sigma: nlme's fixed-sigma patch optimizes another criterion than the
# (restricted) likelihood at that sigma, so the reference is the likelihood written out here
# (dense marginal covariance) and maximized by optimize(); nlme's numbers are kept beside it
sigma_rec <- function(name, reml) {
  d <- datasets$orthodont
  X <- model.matrix(~ age * Sex, d); y <- d$distance
  Z <- model.matrix(~ 0 + Subject, d)
  crit <- function(tau2, sigma = 2) {
    V <- tau2 * Z %*% t(Z) + sigma^2 * diag(nrow(d)); Vi <- solve(V)
    XVX <- t(X) %*% Vi %*% X; b <- solve(XVX, t(X) %*% Vi %*% y); r <- y - X %*% b
    dof <- if (reml) nrow(d) - ncol(X) else nrow(d)
    ll <- -0.5 * (determinant(V)$modulus + t(r) %*% Vi %*% r + dof * log(2 * pi))
    if (reml) ll <- ll - 0.5 * determinant(XVX)$modulus
    list(ll = as.numeric(ll), beta = as.numeric(b), se = sqrt(diag(solve(XVX))))
  }
  o <- optimize(function(t2) crit(t2)$ll, c(1e-4, 50), maximum = TRUE, tol = 1e-10)
  at <- crit(o$maximum)
  nl <- lme(distance ~ age * Sex, d, random = ~ 1 | Subject,
            method = if (reml) "REML" else "ML",
            control = lmeControl(sigma = 2, msMaxIter = 200))
  models[[name]] <<- list(
    name = name, data = "orthodont", kind = "sigma", py_call = sprintf(
      "mm.lmer('distance ~ age * Sex + (1 | Subject)', d, sigma=2.0, REML=%s)",
      if (reml) "True" else "False"),
    logLik = at$ll, tau2 = o$maximum, coef = at$beta, se = at$se,
    nlme_logLik = as.numeric(logLik(nl)), nlme_tau2 = as.numeric(getVarCov(nl)))
  cat(sprintf("%-28s logLik %.6f (nlme %.6f)\n", name, at$ll, as.numeric(logLik(nl))))
}
sigma_rec("orth_sigma2_reml", TRUE)
sigma_rec("orth_sigma2_ml", FALSE)

# -- known residual variance: metafor and blme ---------------------------------------------
meta_rec <- function(name, data, rma_call, blme_call, py_call) {
  env <- list2env(list(d = datasets[[data]]), parent = globalenv())
  r <- eval(parse(text = rma_call), env)
  b <- eval(parse(text = blme_call), env)
  models[[name]] <<- list(
    name = name, data = data, kind = "meta", r_call = rma_call, blme_call = blme_call,
    py_call = py_call, tau2 = r$tau2, coef = as.numeric(r$beta), se = as.numeric(r$se),
    blme_logLik = as.numeric(logLik(b)), blme_coef = as.numeric(lme4::fixef(b)),
    blme_se = as.numeric(sqrt(diag(as.matrix(vcov(b))))),
    blme_tau2 = as.numeric(lme4::VarCorr(b)[[1]]))
  cat(sprintf("%-28s tau2 %.6f\n", name, r$tau2))
}
meta_rec("bcg_reml", "bcg", "rma(yi, vi, data = d, method = 'REML', control = list(threshold = 1e-12, maxiter = 1000))",
         "blmer(yi ~ 1 + (1 | trial), weights = w, resid.prior = point(1), cov.prior = NULL, data = d)",
         "mm.lmer('yi ~ 1 + (1 | trial)', d, weights='w', sigma=1.0)")
meta_rec("bcg_ablat_reml", "bcg", "rma(yi, vi, mods = ~ ablat, data = d, method = 'REML', control = list(threshold = 1e-12, maxiter = 1000))",
         "blmer(yi ~ ablat + (1 | trial), weights = w, resid.prior = point(1), cov.prior = NULL, data = d)",
         "mm.lmer('yi ~ ablat + (1 | trial)', d, weights='w', sigma=1.0)")
meta_rec("meta_year_ml", "meta", "rma(est, vi, mods = ~ year, data = d, method = 'ML', control = list(threshold = 1e-12, maxiter = 1000))",
         "blmer(est ~ year + (1 | study.name), weights = w, resid.prior = point(1), cov.prior = NULL, data = d, REML = FALSE)",
         "mm.lmer('est ~ year + (1 | study.name)', d, weights='w', sigma=1.0, REML=False)")

# -- MASS::glmmPQL ---------------------------------------------------------------------------
pql_rec <- function(name, data, r_call, py_call) {
  env <- list2env(list(d = datasets[[data]]), parent = globalenv())
  fit <- function() eval(parse(text = r_call), env)
  m <- fit()
  rec <- list(name = name, data = data, kind = "pql", r_call = r_call, py_call = py_call,
              coef = as.numeric(fixef(m)), coef_names = names(fixef(m)),
              se = as.numeric(sqrt(diag(vcov(m)))), sigma = m$sigma,
              re_sd = as.numeric(sqrt(diag(as.matrix(getVarCov(m))))),
              nlme_ms = median_ms(fit))
  rec <- c(rec, structs(m))
  models[[name]] <<- rec
  cat(sprintf("%-28s sigma %.6f (%.1f ms)\n", name, m$sigma, rec$nlme_ms))
}
pql_rec("bacteria_pql", "bacteria",
        "glmmPQL(y ~ trt + late, random = ~ 1 | ID, family = binomial, data = d, verbose = FALSE)",
        "mm.glmm_pql('y ~ trt + late + (1 | ID)', d, family='binomial')")
pql_rec("counts_pql_ar1", "counts",
        "glmmPQL(count ~ x, random = ~ 1 | unit, family = poisson, data = d, correlation = corAR1(form = ~ t | unit), verbose = FALSE)",
        "mm.glmm_pql('count ~ x + (1 | unit)', d, family='poisson', correlation=mm.cor_ar1(form='~ t | unit'))")
pql_rec("counts_pql_exp", "counts",
        "glmmPQL(count ~ x, random = ~ 1 | unit, family = poisson, data = d, correlation = corExp(form = ~ t | unit), verbose = FALSE)",
        "mm.glmm_pql('count ~ x + (1 | unit)', d, family='poisson', correlation=mm.cor_exp(form='~ t | unit'))")

versions <- list(R = R.version.string, nlme = as.character(packageVersion("nlme")),
                 MASS = as.character(packageVersion("MASS")),
                 metafor = as.character(packageVersion("metafor")),
                 blme = as.character(packageVersion("blme")))
write_json(list(versions = versions, models = unname(models)),
           file.path(out_dir, "fixtures.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE,
           null = "null")
