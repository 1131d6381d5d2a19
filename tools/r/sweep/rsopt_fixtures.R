# MASS::glmmPQL fixtures for PQL working fits with a residual correlation (helper lane
# rsopt): the fixed effects of four glmmPQL fits on the rside fixture data, which our
# warm-started working fits (src/mixedmodels/fitting/pql_warm.py) must match. Run from
# the repository root:
#   Rscript tools/r/sweep/rsopt_fixtures.R
suppressPackageStartupMessages({library(jsonlite); library(MASS); library(nlme)})
data_dir <- file.path("tests", "fixtures", "rside")
out_dir <- file.path("tests", "fixtures", "sweep")
b <- read.csv(file.path(data_dir, "bacteria.csv"))
b$ID <- factor(b$ID); b$trt <- factor(b$trt)
cn <- read.csv(file.path(data_dir, "counts.csv")); cn$unit <- factor(cn$unit)
fits <- list(
  bacteria_ar1 = list(py = "mm.glmm_pql('y ~ trt + late + (1 | ID)', d, family='binomial', correlation=mm.cor_ar1(form='~ week | ID'))",
                      data = "bacteria",
                      fit = function() glmmPQL(y ~ trt + late, random = ~ 1 | ID, family = binomial,
                                               data = b, correlation = corAR1(form = ~ week | ID),
                                               verbose = FALSE)),
  bacteria_exp = list(py = "mm.glmm_pql('y ~ trt + late + (1 | ID)', d, family='binomial', correlation=mm.cor_exp(form='~ week | ID'))",
                      data = "bacteria",
                      fit = function() glmmPQL(y ~ trt + late, random = ~ 1 | ID, family = binomial,
                                               data = b, correlation = corExp(form = ~ week | ID),
                                               verbose = FALSE)),
  counts_car1 = list(py = "mm.glmm_pql('count ~ x + (1 | unit)', d, family='poisson', correlation=mm.cor_car1(form='~ t | unit'))",
                     data = "counts",
                     fit = function() glmmPQL(count ~ x, random = ~ 1 | unit, family = poisson,
                                              data = cn, correlation = corCAR1(form = ~ t | unit),
                                              verbose = FALSE)),
  counts_gaus = list(py = "mm.glmm_pql('count ~ x + (1 | unit)', d, family='poisson', correlation=mm.cor_gaus(form='~ t | unit'))",
                     data = "counts",
                     fit = function() glmmPQL(count ~ x, random = ~ 1 | unit, family = poisson,
                                              data = cn, correlation = corGaus(form = ~ t | unit),
                                              verbose = FALSE)))
out <- lapply(names(fits), function(id) {
  f <- fits[[id]]
  m <- f$fit()
  list(id = id, data = f$data, py_call = f$py, coef = unname(fixef(m)),
       coef_names = names(fixef(m)), MASS = as.character(packageVersion("MASS")),
       nlme = as.character(packageVersion("nlme")))
})
write_json(out, file.path(out_dir, "rsopt_pql_warm.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
