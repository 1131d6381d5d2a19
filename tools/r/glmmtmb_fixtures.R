# Reference fits for the glmmTMB model class (mm.glmmtmb), one JSON file per model under
# tests/fixtures/glmmtmb/. Run from the repository root:
#
#   Rscript tools/r/glmmtmb_fixtures.R                 # the main corpus (glmmTMB 1.1.5)
#   Rscript tools/r/glmmtmb_fixtures.R --only=id1,id2  # refit some models only
#   Rscript tools/r/glmmtmb_fixtures.R --set=newer --lib=/path/to/R/library
#
# Main corpus: glmmTMB 1.1.5 (Debian's r-cran-glmmtmb, the version tests/reference/visible.json
# was made with), written to tests/fixtures/glmmtmb/<id>.json when the fit converged with a
# positive-definite Hessian and no warning, else to tests/fixtures/glmmtmb/awkward/<id>.json.
# Calls glmmTMB refuses (an error) are listed in tests/fixtures/glmmtmb/refused.json.
#
# "--set=newer" fits the models that need a newer glmmTMB (lognormal, nbinom12: 1.1.8 / 1.1.10)
# plus a few models of the main corpus for the cross-version comparison in
# tools/r/GLMMTMB_CONVENTIONS.md; written to tests/fixtures/glmmtmb/newer/. Such a glmmTMB is
# not packaged for Debian 12: build it from source into a private library (see the conventions
# file). Its gaussian dispersion is on another scale (log sigma, not log sigma^2) and its
# weights mean something else for 0/1 binomial responses: never mix the two sets in one test.
#
# Data: the bundled CSVs (src/mixedmodels/datasets/data, level orders from factor_levels.json
# there) and data simulated here with fixed seeds, written to tests/fixtures/glmmtmb/data/
# (level orders in data/factor_levels.json) and READ BACK from the CSV before fitting, so the
# Python side fits exactly the numbers R fitted. Tests never call R; they read the JSON.

suppressPackageStartupMessages(library(jsonlite))

args <- commandArgs(trailingOnly = TRUE)
arg_value <- function(name, default = NULL) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit) == 0) default else sub(paste0("^--", name, "="), "", hit[[1]])
}
lib <- arg_value("lib")
if (!is.null(lib)) .libPaths(c(lib, .libPaths()))
fit_set <- arg_value("set", "main")
only <- arg_value("only")
only <- if (is.null(only)) NULL else strsplit(only, ",")[[1]]
n_time <- as.integer(arg_value("repeat", "3"))
slow_s <- 20
suppressPackageStartupMessages(library(glmmTMB))
# glmmTMB >= 1.1.12 prints with base R's %||% (R >= 4.4); supply it on older R
if (!exists("%||%", baseenv())) `%||%` <- function(x, y) if (is.null(x)) y else x

gt_version <- packageVersion("glmmTMB")
versions <- list(
  R = paste(R.version$major, R.version$minor, sep = "."),
  R_string = R.version.string,
  glmmTMB = as.character(gt_version),
  TMB = as.character(packageVersion("TMB")),
  lme4 = as.character(packageVersion("lme4")),
  Matrix = as.character(packageVersion("Matrix")),
  jsonlite = as.character(packageVersion("jsonlite"))
)
if (fit_set == "main" && gt_version != "1.1.5") {
  stop("the main corpus is made with glmmTMB 1.1.5 (found ", gt_version, ")")
}
if (fit_set == "newer" && gt_version < "1.1.10") {
  stop("--set=newer needs glmmTMB >= 1.1.10 (found ", gt_version, ")")
}

bundled_dir <- file.path("src", "mixedmodels", "datasets", "data")
fix_dir <- file.path("tests", "fixtures", "glmmtmb")
data_dir <- file.path(fix_dir, "data")
out_dir <- if (fit_set == "main") fix_dir else file.path(fix_dir, "newer")
awk_dir <- file.path(out_dir, "awkward")
for (d in c(data_dir, out_dir, awk_dir)) dir.create(d, recursive = TRUE, showWarnings = FALSE)

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
bundled_levels <- fromJSON(file.path(bundled_dir, "factor_levels.json"), simplifyVector = TRUE)

read_with_levels <- function(path, lev) {
  cc <- setNames(rep("character", length(lev)), names(lev))
  df <- read.csv(path, colClasses = cc, check.names = FALSE)
  for (col in names(lev)) {
    stopifnot(all(df[[col]] %in% lev[[col]]))
    df[[col]] <- factor(df[[col]], levels = lev[[col]])
  }
  df
}
load_bundled <- function(name) {
  read_with_levels(file.path(bundled_dir, paste0(name, ".csv")), bundled_levels[[name]])
}

sim_levels <- list()
# Write a simulated data set to data/<name>.csv and read it back (what gets fitted is the CSV).
save_sim <- function(name, df) {
  fac <- names(df)[vapply(df, is.factor, logical(1))]
  sim_levels[[name]] <<- setNames(lapply(fac, function(col) levels(df[[col]])), fac)
  out <- df
  for (col in fac) out[[col]] <- as.character(out[[col]])
  path <- file.path(data_dir, paste0(name, ".csv"))
  write.csv(out, path, row.names = FALSE)
  read_with_levels(path, sim_levels[[name]])
}
lv <- function(prefix, n) sprintf(paste0(prefix, "%02d"), seq_len(n))
r6 <- function(x) round(x, 6)
# zero-truncated draws by rejection (redraw the zeros)
rtrunc <- function(n, draw) {
  y <- draw(n)
  while (any(z <- y == 0)) y[z] <- draw(sum(z))
  y
}

datasets <- list()
for (nm in c("Salamanders", "Owls", "cbpp", "grouseticks", "sleepstudy", "Orthodont", "cake",
             "VerbAgg", "Contraception", "gammasim")) {
  datasets[[nm]] <- load_bundled(nm)
}

# Gaussian: fully crossed site x rater, weights, offset, heteroscedastic by a factor whose
# level order is not alphabetical ("lo", "mid", "hi"), an observation-level factor.
set.seed(101)
n_site <- 30; n_rater <- 12
d <- data.frame(site_A = factor(rep(lv("s", n_site), each = n_rater), levels = lv("s", n_site)),
                rater_B = factor(rep(lv("r", n_rater), n_site), levels = lv("r", n_rater)))
