# glmmTMB 1.1.5 fixtures for Gaussian spatial terms (exp / gau / mat(0 + pos | g)), which
# take our profiled-LMM start: vcov(full = TRUE) (glmmTMB's sdreport cov.fixed) and pdHess.
# y: the parity sweep's y_gauss on its first 60 rows (no spatial signal: glmmTMB's Hessian
# is not positive definite -- a standard deviation runs to 0 -- and we returned an all-NaN
# vcov_full, no fixed-effect SEs); y2: a simulated exponential field of sd 0.8, range 1.5
# (positive definite). Run from the repository root:
#   Rscript tools/r/sweep/spatial_gauss_fixtures.R
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB); library(MASS)})
out_dir <- file.path("tests", "fixtures", "sweep")
csv <- file.path(out_dir, "spatial_gauss.csv")
if (!file.exists(csv)) {
  # the sweep's data (tools/r/sweep/sweep_glmmtmb.R writes OUT/data/sw.csv)
  sw <- read.csv(file.path("/tmp/sweep", "data", "sw.csv"), check.names = FALSE)[1:60, ]
  d <- data.frame(y = sw$y_gauss, x = sw$x, cx = sw$cx, cy = sw$cy)
  set.seed(77)
  D <- as.matrix(dist(cbind(d$cx, d$cy)))
  d$y2 <- round(0.3 + 0.4 * d$x + mvrnorm(1, rep(0, 60), 0.8^2 * exp(-D / 1.5)) +
                rnorm(60, 0, 0.5), 6)
  write.csv(d, csv, row.names = FALSE)
}
d <- read.csv(csv)
d$pos <- numFactor(d$cx, d$cy)
d$g <- factor(rep("a", nrow(d)))
cases <- list(c("exp", "y"), c("mat", "y"), c("exp", "y2"), c("gau", "y2"))
for (cs in cases) {
  k <- cs[1]; y <- cs[2]
  fit <- glmmTMB(as.formula(sprintf("%s ~ x + %s(0 + pos | g)", y, k)), data = d)
  V <- vcov(fit, full = TRUE)
  id <- sprintf("spatial_gauss_%s_%s", k, y)
  write_json(list(id = id, glmmTMB = as.character(packageVersion("glmmTMB")),
                  formula = sprintf("%s ~ x + %s(0 + pos(cx, cy) | g)", y, k),
                  data = "spatial_gauss.csv", objective = 2 * fit$fit$objective,
                  pdHess = fit$sdr$pdHess, par = as.numeric(fit$fit$par),
                  se = as.list(sqrt(diag(vcov(fit)$cond))),
                  vcov_full = unname(V), vcov_full_names = I(colnames(V))),
             file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
             pretty = TRUE)
  cat(id, 2 * fit$fit$objective, fit$sdr$pdHess, "\n")
}

# Poisson spatial terms through glmer and glmmtmb on the sweep's gau_pois data
# (gau_pois_short.csv, made by regression_fixtures.R): glmer's start ran the gau range to
# 0 (179.096, an independent effect per site) and glmmtmb's mat range and smoothness too;
# also on coordinates rescaled to east = 100 cx + 5000, north = 100 cy
sp <- read.csv(file.path(out_dir, "gau_pois_short.csv"))
sp$g <- factor(rep("a", nrow(sp)))
sp$east <- 100 * sp$cx + 5000
sp$north <- 100 * sp$cy
for (k in c("mat", "gau")) {
  for (coords in list(c("cx", "cy"), c("east", "north"))) {
    sp$pos <- numFactor(sp[[coords[1]]], sp[[coords[2]]])
    fit <- tryCatch(glmmTMB(as.formula(sprintf("y_pois ~ x + %s(0 + pos | g)", k)),
                            data = sp, family = poisson), error = function(e) NULL)
    if (is.null(fit)) next
    id <- sprintf("%s_pois_%s", k, coords[1])
    write_json(list(id = id, glmmTMB = as.character(packageVersion("glmmTMB")),
                    formula = sprintf("y_pois ~ x + %s(0 + pos(%s, %s) | g)", k, coords[1],
                                      coords[2]),
                    data = "gau_pois_short.csv", objective = 2 * fit$fit$objective,
                    pdHess = fit$sdr$pdHess, theta = as.numeric(fit$fit$par[names(fit$fit$par) == "theta"]),
                    beta = as.list(fixef(fit)$cond),
                    se = as.list(sqrt(diag(vcov(fit)$cond)))),
               file.path(out_dir, paste0(id, ".json")), digits = NA, auto_unbox = TRUE,
               pretty = TRUE)
    cat(id, 2 * fit$fit$objective, fit$sdr$pdHess, "\n")
  }
}
