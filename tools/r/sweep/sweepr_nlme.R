# R-side parity sweep, batch "sweepr": nlme gls / lme with correlation and variance
# structures, MASS::glmmPQL and metafor's rma / rma.mv (known residual variance), on
# variants no fixture or earlier sweep entry covers -- other data sets, other scales (a
# response x 1e4 + 1e6, times in days 1..1000), unbalanced groups with singletons, missing
# values, unsorted rows, corARMA(2, 1), spatial metrics, fixed variance parameters, three
# variance functions combined, nested random effects with weights and correlation,
# intervals() and fitted values at each level.
#
#   Rscript tools/r/sweep/sweepr_nlme.R --out=/tmp/sweepr
#   python  tools/r/sweep/sweepr.py     --out /tmp/sweepr
#
# Writes OUT/data/sweepr_<name>.csv (the data both sides read), OUT/data/sweepr_levels.json
# (R's factor levels, so that both sides use the same reference levels) and
# OUT/sweepr_nlme.json (per entry the R call, our call and R's estimates).
suppressPackageStartupMessages({
  library(jsonlite); library(nlme); library(MASS); library(metafor); library(blme)
})
args <- commandArgs(trailingOnly = TRUE)
hit <- grep("^--out=", args, value = TRUE)
out <- if (length(hit)) sub("^--out=", "", hit[1]) else "/tmp/sweepr"
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)

# -- data --------------------------------------------------------------------------------
source(file.path("tools", "r", "sweep", "sweepr_data.R"))   # sim_sr()
set.seed(20261203)
sr <- sim_sr()
srna <- sr
srna$y[c(3, 50, 101)] <- NA
srna$x[c(10, 77)] <- NA
srna$t[c(20)] <- NA
srna$yb <- srna$y * 1e4 + 1e6

# Orthodont with 12 occasions missing (unbalanced corSymm)
orth <- as.data.frame(Orthodont)
orth <- data.frame(distance = orth$distance, age = orth$age,
                   Subject = as.character(orth$Subject), Sex = as.character(orth$Sex),
                   occ = as.integer((orth$age - 6) / 2))
orthm <- orth[-sample(nrow(orth), 12), ]

sleep <- as.data.frame(lme4::sleepstudy)
sleep$Subject <- as.character(sleep$Subject)

cbpp <- as.data.frame(lme4::cbpp)
cbpp$herd <- as.character(cbpp$herd); cbpp$period <- as.character(cbpp$period)
cbpp$pn <- as.integer(cbpp$period)

owls <- read.csv("/work/shared/data/Owls.csv", stringsAsFactors = FALSE)
owls$ArrivalTime <- owls$ArrivalTime - 24

bcg <- as.data.frame(escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg,
                            data = dat.bcg))
bcg <- data.frame(trial = sprintf("T%02d", bcg$trial), yi = as.numeric(bcg$yi),
                  vi = as.numeric(bcg$vi), ablat = bcg$ablat, year = bcg$year,
                  alloc = bcg$alloc)
bcg$w <- 1 / bcg$vi
kon <- as.data.frame(dat.konstantopoulos2011)
kon <- data.frame(district = paste0("D", kon$district),
                  school = paste0("D", kon$district, "S", kon$school),
                  yi = kon$yi, vi = kon$vi, year = kon$year - 1980)
kon$w <- 1 / kon$vi
mol <- as.data.frame(escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014))
mol <- data.frame(study = sprintf("S%02d", seq_len(nrow(mol))), yi = as.numeric(mol$yi),
                  vi = as.numeric(mol$vi), meanage = mol$meanage,
                  design = as.character(mol$design))
mol$w <- 1 / mol$vi

datasets <- list(sr = sr, srna = srna, orth = orth, orthm = orthm, sleep = sleep, cbpp = cbpp,
                 owls = owls, bcg = bcg, kon = kon, mol = mol)
