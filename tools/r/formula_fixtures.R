# Reference fits for tests/test_formulas.py and tests/test_predict.py.
#
# Run from the repository root:   Rscript tools/r/formula_fixtures.R
# Writes one JSON file per model to tests/fixtures/formulas/. The tests never call R; they
# read these files. Produced with R 4.2 / lme4 1.1-31 (versions are recorded in each file).
#
# Every row of the formula table of issue 2 is covered by at least one model below. Each model
# has its R formula (what lme4 sees) and the Python spelling (what mixedmodels sees); where
# two spellings are equivalent in lme4 (e.g. (x || g) and (1 | g) + (0 + x | g)) both are fitted
# in R, so the equivalence itself is checked against lme4 rather than assumed.
#
# Data: the bundled CSVs in src/mixedmodels/datasets/data with their factor level orders, so R
# and Python fit exactly the same numbers. Models on simulated or modified data carry their data
# in the fixture.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

data_dir <- file.path("src", "mixedmodels", "datasets", "data")
out_dir <- file.path("tests", "fixtures", "formulas")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
levels_all <- fromJSON(file.path(data_dir, "factor_levels.json"), simplifyVector = TRUE)

load_data <- function(name) {
  lev <- levels_all[[name]]
  cc <- setNames(rep("character", length(lev)), names(lev))
  df <- read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = cc)
  for (col in names(lev)) df[[col]] <- factor(df[[col]], levels = lev[[col]])
  df
}

# mixedmodels' center() is formulaic's stateful centring transform: new data are centred at
# the fitting data's mean. The R twin below names its coefficient "center(age)" like the
# Python one, and its makepredictcall method records the mean (as R does for scale()), so
# that predict() on new data centres at the fitting mean too rather than recomputing it.
center <- function(x, at = mean(x)) structure(x - at, class = c("centered", "numeric"), center = at)
makepredictcall.centered <- function(var, call) {
  if (as.character(call)[1L] == "center") call$at <- attr(var, "center")
  call
}
registerS3method("makepredictcall", "centered", makepredictcall.centered,
                 envir = asNamespace("stats"))

# ---------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------
sleep <- load_data("sleepstudy")
orth <- load_data("Orthodont")
pastes <- load_data("Pastes")
cake <- load_data("cake")
penicillin <- load_data("Penicillin")

# Deterministic prior weights and offsets for sleepstudy (recorded in the fixture).
n_sleep <- nrow(sleep)
sleep_w <- 0.5 + ((seq_len(n_sleep) * 7) %% 11) / 10
sleep_off <- sleep$Days^2 / 2

# Orthodont with Sex as a plain character column: R (and formulaic) then sort the levels,
# so the reference level becomes "Female" instead of the factor's first level "Male".
orth_chr <- orth
orth_chr$SexChr <- as.character(orth$Sex)

# Simulated data: 6 levels of a, 5 levels of b within each a (labels 1..5 reused, so b alone
# does not identify a group), crossed with 8 levels of c; covariates x, x1, x2.
set.seed(5)  # a seed for which every simulated model is non-singular
sim <- expand.grid(c = factor(sprintf("c%d", 1:8)), b = factor(1:5),
                   a = factor(sprintf("a%d", 1:6)))
sim <- sim[, c("a", "b", "c")]
n_sim <- nrow(sim)
sim$x <- round(rnorm(n_sim), 3)
sim$x1 <- round(runif(n_sim, -1, 1), 3)
sim$x2 <- round(rnorm(n_sim, 1, 0.5), 3)
ab <- interaction(sim$a, sim$b, drop = TRUE)
re_a <- matrix(rnorm(6 * 2), 6, 2) %*% diag(c(1.0, 0.5))
re_ab <- matrix(rnorm(nlevels(ab) * 2), nlevels(ab), 2) %*% diag(c(0.8, 0.4))
re_c <- rnorm(8, sd = 0.6)
ia <- as.integer(sim$a)
iab <- as.integer(ab)
sim$y <- round(2 + 0.5 * sim$x - 0.3 * sim$x1 + 0.4 * sim$x2 +
  re_a[ia, 1] + re_a[ia, 2] * sim$x + re_ab[iab, 1] + re_ab[iab, 2] * sim$x +
  re_c[as.integer(sim$c)] + 0.4 * sim$x1 * rnorm(6)[ia] + 0.3 * sim$x2 * rnorm(8)[as.integer(sim$c)] +
  rnorm(n_sim, sd = 0.5), 4)