n <- nrow(d)
d$x <- r6(runif(n, -1, 1))
d$f <- factor(sample(c("lo", "mid", "hi"), n, replace = TRUE), levels = c("lo", "mid", "hi"))
d$w <- sample(1:4, n, replace = TRUE)
d$offs <- r6(runif(n, 0, 2))
d$obs_id <- factor(sprintf("o%03d", seq_len(n)))
u0 <- rnorm(n_site, sd = 1.5); u1 <- rnorm(n_site, sd = 0.7); v0 <- rnorm(n_rater, sd = 0.8)
eps_sd <- c(lo = 0.5, mid = 1, hi = 2)[as.character(d$f)]
mu <- 10 + 2 * d$x + u0[d$site_A] + u1[d$site_A] * d$x + v0[d$rater_B]
d$y <- r6(mu + rnorm(n, sd = eps_sd))
d$y_offs <- r6(d$y + d$offs)
d$y_w <- r6(mu + rnorm(n, sd = 1 / sqrt(d$w)))
datasets$sim_gauss <- save_sim("sim_gauss", d)

# Poisson counts for the sqrt and identity links (means well inside each link's range)
set.seed(102)
d <- data.frame(g = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n)); b <- rnorm(30, sd = 0.3)
d$y_sqrt <- rpois(n, (2 + d$x + b[d$g])^2)
d$y_id <- rpois(n, 6 + 4 * d$x + 3 * b[d$g])
datasets$sim_pois_links <- save_sim("sim_pois_links", d)

# Binary responses with integer weights
set.seed(103)
d <- data.frame(grp = factor(rep(lv("g", 40), each = 10), levels = lv("g", 40)))
n <- nrow(d); d$x1 <- r6(runif(n)); d$x2 <- r6(rnorm(n)); b <- rnorm(40, sd = 0.8)
d$y <- rbinom(n, 1, plogis(-0.3 + 1.2 * d$x1 - 0.6 * d$x2 + b[d$grp]))
d$w <- sample(1:3, n, replace = TRUE)
datasets$sim_binary <- save_sim("sim_binary", d)

# Beta responses: a dotted covariate, a dispersion covariate, and a copy with exact zeros
set.seed(104)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x.1 <- r6(runif(n, -1, 1)); d$z_d <- r6(runif(n)); b <- rnorm(30, sd = 0.5)
mu <- plogis(-0.5 + 1.2 * d$x.1 + b[d$grp]); phi <- exp(2 + d$z_d)
d$y <- pmin(pmax(r6(rbeta(n, mu * phi, (1 - mu) * phi)), 1e-6), 1 - 1e-6)
d$y_zero <- ifelse(runif(n) < 0.15, 0, d$y)
datasets$sim_beta <- save_sim("sim_beta", d)

# Beta-binomial successes out of varying numbers of trials
set.seed(105)
d <- data.frame(grp = factor(rep(lv("b", 24), each = 10), levels = lv("b", 24)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(24, sd = 0.4)
d$n_trials <- sample(5:25, n, replace = TRUE)
mu <- plogis(-0.2 + 0.8 * d$x + b[d$grp]); p <- rbeta(n, mu * 4, (1 - mu) * 4)
d$succ <- rbinom(n, d$n_trials, p)
d$prop <- d$succ / d$n_trials
datasets$sim_betabinom <- save_sim("sim_betabinom", d)

# Tweedie (compound Poisson-gamma, power 1.6, phi 1.5): exact zeros and positive values
set.seed(106)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n)); b <- rnorm(30, sd = 0.4)
mu <- exp(0.3 + 0.8 * d$x + b[d$grp]); p <- 1.6; phi <- 1.5
lam <- mu^(2 - p) / (phi * (2 - p)); shape <- (2 - p) / (p - 1); scale <- phi * (p - 1) * mu^(p - 1)
npois <- rpois(n, lam)
d$y <- r6(vapply(seq_len(n), function(i) sum(rgamma(npois[i], shape, scale = scale[i])), 1))
datasets$sim_tweedie <- save_sim("sim_tweedie", d)

# Student t errors (df 5, scale 1.3), scale twice as large in group B of a factor
set.seed(107)
d <- data.frame(grp = factor(rep(lv("c", 30), each = 10), levels = lv("c", 30)))
n <- nrow(d); d$x <- r6(runif(n, -2, 2)); b <- rnorm(30)
d$f2 <- factor(sample(c("A", "B"), n, replace = TRUE), levels = c("A", "B"))
d$y <- r6(2 + 0.5 * d$x + b[d$grp] + 1.3 * rt(n, df = 5))
d$y_het <- r6(2 + 0.5 * d$x + b[d$grp] + ifelse(d$f2 == "B", 2.6, 1.3) * rt(n, df = 5))
datasets$sim_t <- save_sim("sim_t", d)

# Log-normal responses (for Gamma/gaussian-log fits here, the lognormal family in "newer")
set.seed(108)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n)); b <- rnorm(30, sd = 0.5)
d$y <- r6(exp(rnorm(n, 0.5 + 0.4 * d$x + b[d$grp], 0.6)))
datasets$sim_lognormal <- save_sim("sim_lognormal", d)

# Under-dispersed (binomial(12, p)) and over-dispersed (negative binomial) counts
set.seed(109)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(30, sd = 0.3); b2 <- rnorm(30, sd = 0.5)
d$y_under <- rbinom(n, 12, plogis(-0.3 + 0.5 * d$x + b[d$grp]))
d$y_over <- rnbinom(n, mu = exp(1 + 0.6 * d$x + b2[d$grp]), size = 1.5)
datasets$sim_counts <- save_sim("sim_counts", d)

# Zero-truncated counts and hurdle counts (a dotted response name)
set.seed(110)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(30, sd = 0.4); u <- rnorm(30, sd = 0.8)
mu_p <- exp(0.5 + 0.6 * d$x + b[d$grp]); mu_nb <- exp(1 + 0.5 * d$x + b[d$grp])
d$y_tpois <- vapply(mu_p, function(m) rtrunc(1, function(k) rpois(k, m)), 1)
d$y.tnb <- vapply(mu_nb, function(m) rtrunc(1, function(k) rnbinom(k, mu = m, size = 1.2)), 1)
zero <- runif(n) < plogis(-0.5 + 1.2 * d$x)
d$y_hurdle <- ifelse(zero, 0, d$y.tnb)
zero_p <- runif(n) < plogis(-0.2 + 0.8 * d$x + u[d$grp])
d$y_hurdle_p <- ifelse(zero_p, 0, d$y_tpois)
datasets$sim_trunc <- save_sim("sim_trunc", d)

# Gamma responses with exact zeros (ziGamma / Gamma hurdle)
set.seed(111)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(30, sd = 0.4); u <- rnorm(30, sd = 0.7)
mu <- exp(1 + 0.5 * d$x + b[d$grp])
d$y <- r6(ifelse(runif(n) < plogis(-1 + 1.5 * d$x), 0, rgamma(n, shape = 2, scale = mu / 2)))
d$y_re <- r6(ifelse(runif(n) < plogis(-0.5 + d$x + u[d$grp]), 0,
                    rgamma(n, shape = 2, scale = mu / 2)))
datasets$sim_zigamma <- save_sim("sim_zigamma", d)

