# glmmTMB fits of every G-side covariance structure: tests/fixtures/structures/<id>.json
#
#   Rscript tools/r/structures_fixtures.R                     # glmmTMB 1.1.5 (system library)
#   Rscript tools/r/structures_fixtures.R --set=newer --lib=/work/rlib_glmmtmb_new
#
# glmmTMB 1.1.5 has us, diag, cs, ar1, ou, exp, gau, mat, toep and rr; the structures added
# later (homdiag, propto, hetar1, homcs, homtoep, equalto) are fitted with a newer glmmTMB
# (--set=newer, 1.1.14 built as tools/r/GLMMTMB_CONVENTIONS.md describes). The newer set
# uses Poisson/binomial families or compares no dispersion coefficient: glmmTMB 1.1.9
# moved the gaussian dispersion to the log-sd scale. Run from the repository root.
#
# Data are simulated with fixed seeds and written to tests/fixtures/structures/data/*.csv
# (small); the fits read the CSVs back. Each fixture records the glmmTMB call (`formula_r`),
# our spelling (`formula`), the fronts doors it is a reference for (`doors`: glmmtmb, and
# lmer / glmer where the model is an LMM / a binomial or Poisson GLMM: an LMM by ML or
# REML in glmmTMB is lmer's model, a GLMM by Laplace glmer's), the objective (-2 logLik),
# fixed effects and their standard errors, glmmTMB's theta, the covariance matrices of
# every term (VarCorr), sigma, and the fit time (median of 3).
#
# Timing mode (benchmarks/structures_bench.py): --time=OUT.json [--repeat=N] writes nothing
# under tests/ (the committed CSVs are read back, not rewritten) and records, per fixture,
# the median elapsed (or, with --clock=cpu, CPU) time of N fits after one untimed
# warm-up and the objective.
suppressPackageStartupMessages(library(jsonlite))

args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
fit_set <- opt("set", "main")
lib <- opt("lib", NA)
if (!is.na(lib)) .libPaths(c(lib, .libPaths()))
suppressPackageStartupMessages(library(glmmTMB))
if (fit_set == "newer" && packageVersion("glmmTMB") < "1.1.10") stop("--set=newer needs glmmTMB >= 1.1.10")
time_out <- opt("time", NA)
# "elapsed" (wall) or "cpu" (user + system time of this process: what a loaded, shared
# machine distorts least)
clock <- opt("clock", "elapsed")
n_repeat <- as.integer(opt("repeat", "3"))
timings <- list()

out_dir <- file.path("tests", "fixtures", "structures")
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)
lv <- function(prefix, n) sprintf(paste0(prefix, "%02d"), seq_len(n))

save_csv <- function(name, df) {
  out <- df
  for (col in names(df)) if (is.factor(df[[col]])) out[[col]] <- as.character(df[[col]])
  if (is.na(time_out)) write.csv(out, file.path(data_dir, paste0(name, ".csv")), row.names = FALSE)
  back <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (col in names(df)) if (is.factor(df[[col]])) back[[col]] <- factor(back[[col]], levels = levels(df[[col]]))
  back
}

# -- data --------------------------------------------------------------------------------------
# longitudinal: 40 subjects x 6 unequally spaced times, AR(1) subject-time effects, residual
set.seed(801)
n_sub <- 40; times <- c(0, 0.5, 1.5, 2, 3.5, 5)
long <- expand.grid(time = 0:5, subject = factor(lv("s", n_sub)))[, c("subject", "time")]
long$tt <- times[long$time + 1]
n <- nrow(long)
long$x <- r6(runif(n, -1, 1))
phi <- 0.6; sd_ar <- 0.9
e <- matrix(0, n_sub, 6)
e[, 1] <- rnorm(n_sub, sd = sd_ar)
for (k in 2:6) e[, k] <- phi * e[, k - 1] + rnorm(n_sub, sd = sd_ar * sqrt(1 - phi^2))
sub_i <- as.integer(long$subject); ar <- e[cbind(sub_i, long$time + 1)]
hetsd <- c(0.6, 0.8, 1.0, 1.2, 1.4, 1.6)[long$time + 1]
u0 <- rnorm(n_sub, sd = 1.0); u1 <- rnorm(n_sub, sd = 0.6)
long$y <- r6(2 + 0.5 * long$x + u0[sub_i] + u1[sub_i] * long$x + ar + rnorm(n, sd = 0.4))
long$yh <- r6(1 + 0.5 * long$x + ar * hetsd + rnorm(n, sd = 0.3))
long$yc <- rpois(n, exp(0.5 + 0.4 * long$x + 0.7 * ar))
long$yb <- rbinom(n, 1, plogis(-0.2 + 0.8 * long$x + 1.2 * ar))
long$yk <- rbinom(n, 8, plogis(-0.2 + 0.8 * long$x + 1.0 * ar))
long <- long[-c(3, 17, 58, 101, 202), ]          # a few missed visits
long <- save_csv("long", long)