# ---------------------------------------------------------------------------------------------
# Models: id, data name, R formula, Python formula, REML, weights/offset
# ---------------------------------------------------------------------------------------------
M <- function(id, data, r, py, REML = TRUE, weights = NULL, offset = NULL, embed = FALSE,
              predict = NULL, note = "") {
  list(id = id, data = data, r = r, py = py, REML = REML, weights = weights,
       offset = offset, embed = embed, predict = predict, note = note)
}

datasets <- list(sleepstudy = sleep, Orthodont = orth, Pastes = pastes, cake = cake,
                 Penicillin = penicillin, orth_chr = orth_chr, sim = sim)

# New data for predictions: known and new levels, new covariate values, factors as strings.
nd_sleep <- data.frame(Days = c(0, 4.5, 9, 2, 12, 3),
                       Subject = c("308", "309", "372", "999", "999", "350"))
# missing values: a missing predictor gives a missing prediction; a missing grouping level is
# a new level (population prediction with allow.new.levels = TRUE)
nd_sleep_na <- data.frame(Days = c(1, NA, 3, 5), Subject = c(NA, "308", "308", "331"))
nd_orth <- data.frame(age = c(8, 9, 11, 14, 16, 10, 12),
                      Sex = c("Male", "Male", "Female", "Female", "Male", "Female", "Male"),
                      Subject = c("M01", "M05", "F02", "F11", "M99", "F99", "M16"))
nd_pastes <- data.frame(batch = c("A", "A", "C", "J", "Z", "B"),
                        cask = c("a", "b", "c", "a", "a", "z"))
nd_cake <- data.frame(recipe = c("A", "B", "C", "C", "A"),
                      replicate = c("1", "2", "15", "16", "3"))
nd_sim <- data.frame(x = c(-1, 0, 0.5, 1.5, 2, -0.3),
                     a = c("a1", "a2", "a6", "a3", "a9", "a4"),
                     b = c("1", "5", "3", "7", "2", "2"))

P <- function(newdata, re_form, allow_new_levels = FALSE, py_re_form = NULL) {
  list(newdata = newdata, re_form = re_form, allow_new_levels = allow_new_levels,
       py_re_form = py_re_form)
}

