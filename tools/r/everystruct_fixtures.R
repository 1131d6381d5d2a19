# glmmTMB 1.1.5's profile intervals and predictions with standard errors for a subset of
# the structures of tests/test_everystruct_matrix.py, on the structures fixtures' data:
#   Rscript tools/r/everystruct_fixtures.R   (from the repository root)
# Writes tests/fixtures/everystruct/glmmtmb.json: per model the objective (-2 logLik),
# confint(method = "profile") (rows and ends on glmmTMB's scale: log sds, the correlation
# parameters of its parameterization) and predict(se.fit = TRUE) on five rows -- four
# fitting rows and one of a new level (allow.new.levels), conditional and with re.form = NA.
# (Profile ends from glmmTMB's spline, or from uniroot where the spline fails: "method".)
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
dd <- "tests/fixtures/structures/data"
long <- read.csv(file.path(dd, "long.csv"), colClasses = c(subject = "character"))
long$subject <- factor(long$subject)
long$ftime <- factor(long$time)
sp <- read.csv(file.path(dd, "spatial.csv"), colClasses = c(obs = "character", one = "character"))
sp$pos <- numFactor(sp$x, sp$y)
sp$one <- factor(sp$one)
models <- list(
  us_gauss = list(data = long, formula = y ~ x + us(1 + x | subject), family = gaussian(),
                  group = "subject"),
  us_pois = list(data = long, formula = yc ~ x + us(1 + x | subject), family = poisson(),
                 group = "subject"),
  ar1_pois = list(data = long, formula = yc ~ x + ar1(0 + ftime | subject), family = poisson(),
                  group = "subject"),
  cs_pois = list(data = long, formula = yc ~ x + cs(0 + ftime | subject), family = poisson(),
                 group = "subject"),
  exp_pois = list(data = sp, formula = count ~ x1 + exp(0 + pos | one), family = poisson(),
                  group = NULL)
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
  nd <- m$data[1:5, ]
  if (!is.null(m$group)) {
    nd[[m$group]] <- factor(c(as.character(nd[[m$group]][1:4]), "NEWLEVEL"),
                            levels = c(levels(m$data[[m$group]]), "NEWLEVEL"))
  } else {
    nd <- m$data[1:4, ]
  }
  pc <- predict(fit, newdata = nd, se.fit = TRUE, allow.new.levels = TRUE)
  p0 <- predict(fit, newdata = nd, se.fit = TRUE, re.form = NA)
  list(formula = deparse(m$formula), family = m$family$family,
       objective = -2 * as.numeric(logLik(fit)),
       rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       estimate = unname(ci[, 3]), method = method,
       predict = list(fit = unname(pc$fit), se = unname(pc$se.fit)),
       predict_re0 = list(fit = unname(p0$fit), se = unname(p0$se.fit)),
       glmmTMB = as.character(packageVersion("glmmTMB")))
})
dir.create("tests/fixtures/everystruct", showWarnings = FALSE)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/everystruct/glmmtmb.json")
