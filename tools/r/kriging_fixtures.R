# glmmTMB predictions at positions the fit did not see (kriging):
# tests/fixtures/kriging.json
#
#   Rscript tools/r/kriging_fixtures.R        # glmmTMB 1.1.5 (system library); run from the
#                                             # repository root
#
# Fits spatial (exp, gau, mat: numFactor(x, y)) and temporal (ou: numFactor(tt)) models on
# the structures fixtures' CSVs and predicts, with allow.new.levels = TRUE, on new rows:
# some at new positions, one at a fitted position. glmmTMB rebuilds the joint density with
# the new positions added and the parameters fixed, so the new positions' random effects are
# their conditional means given the fitted ones (simple kriging). Records the link-scale
# predictions and their standard errors.
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
dir <- "tests/fixtures/structures/data"
S <- read.csv(file.path(dir, "spatial.csv"))
L <- read.csv(file.path(dir, "long.csv"))
S$pos <- numFactor(S$x, S$y)
L$tpos <- numFactor(L$tt)
L$subject <- factor(L$subject)

new_spatial <- data.frame(x = c(2.5, 0.3, 9.1, S$x[5]), y = c(2.5, 4.4, 7.7, S$y[5]),
                          x1 = c(0.1, -0.4, 0.7, S$x1[5]), one = "a")
new_spatial$pos <- numFactor(new_spatial$x, new_spatial$y)
# glmmTMB needs the times of an ou() term sorted, the new ones after the fitted ones
tt_new <- c(max(L$tt) + 0.5, max(L$tt) + 2, L$tt[3])
new_long <- data.frame(tt = tt_new, x = c(0.2, -0.3, L$x[3]),
                       subject = factor(rep(as.character(L$subject[1]), 3),
                                        levels = levels(L$subject)))
new_long$tpos <- numFactor(new_long$tt)

cases <- list(
  list(id = "exp_pois_faq", data = S, nd = new_spatial, family = poisson(),
       f = count ~ x1 + exp(0 + pos | one), ours = "count ~ x1 + exp(0 + pos(x, y) | obs)"),
  list(id = "gau_pois", data = S, nd = new_spatial, family = poisson(), start = c(0, 1),
       f = count ~ x1 + gau(0 + pos | one), ours = "count ~ x1 + gau(0 + pos(x, y) | obs)"),
  list(id = "mat_gauss_ml", data = S, nd = new_spatial, family = gaussian(),
       start = c(0, 1, 0), f = yg ~ x1 + mat(0 + pos | one),
       ours = "yg ~ x1 + mat(0 + pos(x, y) | one)"),
  list(id = "ou_pois", data = L, nd = new_long, family = poisson(),
       f = yc ~ x + ou(0 + tpos | subject), ours = "yc ~ x + ou(0 + pos(tt) | subject)")
)
out <- list()
for (cs in cases) {
  args <- list(cs$f, data = cs$data, family = cs$family, REML = FALSE)
  if (!is.null(cs$start)) args$start <- list(theta = cs$start)
  m <- do.call(glmmTMB, args)
  p <- predict(m, newdata = cs$nd, allow.new.levels = TRUE, se.fit = TRUE, type = "link")
  keep <- setdiff(names(cs$nd), c("pos", "tpos"))
  out[[cs$id]] <- list(formula_r = deparse(cs$f), formula = cs$ours,
                       family = cs$family$family, objective = -2 * as.numeric(logLik(m)),
                       newdata = cs$nd[, keep], fit = as.numeric(p$fit),
                       se = as.numeric(p$se.fit),
                       versions = list(glmmTMB = as.character(packageVersion("glmmTMB"))))
}
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/kriging.json")