models <- list(
  M("sleep_intercept", "sleepstudy", "Reaction ~ Days + (1 | Subject)",
    "Reaction ~ Days + (1 | Subject)"),
  M("sleep_corr", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days | Subject)",
    predict = list(P(nd_sleep, "NULL", TRUE), P(nd_sleep, "NA", FALSE, "~0"),
                   P(nd_sleep[nd_sleep$Subject != "999", ], "NULL", FALSE),
                   P(nd_sleep, "~(1 | Subject)", TRUE), P(nd_sleep_na, "NULL", TRUE))),
  M("sleep_corr_explicit", "sleepstudy", "Reaction ~ Days + (1 + Days | Subject)",
    "Reaction ~ 1 + Days + (1 + Days | Subject)"),
  M("sleep_slope", "sleepstudy", "Reaction ~ Days + (0 + Days | Subject)",
    "Reaction ~ Days + (0 + Days | Subject)"),
  M("sleep_slope_minus1", "sleepstudy", "Reaction ~ Days + (-1 + Days | Subject)",
    "Reaction ~ Days + (-1 + Days | Subject)"),
  M("sleep_uncorr_explicit", "sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)",
    predict = list(P(nd_sleep, "~(1 | Subject)", TRUE),
                   P(nd_sleep, "~(0 + Days | Subject)", TRUE),
                   P(nd_sleep, "~(Days || Subject)", TRUE))),
  M("sleep_uncorr_ml", "sleepstudy", "Reaction ~ Days + (Days || Subject)",
    "Reaction ~ Days + (Days || Subject)", REML = FALSE),
  M("sleep_factor_days", "sleepstudy", "Reaction ~ factor(Days) + (1 | Subject)",
    "Reaction ~ C(Days) + (1 | Subject)"),
  M("sleep_weights", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days | Subject)", weights = sleep_w,
    predict = list(P(nd_sleep, "NULL", TRUE))),
  M("sleep_weights_ml", "sleepstudy", "Reaction ~ Days + (1 | Subject)",
    "Reaction ~ Days + (1 | Subject)", REML = FALSE, weights = sleep_w),
  M("sleep_offset_formula", "sleepstudy", "Reaction ~ Days + offset(Days^2 / 2) + (Days | Subject)",
    "Reaction ~ Days + offset(Days**2 / 2) + (Days | Subject)",
    predict = list(P(nd_sleep, "NULL", TRUE), P(nd_sleep, "NA", FALSE, "~0"))),
  M("sleep_offset_argument", "sleepstudy", "Reaction ~ Days + (Days | Subject)",
    "Reaction ~ Days + (Days | Subject)", offset = sleep_off),
  M("orth_scale", "Orthodont", "distance ~ scale(age) * Sex + (scale(age) | Subject)",
    "distance ~ scale(age) * Sex + (scale(age) | Subject)",
    predict = list(P(nd_orth, "NULL", TRUE), P(nd_orth, "NA", FALSE, "~0"))),
  M("orth_center_poly", "Orthodont", "distance ~ center(age) + I(age^2) + Sex + (1 | Subject)",
    "distance ~ center(age) + I(age**2) + Sex + (1 | Subject)",
    predict = list(P(nd_orth, "NULL", TRUE))),
  M("orth_log_factor", "Orthodont", "distance ~ log(age) * factor(Sex) + (age | Subject)",
    "distance ~ log(age) * C(Sex) + (age | Subject)"),
  M("orth_sex_string", "orth_chr", "distance ~ age + SexChr + (1 | Subject)",
    "distance ~ age + SexChr + (1 | Subject)", embed = TRUE,
    note = "SexChr is a character column: reference level Female (sorted), as in R"),
  M("pastes_slash", "Pastes", "strength ~ 1 + (1 | batch/cask)",
    "strength ~ 1 + (1 | batch/cask)",
    predict = list(P(nd_pastes, "NULL", TRUE), P(nd_pastes, "~(1 | batch)", TRUE))),
  M("pastes_explicit", "Pastes", "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
    "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  M("penicillin_crossed", "Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  M("cake_a_ab", "cake", "angle ~ recipe + (1 | recipe:replicate)",
    "angle ~ recipe + (1 | recipe:replicate)",
    predict = list(P(nd_cake, "NULL", TRUE), P(nd_cake, "NA", FALSE, "~0"))),
  M("sim_nested_vector", "sim", "y ~ x + (x | a/b)", "y ~ x + (x | a/b)", embed = TRUE,
    predict = list(P(nd_sim, "NULL", TRUE), P(nd_sim, "~(x | a)", TRUE))),
  M("sim_nested_vector_explicit", "sim", "y ~ x + (x | a) + (x | a:b)",
    "y ~ x + (x | a) + (x | a:b)", embed = TRUE),
  M("sim_two_slopes", "sim", "y ~ x1 + x2 + (x1 | a) + (x2 | c)",
    "y ~ x1 + x2 + (x1 | a) + (x2 | c)", embed = TRUE),
  M("sim_x_star_a", "sim", "y ~ x * a + (x | a:b)", "y ~ x * a + (x | a:b)", embed = TRUE)
)

# ---------------------------------------------------------------------------------------------
# Fit and write
# ---------------------------------------------------------------------------------------------
frame_json <- function(df) {
  out <- list()
  levs <- list()
  for (col in names(df)) {
    v <- df[[col]]
    if (is.factor(v)) {
      levs[[col]] <- levels(v)
      out[[col]] <- as.character(v)
    } else {
      out[[col]] <- v
    }
  }
  list(columns = out, factor_levels = if (length(levs)) levs else setNames(list(), character()))
}