# Zero-inflated counts whose zero-inflation probability varies by group
set.seed(112)
d <- data.frame(grp = factor(rep(lv("g", 40), each = 10), levels = lv("g", 40)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(40, sd = 0.5); u <- rnorm(40, sd = 1)
pz <- plogis(-0.5 + 0.7 * d$x + u[d$grp]); mu <- exp(1 + 0.5 * d$x + b[d$grp])
d$y <- ifelse(runif(n) < pz, 0, rpois(n, mu))
d$y_nb <- ifelse(runif(n) < pz, 0, rnbinom(n, mu = mu, size = 2))
datasets$sim_zi_re <- save_sim("sim_zi_re", d)

# Awkward-but-valid: Poisson counts (zero-inflation / nbinom2 shape not identified), a group
# effect of exactly zero (singular), very wide gamma (shape 0.4), gaussian errors for a t fit
set.seed(113)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n)); b <- rnorm(30, sd = 0.4)
d$y_pois <- rpois(n, exp(1 + 0.5 * d$x + b[d$grp]))
d$y_flat <- r6(5 + d$x + rnorm(n))
d$y_wide <- r6(rgamma(n, shape = 0.4, scale = exp(1 + 0.5 * d$x + b[d$grp]) / 0.4))
d$y_norm <- r6(2 + d$x + b[d$grp] + rnorm(n, sd = 0.5))
datasets$sim_awkward <- save_sim("sim_awkward", d)

# nbinom12 counts: variance mu * (1 + phi + mu / theta), phi = 1, theta = 3
set.seed(114)
d <- data.frame(grp = factor(rep(lv("g", 30), each = 10), levels = lv("g", 30)))
n <- nrow(d); d$x <- r6(runif(n, -1, 1)); b <- rnorm(30, sd = 0.4)
mu <- exp(1.2 + 0.6 * d$x + b[d$grp])
d$y <- rnbinom(n, mu = mu, size = mu / (1 + mu / 3))
datasets$sim_nb12 <- save_sim("sim_nb12", d)

# Predictors far from zero (the fixed-effects basis of the Laplace fit): Contraception with
# age shifted by +50 (the same model as with the centred age, a different parameterization)
d <- datasets$Contraception[, c("district", "use", "livch", "age", "urban")]
d$age_s <- d$age + 50
datasets$contra_shift <- save_sim("contra_shift", d)
# zero-inflated NB2 with a year (2000..2020) in the conditional and zero model and an
# elevation in metres (1000..3000) in the conditional and dispersion model
set.seed(113)
n_g <- 25
d <- data.frame(g = factor(rep(lv("g", n_g), each = 16), levels = lv("g", n_g)))
n <- nrow(d)
d$year <- 2000 + sample(0:20, n, replace = TRUE)
d$elev <- round(runif(n, 1000, 3000))
b <- rnorm(n_g, sd = 0.5)
eta <- 1 + 0.05 * (d$year - 2010) - 0.5 * (d$elev - 2000) / 1000 + b[d$g]
size <- exp(0.5 + 0.8 * (d$elev - 2000) / 1000)
pz <- plogis(-1 + 0.1 * (d$year - 2010))
d$y <- ifelse(runif(n) < pz, 0, rnbinom(n, mu = exp(eta), size = size))
datasets$sim_shift <- save_sim("sim_shift", d)
# Gaussian REML with a predictor far from zero (the integrated fixed effects' basis):
# sleepstudy's Days + 1000, and a factor for a dispersion model (days 5..9 against 0..4)
d <- datasets$sleepstudy[, c("Reaction", "Days", "Subject")]
d$Days_s <- d$Days + 1000
d$late <- factor(ifelse(d$Days >= 5, "late", "early"), levels = c("early", "late"))
datasets$sleep_shift <- save_sim("sleep_shift", d)

writeLines(toJSON(sim_levels, pretty = TRUE, auto_unbox = FALSE),
           file.path(data_dir, "factor_levels.json"))

data_file <- function(name) {
  if (name %in% names(sim_levels)) file.path(data_dir, paste0(name, ".csv"))
  else file.path(bundled_dir, paste0(name, ".csv"))
}

# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------
specs <- list()
# family: the R family call with its link spelled out. se_fit: also record predict(se.fit=TRUE).
# sets: "main" (glmmTMB 1.1.5), "newer" (the newer glmmTMB); start: an R start list (as text).
M <- function(id, data, formula, family, zi = "~0", disp = "~1", REML = FALSE, weights = NULL,
              offset = NULL, start = NULL, se_fit = FALSE, note = "", awkward_case = NULL,
              sets = "main") {
  specs[[id]] <<- list(id = id, data = data, formula = formula, family = family, zi = zi,
                       disp = disp, REML = REML, weights = weights, offset = offset,
                       start = start, se_fit = se_fit, note = note,
                       awkward_case = awkward_case, sets = sets)
}
both <- c("main", "newer")

# --- Salamanders: zero-inflated, hurdle and dispersed counts --------------------------------
M("sal_zinb2", "Salamanders", "count ~ spp + mined + (1 | site)", 'nbinom2(link = "log")',
  zi = "~spp + mined", se_fit = TRUE, sets = both, note = "visible.json salamanders_zinb2")
M("sal_zip", "Salamanders", "count ~ spp * mined + (1 | site)", 'poisson(link = "log")',
  zi = "~spp * mined", note = "visible.json salamanders_zip")
M("sal_zinb1_mined", "Salamanders", "count ~ spp + mined + (1 | site)", 'nbinom1(link = "log")',
  zi = "~mined")
M("sal_hurdle_nb2", "Salamanders", "count ~ spp + mined + (1 | site)",
  'truncated_nbinom2(link = "log")', zi = "~spp + mined", se_fit = TRUE,
  note = "hurdle negative binomial of the glmmTMB paper (Brooks et al. 2017)")
M("sal_hurdle_pois", "Salamanders", "count ~ spp + mined + (1 | site)",
  'truncated_poisson(link = "log")', zi = "~mined")
M("sal_genpois", "Salamanders", "count ~ spp + mined + (1 | site)", 'genpois(link = "log")',
  sets = both)
# (compois on Salamanders is left out: one fit takes over 5 minutes on this machine)
M("sal_zip_re_zi", "Salamanders", "count ~ spp + mined + (1 | site)", 'poisson(link = "log")',
  zi = "~mined + (1 | site)")
M("sal_zinb2_nore", "Salamanders", "count ~ spp + mined + cover", 'nbinom2(link = "log")',
  zi = "~1", note = "no random effects")
M("sal_nb2_disp_mined", "Salamanders", "count ~ spp + mined + (1 | site)",
  'nbinom2(link = "log")', disp = "~mined")

# --- Owls: nbinom1/nbinom2 with offsets ------------------------------------------------------
M("owls_zinb1", "Owls",
  "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)",
  'nbinom1(link = "log")', zi = "~1", sets = both, note = "visible.json owls_nb1")
