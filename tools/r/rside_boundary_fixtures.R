# nlme fits whose variance parameters sit at (or run to) the boundary of their range: a
# varConstPower constant going to 0 (our log-scale optimizer stopped short of nlme's
# optimum), and intervals() where a parameter is flat at its boundary (we refused; nlme
# prints (0, Inf)-like intervals when its approximate covariance is positive definite and
# refuses otherwise). Run from the repository root:
#
#   Rscript tools/r/rside_boundary_fixtures.R
#
# Writes tests/fixtures/rside_boundary/<data>.csv and fixtures.json: per model the R call,
# the Python call (tests evaluate it with `mm` and the data as `d`), nlme's estimates and
# intervals() (or its error message), and for parameters flat at a boundary the fit of the
# limit model (the boundary parameter removed), whose intervals are the reference for the
# remaining parameters.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
out_dir <- file.path("tests", "fixtures", "rside_boundary")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)

write_data <- function(df, name) write.csv(df, file.path(out_dir, paste0(name, ".csv")),
                                           row.names = FALSE)
read_data <- function(name) read.csv(file.path(out_dir, paste0(name, ".csv")),
                                     stringsAsFactors = TRUE)

# -- data ------------------------------------------------------------------------------------
# heteroscedastic by stratum: sd = 0.5 (c_s + v^delta_s) with c = 0 in stratum "lo", a
# group effect of sd 0.4 (used by the lme fits)
set.seed(8101)
n_g <- 30
cp <- data.frame(g = factor(sprintf("g%02d", rep(1:n_g, each = 8))), t = rep(1:8, n_g))
cp$s <- factor(rep(c("lo", "mid", "hi"), length.out = nrow(cp)))
cp$x <- round(rnorm(nrow(cp)), 6)
cp$v <- round(exp(rnorm(nrow(cp), 0, 0.6)), 6)
csd <- c(lo = 0, mid = 0.3, hi = 0.1)[as.character(cp$s)]
pw <- c(lo = 0.4, mid = 0.2, hi = 0.7)[as.character(cp$s)]
b <- rnorm(n_g, 0, 0.4)[as.integer(cp$g)]
e <- rnorm(nrow(cp))
cp$y <- round(2 + 0.5 * cp$x + e * 0.5 * (csd + cp$v^pw), 6)
cp$yg <- round(2 + 0.5 * cp$x + b + e * 0.5 * (csd + cp$v^pw), 6)
write_data(cp, "constpower")

# a second set with other names and scales: counts of hours (v in the hundreds), two strata
# named with spaces, a power of the covariate near 1 and a constant at 0 in one of them
set.seed(8102)
n <- 150
hv <- data.frame(shift = factor(rep(c("day shift", "night shift"), length.out = n)))
hv$hours <- round(runif(n, 20, 400), 3)
hv$load <- round(rnorm(n, 10, 2), 6)
sdv <- ifelse(hv$shift == "day shift", 0 + (hv$hours / 100)^0.9, 2 + (hv$hours / 100)^1.2)
hv$out <- round(50 + 3 * hv$load + rnorm(n) * 0.8 * sdv, 6)
write_data(hv, "hours")

# no group effect and no serial correlation: an lme random intercept and a within-group
# exponential correlation both go to their boundary
set.seed(1)
n_g <- 20
nb <- data.frame(g = factor(sprintf("s%02d", rep(1:n_g, each = 6))), t = rep(1:6, n_g))
nb$x <- round(rnorm(nrow(nb)), 6)
nb$y <- round(0.5 * nb$x + rnorm(nrow(nb)), 6)
write_data(nb, "noeffect")

# spatial: the first 60 rows of the parity sweep's simulated data (tools/r/sweep), whose
# ratio / Gaussian / linear correlations run to a range below the smallest distance
sp <- read.csv(file.path("tests", "fixtures", "sweep", "gau_pois_short.csv"))
set.seed(6060)
sp$y <- round(0.4 * sp$x + rnorm(nrow(sp), 0, 0.6), 6)
write_data(sp[, c("x", "cx", "cy", "y")], "spatial")

# the parity sweep's own case (tools/r/sweep: sweep_glmmtmb.R writes OUT/data/sw.csv): its
# columns y_gauss, x, f; xpos = exp(x / 2) as sweep_nlme.R makes it
if (!file.exists(file.path(out_dir, "sweep_cp.csv"))) {
  sw <- read.csv(file.path("/tmp/sweep", "data", "sw.csv"), check.names = FALSE)
  write_data(data.frame(y_gauss = sw$y_gauss, x = sw$x, f = sw$f), "sweep_cp")
}