ranef_table <- function(fit, n_levels = 5) {
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  keep <- unlist(lapply(split(seq_len(nrow(re)), re$grpvar), function(idx) {
    lev <- unique(as.character(re$grp[idx]))[seq_len(min(n_levels, length(unique(re$grp[idx]))))]
    idx[as.character(re$grp[idx]) %in% lev]
  }))
  re <- re[sort(keep), ]
  list(group = as.character(re$grpvar), term = as.character(re$term),
       level = as.character(re$grp), value = re$condval, condsd = re$condsd)
}

lmer_args <- function(m, ...) {
  args <- list(formula = as.formula(m$r), data = datasets[[m$data]], REML = m$REML, ...)
  if (!is.null(m$weights)) args$weights <- m$weights
  if (!is.null(m$offset)) args$offset <- m$offset
  args
}

predict_entry <- function(fit, p) {
  re_form <- switch(p$re_form, "NULL" = NULL, "NA" = NA, as.formula(p$re_form))
  vals <- predict(fit, newdata = p$newdata, re.form = re_form,
                  allow.new.levels = p$allow_new_levels)
  list(newdata = frame_json(p$newdata)$columns,
       re_form = if (is.null(p$py_re_form)) (if (p$re_form == "NULL") NULL else p$re_form)
                 else p$py_re_form,
       allow_new_levels = p$allow_new_levels,
       values = I(unname(vals)))
}

for (m in models) {
  df <- datasets[[m$data]]
  fit <- do.call(lmer, lmer_args(m))
  # lme4's deviance function for the same model (REML criterion or deviance at given theta)
  devfun <- do.call(lmer, lmer_args(m, devFunOnly = TRUE))
  theta <- getME(fit, "theta")
  # lme4's starting point: 1 on the diagonal of each relative Cholesky factor, 0 off it
  theta0 <- ifelse(getME(fit, "lower") == 0, 1, 0)
  theta_mid <- theta * 0.7 + theta0 * 0.3
  beta <- fixef(fit)
  out <- list(
    id = m$id,
    note = m$note,
    versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                    lme4 = as.character(packageVersion("lme4"))),
    r_call = sprintf("lmer(%s, REML = %s%s%s)", m$r, m$REML,
                     if (is.null(m$weights)) "" else ", weights = <weights>",
                     if (is.null(m$offset)) "" else ", offset = <offset>"),
    python = list(formula = m$py, REML = m$REML),
    dataset = if (m$embed) NULL else m$data,
    data = if (m$embed) frame_json(df) else NULL,
    weights = m$weights,
    offset = m$offset,
    objective = unname(if (m$REML) getME(fit, "devcomp")$cmp[["REML"]]
                       else getME(fit, "devcomp")$cmp[["dev"]]),
    theta = I(unname(theta)),
    beta_names = I(names(beta)),
    beta = I(unname(beta)),
    se = I(unname(sqrt(diag(as.matrix(vcov(fit)))))),
    sigma = sigma(fit),
    nobs = nobs(fit),
    ngrps = as.list(ngrps(fit)),
    singular = isSingular(fit),
    devfun = list(list(theta = I(unname(theta0)), value = devfun(theta0)),
                  list(theta = I(unname(theta_mid)), value = devfun(theta_mid)),
                  list(theta = I(unname(theta)), value = devfun(theta))),
    ranef = ranef_table(fit),
    fitted_head = I(unname(head(fitted(fit), 10))),
    predict = if (is.null(m$predict)) NULL else lapply(m$predict, function(p) predict_entry(fit, p))
  )
  out <- Filter(Negate(is.null), out)
  path <- file.path(out_dir, paste0(m$id, ".json"))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null",
                    na = "null"), path)
  cat(sprintf("%-28s objective %.6f  theta %s\n", m$id, out$objective,
              paste(sprintf("%.5f", theta), collapse = " ")))
}