levels_of <- list()
for (nm in names(datasets)) {
  df <- datasets[[nm]]
  write.csv(df, file.path(out, "data", paste0("sweepr_", nm, ".csv")), row.names = FALSE)
  lv <- list()
  for (col in names(df)) if (is.character(df[[col]])) lv[[col]] <- sort(unique(df[[col]]))
  levels_of[[nm]] <- lv
  for (col in names(lv)) df[[col]] <- factor(df[[col]], levels = lv[[col]])
  datasets[[nm]] <- df
}
write_json(levels_of, file.path(out, "data", "sweepr_levels.json"), pretty = TRUE)

# -- the variants ------------------------------------------------------------------------
E <- list()
A <- function(id, data, r, py, kind = "nlme", extra = NULL)
  E[[id]] <<- list(id = id, data = data, r = r, py = py, kind = kind, extra = extra)

# gls: serial correlation
A("gls_ar1_rows_shuffled", "sr", "gls(y ~ x, d, correlation = corAR1(form = ~ 1 | g))",
  "mm.gls('y ~ x', d, correlation=mm.cor_ar1(form='~ 1 | g'))")
A("gls_ar1_time_shuffled", "sr", "gls(y ~ x, d, correlation = corAR1(form = ~ t | g))",
  "mm.gls('y ~ x', d, correlation=mm.cor_ar1(form='~ t | g'))")
A("gls_ar1_big_ml", "sr", "gls(yb ~ x + z, d, correlation = corAR1(form = ~ t | g), method = 'ML')",
  "mm.gls('yb ~ x + z', d, correlation=mm.cor_ar1(form='~ t | g'), method='ML')")
A("gls_car1_days_big", "sr", "gls(yb ~ x, d, correlation = corCAR1(form = ~ day | g))",
  "mm.gls('yb ~ x', d, correlation=mm.cor_car1(form='~ day | g'))")
A("gls_exp_days", "sr", "gls(y ~ x, d, correlation = corExp(form = ~ day | g))",
  "mm.gls('y ~ x', d, correlation=mm.cor_exp(form='~ day | g'))")
A("gls_arma21", "sr", "gls(y ~ x, d, correlation = corARMA(form = ~ t | g, p = 2, q = 1))",
  "mm.gls('y ~ x', d, correlation=mm.cor_arma(form='~ t | g', p=2, q=1))")
A("gls_arma02_ml", "sr", "gls(y ~ x, d, correlation = corARMA(form = ~ t | g, q = 2), method = 'ML')",
  "mm.gls('y ~ x', d, correlation=mm.cor_arma(form='~ t | g', q=2), method='ML')")
A("gls_na_cov_time", "srna", "gls(y ~ x, d, correlation = corAR1(form = ~ t | g), na.action = na.omit)",
  "mm.gls('y ~ x', d, correlation=mm.cor_ar1(form='~ t | g'))")
A("gls_na_big_car1_ident", "srna", "gls(yb ~ x, d, correlation = corCAR1(form = ~ day | g), weights = varIdent(form = ~ 1 | f), na.action = na.omit)",
  "mm.gls('yb ~ x', d, correlation=mm.cor_car1(form='~ day | g'), variance=mm.var_ident(form='~ 1 | f'))")
# gls: corSymm with missing occasions
A("gls_symm_missing_occ", "orthm", "gls(distance ~ age * Sex, d, correlation = corSymm(form = ~ occ | Subject))",
  "mm.gls('distance ~ age * Sex', d, correlation=mm.cor_symm(form='~ occ | Subject'))")
A("gls_symm_missing_ident", "orthm", "gls(distance ~ age, d, correlation = corSymm(form = ~ occ | Subject), weights = varIdent(form = ~ 1 | Sex), method = 'ML')",
  "mm.gls('distance ~ age', d, correlation=mm.cor_symm(form='~ occ | Subject'), variance=mm.var_ident(form='~ 1 | Sex'), method='ML')")