# spatial: 70 sites in a 10 x 10 square, an exponential field, Poisson counts (the GLMM FAQ)
set.seed(802)
ns <- 70
sp <- data.frame(x = r6(runif(ns, 0, 10)), y = r6(runif(ns, 0, 10)))
sp$x1 <- r6(rnorm(ns))
D <- as.matrix(dist(sp[, c("x", "y")]))
S <- 0.8^2 * exp(-D / 2.5)
z <- drop(t(chol(S)) %*% rnorm(ns))
sp$count <- rpois(ns, exp(1 + 0.3 * sp$x1 + z))
Sg <- 1.1^2 * exp(-(D / 3)^2) + diag(1e-8, ns)
sp$yg <- r6(5 + 0.5 * sp$x1 + drop(t(chol(Sg)) %*% rnorm(ns)) + rnorm(ns, sd = 0.5))
sp$obs <- factor(sprintf("o%02d", seq_len(ns)))
sp$one <- factor(rep("a", ns))
sp <- save_csv("spatial", sp)
sp$pos <- numFactor(sp$x, sp$y)

# traits: 60 individuals x 4 traits (long format), one latent factor plus noise
set.seed(803)
ni <- 60
tr <- expand.grid(trait = factor(c("t1", "t2", "t3", "t4")), id = factor(lv("i", ni)))[, c("id", "trait")]
load1 <- c(1.0, 0.8, -0.6, 0.5)
f1 <- rnorm(ni)
tr$y <- r6(c(1, 2, 3, 4)[tr$trait] + load1[tr$trait] * f1[tr$id] + rnorm(nrow(tr), sd = 0.5))
tr <- save_csv("traits", tr)

# phylo: 30 species with a known correlation (nested clades), 5 observations each
set.seed(804)
nsp <- 30
clade <- rep(1:6, each = 5); sub <- rep(1:15, each = 2)
K <- 0.3 + 0.4 * outer(clade, clade, "==") + 0.2 * outer(sub, sub, "==")
diag(K) <- 1
spn <- lv("sp", nsp); dimnames(K) <- list(spn, spn)
ph <- data.frame(sp = factor(rep(spn, each = 5), levels = spn))
ph$x <- r6(runif(nrow(ph)))
b <- drop(t(chol(0.7^2 * K)) %*% rnorm(nsp))
ph$y <- r6(1 + 0.5 * ph$x + b[as.integer(ph$sp)] + rnorm(nrow(ph), sd = 0.6))
ph$yc <- rpois(nrow(ph), exp(0.3 + 0.5 * ph$x + b[as.integer(ph$sp)]))
ph$dummy <- factor(rep("a", nrow(ph)))
ph <- save_csv("phylo", ph)
if (is.na(time_out)) write.csv(K, file.path(data_dir, "phylo_K.csv"))
K05 <- 0.25 * K

data_sets <- list(long = long, spatial = sp, traits = tr, phylo = ph)
long$ftime <- factor(long$time); data_sets$long <- long
long$tpos <- numFactor(long$tt); data_sets$long <- long

# -- fits ---------------------------------------------------------------------------------------
versions <- list(R = R.version.string, glmmTMB = as.character(packageVersion("glmmTMB")),
                 TMB = as.character(packageVersion("TMB")))

vc_json <- function(fit) {
  vc <- VarCorr(fit)$cond
  lapply(names(vc), function(g) {
    m <- vc[[g]]
    list(group = g, terms = I(colnames(m)), sd = I(unname(attr(m, "stddev"))),
         cov = unname(lapply(seq_len(nrow(m)), function(i) I(unname(as.numeric(m[i, ]))))))
  })
}