M("owls_zinb2_offset_arg", "Owls", "SiblingNegotiation ~ FoodTreatment * SexParent + (1 | Nest)",
  'nbinom2(link = "log")', zi = "~1", offset = "logBroodSize",
  note = "offset given as the offset= argument (column logBroodSize = log(BroodSize))")
M("owls_pois", "Owls",
  "SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)",
  'poisson(link = "log")', se_fit = TRUE)
M("owls_zinb2_disp_food", "Owls",
  "SiblingNegotiation ~ FoodTreatment + SexParent + offset(logBroodSize) + (1 | Nest)",
  'nbinom2(link = "log")', zi = "~1", disp = "~FoodTreatment")

# --- cbpp: binomial response forms and links, beta-binomial ----------------------------------
cbpp_f <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
M("cbpp_binom", "cbpp", cbpp_f, 'binomial(link = "logit")', se_fit = TRUE, sets = both)
M("cbpp_binom_prop_weights", "cbpp", "incidence / size ~ period + (1 | herd)",
  'binomial(link = "logit")', weights = "size",
  note = "proportion response with weights = number of trials (same model as cbpp_binom)")
M("cbpp_probit", "cbpp", cbpp_f, 'binomial(link = "probit")')
M("cbpp_cloglog", "cbpp", cbpp_f, 'binomial(link = "cloglog")')
M("cbpp_betabinom", "cbpp", cbpp_f, 'betabinomial(link = "logit")')
M("cbpp_binom_log", "cbpp", cbpp_f, 'binomial(link = "log")',
  start = "list(beta = c(-2, 0, 0, 0))",
  note = "log link; glmmTMB's default start (beta = 0, p = 1) gives a NaN likelihood, so start = list(beta = c(-2, 0, 0, 0))")
M("cbpp_binom_nore", "cbpp", "cbind(incidence, size - incidence) ~ period",
  'binomial(link = "logit")', note = "no random effects")

# --- grouseticks -----------------------------------------------------------------------------
M("grouse_pois_3re", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
  'poisson(link = "log")', note = "observation-level random effect (1 | INDEX)")
M("grouse_nb2", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", 'nbinom2(link = "log")',
  se_fit = TRUE)
M("grouse_zinb1_year", "grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD)",
  'nbinom1(link = "log")', zi = "~YEAR")

# --- sleepstudy: gaussian ML / REML, slopes, t, log link -------------------------------------
M("sleep_slope_ml", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
  'gaussian(link = "identity")', se_fit = TRUE, sets = both)
M("sleep_slope_reml", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
  'gaussian(link = "identity")', REML = TRUE, sets = both,
  note = "REML: same criterion as lmer's (1743.628)")
M("sleep_uncorr", "sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
  'gaussian(link = "identity")')
M("sleep_t", "sleepstudy", "Reaction ~ Days + (Days | Subject)", 't_family(link = "identity")',
  sets = both)
M("sleep_gauss_log", "sleepstudy", "Reaction ~ Days + (1 | Subject)", 'gaussian(link = "log")')

# --- Orthodont: dispersion models ------------------------------------------------------------
M("orth_disp_sex", "Orthodont", "distance ~ age * Sex + (1 | Subject)",
  'gaussian(link = "identity")', disp = "~Sex", sets = both,
  note = "visible.json orthodont_dispersion")
M("orth_disp_age", "Orthodont", "distance ~ age * Sex + (1 | Subject)",
  'gaussian(link = "identity")', disp = "~age")
M("orth_disp_sex_reml", "Orthodont", "distance ~ age * Sex + (1 | Subject)",
  'gaussian(link = "identity")', disp = "~Sex", REML = TRUE)

# --- cake: nested (interaction) grouping, Gamma ----------------------------------------------
M("cake_nested", "cake", "angle ~ recipe + temp + (1 | replicate) + (1 | recipe:replicate)",
  'gaussian(link = "identity")')
M("cake_gamma_inverse", "cake", "angle ~ recipe + temperature + (1 | replicate)",
  'Gamma(link = "inverse")', start = "list(beta = c(0.03, 0, 0, 0, 0, 0, 0, 0))",
  note = "default Gamma link; without a start glmmTMB fails (its inverse-link start beta = 1 gives an infinite Hessian: 'infinite or missing values in x' in eigen)")
M("cake_gamma_log", "cake", "angle ~ recipe + temp + (1 | replicate)", 'Gamma(link = "log")')

# --- VerbAgg / Contraception: large binomial, crossed, random slope on a factor ---------------
M("verbagg_crossed", "VerbAgg", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
  'binomial(link = "logit")', note = "crossed random effects, 7584 binary responses")
M("contra_binom", "Contraception", "use ~ age + I(age^2) + urban + livch + (1 | district)",
  'binomial(link = "logit")')
M("contra_urban_slope", "Contraception", "use ~ age + urban + livch + (urban | district)",
  'binomial(link = "logit")', note = "correlated random intercept and factor slope")
M("contra_shift", "contra_shift", "use ~ age_s + I(age_s^2) + urban + livch + (urban | district)",
  'binomial(link = "logit")', note = "age + 50: X'WX badly conditioned (the fixed-effects basis)")
M("contra_unshift", "contra_shift", "use ~ age + I(age^2) + urban + livch + (urban | district)",
  'binomial(link = "logit")', note = "contra_shift with the centred age: same fit, other beta")
M("reml_shift_sq", "sleep_shift", "Reaction ~ Days_s + I(Days_s^2) + (1 | Subject)",
  'gaussian(link = "identity")', REML = TRUE,
  note = "Days + 1000 and its square: X'X condition ~1e13 (REML's integrated basis)")
M("reml_shift_slope", "sleep_shift", "Reaction ~ Days_s + (Days_s | Subject)",
  'gaussian(link = "identity")', REML = TRUE,
  note = "random slope on Days + 1000: corr ~ -1, same criterion as sleep_slope_reml")
M("reml_shift_disp", "sleep_shift", "Reaction ~ Days_s + I(Days_s^2) + (1 | Subject)",
  'gaussian(link = "identity")', disp = "~late", REML = TRUE,
  note = "REML with a dispersion model (the general engine's start) on Days + 1000")
M("reml_unshift_sq", "sleep_shift", "Reaction ~ Days + I(Days^2) + (1 | Subject)",
  'gaussian(link = "identity")', REML = TRUE,
  note = "reml_shift_sq on Days: same criterion, well conditioned (its oracle)")
M("reml_unshift_disp", "sleep_shift", "Reaction ~ Days + I(Days^2) + (1 | Subject)",
  'gaussian(link = "identity")', disp = "~late", REML = TRUE,
  note = "reml_shift_disp on Days: same criterion, well conditioned (its oracle)")
M("zinb2_shift", "sim_shift", "y ~ year + elev + (1 | g)", 'nbinom2(link = "log")',
  zi = "~year", disp = "~elev", note = "predictors in the thousands in all three components")