# gls: spatial metrics, nugget on / off
A("gls_exp_manh_nug", "sr", "gls(y ~ x, d, correlation = corExp(form = ~ cx + cy | g, metric = 'manhattan', nugget = TRUE))",
  "mm.gls('y ~ x', d, correlation=mm.cor_exp(form='~ cx + cy | g', metric='manhattan', nugget=True))")
A("gls_gaus_max", "sr", "gls(y ~ x, d, correlation = corGaus(form = ~ cx + cy | g, metric = 'maximum'))",
  "mm.gls('y ~ x', d, correlation=mm.cor_gaus(form='~ cx + cy | g', metric='maximum'))")
A("gls_spher_manh", "sr", "gls(y ~ x, d, correlation = corSpher(form = ~ cx + cy | g, metric = 'manhattan'))",
  "mm.gls('y ~ x', d, correlation=mm.cor_spher(form='~ cx + cy | g', metric='manhattan'))")
A("gls_ratio_max_nug", "sr", "gls(y ~ x, d, correlation = corRatio(form = ~ cx + cy | g, metric = 'maximum', nugget = TRUE))",
  "mm.gls('y ~ x', d, correlation=mm.cor_ratio(form='~ cx + cy | g', metric='maximum', nugget=True))")
# gls: variance functions with fixed values, by strata, three combined
A("gls_ident_fixed_partial", "sr", "gls(y ~ x, d, weights = varIdent(form = ~ 1 | f, fixed = c(b = 1.6)))",
  "mm.gls('y ~ x', d, variance=mm.var_ident(value={'b': 1.6}, form='~ 1 | f', fixed=True))")
A("gls_power_fixed", "sr", "gls(y ~ x, d, weights = varPower(fixed = 0.5, form = ~ xpos))",
  "mm.gls('y ~ x', d, variance=mm.var_power(value=0.5, form='~ xpos', fixed=True))")
A("gls_exp_strata_big", "sr", "gls(yb ~ x, d, weights = varExp(form = ~ z | f))",
  "mm.gls('yb ~ x', d, variance=mm.var_exp(form='~ z | f'))")
A("gls_comb3", "sr", "gls(y ~ x, d, weights = varComb(varIdent(form = ~ 1 | f), varPower(form = ~ xpos), varExp(form = ~ z)))",
  "mm.gls('y ~ x', d, variance=mm.var_comb(mm.var_ident(form='~ 1 | f'), mm.var_power(form='~ xpos'), mm.var_exp(form='~ z')))")
A("gls_fixed_ar1", "sr", "gls(y ~ x, d, weights = varFixed(~ xpos), correlation = corAR1(form = ~ t | g))",
  "mm.gls('y ~ x', d, variance=mm.var_fixed('~ xpos'), correlation=mm.cor_ar1(form='~ t | g'))")
A("gls_power_fitted_strata", "sr", "gls(ypos ~ x, d, weights = varPower(form = ~ fitted(.) | f))",
  "mm.gls('ypos ~ x', d, variance=mm.var_power(form='~ fitted(.) | f'))")
# gls: known sigma -- a fixed-effect meta-regression, metafor's rma(method = 'FE')
A("gls_sigma_fe_meta", "bcg", "rma(yi, vi, mods = ~ ablat, data = d, method = 'FE')",
  "mm.gls('yi ~ ablat', d, weights='w', sigma=1.0, method='ML')", kind = "rma_fe")

# lme
A("lme_nested_ident_ar1", "sr", "lme(y ~ x, d, random = ~ 1 | g/h, weights = varIdent(form = ~ 1 | f), correlation = corAR1(form = ~ t | g/h))",
  "mm.lmer('y ~ x + (1 | g/h)', d, variance=mm.var_ident(form='~ 1 | f'), correlation=mm.cor_ar1(form='~ t | g/h'))")
A("lme_ar1_rows_singletons", "sr", "lme(y ~ x, d, random = ~ 1 | g, correlation = corAR1(form = ~ 1 | g))",
  "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_ar1(form='~ 1 | g'))")
