# R-side parity sweep: nlme gls/lme with correlation forms and variance functions on the
# simulated data of sweep_glmmtmb.R (run that first: it writes OUT/data/sw.csv). Each entry
# has the R call and our call (py); tools/r/sweep/sweep_rside.py compares.
#   Rscript tools/r/sweep/sweep_nlme.R --out=/tmp/sweep
suppressPackageStartupMessages({library(jsonlite); library(nlme)})
args <- commandArgs(trailingOnly = TRUE)
hit <- grep("^--out=", args, value = TRUE)
out <- if (length(hit)) sub("^--out=", "", hit[1]) else "/tmp/sweep"
d <- read.csv(file.path(out, "data", "sw.csv"), check.names = FALSE, stringsAsFactors = TRUE)
d$xpos <- exp(d$x / 2)                      # a positive covariate for varPower/varConstPower
d$tc <- d$tt + round((d$z + 1) / 4, 6)      # continuous, increasing times within g
d60 <- d[1:60, ]
dna <- d; dna$y_gauss[c(5, 40, 77)] <- NA
E <- list()
A <- function(id, r, py, data = "sw") E[[id]] <<- list(id = id, r = r, py = py, data = data)
A("gls_ar1_comb", "gls(y_gauss ~ x, d, correlation = corAR1(form = ~ tt | g), weights = varComb(varIdent(form = ~ 1 | f), varPower(form = ~ xpos)))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_ar1(form='~ tt | g'), variance=mm.var_comb(mm.var_ident(form='~ 1 | f'), mm.var_power(form='~ xpos')))")
A("gls_cs_nested", "gls(y_gauss ~ x, d, correlation = corCompSymm(form = ~ 1 | g/h))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_comp_symm(form='~ 1 | g/h'))")
A("gls_ar1_nested_ml", "gls(y_gauss ~ x, d, correlation = corAR1(form = ~ 1 | g/h), method = 'ML')",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_ar1(form='~ 1 | g/h'), method='ML')")
A("gls_car1", "gls(y_gauss ~ x, d, correlation = corCAR1(form = ~ tc | g))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_car1(form='~ tc | g'))")
A("gls_exp_group", "gls(y_gauss ~ x, d, correlation = corExp(form = ~ cx + cy | g, nugget = TRUE))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_exp(form='~ cx + cy | g', nugget=True))")
A("gls_spher_nogroup", "gls(y_gauss ~ x, d60, correlation = corSpher(form = ~ cx + cy))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_spher(form='~ cx + cy'))", data = "sw60")
A("gls_lin_nogroup", "gls(y_gauss ~ x, d60, correlation = corLin(form = ~ cx + cy, nugget = TRUE))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_lin(form='~ cx + cy', nugget=True))", data = "sw60")
A("gls_ratio_nogroup", "gls(y_gauss ~ x, d60, correlation = corRatio(form = ~ cx + cy))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_ratio(form='~ cx + cy'))", data = "sw60")
A("gls_gaus_1d", "gls(y_gauss ~ x, d60, correlation = corGaus(form = ~ cx))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_gaus(form='~ cx'))", data = "sw60")
A("gls_arma_varexp", "gls(y_gauss ~ x, d, correlation = corARMA(form = ~ tt | g, p = 1, q = 1), weights = varExp(form = ~ z))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_arma(form='~ tt | g', p=1, q=1), variance=mm.var_exp(form='~ z'))")
A("gls_symm_nested", "gls(y_gauss ~ x, d, correlation = corSymm(form = ~ 1 | g/h))",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_symm(form='~ 1 | g/h'))")
A("gls_varident_inter", "gls(y_gauss ~ x, d, weights = varIdent(form = ~ 1 | f * h))",
  "mm.gls('y_gauss ~ x', d, variance=mm.var_ident(form='~ 1 | f * h'))")
A("gls_varpower_fitted", "gls(y_pos ~ x, d, weights = varPower())",
  "mm.gls('y_pos ~ x', d, variance=mm.var_power())")
A("gls_varfixed", "gls(y_gauss ~ x, d, weights = varFixed(~ xpos))",
  "mm.gls('y_gauss ~ x', d, variance=mm.var_fixed('~ xpos'))")
A("gls_varexp_strata", "gls(y_gauss ~ x, d, weights = varExp(form = ~ z | f))",
  "mm.gls('y_gauss ~ x', d, variance=mm.var_exp(form='~ z | f'))")
