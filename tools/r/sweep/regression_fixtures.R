# Small glmmTMB 1.1.5 fixtures for the bugs the parity sweep (tools/r/sweep/) found, written
# to tests/fixtures/sweep/<id>.json. Run from the repository root:
#   Rscript tools/r/sweep/regression_fixtures.R
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
out_dir <- file.path("tests", "fixtures", "sweep")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
bundled <- file.path("src", "mixedmodels", "datasets", "data")
lev <- fromJSON(file.path(bundled, "factor_levels.json"))
cbpp <- read.csv(file.path(bundled, "cbpp.csv"))
for (col in names(lev$cbpp)) cbpp[[col]] <- factor(as.character(cbpp[[col]]), levels = lev$cbpp[[col]])
named <- function(x) as.list(setNames(as.numeric(x), names(x)))
write_fit <- function(id, fit, extra = list()) {
  rec <- c(list(id = id, glmmTMB = as.character(packageVersion("glmmTMB")),
                objective = 2 * fit$fit$objective, beta = named(fixef(fit)$cond),
                se = named(sqrt(diag(vcov(fit)$cond))),
                vcov_full_names = I(colnames(vcov(fit, full = TRUE)))), extra)
  write_json(rec, file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE)
}
# proportions written with 6 decimals (as in a CSV): successes = size * prop are whole
# numbers only up to rounding (2/14 -> 0.142857, times 14 = 1.999998)
cbpp$prop6 <- round(cbpp$incidence / cbpp$size, 6)
fit <- glmmTMB(prop6 ~ period + (1 | herd), data = cbpp, family = binomial, weights = size)
write_fit("cbpp_prop_rounded", fit, list(
  formula = "prop6 ~ period + (1 | herd)", weights = "size", data = "cbpp",
  note = "prop6 = round(incidence / size, 6); glmmTMB fits the non-integer successes as given"))
# a structured term with many columns: its theta names in vcov(full = TRUE)
cbpp$pd <- factor(paste0("p", cbpp$period))
fit <- glmmTMB(cbind(incidence, size - incidence) ~ 1 + ar1(0 + pd | herd), data = cbpp,
               family = binomial)
write_fit("cbpp_ar1_labels", fit, list(
  formula = "cbind(incidence, size - incidence) ~ 1 + ar1(0 + pd | herd)", data = "cbpp",
  note = "pd = factor(paste0('p', period))"))

# nlme: nested random effects whose inner variance goes to 0, with AR(1) residuals within
# the inner groups (our intervals() failed inside numpy's eigensolver there)
suppressPackageStartupMessages(library(nlme))
set.seed(808)
n_g <- 20
nest <- data.frame(g = factor(sprintf("g%02d", rep(1:n_g, each = 12))),
                   h = factor(rep(rep(c("a", "b", "c"), each = 4), n_g)))