A("lme_car1_days_big", "sr", "lme(yb ~ x, d, random = ~ 1 | g, correlation = corCAR1(form = ~ day | g))",
  "mm.lmer('yb ~ x + (1 | g)', d, correlation=mm.cor_car1(form='~ day | g'))")
A("lme_arma21_ml", "sr", "lme(y ~ x, d, random = ~ 1 | g, correlation = corARMA(form = ~ t | g, p = 2, q = 1), method = 'ML')",
  "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_arma(form='~ t | g', p=2, q=1), REML=False)")
A("lme_na_exp_strata", "srna", "lme(y ~ x, d, random = ~ 1 | g, weights = varExp(form = ~ z | f), na.action = na.omit)",
  "mm.lmer('y ~ x + (1 | g)', d, variance=mm.var_exp(form='~ z | f'))")
A("lme_comb3_ml", "sr", "lme(y ~ x, d, random = ~ 1 | g, weights = varComb(varIdent(form = ~ 1 | f), varPower(form = ~ xpos), varExp(form = ~ z)), method = 'ML')",
  "mm.lmer('y ~ x + (1 | g)', d, variance=mm.var_comb(mm.var_ident(form='~ 1 | f'), mm.var_power(form='~ xpos'), mm.var_exp(form='~ z')), REML=False)")
A("lme_power_fixed", "sr", "lme(y ~ x, d, random = ~ 1 | g, weights = varPower(fixed = 0.5, form = ~ xpos))",
  "mm.lmer('y ~ x + (1 | g)', d, variance=mm.var_power(value=0.5, form='~ xpos', fixed=True))")
A("lme_ident_fixed_partial", "sr", "lme(y ~ x, d, random = ~ 1 | g, weights = varIdent(form = ~ 1 | f, fixed = c(c = 0.7)))",
  "mm.lmer('y ~ x + (1 | g)', d, variance=mm.var_ident(value={'c': 0.7}, form='~ 1 | f', fixed=True))")
A("lme_varfixed_big", "sr", "lme(yb ~ x, d, random = ~ 1 | g, weights = varFixed(~ xpos))",
  "mm.lmer('yb ~ x + (1 | g)', d, variance=mm.var_fixed('~ xpos'))")
A("lme_exp_manh_nug", "sr", "lme(y ~ x, d, random = ~ 1 | g, correlation = corExp(form = ~ cx + cy | g, metric = 'manhattan', nugget = TRUE))",
  "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_exp(form='~ cx + cy | g', metric='manhattan', nugget=True))")
A("lme_symm_missing_occ", "orthm", "lme(distance ~ age, d, random = ~ 1 | Subject, correlation = corSymm(form = ~ occ | Subject))",
  "mm.lmer('distance ~ age + (1 | Subject)', d, correlation=mm.cor_symm(form='~ occ | Subject'))")
A("lme_sleep_slope_exp", "sleep", "lme(Reaction ~ Days, d, random = ~ Days | Subject, correlation = corExp(form = ~ Days | Subject), control = lmeControl(maxIter = 500, msMaxIter = 500, opt = 'optim'))",
  "mm.lmer('Reaction ~ Days + (Days | Subject)', d, correlation=mm.cor_exp(form='~ Days | Subject'))")
A("lme_sleep_slope_ar1_ml", "sleep", "lme(Reaction ~ Days, d, random = ~ Days | Subject, correlation = corAR1(form = ~ Days | Subject), method = 'ML', control = lmeControl(maxIter = 500, msMaxIter = 500, opt = 'optim'))",
  "mm.lmer('Reaction ~ Days + (Days | Subject)', d, correlation=mm.cor_ar1(form='~ Days | Subject'), REML=False)")
