# glmmTMB 1.1.5's profile intervals and predictions with standard errors for a subset of
# the structures of tests/test_everystruct_matrix.py, on the structures fixtures' data and
# the matrix's own (tests/fixtures/everystruct/long_reps.csv):
#   Rscript tools/r/everystruct_fixtures.R   (from the repository root)
# Writes tests/fixtures/everystruct/glmmtmb.json: per model the objective (-2 logLik),
# confint(method = "profile") (rows and ends on glmmTMB's scale: log sds, the correlation
# parameters of its parameterization; glmmTMB's spline, or uniroot where the spline fails:
# "method"), predict(se.fit = TRUE) at the first five fitting rows, conditional
# ("predict") and with re.form = NA ("predict_re0": the test predicts these with the fifth
# row's group replaced by a new level).
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
dd <- "tests/fixtures/structures/data"
long <- read.csv(file.path(dd, "long.csv"), colClasses = c(subject = "character"))
long$subject <- factor(long$subject)
long$ftime <- factor(long$time)
# the matrix's own simulated data (two rows per subject and time), written by
# tests/everystruct_cases.py: replicated times of ar1() and ou() terms
reps <- read.csv("tests/fixtures/everystruct/long_reps.csv",
                 colClasses = c(subject = "character"))
reps$subject <- factor(reps$subject)
reps$ftime <- factor(reps$time)
reps$tpos <- numFactor(reps$tt)
models <- list(
  ar1_reps = list(data = reps, formula = y ~ x + ar1(0 + ftime | subject),
                  family = gaussian(), group = "subject"),
  ou_reps = list(data = reps, formula = y ~ x + ou(0 + tpos | subject),
                 family = gaussian(), group = "subject"),
  us_gauss = list(data = long, formula = y ~ x + us(1 + x | subject), family = gaussian(),
                  group = "subject"),
  us_pois = list(data = long, formula = yc ~ x + us(1 + x | subject), family = poisson(),
                 group = "subject"),
  ar1_pois = list(data = long, formula = yc ~ x + ar1(0 + ftime | subject), family = poisson(),
                  group = "subject"),
  cs_pois = list(data = long, formula = yc ~ x + cs(0 + ftime | subject), family = poisson(),
                 group = "subject")
)
out <- lapply(models, function(m) {
  fit <- glmmTMB(m$formula, data = m$data, family = m$family)
  # glmmTMB's spline of the profile fails where a profile runs off to a bound (a
  # correlation of +-1): uniroot's ends are then used (the method is recorded)
  method <- "profile"
  ci <- tryCatch(confint(fit, method = "profile"), error = function(e) NULL)
  if (is.null(ci)) {
    method <- "uniroot"
    ci <- confint(fit, method = "uniroot")
  }
  message(deparse(m$formula), ": ", method)
  # (glmmTMB 1.1.5's predict(newdata = ...) fails on these structures, "subscript out of
  # bounds": the fitting data's predictions, first five rows)
  pc <- predict(fit, se.fit = TRUE)
  p0 <- predict(fit, se.fit = TRUE, re.form = NA)
  pc <- list(fit = pc$fit[1:5], se.fit = pc$se.fit[1:5])
  p0 <- list(fit = p0$fit[1:5], se.fit = p0$se.fit[1:5])
  list(formula = deparse(m$formula), family = m$family$family,
       objective = -2 * as.numeric(logLik(fit)),
       rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       method = method,
       predict = list(fit = unname(pc$fit), se = unname(pc$se.fit)),
       predict_re0 = list(fit = unname(p0$fit), se = unname(p0$se.fit)),
       glmmTMB = as.character(packageVersion("glmmTMB")))
})
dir.create("tests/fixtures/everystruct", showWarnings = FALSE)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/everystruct/glmmtmb.json")