# --- gammasim: Gamma links and dispersion ----------------------------------------------------
M("gammasim_log", "gammasim", "y ~ x + (1 | g)", 'Gamma(link = "log")', se_fit = TRUE,
  sets = both, note = "visible.json gammasim_tmb")
M("gammasim_inverse", "gammasim", "y ~ x + (1 | g)", 'Gamma(link = "inverse")')
M("gammasim_identity", "gammasim", "y ~ x + (1 | g)", 'Gamma(link = "identity")')
M("gammasim_disp_x", "gammasim", "y ~ x + (1 | g)", 'Gamma(link = "log")', disp = "~x")

# --- simulated gaussian: crossed, weights, offsets, slopes, no RE, REML, dispformula ~0 ------
M("gauss_crossed", "sim_gauss", "y ~ x + (1 | site_A) + (1 | rater_B)",
  'gaussian(link = "identity")', sets = both)
M("gauss_crossed_reml", "sim_gauss", "y ~ x + f + (1 | site_A) + (1 | rater_B)",
  'gaussian(link = "identity")', REML = TRUE)
M("gauss_disp_f", "sim_gauss", "y ~ x + (1 | site_A) + (1 | rater_B)",
  'gaussian(link = "identity")', disp = "~f", sets = both)
M("gauss_weights", "sim_gauss", "y_w ~ x + (1 | site_A)", 'gaussian(link = "identity")',
  weights = "w", note = "glmmTMB weights multiply each observation's log-likelihood")
M("gauss_offset_arg", "sim_gauss", "y_offs ~ x + (1 | site_A)", 'gaussian(link = "identity")',
  offset = "offs")
M("gauss_offset_formula", "sim_gauss", "y_offs ~ x + offset(offs) + (1 | site_A)",
  'gaussian(link = "identity")', note = "same model as gauss_offset_arg")
M("gauss_slope", "sim_gauss", "y ~ x + (x | site_A)", 'gaussian(link = "identity")',
  se_fit = TRUE)
M("gauss_uncorr", "sim_gauss", "y ~ x + (1 | site_A) + (0 + x | site_A)",
  'gaussian(link = "identity")')
M("gauss_nore", "sim_gauss", "y ~ x + f", 'gaussian(link = "identity")',
  disp = "~f", note = "no random effects, dispersion by a factor")
M("gauss_disp0_obsre", "sim_gauss", "y ~ x + (1 | site_A) + (1 | obs_id)",
  'gaussian(link = "identity")', disp = "~0", sets = both,
  note = "dispformula ~0 fixes log(sigma^2) at log(sqrt(.Machine$double.eps)); the observation-level random effect carries the residual variance")

# --- Poisson links ---------------------------------------------------------------------------
M("pois_sqrt", "sim_pois_links", "y_sqrt ~ x + (1 | g)", 'poisson(link = "sqrt")')
M("pois_identity", "sim_pois_links", "y_id ~ x + (1 | g)", 'poisson(link = "identity")')

# --- binary ----------------------------------------------------------------------------------
M("binary_logit", "sim_binary", "y ~ x1 + x2 + (1 | grp)", 'binomial(link = "logit")',
  se_fit = TRUE)
M("binary_probit", "sim_binary", "y ~ x1 + x2 + (1 | grp)", 'binomial(link = "probit")')
M("binary_cloglog", "sim_binary", "y ~ x1 + x2 + (1 | grp)", 'binomial(link = "cloglog")')
M("binary_weights", "sim_binary", "y ~ x1 + x2 + (1 | grp)", 'binomial(link = "logit")',
  weights = "w", sets = both,
  note = "0/1 response with weights: glmmTMB 1.1.5 multiplies each log-likelihood by w (size stays 1); glmmTMB >= 1.1.9 treats w as trials (y*w successes of w); both give the same likelihood, as choose(w, 0) = choose(w, w) = 1")

# --- beta ------------------------------------------------------------------------------------
M("beta_logit", "sim_beta", "y ~ x.1 + (1 | grp)", 'beta_family(link = "logit")',
  se_fit = TRUE, sets = both)
M("beta_probit", "sim_beta", "y ~ x.1 + (1 | grp)", 'beta_family(link = "probit")')
M("beta_cloglog", "sim_beta", "y ~ x.1 + (1 | grp)", 'beta_family(link = "cloglog")')
M("beta_disp_z", "sim_beta", "y ~ x.1 + (1 | grp)", 'beta_family(link = "logit")',
  disp = "~z_d")
M("beta_zi", "sim_beta", "y_zero ~ x.1 + (1 | grp)", 'beta_family(link = "logit")', zi = "~1",
  note = "exact zeros handled by the zero-inflation part (a hurdle: the beta density is not evaluated at 0)")

# --- beta-binomial ---------------------------------------------------------------------------
M("bb_cbind", "sim_betabinom", "cbind(succ, n_trials - succ) ~ x + (1 | grp)",
  'betabinomial(link = "logit")', se_fit = TRUE, sets = both)
M("bb_prop_weights", "sim_betabinom", "prop ~ x + (1 | grp)", 'betabinomial(link = "logit")',
  weights = "n_trials", note = "same model as bb_cbind")
M("bb_disp_x", "sim_betabinom", "cbind(succ, n_trials - succ) ~ x + (1 | grp)",
  'betabinomial(link = "logit")', disp = "~x")
M("bb_probit", "sim_betabinom", "cbind(succ, n_trials - succ) ~ x + (1 | grp)",
  'betabinomial(link = "probit")')
M("binom_overdispersed", "sim_betabinom", "cbind(succ, n_trials - succ) ~ x + (1 | grp)",
  'binomial(link = "logit")', note = "binomial fit to the beta-binomial data")

# --- Tweedie, t ------------------------------------------------------------------------------
M("tweedie_log", "sim_tweedie", "y ~ x + (1 | grp)", 'tweedie(link = "log")', se_fit = TRUE,
  sets = both)
M("tweedie_disp_x", "sim_tweedie", "y ~ x + (1 | grp)", 'tweedie(link = "log")', disp = "~x")
M("t_identity", "sim_t", "y ~ x + (1 | grp)", 't_family(link = "identity")', sets = both)
M("t_disp_f2", "sim_t", "y_het ~ x + (1 | grp)", 't_family(link = "identity")', disp = "~f2")

# --- positive continuous ---------------------------------------------------------------------
M("lognormal_data_gamma", "sim_lognormal", "y ~ x + (1 | grp)", 'Gamma(link = "log")')
M("lognormal_data_gauss_log", "sim_lognormal", "y ~ x + (1 | grp)", 'gaussian(link = "log")')
M("lognormal_log", "sim_lognormal", "y ~ x + (1 | grp)", 'lognormal(link = "log")',
  sets = "newer")
