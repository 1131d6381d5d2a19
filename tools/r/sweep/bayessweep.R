# Parity sweep of blmer / bglmer against blme (lane bayessweep): models no fixture of
# tools/r/blme_fixtures.R covers -- 3x3 and 2x2 random slopes, crossed and nested terms,
# singular-prone fits, non-default Wishart / inverse-Wishart / gamma / inverse-gamma
# parameters, normal and t fixed-effect priors, residual priors, Poisson and binomial bglmer.
#
#   Rscript tools/r/sweep/bayessweep.R [--out=/tmp/bayessweep] [--only=id1,id2]
#   python  tools/r/sweep/bayessweep.py --out /tmp/bayessweep
#
# Each case is fitted by blme and then minimized again on blme's own deviance function from
# several starts (as in tools/r/blme_fixtures.R: blme's BOBYQA can stop early when the prior
# is infinite at theta = 0), so what is recorded is blme's fit at the minimum of blme's
# objective, plus blme's deviance function at that point and at a perturbed point.
# Output: <out>/ref.json (simulated data sets stored inside as data_records).

args <- commandArgs(trailingOnly = TRUE)
arg_val <- function(key, default) {
  hit <- grep(paste0("^--", key, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", key, "="), "", hit[1]) else default
}
out_root <- arg_val("out", "/tmp/bayessweep")
only <- arg_val("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else character(0)
# --eval: blme's deviance function at our bglmer optima (<out>/ours.json, from
# bayessweep.py --dump) instead of the grid; --file: the output's name inside --out
eval_ours <- "--eval" %in% args
out_file <- arg_val("file", "ref.json")

suppressPackageStartupMessages({
  library(lme4)
  library(blme)
  library(jsonlite)
})

data_dir <- file.path("src", "mixedmodels", "datasets", "data")
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
set.seed(20261203)
rnd <- function(x) round(x, 4)
# 3x3 random slopes: 14 groups of 9
ng <- 14
s3 <- data.frame(g = factor(rep(sprintf("g%02d", 1:ng), each = 9)))
s3$x1 <- rnd(rnorm(nrow(s3))); s3$x2 <- rnd(runif(nrow(s3), -1, 1))
L3 <- matrix(c(1, 0, 0, 0.3, 0.5, 0, -0.2, 0.1, 0.4), 3, 3)
b3 <- matrix(rnorm(ng * 3), ng, 3) %*% t(L3)
gi <- as.integer(s3$g)
s3$y <- rnd(1 + 0.5 * s3$x1 - 0.3 * s3$x2 + b3[gi, 1] + b3[gi, 2] * s3$x1 + b3[gi, 3] * s3$x2 +
              rnorm(nrow(s3), 0, 0.7))
# a 2x2 term whose slope variance is ~0 (lmer: singular)
sl <- expand.grid(t = c(-1, -0.5, 0, 0.5, 1), g = factor(sprintf("u%d", 1:9)))
bi <- rnorm(9, 0, 0.6)
sl$y <- rnd(3 + 0.4 * sl$t + bi[as.integer(sl$g)] + rnorm(nrow(sl), 0, 1))
# crossed a x b, b has no variance (singular in lmer), 2 replicates
cr <- expand.grid(rep = 1:2, a = factor(sprintf("a%d", 1:8)), b = factor(sprintf("b%d", 1:5)))
cr$x <- rnd(rnorm(nrow(cr)))
ea <- rnorm(8, 0, 0.8)
cr$y <- rnd(0.5 + 0.2 * cr$x + ea[as.integer(cr$a)] + rnorm(nrow(cr), 0, 1))
# Poisson with a 2x2 random slope
pg <- data.frame(g = factor(rep(sprintf("p%02d", 1:12), each = 8)))
pg$x <- rnd(rnorm(nrow(pg)))
bp0 <- rnorm(12, 0, 0.5); bp1 <- rnorm(12, 0, 0.3)
pg$y <- rpois(nrow(pg), exp(0.4 + 0.3 * pg$x + bp0[as.integer(pg$g)] + bp1[as.integer(pg$g)] * pg$x))
# Bernoulli with a 2x2 random slope and weak group effect
bg <- data.frame(g = factor(rep(sprintf("q%02d", 1:15), each = 8)))
bg$x <- rnd(rnorm(nrow(bg)))
bq <- rnorm(15, 0, 0.4)
bg$y <- rbinom(nrow(bg), 1, plogis(-0.2 + 0.9 * bg$x + bq[as.integer(bg$g)]))
# binomial counts, crossed grouping
bc <- expand.grid(a = factor(sprintf("c%d", 1:7)), b = factor(sprintf("d%d", 1:6)))
bc$n <- 10L
bc$x <- rnd(rnorm(nrow(bc)))
bc$k <- rbinom(nrow(bc), bc$n, plogis(0.3 + 0.5 * bc$x + rnorm(7, 0, 0.7)[as.integer(bc$a)] +
                                         rnorm(6, 0, 0.3)[as.integer(bc$b)]))

simulated <- list(s3 = s3, sl = sl, cr = cr, pg = pg, bg = bg, bc = bc)
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
    # blme's refit from the best point drifts back uphill: record only the best point of
    # blme's objective (theta and its devfun value) for the comparison
    cat("   REFIT MOVED AWAY\n")
    k <- length(getME(m0, "theta"))
    out <- list(name = name, r_call = r_call, py = py, refit_moved = TRUE,
                objective = best$value, theta = num(best$par[seq_len(k)]),
                blme_default_objective = num(obj0), devfun_params = par_names,
                devfun_at = list(list(par = num(best$par), value = best$value)))
    if (!is.null(simulated[[py$data]])) out$data_records <- simulated[[py$data]]
    return(out)
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

# entry() but tolerant: a failing case is reported, not fatal; --only restricts the grid
run <- function(name, r_call, py) {
  if (length(only) && !(name %in% only)) return(NULL)
  tryCatch(entry(name, r_call, py), error = function(e) {
    cat("   R ERROR:", conditionMessage(e), "\n"); NULL
  })
}
L <- "control = lctrl)"
G <- "control = gctrl)"

cases <- list(
  # -- 2x2 slopes on Orthodont ---------------------------------------------------------------
  run("orth_default_reml", paste("blmer(distance ~ age + (age | Subject), dat,", L),
      list(fun = "blmer", formula = "distance ~ age + (age | Subject)", data = "Orthodont",
           REML = TRUE, cov_prior = "default")),
  run("orth_wishart_df4_ml",
      paste("blmer(distance ~ age + (age | Subject), dat, REML = FALSE, cov.prior = wishart(df = 4, scale = diag(c(4, 0.1))),", L),
      list(fun = "blmer", formula = "distance ~ age + (age | Subject)", data = "Orthodont",
           REML = FALSE, cov_prior = pr("wishart", df = 4, scale = list(c(4, 0), c(0, 0.1))))),
  run("orth_invwishart_full_scale",
      paste("blmer(distance ~ age + (age | Subject), dat, cov.prior = invwishart(df = 5, scale = matrix(c(3, -0.2, -0.2, 0.05), 2)),", L),
      list(fun = "blmer", formula = "distance ~ age + (age | Subject)", data = "Orthodont",
           REML = TRUE, cov_prior = pr("invwishart", df = 5, scale = list(c(3, -0.2), c(-0.2, 0.05))))),
  run("orth_normal_cov_fixef_ml",
      paste("blmer(distance ~ age + Sex + (1 | Subject), dat, REML = FALSE, fixef.prior = normal(cov = diag(c(100, 4, 9))),", L),
      list(fun = "blmer", formula = "distance ~ age + Sex + (1 | Subject)", data = "Orthodont",
           REML = FALSE, cov_prior = "default",
           fixef_prior = pr("normal", cov = list(c(100, 0, 0), c(0, 4, 0), c(0, 0, 9))))),
  # -- 3x3 slopes ------------------------------------------------------------------------------
  run("s3_default_reml", paste("blmer(y ~ x1 + x2 + (x1 + x2 | g), dat,", L),
      list(fun = "blmer", formula = "y ~ x1 + x2 + (x1 + x2 | g)", data = "s3", REML = TRUE,
           cov_prior = "default")),
  run("s3_invwishart_ml", paste("blmer(y ~ x1 + x2 + (x1 + x2 | g), dat, REML = FALSE, cov.prior = invwishart,", L),
      list(fun = "blmer", formula = "y ~ x1 + x2 + (x1 + x2 | g)", data = "s3", REML = FALSE,
           cov_prior = pr("invwishart"))),
  run("s3_wishart_full_scale",
      paste("blmer(y ~ x1 + x2 + (x1 + x2 | g), dat, cov.prior = wishart(df = 6, scale = matrix(c(2, 0.3, 0, 0.3, 1, 0.1, 0, 0.1, 0.5), 3)),", L),
      list(fun = "blmer", formula = "y ~ x1 + x2 + (x1 + x2 | g)", data = "s3", REML = TRUE,
           cov_prior = pr("wishart", df = 6, scale = list(c(2, 0.3, 0), c(0.3, 1, 0.1), c(0, 0.1, 0.5))))),
  run("s3_t_fixef_resid_invgamma",
      paste("blmer(y ~ x1 + x2 + (x1 + x2 | g), dat, REML = FALSE, fixef.prior = t(df = 2, scale = c(3, 2, 2)), resid.prior = invgamma(shape = 3, scale = 1),", L),
      list(fun = "blmer", formula = "y ~ x1 + x2 + (x1 + x2 | g)", data = "s3", REML = FALSE,
           cov_prior = "default", fixef_prior = pr("t", df = 2, scale = c(3, 2, 2)),
           resid_prior = pr("invgamma", shape = 3, scale = 1))),
  run("s3_invwishart_sqrt_absolute",
      paste("blmer(y ~ x1 + x2 + (x1 + x2 | g), dat, cov.prior = invwishart(df = 5, scale = diag(3), common.scale = FALSE, posterior.scale = 'sqrt'),", L),
      list(fun = "blmer", formula = "y ~ x1 + x2 + (x1 + x2 | g)", data = "s3", REML = TRUE,
           cov_prior = pr("invwishart", df = 5, scale = list(c(1, 0, 0), c(0, 1, 0), c(0, 0, 1)),
                          common_scale = FALSE, posterior_scale = "sqrt"))),
  # -- singular-prone slope ---------------------------------------------------------------------
  run("sl_default_reml", paste("blmer(y ~ t + (t | g), dat,", L),
      list(fun = "blmer", formula = "y ~ t + (t | g)", data = "sl", REML = TRUE, cov_prior = "default")),
  run("sl_default_ml", paste("blmer(y ~ t + (t | g), dat, REML = FALSE,", L),
      list(fun = "blmer", formula = "y ~ t + (t | g)", data = "sl", REML = FALSE, cov_prior = "default")),
  run("sl_diag_gamma_var",
      paste("blmer(y ~ t + (1 | g) + (0 + t | g), dat, cov.prior = gamma(shape = 1.5, rate = 2, posterior.scale = 'var'),", L),
      list(fun = "blmer", formula = "y ~ t + (1 | g) + (0 + t | g)", data = "sl", REML = TRUE,
           cov_prior = pr("gamma", shape = 1.5, rate = 2, posterior_scale = "var"))),
  run("sl_resid_gamma_var_ml",
      paste("blmer(y ~ t + (t | g), dat, REML = FALSE, resid.prior = gamma(shape = 2, rate = 1, posterior.scale = 'var'),", L),
      list(fun = "blmer", formula = "y ~ t + (t | g)", data = "sl", REML = FALSE, cov_prior = "default",
           resid_prior = pr("gamma", shape = 2, rate = 1, posterior_scale = "var"))),
  # -- crossed / nested ------------------------------------------------------------------------------
  run("cr_default_reml", paste("blmer(y ~ x + (1 | a) + (1 | b), dat,", L),
      list(fun = "blmer", formula = "y ~ x + (1 | a) + (1 | b)", data = "cr", REML = TRUE,
           cov_prior = "default")),
  run("cr_by_group_ml",
      paste("blmer(y ~ x + (1 | a) + (1 | b), dat, REML = FALSE, cov.prior = list(a ~ invgamma(shape = 2, scale = 1, posterior.scale = 'var'), b ~ gamma(shape = 3, rate = 2)),", L),
      list(fun = "blmer", formula = "y ~ x + (1 | a) + (1 | b)", data = "cr", REML = FALSE,
           cov_prior = gr(a = pr("invgamma", shape = 2, scale = 1, posterior_scale = "var"),
                          b = pr("gamma", shape = 3, rate = 2)))),
  run("pastes_nested_default", paste("blmer(strength ~ 1 + (1 | batch/cask), dat,", L),
      list(fun = "blmer", formula = "strength ~ 1 + (1 | batch/cask)", data = "Pastes", REML = TRUE,
           cov_prior = "default")),
  run("cake_wishart_ml", paste("blmer(angle ~ recipe + temp + (1 | recipe:replicate), dat, REML = FALSE, cov.prior = wishart(df = 3.5, scale = 10),", L),
      list(fun = "blmer", formula = "angle ~ recipe + temp + (1 | recipe:replicate)", data = "cake",
           REML = FALSE, cov_prior = pr("wishart", df = 3.5, scale = 10))),
  # blme warns "length of sd in normal prior exceeds number of fixed effects" and drops the rest
  run("sleep_normal_sd_too_long",
      paste("blmer(Reaction ~ Days + (Days | Subject), dat, fixef.prior = normal(sd = c(20, 3, 7)),", L),
      list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
           REML = TRUE, cov_prior = "default", fixef_prior = pr("normal", sd = c(20, 3, 7)))),
  run("sleep_fixef_only_nocov",
      paste("blmer(Reaction ~ Days + (Days | Subject), dat, cov.prior = NULL, fixef.prior = normal(sd = c(20, 3)),", L),
      list(fun = "blmer", formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
           REML = TRUE, cov_prior = NULL, fixef_prior = pr("normal", sd = c(20, 3)))),
  # -- bglmer --------------------------------------------------------------------------------------
  run("pg_poisson_slope_default", paste("bglmer(y ~ x + (x | g), dat, family = poisson,", G),
      list(fun = "bglmer", formula = "y ~ x + (x | g)", data = "pg", family = "poisson", cov_prior = "default")),
  run("pg_poisson_invwishart_t",
      paste("bglmer(y ~ x + (x | g), dat, family = poisson, cov.prior = invwishart(df = 4, scale = diag(c(0.5, 0.2))), fixef.prior = t(df = 4, scale = c(5, 2.5)),", G),
      list(fun = "bglmer", formula = "y ~ x + (x | g)", data = "pg", family = "poisson",
           cov_prior = pr("invwishart", df = 4, scale = list(c(0.5, 0), c(0, 0.2))),
           fixef_prior = pr("t", df = 4, scale = c(5, 2.5)))),
  run("bg_bern_slope_default", paste("bglmer(y ~ x + (x | g), dat, family = binomial,", G),
      list(fun = "bglmer", formula = "y ~ x + (x | g)", data = "bg", family = "binomial", cov_prior = "default")),
  run("bg_bern_normal_gamma",
      paste("bglmer(y ~ x + (1 | g), dat, family = binomial, fixef.prior = normal(sd = c(2, 1)), cov.prior = gamma(shape = 3, rate = 1.5),", G),
      list(fun = "bglmer", formula = "y ~ x + (1 | g)", data = "bg", family = "binomial",
           cov_prior = pr("gamma", shape = 3, rate = 1.5), fixef_prior = pr("normal", sd = c(2, 1)))),
  run("bc_binom_crossed_default", paste("bglmer(cbind(k, n - k) ~ x + (1 | a) + (1 | b), dat, family = binomial,", G),
      list(fun = "bglmer", formula = "cbind(k, n - k) ~ x + (1 | a) + (1 | b)", data = "bc",
           family = "binomial", cov_prior = "default")),
  run("bc_binom_crossed_invgamma_var",
      paste("bglmer(cbind(k, n - k) ~ x + (1 | a) + (1 | b), dat, family = binomial, cov.prior = invgamma(shape = 2, scale = 0.5, posterior.scale = 'var'),", G),
      list(fun = "bglmer", formula = "cbind(k, n - k) ~ x + (1 | a) + (1 | b)", data = "bc",
           family = "binomial", cov_prior = pr("invgamma", shape = 2, scale = 0.5, posterior_scale = "var"))),
  run("grouse_poisson_nested_default",
      paste("bglmer(TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION), dat, family = poisson,", G),
      list(fun = "bglmer", formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)",
           data = "grouseticks", family = "poisson", cov_prior = "default")),
  run("salam_poisson_t_fixef",
      paste("bglmer(count ~ mined + cover + (1 | site), dat, family = poisson, fixef.prior = t(df = 3, scale = c(4, 2, 1)),", G),
      list(fun = "bglmer", formula = "count ~ mined + cover + (1 | site)", data = "Salamanders",
           family = "poisson", cov_prior = "default", fixef_prior = pr("t", df = 3, scale = c(4, 2, 1))))
)

cases <- Filter(Negate(is.null), cases)
if (eval_ours) {
  ours <- fromJSON(file.path(out_root, "ours.json"), simplifyVector = TRUE)
  for (cs in cases) {
    o <- ours[[cs$name]]
    if (is.null(o)) next
    env <- new.env()
    env$dat <- get_data(cs$py$data)
    dcall <- sub("\\)\\s*$", ", devFunOnly = TRUE)", cs$r_call)
    devfun <- eval(parse(text = dcall), env)
    at_ours <- devfun(o$par)
    cat(sprintf("%-34s blme devfun: at ours %.9f, at blme's best %.9f (ours - blme %+.2e); our objective %.9f\n",
                cs$name, at_ours, cs$objective, at_ours - cs$objective, o$objective))
  }
  quit(save = "no")
}
versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 blme = as.character(packageVersion("blme")))
dir.create(out_root, recursive = TRUE, showWarnings = FALSE)
write_json(list(versions = versions, cases = cases), file.path(out_root, out_file),
           auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
cat("wrote", length(cases), "cases\n")
