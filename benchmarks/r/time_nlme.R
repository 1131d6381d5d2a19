# Time nlme (gls / lme) and MASS::glmmPQL on the R-side fixture models, for
# benchmarks/rside_bench.py: Rscript benchmarks/r/time_nlme.R JOB.json OUT.json
#
# JOB.json: {"repeat_n": 5, "min_batch_s": 0.05, "dir": optional, "models": [{"name": ...,
#            "data": ..., "factors": [...], "r_call": "gls(...)"}]}; the data are
# <dir>/<data>.csv (default dir tests/fixtures/rside) with the listed columns as factors
# (as tools/r/rside_fixtures.R reads them). A model whose fit fails reports its error
# instead of a time (tools/r/sweep/speed8.py's untuned models). Reading the data is not timed. One untimed warm-up
# fit sizes a batch of k fits lasting at least min_batch_s of CPU time (proc.time's
# resolution is a millisecond, and small gls fits take a few); then repeat_n batches are
# timed and the fastest one's CPU seconds (user + system) per fit reported with the
# log-likelihood. CPU time, not elapsed: on a shared machine the elapsed time of a fit
# mostly measures the other processes. Run from the repository root.
suppressPackageStartupMessages({
  library(nlme)
  library(MASS)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript time_nlme.R JOB.json OUT.json")
job <- fromJSON(args[[1]], simplifyVector = FALSE)
dir <- if (is.null(job$dir)) file.path("tests", "fixtures", "rside") else job$dir

iterations <- function(m) {
  # nlme's outer iterations (lme) or the optimizer's count (gls), where recorded
  it <- tryCatch(attr(m$apVar, "iterations"), error = function(e) NULL)
  if (is.null(it)) it <- tryCatch(m$numIter, error = function(e) NULL)
  if (is.null(it)) NA_integer_ else as.integer(it)
}

results <- lapply(job$models, function(spec) {
  d <- read.csv(file.path(dir, paste0(spec$data, ".csv")), stringsAsFactors = FALSE)
  for (f in unlist(spec$factors)) d[[f]] <- factor(d[[f]])
  env <- list2env(list(d = d), parent = globalenv())
  fit <- function() eval(parse(text = spec$r_call), env)
  cpu <- function(expr) {
    t <- system.time(expr)
    t[["user.self"]] + t[["sys.self"]]
  }
  first <- cpu(m <- tryCatch(fit(), error = function(e) e))
  if (inherits(m, "error")) {
    return(list(name = spec$name, error = conditionMessage(m)))
  }
  k <- max(1L, as.integer(ceiling(job$min_batch_s / max(first, 1e-3))))
  times <- replicate(job$repeat_n, cpu(for (i in seq_len(k)) fit()) / k)
  ll <- tryCatch(as.numeric(logLik(m)), error = function(e) NA_real_)
  list(name = spec$name, seconds = min(times), batch = k, logLik = ll,
       iterations = iterations(m))
})
write_json(list(results = results), args[[2]], auto_unbox = TRUE, digits = NA)