M("lognormal_hurdle", "sim_zigamma", "y ~ x + (1 | grp)", 'lognormal(link = "log")',
  zi = "~x", sets = "newer", note = "lognormal hurdle (zeros allowed with ziformula, >= 1.1.9)")

# --- counts: under/over-dispersion -----------------------------------------------------------
M("genpois_under", "sim_counts", "y_under ~ x + (1 | grp)", 'genpois(link = "log")',
  note = "under-dispersed counts: genpois phi < 1")
M("compois_under", "sim_counts", "y_under ~ x + (1 | grp)", 'compois(link = "log")',
  note = "under-dispersed counts: compois phi = 1/nu < 1")
M("pois_under", "sim_counts", "y_under ~ x + (1 | grp)", 'poisson(link = "log")')
M("genpois_under_start", "sim_counts", "y_under ~ x + (1 | grp)", 'genpois(link = "log")',
  start = "list(beta = c(1.5, 0.3), betad = log(0.5))",
  note = "genpois_under from a start near the optimum: no NaN trial points (same optimum)")
M("genpois_over", "sim_counts", "y_over ~ x + (1 | grp)", 'genpois(link = "log")')
M("compois_over", "sim_counts", "y_over ~ x + (1 | grp)", 'compois(link = "log")')
M("nb1_over", "sim_counts", "y_over ~ x + (1 | grp)", 'nbinom1(link = "log")', sets = both)
M("nb2_over", "sim_counts", "y_over ~ x + (1 | grp)", 'nbinom2(link = "log")', se_fit = TRUE)
M("nb2_over_sqrt", "sim_counts", "y_over ~ x + (1 | grp)", 'nbinom2(link = "sqrt")')
M("nb12_over", "sim_counts", "y_over ~ x + (1 | grp)", 'nbinom12(link = "log")',
  sets = "newer", awkward_case = "NB1 part on the boundary (phi -> 0, beta_disp ~ -17): the fit is nb2_over's (same objective)")
M("nb12_sim", "sim_nb12", "y ~ x + (1 | grp)", 'nbinom12(link = "log")', sets = "newer")
M("nb12_owls", "Owls",
  "SiblingNegotiation ~ FoodTreatment * SexParent + offset(log(BroodSize)) + (1 | Nest)",
  'nbinom12(link = "log")', zi = "~1", sets = "newer",
  awkward_case = "NB2 part on the boundary (psi -> +Inf, theta ~ 1e8): the fit is owls_zinb1's (same objective)")

# --- zero-truncated and hurdle counts --------------------------------------------------------
M("trunc_pois", "sim_trunc", "y_tpois ~ x + (1 | grp)", 'truncated_poisson(link = "log")',
  se_fit = TRUE)
M("trunc_nb2", "sim_trunc", "y.tnb ~ x + (1 | grp)", 'truncated_nbinom2(link = "log")',
  se_fit = TRUE, sets = both)
M("trunc_nb1", "sim_trunc", "y.tnb ~ x + (1 | grp)", 'truncated_nbinom1(link = "log")')
M("trunc_genpois", "sim_trunc", "y.tnb ~ x + (1 | grp)", 'truncated_genpois(link = "log")')
M("trunc_compois", "sim_trunc", "y_tpois ~ x + (1 | grp)", 'truncated_compois(link = "log")')
M("hurdle_nb2", "sim_trunc", "y_hurdle ~ x + (1 | grp)", 'truncated_nbinom2(link = "log")',
  zi = "~x", se_fit = TRUE)
M("hurdle_nb1", "sim_trunc", "y_hurdle ~ x + (1 | grp)", 'truncated_nbinom1(link = "log")',
  zi = "~x")
M("hurdle_pois_re_zi", "sim_trunc", "y_hurdle_p ~ x + (1 | grp)",
  'truncated_poisson(link = "log")', zi = "~x + (1 | grp)")
M("hurdle_genpois", "sim_trunc", "y_hurdle ~ x + (1 | grp)", 'truncated_genpois(link = "log")',
  zi = "~x")

# --- ziGamma ---------------------------------------------------------------------------------
M("zigamma_log", "sim_zigamma", "y ~ x + (1 | grp)", 'ziGamma(link = "log")', zi = "~x",
  se_fit = TRUE, sets = both)
M("zigamma_log_re_zi", "sim_zigamma", "y_re ~ x + (1 | grp)", 'ziGamma(link = "log")',
  zi = "~x + (1 | grp)")
M("zigamma_inverse", "sim_zigamma", "y ~ x + (1 | grp)", 'ziGamma(link = "inverse")', zi = "~1",
  start = "list(beta = c(0.4, 0))",
  note = "default (inverse) link; start = list(beta = c(0.4, 0)) as glmmTMB's own (beta = 1) starts far away")

# --- zero inflation with random effects ------------------------------------------------------
M("zip_re_zi", "sim_zi_re", "y ~ x + (1 | grp)", 'poisson(link = "log")', zi = "~x + (1 | grp)",
  se_fit = TRUE, sets = both)
M("zinb2_re_zi", "sim_zi_re", "y_nb ~ x + (1 | grp)", 'nbinom2(link = "log")',
  zi = "~x + (1 | grp)")
M("zip_re_zi_only", "sim_zi_re", "y ~ x", 'poisson(link = "log")', zi = "~1 + (1 | grp)",
  note = "random effect in the zero-inflation part only")

# --- deliberately awkward but valid ----------------------------------------------------------
M("awk_zi_near_zero", "sim_awkward", "y_pois ~ x + (1 | grp)", 'poisson(link = "log")',
  zi = "~1", awkward_case = "zero-inflation not in the data: zi probability goes to 0 (logit to -Inf)")
M("awk_nb2_on_poisson", "sim_awkward", "y_pois ~ x + (1 | grp)", 'nbinom2(link = "log")',
  awkward_case = "nbinom2 fitted to Poisson data: the shape theta goes to +Inf")
M("awk_singular", "sim_awkward", "y_flat ~ x + (1 | grp)", 'gaussian(link = "identity")',
  awkward_case = "no group effect in the data: random-intercept variance goes to 0")
M("awk_gamma_wide", "sim_awkward", "y_wide ~ x + (1 | grp)", 'Gamma(link = "log")',
  awkward_case = "large dispersion: gamma shape ~0.4 (sigma = CV ~1.6)")
M("awk_nb1_large_disp", "Salamanders", "count ~ mined + (1 | site)", 'nbinom1(link = "log")',
  awkward_case = "large nbinom1 dispersion (no zero-inflation in a zero-heavy data set)")
M("awk_t_gaussian_data", "sim_awkward", "y_norm ~ x + (1 | grp)", 't_family(link = "identity")',
  awkward_case = "t fitted to gaussian data: the df goes to +Inf")
M("awk_binom_cauchit", "cbpp", cbpp_f, 'binomial(link = "cauchit")',
  awkward_case = "link glmmTMB does not implement")