cp <- read_data("constpower"); hv <- read_data("hours"); nb <- read_data("noeffect")
sp <- read_data("spatial"); sc <- read_data("sweep_cp"); sc$xpos <- exp(sc$x / 2)
# the sweep regression's nested data (tools/r/sweep/regression_fixtures.R)
na1 <- read.csv(file.path("tests", "fixtures", "sweep", "nested_ar1.csv"), stringsAsFactors = TRUE)
datasets <- list(constpower = cp, hours = hv, noeffect = nb, spatial = sp, sweep_cp = sc,
                 nested_ar1 = na1)

# -- records ---------------------------------------------------------------------------------
ints <- function(iv) {
  lapply(iv[setdiff(names(iv), "fixed")], function(x) {
    if (is.list(x) && !is.matrix(x) && !is.data.frame(x)) x <- x[[1]]  # reStruct by level
    x <- as.matrix(if (is.null(dim(x))) t(x) else x)
    list(lower = as.numeric(x[, 1]), est = as.numeric(x[, 2]), upper = as.numeric(x[, 3]),
         names = rownames(x))
  })
}
fixed_ints <- function(m) {
  x <- intervals(m, which = if (inherits(m, "gls")) "coef" else "fixed")[[1]]
  list(lower = as.numeric(x[, 1]), est = as.numeric(x[, 2]), upper = as.numeric(x[, 3]),
       names = rownames(x))
}
structs <- function(m) {
  ms <- m$modelStruct
  out <- list()
  if (!is.null(ms$corStruct)) out$cor_params <- as.numeric(coef(ms$corStruct, FALSE))
  if (!is.null(ms$varStruct)) {
    vs <- ms$varStruct
    v <- if (inherits(vs, "varIdent")) coef(vs, FALSE, allCoef = TRUE) else coef(vs, FALSE)
    out$var_params <- as.list(setNames(as.numeric(v), names(v)))
  }
  out
}
record <- function(m) {
  cf <- if (inherits(m, "gls")) coef(m) else fixef(m)
  out <- c(list(logLik = as.numeric(logLik(m)), coef = as.numeric(cf),
                coef_names = names(cf), se = as.numeric(sqrt(diag(vcov(m)))),
                sigma = m$sigma), structs(m))
  if (inherits(m, "lme")) out$re_sd <- as.numeric(VarCorr(m)[, "StdDev"][1])
  out$intervals <- tryCatch(ints(intervals(m)), error = function(e) conditionMessage(e))
  out$intervals_fixed <- fixed_ints(m)
  out
}

models <- list()
add <- function(name, data, r_call, py_call, limit = NULL, limit_py = NULL, note = NULL) {
  env <- list2env(list(d = datasets[[data]]), parent = globalenv())
  if (is.null(datasets[[data]])) stop("no data set ", data)
  m <- eval(parse(text = r_call), env)
  file <- if (data == "nested_ar1") "sweep/nested_ar1.csv" else
    paste0("rside_boundary/", data, ".csv")    # relative to tests/fixtures
  rec <- c(list(name = name, data = data, data_file = file, r_call = r_call,
                py_call = py_call), record(m))
  if (!is.null(limit)) {
    rec$limit <- c(list(r_call = limit, py_call = limit_py),
                   record(eval(parse(text = limit), env)))
  }
  if (!is.null(note)) rec$note <- note
  models[[length(models) + 1]] <<- rec
  cat(sprintf("%-26s logLik %.7f  intervals: %s\n", name, rec$logLik,
              if (is.character(rec$intervals)) rec$intervals else "ok"))
}

# -- varConstPower whose constant runs to 0 --------------------------------------------------
add("cp_sweep", "sweep_cp",
    "gls(y_gauss ~ x, d, weights = varConstPower(form = ~ xpos | f))",
    "mm.gls('y_gauss ~ x', d.assign(xpos=np.exp(d['x'] / 2)), variance=mm.var_const_power(form='~ xpos | f'))")
add("cp_strata", "constpower",
    "gls(y ~ x, d, weights = varConstPower(form = ~ v | s))",
    "mm.gls('y ~ x', d, variance=mm.var_const_power(form='~ v | s'))")