A("gls_constpower_strata", "gls(y_gauss ~ x, d, weights = varConstPower(form = ~ xpos | f))",
  "mm.gls('y_gauss ~ x', d, variance=mm.var_const_power(form='~ xpos | f'))")
A("gls_na", "gls(y_gauss ~ x, dna, correlation = corAR1(form = ~ tt | g), na.action = na.omit)",
  "mm.gls('y_gauss ~ x', d, correlation=mm.cor_ar1(form='~ tt | g'))", data = "swna")
A("lme_ar1_nested", "lme(y_gauss ~ x, d, random = ~ 1 | g, correlation = corAR1(form = ~ tt | g/h))",
  "mm.lmer('y_gauss ~ x + (1 | g)', d, correlation=mm.cor_ar1(form='~ tt | g/h'))")
A("lme_nested_re_ar1", "lme(y_gauss ~ x, d, random = ~ 1 | g/h, correlation = corAR1(form = ~ 1 | g/h))",
  "mm.lmer('y_gauss ~ x + (1 | g/h)', d, correlation=mm.cor_ar1(form='~ 1 | g/h'))")
A("lme_slope_varexp", "lme(y_gauss ~ x, d, random = ~ x | g, weights = varExp(form = ~ z | f))",
  "mm.lmer('y_gauss ~ x + (x | g)', d, variance=mm.var_exp(form='~ z | f'))")
A("lme_ident_inter_ml", "lme(y_gauss ~ x, d, random = ~ 1 | g, weights = varIdent(form = ~ 1 | f * h), method = 'ML')",
  "mm.lmer('y_gauss ~ x + (1 | g)', d, variance=mm.var_ident(form='~ 1 | f * h'), REML=False)")
A("lme_car1_comb", "lme(y_gauss ~ x, d, random = ~ 1 | g, correlation = corCAR1(form = ~ tc | g), weights = varComb(varIdent(form = ~ 1 | f), varExp(form = ~ z)))",
  "mm.lmer('y_gauss ~ x + (1 | g)', d, correlation=mm.cor_car1(form='~ tc | g'), variance=mm.var_comb(mm.var_ident(form='~ 1 | f'), mm.var_exp(form='~ z')))")
A("lme_exp_within", "lme(y_gauss ~ x, d, random = ~ 1 | g, correlation = corExp(form = ~ tt | g))",
  "mm.lmer('y_gauss ~ x + (1 | g)', d, correlation=mm.cor_exp(form='~ tt | g'))")
A("lme_power_fitted", "lme(y_pos ~ x, d, random = ~ 1 | g, weights = varPower())",
  "mm.lmer('y_pos ~ x + (1 | g)', d, variance=mm.var_power())")
A("lme_cs_f", "lme(y_gauss ~ x, d, random = ~ 1 | g, correlation = corCompSymm(form = ~ 1 | g/f))",
  "mm.lmer('y_gauss ~ x + (1 | g)', d, correlation=mm.cor_comp_symm(form='~ 1 | g/f'))")

res <- list()
for (e in E) {
  t0 <- proc.time()[["elapsed"]]
  m <- tryCatch(eval(parse(text = e$r)), error = function(err) err)
  rec <- list(id = e$id, r_call = e$r, py_call = e$py, data = e$data)
  if (inherits(m, "error")) {
    rec$error <- conditionMessage(m)
  } else {
    ms <- m$modelStruct
    rec$logLik <- as.numeric(logLik(m))
    cf <- if (inherits(m, "gls")) coef(m) else fixef(m)
    rec$coef <- as.numeric(cf); rec$coef_names <- names(cf)
    rec$se <- as.numeric(sqrt(diag(vcov(m))))
    rec$sigma <- m$sigma
    if (!is.null(ms$corStruct)) rec$cor_params <- as.numeric(coef(ms$corStruct, FALSE))
    if (!is.null(ms$varStruct)) {
      vs <- ms$varStruct
      v <- if (inherits(vs, c("varIdent", "varComb"))) coef(vs, FALSE, allCoef = TRUE) else coef(vs, FALSE)
      rec$var_params <- as.numeric(v); rec$var_names <- names(v)
    }
    if (inherits(m, "lme")) rec$re_sd <- as.numeric(suppressWarnings(as.numeric(VarCorr(m)[, "StdDev"])))
  }
  rec$seconds <- proc.time()[["elapsed"]] - t0
  res[[e$id]] <- rec
  cat(sprintf("%-24s %s\n", e$id, if (is.null(rec$error)) sprintf("%.5f", rec$logLik) else paste("ERROR", rec$error)))
}
write_json(res, file.path(out, "nlme_sweep.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