# ---------------------------------------------------------------------------------------------
# Fitting and extraction
# ---------------------------------------------------------------------------------------------
fam_ctor <- function(fam_text) sub("\\(.*$", "", fam_text)
fam_python_name <- function(ctor) switch(ctor, beta_family = "beta", t_family = "t", ctor)

python_string <- function(s) {
  fam <- eval(parse(text = s$family))
  f <- gsub("\\^", "**", s$formula)
  parts <- f
  if (s$zi != "~0") parts <- c(parts, paste0("zi=", gsub("\\^", "**", s$zi)))
  if (s$disp != "~1") parts <- c(parts, paste0("dispformula=", s$disp))
  parts <- c(parts, sprintf("family=%s(link=%s)", fam_python_name(fam_ctor(s$family)), fam$link))
  if (isTRUE(s$REML)) parts <- c(parts, "REML=True")
  if (!is.null(s$weights)) parts <- c(parts, paste0("weights=", s$weights))
  if (!is.null(s$offset)) parts <- c(parts, paste0("offset=", s$offset))
  paste(parts, collapse = "; ")
}

r_call_string <- function(s) {
  a <- c(paste0("formula = ", s$formula), "data = data", paste0("family = ", s$family))
  if (s$zi != "~0") a <- c(a, paste0("ziformula = ", s$zi))
  if (s$disp != "~1") a <- c(a, paste0("dispformula = ", s$disp))
  if (isTRUE(s$REML)) a <- c(a, "REML = TRUE")
  if (!is.null(s$weights)) a <- c(a, paste0("weights = ", s$weights))
  if (!is.null(s$offset)) a <- c(a, paste0("offset = ", s$offset))
  if (!is.null(s$start)) a <- c(a, paste0("start = ", s$start))
  paste0("glmmTMB(", paste(a, collapse = ", "), ")")
}

# Evaluate, keeping every warning and message instead of printing them.
capture <- function(expr_fun) {
  warns <- character(); msgs <- character()
  value <- withCallingHandlers(
    tryCatch(expr_fun(), error = function(e) e),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")
    },
    message = function(m) {
      msgs <<- c(msgs, trimws(conditionMessage(m))); invokeRestart("muffleMessage")
    })
  list(value = value, warnings = unique(warns), messages = unique(msgs))
}

num <- function(x) {
  x <- as.numeric(x)
  x[!is.finite(x)] <- NA
  x
}
arr <- function(x) I(num(x))                   # always a JSON array, non-finite -> null
named <- function(x) if (length(x) == 0) NULL else as.list(setNames(num(x), names(x)))
head10 <- function(x) arr(unname(x)[seq_len(min(10, length(x)))])
strip_prefix <- function(x, prefix) {
  names(x) <- sub(paste0("^", prefix), "", names(x)); x
}
mat <- function(m) lapply(seq_len(nrow(m)), function(i) arr(m[i, ]))

varcorr_list <- function(vc) {
  if (is.null(vc) || length(vc) == 0) return(list())
  lapply(names(vc), function(g) {
    v <- vc[[g]]
    sdv <- attr(v, "stddev"); cr <- attr(v, "correlation")
    if (is.null(cr)) cr <- diag(length(sdv))
    list(group = g, terms = I(colnames(v)), sd = arr(sdv), corr = mat(as.matrix(cr)))
  })
}

ranef_head <- function(re_comp) {
  if (length(re_comp) == 0) return(list())
  lapply(names(re_comp), function(g) {
    df <- re_comp[[g]]
    k <- seq_len(min(5, nrow(df)))
    cv <- attr(df, "condVar")
    condsd <- NULL
    if (!is.null(cv)) {
      # one array per term group (list) or one nterm x nterm x nlevel array
      cvs <- if (is.list(cv)) cv else list(cv)
      sds <- do.call(cbind, lapply(cvs, function(a) {
        t(vapply(k, function(j) sqrt(diag(as.matrix(a[, , j]))), numeric(dim(a)[1])))
      }))
      sds <- matrix(sds, nrow = length(k))
      condsd <- setNames(lapply(seq_len(ncol(df)), function(t) arr(sds[, t])), colnames(df))
    }
    list(group = g, levels = I(rownames(df)[k]),
         value = setNames(lapply(colnames(df), function(t) arr(df[k, t])), colnames(df)),
         condsd = condsd)
  })
}

safe <- function(f) {
  r <- capture(f)
  if (inherits(r$value, "error")) {
    list(value = NULL, warnings = c(r$warnings, paste("error:", conditionMessage(r$value))))
  } else r
}