fit_one <- function(id, data, formula_r, formula, family = gaussian(), REML = FALSE,
                    dispformula = ~1, doors = c("glmmtmb"), note = "", extra = list()) {
  cat(id, "\n")
  args <- c(list(formula = as.formula(formula_r), data = data, family = family,
                 REML = REML, dispformula = dispformula), extra)
  if (!is.na(time_out)) {
    fit <- try(suppressWarnings(do.call(glmmTMB, args)), silent = TRUE)     # warm-up
    if (inherits(fit, "try-error")) return(invisible(NULL))
    secs <- replicate(n_repeat, {
      st <- system.time(suppressWarnings(do.call(glmmTMB, args)))
      if (clock == "cpu") st[["user.self"]] + st[["sys.self"]] else st[["elapsed"]]
    })
    timings[[id]] <<- list(id = id, seconds = median(secs), objective = 2 * fit$fit$objective,
                           glmmTMB = as.character(packageVersion("glmmTMB")))
    return(invisible(NULL))
  }
  warn <- character()
  fit <- tryCatch(withCallingHandlers(do.call(glmmTMB, args),
                             warning = function(w) {warn <<- c(warn, conditionMessage(w)); invokeRestart("muffleWarning")}),
                  error = function(e) {message(id, ": glmmTMB failed: ", conditionMessage(e)); NULL})
  if (is.null(fit)) return(invisible(NULL))
  secs <- replicate(3, system.time(try(suppressWarnings(do.call(glmmTMB, args)),
                                       silent = TRUE))[["elapsed"]])
  par <- fit$fit$par
  V <- tryCatch(vcov(fit)$cond, error = function(e) NULL)
  se <- if (is.null(V)) NULL else as.list(sqrt(diag(V)))
  fam <- family(fit)
  out <- list(
    id = id, set = fit_set, versions = versions, data = attr(data, "csv"),
    formula_r = formula_r, formula = formula, family = fam$family, link = fam$link,
    REML = REML, dispformula = paste(deparse(dispformula), collapse = ""), doors = I(doors),
    objective = 2 * fit$fit$objective, converged = fit$fit$convergence == 0,
    pdHess = isTRUE(fit$sdr$pdHess), warnings = warn,
    beta = as.list(fixef(fit)$cond), se = se,
    beta_disp = if (length(fixef(fit)$disp)) as.list(fixef(fit)$disp) else NULL,
    sigma = tryCatch(sigma(fit), error = function(e) NULL),
    theta = I(unname(par[names(par) == "theta"])),
    varcorr = vc_json(fit), seconds = median(secs), note = note)
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = FALSE),
             file.path(out_dir, paste0(id, ".json")))
}
attr(data_sets$long, "csv") <- "long.csv"; attr(data_sets$spatial, "csv") <- "spatial.csv"
attr(data_sets$traits, "csv") <- "traits.csv"; attr(data_sets$phylo, "csv") <- "phylo.csv"
L <- data_sets$long; S <- data_sets$spatial; Tr <- data_sets$traits; P <- data_sets$phylo
lmm <- c("glmmtmb", "lmer"); glm_doors <- c("glmmtmb", "glmer")