A("lme_sleep_slope_ident", "sleep", "lme(Reaction ~ Days, d, random = ~ Days | Subject, weights = varPower(form = ~ Days + 1))",
  "mm.lmer('Reaction ~ Days + (Days | Subject)', d, variance=mm.var_power(form='~ Days + 1'))")

# glmmPQL
A("pql_cbpp_cbind", "cbpp", "glmmPQL(cbind(incidence, size - incidence) ~ period, random = ~ 1 | herd, family = binomial, data = d, verbose = FALSE)",
  "mm.glmm_pql('cbind(incidence, size - incidence) ~ period + (1 | herd)', d, family='binomial')", kind = "pql")
A("pql_cbpp_ar1", "cbpp", "glmmPQL(cbind(incidence, size - incidence) ~ period, random = ~ 1 | herd, family = binomial, data = d, correlation = corAR1(form = ~ pn | herd), verbose = FALSE)",
  "mm.glmm_pql('cbind(incidence, size - incidence) ~ period + (1 | herd)', d, family='binomial', correlation=mm.cor_ar1(form='~ pn | herd'))", kind = "pql")
A("pql_owls_offset", "owls", "glmmPQL(SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize), random = ~ 1 | Nest, family = poisson, data = d, verbose = FALSE)",
  "mm.glmm_pql('SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)', d, family='poisson')", kind = "pql")
A("pql_pois_offset_exp", "sr", "glmmPQL(cnt ~ x + offset(log(expo)), random = ~ 1 | g, family = poisson, data = d, correlation = corExp(form = ~ cx + cy | g), verbose = FALSE)",
  "mm.glmm_pql('cnt ~ x + offset(log(expo)) + (1 | g)', d, family='poisson', correlation=mm.cor_exp(form='~ cx + cy | g'))", kind = "pql")
A("pql_binom_cbind_ar1", "sr", "glmmPQL(cbind(k, ntr - k) ~ x, random = ~ 1 | g, family = binomial, data = d, correlation = corAR1(form = ~ t | g), verbose = FALSE)",
  "mm.glmm_pql('cbind(k, ntr - k) ~ x + (1 | g)', d, family='binomial', correlation=mm.cor_ar1(form='~ t | g'))", kind = "pql")

# more: compound symmetry with singletons, large-unit variance covariates, NA rows with
# row-order AR(1), PQL with an offset argument and with binomial proportions and weights
A("gls_cs_ident_ml_singletons", "sr", "gls(y ~ x, d, correlation = corCompSymm(form = ~ 1 | g), weights = varIdent(form = ~ 1 | f), method = 'ML')",
  "mm.gls('y ~ x', d, correlation=mm.cor_comp_symm(form='~ 1 | g'), variance=mm.var_ident(form='~ 1 | f'), method='ML')")
A("gls_varexp_days", "sr", "gls(y ~ x, d, weights = varExp(form = ~ day))",
  "mm.gls('y ~ x', d, variance=mm.var_exp(form='~ day'))")
A("lme_varpower_days_strata_big", "sr", "lme(yb ~ x, d, random = ~ 1 | g, weights = varPower(form = ~ day | f))",
  "mm.lmer('yb ~ x + (1 | g)', d, variance=mm.var_power(form='~ day | f'))")
A("lme_na_ar1_rows", "srna", "lme(y ~ x, d, random = ~ 1 | g, correlation = corAR1(form = ~ 1 | g), na.action = na.omit)",
  "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_ar1(form='~ 1 | g'))")
A("gls_na_car1_varexp_days", "srna", "gls(y ~ x, d, correlation = corCAR1(form = ~ day | g), weights = varExp(form = ~ day), na.action = na.omit)",
  "mm.gls('y ~ x', d, correlation=mm.cor_car1(form='~ day | g'), variance=mm.var_exp(form='~ day'))")
