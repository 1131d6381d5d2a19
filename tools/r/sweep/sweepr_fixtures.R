# Small nlme 3.1.162 fixtures for what the "sweepr" batch of the R-side sweep found
# (tools/r/sweep/sweepr_nlme.R), for tests/test_sweep_sweepr.py. Run from the repository
# root:
#   Rscript tools/r/sweep/sweepr_fixtures.R
# Writes tests/fixtures/sweep/sweepr_sr.csv (the batch's simulated data, the columns used)
# and tests/fixtures/sweep/sweepr_nlme.json: per case the R call, our call (evaluated by
# the test with `mm` and the data `d` in scope) and nlme's estimates.
suppressPackageStartupMessages({library(jsonlite); library(nlme)})
out_dir <- file.path("tests", "fixtures", "sweep")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
source(file.path("tools", "r", "sweep", "sweepr_data.R"))
set.seed(20261203)
sr <- sim_sr()[, c("g", "h", "f", "t", "x", "z", "cx", "cy", "xpos", "y")]
write.csv(sr, file.path(out_dir, "sweepr_sr.csv"), row.names = FALSE)
sr$g <- factor(sr$g); sr$h <- factor(sr$h); sr$f <- factor(sr$f)
sleep <- as.data.frame(lme4::sleepstudy)
orth <- as.data.frame(Orthodont)
orth$occ <- (orth$age - 8) / 2

cases <- list()
add <- function(id, data, r, py, note) {
  d <- switch(data, sr = sr, sleep = sleep, orth = orth)
  m <- eval(parse(text = r))
  ms <- m$modelStruct
  rec <- list(id = id, data = data, r_call = r, py_call = py, note = note,
              nlme = as.character(packageVersion("nlme")), logLik = as.numeric(logLik(m)),
              coef = as.numeric(if (inherits(m, "gls")) coef(m) else fixef(m)),
              se = as.numeric(sqrt(diag(vcov(m)))), sigma = m$sigma)
  if (!is.null(ms$corStruct)) rec$cor_params <- as.list(coef(ms$corStruct, FALSE))
  if (!is.null(ms$varStruct)) rec$var_params <- as.list(coef(ms$varStruct, FALSE, allCoef = TRUE))
  iv <- tryCatch(intervals(m), error = function(e) NULL)
  if (!is.null(iv)) rec$sigma_interval <- as.numeric(iv$sigma)
  cases[[id]] <<- rec
  cat(sprintf("%-28s %.6f\n", id, rec$logLik))
}
note_pd <- paste("a Gaussian / rational-quadratic correlation of non-Euclidean distances is",
                 "not positive definite at every range: BOBYQA met an infinite criterion and",
                 "stopped at a point that is no minimum")
add("gls_ratio_max_nug", "sr",
    "gls(y ~ x, d, correlation = corRatio(form = ~ cx + cy | g, metric = 'maximum', nugget = TRUE))",
    "mm.gls('y ~ x', d, correlation=mm.cor_ratio(form='~ cx + cy | g', metric='maximum', nugget=True))",
    note_pd)
add("gls_gaus_manh", "sr",
    "gls(y ~ x, d, correlation = corGaus(form = ~ cx + cy | g, metric = 'manhattan'))",
    "mm.gls('y ~ x', d, correlation=mm.cor_gaus(form='~ cx + cy | g', metric='manhattan'))",
    note_pd)
add("lme_ratio_max_nug", "sr",
    "lme(y ~ x, d, random = ~ 1 | g, correlation = corRatio(form = ~ cx + cy | g, metric = 'maximum', nugget = TRUE))",
    "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_ratio(form='~ cx + cy | g', metric='maximum', nugget=True))",
    note_pd)
note_fixed <- "varIdent(fixed = c(b = 1.6)) holds stratum b and estimates the others"
add("gls_ident_fixed_partial", "sr",
    "gls(y ~ x, d, weights = varIdent(form = ~ 1 | f, fixed = c(b = 1.6)))",
    "mm.gls('y ~ x', d, variance=mm.var_ident(value={'b': 1.6}, form='~ 1 | f', fixed=True))",
    note_fixed)
add("lme_ident_fixed_partial", "sr",
    "lme(y ~ x, d, random = ~ 1 | g, weights = varIdent(form = ~ 1 | f, fixed = c(c = 0.7)))",
    "mm.lmer('y ~ x + (1 | g)', d, variance=mm.var_ident(value={'c': 0.7}, form='~ 1 | f', fixed=True))",
    note_fixed)