only <- opt("only", NA)
if (!is.na(only)) {
  keep <- strsplit(only, ",")[[1]]
  fit_one_all <- fit_one
  fit_one <- function(id, ...) if (id %in% keep) fit_one_all(id, ...)
}
if (fit_set == "main") {
  fit_one("us_gauss_ml", L, "y ~ x + (1 + x | subject)", "y ~ x + us(1 + x | subject)", doors = lmm)
  fit_one("diag_gauss_reml", L, "y ~ x + diag(1 + x | subject)",
          "y ~ x + diag(1 + x | subject)", REML = TRUE, doors = lmm)
  fit_one("diag_pois", L, "yc ~ x + diag(1 + x | subject)", "yc ~ x + diag(1 + x | subject)",
          family = poisson(), doors = glm_doors)
  fit_one("cs_gauss_ml", L, "y ~ x + cs(0 + ftime | subject)",
          "y ~ x + cs(0 + factor(time) | subject)", doors = lmm)
  fit_one("cs_binom", L, "cbind(yk, 8 - yk) ~ x + cs(0 + ftime | subject)",
          "cbind(yk, 8 - yk) ~ x + cs(0 + factor(time) | subject)", family = binomial(),
          doors = glm_doors)
  fit_one("ar1_gauss_ml", L, "y ~ x + (1 | subject) + ar1(0 + ftime | subject)",
          "y ~ x + (1 | subject) + ar1(0 + factor(time) | subject)", doors = lmm)
  fit_one("ar1_gauss_reml", L, "y ~ x + ar1(0 + ftime | subject)",
          "y ~ x + ar1(0 + factor(time) | subject)", REML = TRUE, doors = lmm)
  fit_one("ar1_pois", L, "yc ~ x + ar1(0 + ftime | subject)",
          "yc ~ x + ar1(0 + factor(time) | subject)", family = poisson(), doors = glm_doors)
  fit_one("ar1_disp0", L, "y ~ x + (1 | subject) + ar1(0 + ftime | subject)",
          "y ~ x + (1 | subject) + ar1(0 + factor(time) | subject)", dispformula = ~0,
          note = "R-side AR(1) through a G-side term: residual variance fixed near zero")
  fit_one("toep_disp0", L, "yh ~ x + toep(0 + ftime | subject)",
          "yh ~ x + toep(0 + factor(time) | subject)", dispformula = ~0,
          note = "with a free residual glmmTMB 1.1.5 fails here (non-finite Hessian)")
  fit_one("ou_gauss_ml", L, "y ~ x + (1 | subject) + ou(0 + tpos | subject)",
          "y ~ x + (1 | subject) + ou(0 + pos(tt) | subject)", doors = lmm)
  fit_one("ou_pois", L, "yc ~ x + ou(0 + tpos | subject)", "yc ~ x + ou(0 + pos(tt) | subject)",
          family = poisson(), doors = glm_doors)
  fit_one("exp_pois_faq", S, "count ~ x1 + exp(0 + pos | one)",
          "count ~ x1 + exp(0 + pos(x, y) | obs)", family = poisson(), doors = glm_doors,
          note = "the GLMM FAQ's spatial Poisson model: eta ~ MVN(a + b x, s^2 exp(-d/r))")
  fit_one("gau_pois", S, "count ~ x1 + gau(0 + pos | one)",
          "count ~ x1 + gau(0 + pos(x, y) | obs)", family = poisson(), doors = glm_doors,
          extra = list(start = list(theta = c(0, 1))),
          note = "a gaussian response with a Gaussian correlation fails in glmmTMB 1.1.5")
  fit_one("mat_gauss_ml", S, "yg ~ x1 + mat(0 + pos | one)", "yg ~ x1 + mat(0 + pos(x, y) | one)",
          doors = lmm, extra = list(start = list(theta = c(0, 1, 0))),
          note = "started at range e, smoothness 1 (glmmTMB's default start fails here)")
  fit_one("mat_pois", S, "count ~ x1 + mat(0 + pos | one)",
          "count ~ x1 + mat(0 + pos(x, y) | obs)", family = poisson(), doors = glm_doors,
          extra = list(start = list(theta = c(0, 1, 0))))
  fit_one("rr_gauss_ml", Tr, "y ~ 0 + trait + rr(0 + trait | id, d = 1)",
          "y ~ 0 + trait + rr(0 + trait | id, d = 1)", doors = lmm)
} else {
  fit_one("homdiag_pois", L, "yc ~ x + homdiag(0 + ftime | subject)",
          "yc ~ x + diag(0 + factor(time) | subject, hom = TRUE)", family = poisson(),
          doors = glm_doors)
  fit_one("homcs_binom", L, "cbind(yk, 8 - yk) ~ x + homcs(0 + ftime | subject)",
          "cbind(yk, 8 - yk) ~ x + cs(0 + factor(time) | subject, hom = TRUE)",
          family = binomial(), doors = glm_doors)
  fit_one("hetar1_pois", L, "yc ~ x + hetar1(0 + ftime | subject)",
          "yc ~ x + ar1(0 + factor(time) | subject, hom = FALSE)", family = poisson(),
          doors = glm_doors)
  fit_one("homtoep_pois", L, "yc ~ x + homtoep(0 + ftime | subject)",
          "yc ~ x + homtoep(0 + factor(time) | subject)", family = poisson(), doors = glm_doors)
  fit_one("propto_pois", P, "yc ~ x + propto(0 + sp | dummy, K)", "yc ~ x + propto(1 | sp, K)",
          family = poisson(), doors = glm_doors)
  fit_one("propto_gauss_reml", P, "y ~ x + propto(0 + sp | dummy, K)",
          "y ~ x + propto(0 + sp | dummy, K)", REML = TRUE, doors = lmm)
  fit_one("equalto_pois", P, "yc ~ x + equalto(0 + sp | dummy, K05)",
          "yc ~ x + equalto(1 | sp, K05)", family = poisson(), doors = glm_doors,
          note = "K05 = 0.5^2 K, the known covariance itself")
}
if (!is.na(time_out)) {
  writeLines(toJSON(unname(timings), auto_unbox = TRUE, digits = NA, pretty = FALSE), time_out)
}
