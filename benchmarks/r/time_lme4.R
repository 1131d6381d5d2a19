# Time lme4 on one benchmark job: Rscript time_lme4.R JOB.json OUT.json
#
# JOB.json is written by benchmarks/external.py: the data as a CSV path, the factor columns
# with their level orders (R's reference levels, as the Python side uses), the formula in
# lme4's syntax, REML, and how many timed fits. As on the Python side, one untimed warm-up
# fit comes first (unless warmup is false), then `repeat` timed fits; the median elapsed
# time is reported. Reading the data and building factors are not timed.
suppressPackageStartupMessages(library(lme4))
library(jsonlite)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript time_lme4.R JOB.json OUT.json")
job <- fromJSON(args[[1]], simplifyVector = FALSE)
if (job$engine != "lmer") {
  stop(sprintf("engine '%s' is not wired in time_lme4.R yet (only lmer)", job$engine))
}

factor_cols <- names(job$factor_levels)
col_classes <- setNames(rep("character", length(factor_cols)), factor_cols)
data <- read.csv(job$csv, colClasses = col_classes, check.names = FALSE)
for (col in factor_cols) {
  lev <- job$factor_levels[[col]]
  data[[col]] <- if (is.null(lev)) factor(data[[col]]) else factor(data[[col]],
                                                                  levels = unlist(lev))
}
form <- as.formula(job$formula)
reml <- isTRUE(job$REML)

# Wall clock in seconds: bench's high-resolution timer where installed (system.time()
# only resolves milliseconds, coarse for the 10 ms fits of the small models).
now <- if (requireNamespace("bench", quietly = TRUE)) {
  function() as.numeric(bench::hires_time())
} else {
  function() proc.time()[["elapsed"]]
}
timed_fit <- function() {
  invisible(gc())
  t0 <- now()
  fit <- lmer(form, data = data, REML = reml)
  list(fit = fit, seconds = now() - t0)
}
cold <- NA_real_
if (!isFALSE(job$warmup)) cold <- timed_fit()$seconds
times <- numeric(job$repeat_n)
for (i in seq_len(job$repeat_n)) {
  res <- timed_fit()
  times[i] <- res$seconds
  m <- res$fit
}
if (is.na(cold)) cold <- times[[1]]
cmp <- m@devcomp$cmp
out <- list(
  name = job$name,
  seconds = median(times),
  seconds_all = times,
  seconds_cold = cold,
  repeats = job$repeat_n,
  objective = unname(if (reml) cmp[["REML"]] else cmp[["dev"]]),
  n_evals = m@optinfo$feval,
  optimizer = m@optinfo$optimizer,
  nobs = nobs(m),
  timer = if (requireNamespace("bench", quietly = TRUE)) "bench::hires_time" else
    "proc.time",
  versions = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    lme4 = as.character(packageVersion("lme4")),
    Matrix = as.character(packageVersion("Matrix")),
    blas = unname(extSoftVersion()[["BLAS"]])
  )
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[[2]])