note_expr <- "nlme evaluates the form's covariate side as one expression: ~ Days + 1 is Days + 1"
add("sleep_power_days_plus_1", "sleep",
    "lme(Reaction ~ Days, d, random = ~ Days | Subject, weights = varPower(form = ~ Days + 1))",
    "mm.lmer('Reaction ~ Days + (Days | Subject)', d, variance=mm.var_power(form='~ Days + 1'))",
    note_expr)
# AR(1) at times whose gaps share a factor 2: the criterion is a function of phi^2 and
# nlme (and our quasi-Newton searches before the stationary probe) stay at the start
# phi = 0, independence. The reference is the same model on halved times, where nlme
# finds the optimum: our fit on the doubled times must reach it, with phi^2 = nlme's phi
note_even <- paste("nlme stops at its start phi = 0 on times 2t (a stationary point: the",
                   "criterion depends on phi^2); the reference is the fit on times t")
add("gls_ar1_t_plus_t", "sr",
    "gls(y ~ x, d, correlation = corAR1(form = ~ t | g))",
    "mm.gls('y ~ x', d, correlation=mm.cor_ar1(form='~ t + t | g'))",
    paste(note_expr, "(here 2 t);", note_even))
add("lme_ar1_even_times", "sr",
    "lme(y ~ x, d, random = ~ x | g, correlation = corAR1(form = ~ t | g), weights = varIdent(form = ~ 1 | f))",
    "mm.lmer('y ~ x + (x | g)', d.assign(t2=2 * d['t']), correlation=mm.cor_ar1(form='~ t2 | g'), variance=mm.var_ident(form='~ 1 | f'))",
    note_even)
add("orth_gls_ar1_age", "orth",
    "gls(distance ~ age, d, correlation = corAR1(form = ~ occ | Subject))",
    "mm.gls('distance ~ age', d, correlation=mm.cor_ar1(form='~ age | Subject'))",
    paste("ages 8, 10, 12, 14: nlme's gls(correlation = corAR1(form = ~ age | Subject))",
          "stops at phi = 0 (logLik -254.58); the reference is the fit on occ = (age - 8) / 2"))
note_chisq <- paste("a gls with no estimated structure parameter has no apVar: nlme's sigma",
                    "interval is the chi-square one, sigma sqrt(N_r / qchisq(.))")
add("gls_power_fixed", "sr",
    "gls(y ~ x, d, weights = varPower(fixed = 0.5, form = ~ xpos))",
    "mm.gls('y ~ x', d, variance=mm.var_power(value=0.5, form='~ xpos', fixed=True))",
    note_chisq)
add("gls_plain_ml", "sr", "gls(y ~ x + z, d, method = 'ML')",
    "mm.gls('y ~ x + z', d, method='ML')", note_chisq)

# normalized residuals of compound symmetry: nlme's factor is a Helmert one (ours was the
# Cholesky factor). nlme's own normalized residuals are misaligned where a group's rows
# are interleaved with others' (it applies the factors of the data sorted by group to the
# residuals in data order): the reference fit is on the rows sorted by group (stable)
sr_by_g <- sr[order(sr$g), ]
for (spec in list(
    list(id = "gls_cs_normalized", r = "gls(y ~ x, d, correlation = corCompSymm(form = ~ 1 | g), weights = varIdent(form = ~ 1 | f))",
         py = "mm.gls('y ~ x', d, correlation=mm.cor_comp_symm(form='~ 1 | g'), variance=mm.var_ident(form='~ 1 | f'))"),
    list(id = "lme_cs_normalized", r = "lme(y ~ x, d, random = ~ 1 | g, correlation = corCompSymm(form = ~ 1 | g/h))",
         py = "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_comp_symm(form='~ 1 | g/h'))"))) {
  d <- sr_by_g
  if (grepl("g/h", spec$r)) d <- sr_by_g <- sr[order(sr$g, sr$h), ]
  m <- eval(parse(text = spec$r))
  cases[[spec$id]] <- list(id = spec$id, data = "sr_by_group", r_call = spec$r, py_call = spec$py,
    note = "rows sorted by the correlation's groups (stable); nlme's Helmert factor",
    logLik = as.numeric(logLik(m)), coef = as.numeric(if (inherits(m, "gls")) coef(m) else fixef(m)),
    se = as.numeric(sqrt(diag(vcov(m)))), sigma = m$sigma,
    cor_params = as.list(coef(m$modelStruct$corStruct, FALSE)),
    sort_by = if (grepl("g/h", spec$r)) c("g", "h") else "g",
    normalized = as.numeric(residuals(m, type = "normalized")))
  cat(sprintf("%-28s %.6f\n", spec$id, cases[[spec$id]]$logLik))
}

write_json(cases, file.path(out_dir, "sweepr_nlme.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