A("pql_pois_offset_arg_ar1rows", "sr", "glmmPQL(cnt ~ x + offset(log(expo)), random = ~ 1 | g, family = poisson, data = d, correlation = corAR1(form = ~ 1 | g), verbose = FALSE)",
  "mm.glmm_pql('cnt ~ x + (1 | g)', d, family='poisson', offset=np.log(d['expo']), correlation=mm.cor_ar1(form='~ 1 | g'))", kind = "pql")
A("pql_binom_prop_weights", "sr", "glmmPQL(I(k / ntr) ~ x, random = ~ 1 | g, family = binomial, data = d, weights = ntr, verbose = FALSE)",
  "mm.glmm_pql('I(k / ntr) ~ x + (1 | g)', d, family='binomial', weights='ntr')", kind = "pql")

# found while making the fixtures: AR(1) at ages 8..14 (gaps of 2), a non-Euclidean
# rational-quadratic correlation in lme
A("gls_orth_ar1_age", "orth", "gls(distance ~ age, d, correlation = corAR1(form = ~ age | Subject))",
  "mm.gls('distance ~ age', d, correlation=mm.cor_ar1(form='~ age | Subject'))")
A("lme_orth_ar1_age_ident", "orth", "lme(distance ~ age, d, random = ~ 1 | Subject, correlation = corAR1(form = ~ age | Subject), weights = varIdent(form = ~ 1 | Sex))",
  "mm.lmer('distance ~ age + (1 | Subject)', d, correlation=mm.cor_ar1(form='~ age | Subject'), variance=mm.var_ident(form='~ 1 | Sex'))")
A("lme_ratio_max_nug", "sr", "lme(y ~ x, d, random = ~ 1 | g, correlation = corRatio(form = ~ cx + cy | g, metric = 'maximum', nugget = TRUE))",
  "mm.lmer('y ~ x + (1 | g)', d, correlation=mm.cor_ratio(form='~ cx + cy | g', metric='maximum', nugget=True))")

# a known sigma with correlation / variance functions (glsControl(sigma =)), prior
# weights with a variance function
A("gls_sigma_ar1", "sr", "gls(y ~ x, d, correlation = corAR1(form = ~ t | g), control = glsControl(sigma = 1.5))",
  "mm.gls('y ~ x', d, correlation=mm.cor_ar1(form='~ t | g'), sigma=1.5)")
A("gls_sigma_ident_ml", "sr", "gls(y ~ x, d, weights = varIdent(form = ~ 1 | f), method = 'ML', control = glsControl(sigma = 1.2))",
  "mm.gls('y ~ x', d, variance=mm.var_ident(form='~ 1 | f'), method='ML', sigma=1.2)")
A("gls_weights_power", "sr", "gls(y ~ x, d, weights = varComb(varFixed(~ I(1 / ntr)), varPower(form = ~ xpos)))",
  "mm.gls('y ~ x', d, weights=d['ntr'], variance=mm.var_power(form='~ xpos'))")

# known residual variance (metafor / blme)
A("meta_bcg_two_mods", "bcg", "rma(yi, vi, mods = ~ ablat + year, data = d, method = 'REML', control = list(threshold = 1e-12, maxiter = 1000))",
  "mm.lmer('yi ~ ablat + year + (1 | trial)', d, weights='w', sigma=1.0)", kind = "rma",
  extra = "blmer(yi ~ ablat + year + (1 | trial), weights = w, resid.prior = point(1), cov.prior = NULL, data = d)")
A("meta_bcg_factor_ml", "bcg", "rma(yi, vi, mods = ~ alloc, data = d, method = 'ML', control = list(threshold = 1e-12, maxiter = 1000))",
  "mm.lmer('yi ~ alloc + (1 | trial)', d, weights='w', sigma=1.0, REML=False)", kind = "rma",
  extra = "blmer(yi ~ alloc + (1 | trial), weights = w, resid.prior = point(1), cov.prior = NULL, data = d, REML = FALSE)")
