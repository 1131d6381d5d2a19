# Random-effect names and the Residual line of glmmTMB 1.1.5's VarCorr:
# tests/fixtures/names/glmmtmb_names.json (tests/test_glmmtmb_names.py).
#
#   Rscript tools/r/glmmtmb_names_fixtures.R      # from the repository root
#
# Per model: glmmTMB's ranef column names and VarCorr row names per component and term,
# the standard deviations, the residual sd printed by VarCorr (attr "sc", NULL when
# VarCorr prints no Residual line), sigma(), and the printed VarCorr text.
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
data_dir <- "src/mixedmodels/datasets/data"
out_dir <- "tests/fixtures/names"
source("tools/r/fixture_io.R")

ar1 <- load_data("ar1sim")
ar1$ftime <- factor(ar1$time)
ar1s <- ar1[ar1$time < 4, ]
sleep <- load_data("sleepstudy")
sleep$phase <- factor(c("a", "b", "c")[pmin(sleep$Days %/% 4, 2) + 1])
sal <- load_data("Salamanders")

models <- list(
  gauss_disp1 = list(f = Reaction ~ Days + (Days | Subject), data = "sleepstudy",
                     d = sleep),
  gauss_dispx = list(f = Reaction ~ Days + (1 | Subject), disp = ~ Days,
                     data = "sleepstudy", d = sleep),
  gauss_disp0 = list(f = Reaction ~ Days + (1 | Subject), disp = ~ 0,
                     data = "sleepstudy", d = sleep),
  ar1_ftime = list(f = y ~ 1 + ar1(0 + ftime | subject), data = "ar1sim", d = ar1),
  ar1_factor = list(f = y ~ 1 + ar1(0 + factor(time) | subject), data = "ar1sim", d = ar1),
  cs_ftime = list(f = y ~ 1 + cs(0 + ftime | subject), data = "ar1sim_t4", d = ar1s),
  us_phase = list(f = Reaction ~ Days + us(0 + phase | Subject), data = "sleepstudy",
                  d = sleep),
  diag_phase = list(f = Reaction ~ Days + diag(phase | Subject), data = "sleepstudy",
                    d = sleep),
  zip_re = list(f = count ~ mined + (1 | site), zi = ~ mined, family = "poisson",
                data = "Salamanders", d = sal),
  zip_zire = list(f = count ~ mined + (1 | site), zi = ~ mined + (1 | site),
                  family = "poisson", data = "Salamanders", d = sal)
)

out <- list()
for (id in names(models)) {
  s <- models[[id]]
  fam <- if (is.null(s$family)) gaussian() else get(s$family)()
  args <- list(formula = s$f, data = s$d, family = fam)
  if (!is.null(s$zi)) args$ziformula <- s$zi
  if (!is.null(s$disp)) args$dispformula <- s$disp
  m <- do.call(glmmTMB, args)
  vc <- VarCorr(m)
  comps <- list()
  for (comp in c("cond", "zi")) {
    v <- vc[[comp]]
    if (is.null(v) || !length(v)) next
    re <- ranef(m)[[comp]]
    terms <- list()
    for (g in names(v)) {
      terms[[g]] <- list(names = rownames(v[[g]]), sd = unname(attr(v[[g]], "stddev")))
    }
    comps[[comp]] <- list(
      terms = terms,
      ranef_columns = lapply(re, colnames),
      sc = if (is.null(attr(v, "sc"))) "none" else attr(v, "sc"),
      use_sc = if (is.null(attr(v, "useSc"))) "none" else attr(v, "useSc"),
      printed = paste(capture.output(print(v)), collapse = "\n"))
  }
  out[[id]] <- list(
    formula_r = paste(deparse(s$f), collapse = ""),
    zi_r = if (is.null(s$zi)) "none" else paste(deparse(s$zi), collapse = ""),
    disp_r = if (is.null(s$disp)) "none" else paste(deparse(s$disp), collapse = ""),
    family = if (is.null(s$family)) "gaussian" else s$family,
    data = s$data,
    objective = -2 * as.numeric(logLik(m)),
    sigma = sigma(m),
    components = comps,
    printed_varcorr = paste(capture.output(print(vc)), collapse = "\n"),
    printed_summary_re = paste(capture.output(print(summary(m)$varcor)), collapse = "\n"))
}
write_fixture(out, "glmmtmb_names.json")