add("cp_strata_ml", "constpower",
    "gls(y ~ x, d, weights = varConstPower(form = ~ v | s), method = 'ML')",
    "mm.gls('y ~ x', d, variance=mm.var_const_power(form='~ v | s'), method='ML')")
add("cp_fitted_strata", "constpower",
    "gls(y ~ x, d, weights = varConstPower(form = ~ fitted(.) | s))",
    "mm.gls('y ~ x', d, variance=mm.var_const_power(form='~ fitted(.) | s'))")
add("cp_lme_strata", "constpower",
    "lme(yg ~ x, d, random = ~ 1 | g, weights = varConstPower(form = ~ v | s))",
    "mm.lmer('yg ~ x + (1 | g)', d, variance=mm.var_const_power(form='~ v | s'))")
add("cp_lme_ar1_ml", "constpower",
    "lme(yg ~ x, d, random = ~ 1 | g, correlation = corAR1(form = ~ t | g), weights = varConstPower(form = ~ v | s), method = 'ML')",
    "mm.lmer('yg ~ x + (1 | g)', d, correlation=mm.cor_ar1(form='~ t | g'), variance=mm.var_const_power(form='~ v | s'), REML=False)")
add("cp_hours", "hours",
    "gls(out ~ load, d, weights = varConstPower(form = ~ hours | shift))",
    "mm.gls('out ~ load', d, variance=mm.var_const_power(form='~ hours | shift'))")
add("cp_comb_ident", "constpower",
    "gls(y ~ x, d, weights = varComb(varIdent(form = ~ 1 | s), varConstPower(form = ~ v)))",
    "mm.gls('y ~ x', d, variance=[mm.var_ident(form='~ 1 | s'), mm.var_const_power(form='~ v')])")

# -- intervals at a boundary -----------------------------------------------------------------
add("nest_ar1_sd0", "nested_ar1",
    "lme(y ~ x, d, random = ~ 1 | g/h, correlation = corAR1(form = ~ 1 | g/h))",
    "mm.lmer('y ~ x + (1 | g/h)', d, correlation=mm.cor_ar1(form='~ 1 | g/h'))",
    note = "the inner (h within g) sd runs to 0; nlme's apVar is positive definite")
add("nb_lme_sd0_ar1", "noeffect",
    "lme(y ~ x, d, random = ~ 1 | g, correlation = corAR1(form = ~ t | g))",
    "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_ar1(form='~ t | g'))",
    note = "the random-intercept sd runs to 0 with an interior AR(1) parameter")
add("nb_gls_exp_range0", "noeffect",
    "gls(y ~ x, d, correlation = corExp(form = ~ t | g))",
    "mm.gls('y ~ x', d, correlation=mm.cor_exp(form='~ t | g'))",
    limit = "gls(y ~ x, d)", limit_py = "mm.gls('y ~ x', d)")
add("nb_gls_exp_nugget", "noeffect",
    "gls(y ~ x, d, correlation = corExp(form = ~ t | g, nugget = TRUE))",
    "mm.gls('y ~ x', d, correlation=mm.cor_exp(form='~ t | g', nugget=True))",
    limit = "gls(y ~ x, d)", limit_py = "mm.gls('y ~ x', d)")
add("sp_gls_ratio", "spatial",
    "gls(y ~ x, d, correlation = corRatio(form = ~ cx + cy))",
    "mm.gls('y ~ x', d, correlation=mm.cor_ratio(form='~ cx + cy'))",
    limit = "gls(y ~ x, d)", limit_py = "mm.gls('y ~ x', d)")
add("sp_gls_gaus", "spatial",
    "gls(y ~ x, d, correlation = corGaus(form = ~ cx + cy))",
    "mm.gls('y ~ x', d, correlation=mm.cor_gaus(form='~ cx + cy'))",
    limit = "gls(y ~ x, d)", limit_py = "mm.gls('y ~ x', d)")
add("sp_gls_lin_nugget", "spatial",
    "gls(y ~ x, d, correlation = corLin(form = ~ cx + cy, nugget = TRUE))",
    "mm.gls('y ~ x', d, correlation=mm.cor_lin(form='~ cx + cy', nugget=True))",
    limit = "gls(y ~ x, d)", limit_py = "mm.gls('y ~ x', d)")
write_json(list(versions = list(R = R.version.string,
                                nlme = as.character(packageVersion("nlme"))),
                models = models),
           file.path(out_dir, "fixtures.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "string")