A("meta_molloy_mods", "mol", "rma(yi, vi, mods = ~ meanage + design, data = d, method = 'REML', control = list(threshold = 1e-12, maxiter = 1000))",
  "mm.lmer('yi ~ meanage + design + (1 | study)', d, weights='w', sigma=1.0)", kind = "rma",
  extra = "blmer(yi ~ meanage + design + (1 | study), weights = w, resid.prior = point(1), cov.prior = NULL, data = d)")
A("meta_kon_multilevel", "kon", "rma.mv(yi, vi, random = ~ 1 | district/school, data = d, method = 'REML')",
  "mm.lmer('yi ~ 1 + (1 | district/school)', d, weights='w', sigma=1.0)", kind = "rmamv")
A("meta_kon_multilevel_year_ml", "kon", "rma.mv(yi, vi, mods = ~ year, random = ~ 1 | district/school, data = d, method = 'ML')",
  "mm.lmer('yi ~ year + (1 | district/school)', d, weights='w', sigma=1.0, REML=False)", kind = "rmamv")

# -- fit and record ------------------------------------------------------------------------
num <- function(x) as.numeric(x)
iv_tab <- function(x) if (is.null(x)) NULL else
  list(lower = num(x[, "lower"]), est = num(x[, "est."]), upper = num(x[, "upper"]))
