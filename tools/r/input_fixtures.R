# Reference fits for tests/test_input_contrasts.py: contrasts, ordered factors, R's coefficient
# names, the '.' of a formula and the response on the right-hand side.
#
# Run from the repository root:   Rscript tools/r/input_fixtures.R
# Writes tests/fixtures/input/contrasts.json (data + one entry per model). The tests never
# call R. Each model records lme4's REML criterion, fixed effects (with R's names, in R's
# order) and their standard errors.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

set.seed(20240611)
n_g <- 12; per <- 10; n <- n_g * per
g <- rep(sprintf("g%02d", 1:n_g), each = per)
x <- round(rnorm(n), 6)
f <- sample(c("a", "b", "c"), n, TRUE)
h <- sample(c("p", "q", "r", "s"), n, TRUE)
o <- sample(c("lo", "mid", "high", "top", "max"), n, TRUE)
b <- sample(c(TRUE, FALSE), n, TRUE)
u <- rnorm(n_g)[as.integer(factor(g))]
y <- round(1 + 2 * x + 0.5 * (f == "b") - 0.3 * (h == "s") +
           0.4 * match(o, c("lo", "mid", "high", "top", "max")) + 0.3 * b + u + rnorm(n), 6)
raw <- data.frame(y = y, x = x, g = g, f = f, h = h, o = o, b = b, stringsAsFactors = FALSE)

d <- raw
d$g <- factor(d$g); d$f <- factor(d$f); d$h <- factor(d$h); d$o <- factor(d$o,
  levels = c("lo", "mid", "high", "top", "max"), ordered = TRUE)

models <- list(
  list(id = "sum_arg", r = y ~ x + f + (1 | g), contrasts = list(f = "contr.sum"),
       py = "y ~ x + f + (1 | g)", py_contrasts = list(f = "sum")),
  list(id = "helmert_interaction", r = y ~ x * f + (1 | g),
       contrasts = list(f = "contr.helmert"),
       py = "y ~ x * f + (1 | g)", py_contrasts = list(f = "contr.helmert")),
  list(id = "ordered_poly", r = y ~ o + (1 | g), py = "y ~ o + (1 | g)"),
  list(id = "ordered_poly_x", r = y ~ x * o + (1 | g), py = "y ~ x * o + (1 | g)"),
  list(id = "poly_arg_unordered", r = y ~ h + (1 | g), contrasts = list(h = "contr.poly"),
       py = "y ~ h + (1 | g)", py_contrasts = list(h = "poly")),
  list(id = "C_sum_in_formula", r = y ~ x + C(f, contr.sum) + (1 | g),
       py = "y ~ x + C(f, contr.sum) + (1 | g)"),
  list(id = "C_helmert_in_formula", r = y ~ C(h, contr.helmert) + (1 | g),
       py = "y ~ C(h, contr.helmert) + (1 | g)"),
  list(id = "full_dummies", r = y ~ 0 + f + x + (1 | g), py = "y ~ 0 + f + x + (1 | g)"),
  list(id = "slope_by_level", r = y ~ x:f + (1 | g), py = "y ~ x:f + (1 | g)"),
  list(id = "logical", r = y ~ b + x + (1 | g), py = "y ~ b + x + (1 | g)"),
  list(id = "two_factor_sum_poly", r = y ~ f * h + (1 | g),
       contrasts = list(f = "contr.sum", h = "contr.poly"),
       py = "y ~ f * h + (1 | g)", py_contrasts = list(f = "sum", h = "poly")),
  list(id = "transforms", r = y ~ I(x^2) + log(x + 10) + (1 | g),
       py = "y ~ I(x^2) + log(x + 10) + (1 | g)"),
  list(id = "sas_arg", r = y ~ h + (1 | g), contrasts = list(h = "contr.SAS"),
       py = "y ~ h + (1 | g)", py_contrasts = list(h = "SAS")),
  list(id = "dot", r = y ~ . + (1 | g), py = "y ~ . + (1 | g)",
       columns = c("y", "x", "g", "f")),
  list(id = "dot_minus", r = y ~ . - f + (1 | g), py = "y ~ . - f + (1 | g)",
       columns = c("y", "x", "g", "f", "h")),
  list(id = "response_on_rhs", r = y ~ y + x + (1 | g), py = "y ~ y + x + (1 | g)")
)

out <- list(
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  data = as.list(raw),
  ordered_levels = list(o = c("lo", "mid", "high", "top", "max")),
  contr_poly = lapply(2:8, function(k) unname(contr.poly(k))),
  models = list()
)
for (m in models) {
  dat <- if (is.null(m$columns)) d else d[, m$columns]
  warns <- character(0)
  fit <- withCallingHandlers(
    if (is.null(m$contrasts)) lmer(m$r, dat) else lmer(m$r, dat, contrasts = m$contrasts),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  out$models[[m$id]] <- list(
    id = m$id, r_formula = deparse(m$r), formula = m$py,
    contrasts = if (is.null(m$py_contrasts)) NULL else m$py_contrasts,
    columns = if (is.null(m$columns)) NULL else m$columns,
    objective = unname(REMLcrit(fit)),
    beta_names = names(fixef(fit)), beta = unname(fixef(fit)),
    se = unname(sqrt(diag(as.matrix(vcov(fit))))),
    warnings = warns)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null"),
           file.path("tests", "fixtures", "input", "contrasts.json"))
