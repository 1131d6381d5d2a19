# Time nlme (gls / lme) and MASS::glmmPQL on the R-side fixture models, for
# benchmarks/rside_bench.py: Rscript benchmarks/r/time_nlme.R JOB.json OUT.json
#
# JOB.json: {"repeat_n": 5, "models": [{"name": ..., "data": ..., "factors": [...],
#            "r_call": "gls(...)"}]}; the data are tests/fixtures/rside/<data>.csv with the
# listed columns as factors (as tools/r/rside_fixtures.R reads them). Reading the data is not
# timed; one untimed warm-up fit, then repeat_n timed fits, the median elapsed seconds
# reported with the log-likelihood. Run from the repository root.
suppressPackageStartupMessages({
  library(nlme)
  library(MASS)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript time_nlme.R JOB.json OUT.json")
job <- fromJSON(args[[1]], simplifyVector = FALSE)
dir <- file.path("tests", "fixtures", "rside")

results <- lapply(job$models, function(spec) {
  d <- read.csv(file.path(dir, paste0(spec$data, ".csv")), stringsAsFactors = FALSE)
  for (f in unlist(spec$factors)) d[[f]] <- factor(d[[f]])
  env <- list2env(list(d = d), parent = globalenv())
  fit <- function() eval(parse(text = spec$r_call), env)
  m <- fit()
  times <- replicate(job$repeat_n, system.time(fit())[["elapsed"]])
  ll <- tryCatch(as.numeric(logLik(m)), error = function(e) NA_real_)
  list(name = spec$name, seconds = median(times), logLik = ll)
})
write_json(list(results = results), args[[2]], auto_unbox = TRUE, digits = NA)