record_nlme <- function(m, rec) {
  ms <- m$modelStruct
  rec$logLik <- num(logLik(m))
  cf <- if (inherits(m, "gls")) coef(m) else fixef(m)
  rec$coef <- num(cf); rec$coef_names <- names(cf)
  rec$se <- num(sqrt(diag(vcov(m))))
  rec$sigma <- m$sigma
  if (!is.null(ms$corStruct)) rec$cor_params <- num(coef(ms$corStruct, FALSE))
  if (!is.null(ms$varStruct)) {
    vs <- ms$varStruct
    v <- if (inherits(vs, c("varIdent", "varComb"))) coef(vs, FALSE, allCoef = TRUE) else
      coef(vs, FALSE, allCoef = TRUE)
    rec$var_params <- num(v); rec$var_names <- names(v)
  }
  # predictions on new data: 15 rows of the data (complete cases), at each level
  nd <- head(d[complete.cases(d[intersect(all.vars(formula(m)), names(d))]), ], 15)
  if (inherits(m, "lme")) {
    rec$pred0 <- num(predict(m, nd, level = 0)); rec$pred1 <- num(predict(m, nd, level = 1))
  } else rec$pred0 <- num(predict(m, nd))
  rec$resid_pearson <- num(residuals(m, type = "pearson"))
  # nlme's normalized residuals apply the correlation factors (kept in the order of the
  # data sorted by group) to residuals kept in data order: wrong where the groups'
  # rows are interleaved (the shuffled sr data). The reference is the same fit on the
  # rows sorted by group (stable: the data order within a group stays), mapped back
  rn <- residuals(m, type = "normalized")
  if (!is.null(ms$corStruct)) {
    gv <- all.vars(getGroupsFormula(formula(ms$corStruct)))
    if (!length(gv) && inherits(m, "lme")) gv <- names(m$groups)   # lme's default groups
    o <- if (length(gv)) do.call(order, unname(as.list(d[gv]))) else seq_len(nrow(d))
    m2 <- update(m, data = d[o, ])
    r2 <- residuals(m2, type = "normalized")
    kept <- setdiff(seq_len(nrow(d)), m$na.action)         # rows of d, data order
    kept2 <- o[setdiff(seq_len(nrow(d)), m2$na.action)]    # the same, sorted order
    rn <- r2[match(kept, kept2)]
  }
  rec$resid_normalized <- num(rn)
  if (inherits(m, "lme")) {
    rec$re_sd <- num(suppressWarnings(as.numeric(VarCorr(m)[, "StdDev"])))
    rec$fitted0 <- num(fitted(m, level = 0))
    rec$fitted1 <- num(fitted(m))
  } else rec$fitted0 <- num(fitted(m))
  # intervals() at nlme's default apVar step and at a finer one (.relStep = 1e-4, as
  # tools/r/rside_fixtures.R): the Python side compares with the finer one where the two
  # agree (elsewhere nlme's finite-difference Hessian is no reference)
  ctrl <- if (inherits(m, "gls")) glsControl(.relStep = 1e-4) else
    lmeControl(.relStep = 1e-4, maxIter = 500, msMaxIter = 500)
  for (which in c("default", "fine")) {
    mm <- if (which == "fine") tryCatch(update(m, control = ctrl), error = function(e) e) else m
    iv <- if (inherits(mm, "error")) mm else tryCatch(intervals(mm), error = function(e) e)
    pre <- if (which == "fine") "ivf_" else "iv_"
    if (inherits(iv, "error")) rec[[paste0(pre, "error")]] <- conditionMessage(iv) else {
      rec[[paste0(pre, "fixed")]] <- iv_tab(if (inherits(m, "gls")) iv$coef else iv$fixed)
      rec[[paste0(pre, "cor")]] <- iv_tab(iv$corStruct)
      rec[[paste0(pre, "var")]] <- iv_tab(iv$varStruct)
      rec[[paste0(pre, "sigma")]] <- num(iv$sigma)
      if (!is.null(iv$reStruct))       # per grouping level, outermost first
        rec[[paste0(pre, "re")]] <- unname(lapply(iv$reStruct, function(t)
          list(lower = num(t[, "lower"]), est = num(t[, "est."]), upper = num(t[, "upper"]),
               names = rownames(t))))
    }
  }
  rec
}
res <- list()
for (e in E) {
  d <- datasets[[e$data]]
  t0 <- proc.time()[["elapsed"]]
  m <- tryCatch(eval(parse(text = e$r)), error = function(err) err)
  rec <- list(id = e$id, data = e$data, kind = e$kind, r_call = e$r, py_call = e$py)
  if (inherits(m, "error")) {
    rec$error <- conditionMessage(m)
  } else if (e$kind == "nlme") {
    rec <- record_nlme(m, rec)
  } else if (e$kind == "pql") {
    rec$coef <- num(fixef(m)); rec$coef_names <- names(fixef(m))
    rec$se <- num(sqrt(diag(vcov(m)))); rec$sigma <- m$sigma
    rec$re_sd <- num(sqrt(diag(as.matrix(getVarCov(m)))))
    if (!is.null(m$modelStruct$corStruct))
      rec$cor_params <- num(coef(m$modelStruct$corStruct, FALSE))
    rec$fitted0 <- num(fitted(m, level = 0)); rec$fitted1 <- num(fitted(m))
  } else if (e$kind == "rma_fe") {
    rec$coef <- num(m$beta); rec$se <- num(m$se); rec$logLik <- num(logLik(m, REML = FALSE))
    rec$sigma <- 1
  } else if (e$kind %in% c("rma", "rmamv")) {
    rec$coef <- num(m$beta); rec$se <- num(m$se)
    rec$tau2 <- if (e$kind == "rma") num(m$tau2) else num(m$sigma2)
    rec$logLik <- num(logLik(m))
    rec$sigma <- 1
    if (!is.null(e$extra)) {
      b <- eval(parse(text = e$extra))
      rec$blme_logLik <- num(logLik(b)); rec$blme_coef <- num(lme4::fixef(b))
      rec$blme_se <- num(sqrt(diag(as.matrix(vcov(b)))))
      rec$blme_tau2 <- num(lme4::VarCorr(b)[[1]])
    }
  }
  rec$seconds <- proc.time()[["elapsed"]] - t0
  res[[e$id]] <- rec
  cat(sprintf("%-28s %s\n", e$id, if (is.null(rec$error))
    sprintf("%.5f", if (is.null(rec$logLik)) NA else rec$logLik) else paste("ERROR", rec$error)))
}
write_json(res, file.path(out, "sweepr_nlme.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