nest$x <- round(rnorm(nrow(nest)), 6)
e <- as.numeric(unlist(lapply(seq_len(n_g * 3), function(i) arima.sim(list(ar = 0.3), 4))))
nest$y <- round(0.4 * nest$x + rnorm(n_g, 0, 0.7)[as.integer(nest$g)] + 0.6 * e, 6)
write.csv(nest, file.path(out_dir, "nested_ar1.csv"), row.names = FALSE)
nest <- read.csv(file.path(out_dir, "nested_ar1.csv"), stringsAsFactors = TRUE)
m <- lme(y ~ x, nest, random = ~ 1 | g/h, correlation = corAR1(form = ~ 1 | g/h))
write_json(list(id = "nested_ar1", nlme = as.character(packageVersion("nlme")),
                r_call = "lme(y ~ x, nest, random = ~ 1 | g/h, correlation = corAR1(form = ~ 1 | g/h))",
                logLik = as.numeric(logLik(m)), coef = named(fixef(m)),
                se = named(sqrt(diag(vcov(m)))), phi = as.numeric(coef(m$modelStruct$corStruct, FALSE)),
                re_sd = as.numeric(VarCorr(m)[, "StdDev"]),
                intervals = tryCatch({intervals(m); "ok"}, error = function(e) conditionMessage(e))),
           file.path(out_dir, "nested_ar1.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE)

# genpois under strong under-dispersion: ones beyond Consul's support bound (theta +
# lambda < 0) keep glmmTMB's finite value theta exp(-theta - lambda); we returned NaN there
# and stopped at an objective 12.6 above glmmTMB's
set.seed(4242)
n_g <- 20
und <- data.frame(g = factor(sprintf("g%02d", rep(1:n_g, each = 12))))
und$x <- round(rnorm(nrow(und)), 6)
mu <- exp(0.5 + 0.4 * und$x + rnorm(n_g, 0, 0.6)[as.integer(und$g)])
und$y <- pmax(0, round(mu + rnorm(nrow(und), 0, 0.4)))
write.csv(und, file.path(out_dir, "genpois_under.csv"), row.names = FALSE)
und <- read.csv(file.path(out_dir, "genpois_under.csv"), stringsAsFactors = TRUE)
fit <- glmmTMB(y ~ x + (1 | g), und, family = genpois)
write_fit("genpois_under", fit, list(
  formula = "y ~ x + (1 | g)", data = "genpois_under.csv",
  beta_disp = named(fixef(fit)$disp), sd = as.numeric(attr(VarCorr(fit)$cond$g, "stddev")),
  convergence = fit$fit$convergence, pdHess = fit$sdr$pdHess))

# t with a dispersion model: without random effects the df ran to its flat Gaussian limit
# and the full fit stayed there, 6.2 deviance units above this optimum (df = 4.67)
orth <- read.csv(file.path(bundled, "Orthodont.csv"))
for (col in names(lev$Orthodont)) orth[[col]] <- factor(as.character(orth[[col]]), levels = lev$Orthodont[[col]])
fit <- glmmTMB(distance ~ age + Sex + (1 | Subject), orth, family = t_family, dispformula = ~Sex)
write_fit("orth_t_disp_sex", fit, list(
  formula = "distance ~ age + Sex + (1 | Subject)", dispformula = "~Sex", data = "Orthodont",
  beta_disp = named(fixef(fit)$disp), df = as.numeric(exp(fit$fit$par[["psi"]])),
  convergence = fit$fit$convergence, pdHess = fit$sdr$pdHess))

# nlme gls with a variance function and a correlation by group: the Python test renames the
# grouping columns to a unicode name and to one with a space (quoted in backticks), which
# the form parser refused ("the grouping after '|' must be column names")
m <- gls(distance ~ age, orth, correlation = corCompSymm(form = ~ 1 | Subject),
         weights = varIdent(form = ~ 1 | Sex))
write_json(list(id = "orth_gls_cs_ident", nlme = as.character(packageVersion("nlme")),
                r_call = "gls(distance ~ age, Orthodont, correlation = corCompSymm(form = ~ 1 | Subject), weights = varIdent(form = ~ 1 | Sex))",
                logLik = as.numeric(logLik(m)), coef = named(coef(m)),
                se = named(sqrt(diag(vcov(m)))), sigma = m$sigma,
                rho = as.numeric(coef(m$modelStruct$corStruct, FALSE)),
                var_params = named(coef(m$modelStruct$varStruct, FALSE, allCoef = TRUE))),
           file.path(out_dir, "orth_gls_cs_ident.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)

# a Gaussian-correlation spatial term whose range has two optima: the sweep's gau_pois (the
# first 60 rows of its simulated data, columns y_pois, x, cx, cy, in gau_pois_short.csv).
# glmmTMB starts the range at 1 and reaches the short one; we started at the median
# distance and stopped at the long one, 1.94 higher. Also the exponential correlation
sp <- read.csv(file.path(out_dir, "gau_pois_short.csv"))
sp$pos <- numFactor(sp$cx, sp$cy)
sp$g <- factor(rep("a", nrow(sp)))
for (k in c("gau", "exp")) {
  f <- as.formula(sprintf("y_pois ~ x + %s(0 + pos | g)", k))
  fit <- glmmTMB(f, data = sp, family = poisson)
  write_fit(paste0(k, "_pois_short"), fit, list(
    formula = sprintf("y_pois ~ x + %s(0 + pos(cx, cy) | g)", k), data = "gau_pois_short.csv",
    theta = as.numeric(fit$fit$par[names(fit$fit$par) == "theta"]),
    note = "theta: log sd, log range (glmmTMB 1.1.5)"))
}