extract <- function(fit, s, fit_warnings, fit_messages, seconds) {
  ex_warn <- character()
  take <- function(label, f) {
    r <- safe(f)
    if (length(r$warnings)) ex_warn <<- c(ex_warn, paste0(label, ": ", r$warnings))
    r$value
  }
  fam <- family(fit)
  ll <- take("logLik", function() logLik(fit))
  par <- fit$fit$par
  fe <- fixef(fit)
  vc_full <- take("vcov_full", function() vcov(fit, full = TRUE))
  vc <- take("vcov", function() vcov(fit))
  se_of <- function(comp, prefix) {
    if (is.null(vc) || is.null(vc[[comp]])) return(NULL)
    named(strip_prefix(sqrt(diag(as.matrix(vc[[comp]]))), prefix))
  }
  se_disp <- NULL
  if (!is.null(vc_full)) {
    dn <- grep("^d~", colnames(vc_full), value = TRUE)
    if (length(dn)) se_disp <- named(strip_prefix(sqrt(diag(vc_full)[dn]), "d~"))
  }
  disp_estimated <- "betad" %in% names(par) || "betadisp" %in% names(par)
  uses_disp <- glmmTMB:::usesDispersion(fam$family)
  has_zi <- length(fe$zi) > 0
  pred_types <- c("link", "response", "conditional")
  if (has_zi) pred_types <- c(pred_types, "zprob", "zlink")
  if (uses_disp) pred_types <- c(pred_types, "disp")
  predict_head <- list()
  for (tp in pred_types) {
    v <- take(paste0("predict_", tp), function() predict(fit, type = tp))
    if (!is.null(v)) predict_head[[tp]] <- head10(v)
  }
  predict_se_head <- NULL
  if (isTRUE(s$se_fit)) {
    predict_se_head <- list()
    for (tp in c("link", "response")) {
      v <- take(paste0("predict_se_", tp), function() predict(fit, type = tp, se.fit = TRUE))
      if (!is.null(v)) predict_se_head[[tp]] <- list(fit = head10(v$fit), se_fit = head10(v$se.fit))
    }
  }
  resid_head <- list()
  for (tp in c("response", "pearson")) {
    v <- take(paste0("residuals_", tp), function() residuals(fit, type = tp))
    if (!is.null(v)) resid_head[[tp]] <- head10(v)
  }
  vcr <- take("VarCorr", function() VarCorr(fit))
  re <- take("ranef", function() ranef(fit, condVar = TRUE))
  fp <- take("family_params", function() family_params(fit))
  reTrms <- fit$modelInfo$reTrms
  ngrps <- function(comp) {
    fl <- reTrms[[comp]]$flist
    if (is.null(fl) || length(fl) == 0) NULL else as.list(vapply(fl, nlevels, 1L))
  }
  psi <- par[names(par) %in% c("psi", "thetaf")]
  family_extra <- NULL
  if (length(psi)) {
    family_extra <- list(psi = arr(psi))
    if (fam$family == "tweedie") family_extra$tweedie_power <- plogis(psi[[1]]) + 1
    if (fam$family == "t") family_extra$t_df <- exp(psi[[1]])
    if (fam$family == "nbinom12") family_extra$nbinom2_theta <- exp(psi[[1]])
  }
  sig <- take("sigma", function() sigma(fit))
  objective <- 2 * fit$fit$objective
  ctor <- fam_ctor(s$family)
  list(
    id = s$id,
    status = NA_character_,
    data = s$data,
    data_file = data_file(s$data),
    r_call = r_call_string(s),
    python = python_string(s),
    note = s$note,
    awkward_case = s$awkward_case,
    versions = versions,
    family = fam_python_name(ctor),
    family_r = s$family,
    family_tmb = fam$family,
    link = fam$link,
    formula = s$formula, ziformula = s$zi, dispformula = s$disp,
    REML = isTRUE(s$REML), weights = s$weights, offset = s$offset, start = s$start,
    objective = objective,
    objective_what = if (isTRUE(s$REML)) "REML criterion (-2 * restricted log-likelihood)" else
      "-2 * log-likelihood (Laplace)",
    logLik = if (is.null(ll)) NA else num(ll),
    df = if (is.null(ll)) NA else attr(ll, "df"),
    # as R's AIC()/BIC(): NA where logLik() is NA (glmmTMB 1.1.5: when the Hessian is not pd)
    AIC = if (is.null(ll) || is.na(ll)) NA else -2 * num(ll) + 2 * attr(ll, "df"),
    BIC = if (is.null(ll) || is.na(ll)) NA else -2 * num(ll) + log(nobs(fit)) * attr(ll, "df"),
    nobs = nobs(fit),
    ngrps = ngrps("cond"), ngrps_zi = ngrps("zi"),
    beta = named(fe$cond), se = se_of("cond", ""),
    beta_zi = named(fe$zi), se_zi = se_of("zi", "zi~"),
    beta_disp = named(fe$disp), se_disp = se_disp,
    disp_estimated = disp_estimated,
    theta = arr(par[names(par) == "theta"]),
    theta_zi = arr(par[names(par) == "thetazi"]),
    sigma = if (is.null(sig)) NA else num(sig),
    family_params = if (length(fp)) named(fp) else NULL,
    family_extra = family_extra,
    par = list(names = I(names(par)), values = arr(par)),
    vcov_full = if (is.null(vc_full)) NULL else
      list(names = I(colnames(vc_full)), matrix = mat(vc_full)),
    varcorr = list(cond = varcorr_list(vcr$cond), zi = varcorr_list(vcr$zi)),
    ranef_head = if (is.null(re)) NULL else list(cond = ranef_head(re$cond), zi = ranef_head(re$zi)),
    fitted_head = head10(fitted(fit)),
    predict_head = predict_head,
    predict_se_head = predict_se_head,
    residuals_head = resid_head,
    convergence = list(code = fit$fit$convergence, message = fit$fit$message,
                       pdHess = isTRUE(fit$sdr$pdHess),
                       max_abs_gradient = max(abs(fit$sdr$gradient.fixed)),
                       iterations = fit$fit$iterations,
                       evaluations = as.list(fit$fit$evaluations)),
    warnings = I(fit_warnings), messages = I(fit_messages),
    extract_warnings = I(unique(ex_warn)),
    seconds = seconds, seconds_all = arr(attr(seconds, "all")),
    seconds_repeats = length(attr(seconds, "all"))
  )
}

write_json_file <- function(x, path) {
  writeLines(toJSON(x, auto_unbox = TRUE, digits = NA, na = "null", null = "null",
                    pretty = 1), path)
}

refused <- list()
to_fit <- Filter(function(s) fit_set %in% s$sets, specs)
if (!is.null(only)) to_fit <- to_fit[intersect(names(to_fit), only)]
summary_rows <- list()
for (s in to_fit) {
  data <- datasets[[s$data]]
  call_text <- r_call_string(s)
  env <- new.env(); env$data <- data
  fit_once <- function() eval(parse(text = call_text), envir = env)
  t_first <- system.time(r <- capture(fit_once))[["elapsed"]]
  for (p in c(file.path(out_dir, paste0(s$id, ".json")), file.path(awk_dir, paste0(s$id, ".json")))) {
    if (file.exists(p)) file.remove(p)
  }
  if (inherits(r$value, "error")) {
    cat(sprintf("%-26s REFUSED: %s\n", s$id, conditionMessage(r$value)))
    refused[[s$id]] <- list(id = s$id, r_call = call_text, python = python_string(s),
                            error = conditionMessage(r$value), warnings = I(r$warnings),
                            awkward_case = s$awkward_case, versions = versions)
    next
  }
  fit <- r$value
  # median of n_time timed fits; a fit slower than slow_s is timed once (its first run)
  times <- if (t_first > slow_s) t_first else vapply(seq_len(n_time), function(i) {
    suppressWarnings(suppressMessages(system.time(fit_once())[["elapsed"]]))
  }, numeric(1))
  seconds <- structure(median(times), all = times)
  e <- extract(fit, s, r$warnings, r$messages, seconds)
  # a covariance glmmTMB cannot invert (vcov() fails) leaves no SEs to compare: awkward
  no_vcov <- any(grepl("^vcov", e$extract_warnings))
  ok <- e$convergence$code == 0 && e$convergence$pdHess && length(r$warnings) == 0 && !no_vcov
  e$status <- if (ok) "parity" else "awkward"
  path <- file.path(if (ok) out_dir else awk_dir, paste0(s$id, ".json"))
  write_json_file(e, path)
  kb <- file.size(path) / 1024
  cat(sprintf("%-26s %-8s obj %14.6f  conv %d pdHess %-5s  %6.2fs  %5.1f KB %s\n", s$id, e$status,
              e$objective, e$convergence$code, e$convergence$pdHess, seconds, kb,
              if (length(r$warnings)) paste("| warn:", paste(r$warnings, collapse = " / ")) else ""))
}
if (is.null(only)) {
  write_json_file(list(versions = versions, refused = unname(refused)),
                  file.path(out_dir, "refused.json"))
} else if (length(refused)) {
  cat("(--only: refused.json not rewritten)\n")
}
