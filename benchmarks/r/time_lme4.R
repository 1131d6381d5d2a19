# Time lme4 on one benchmark job: Rscript time_lme4.R JOB.json OUT.json
#
# JOB.json is written by benchmarks/external.py: the data as a CSV path, the factor columns
# with their level orders (R's reference levels, as the Python side uses), the formula in
# lme4's syntax, REML, and how many timed fits. As on the Python side, one untimed warm-up
# fit comes first (unless warmup is false), then `repeat` timed fits; the median elapsed
# time is reported. Reading the data and building factors are not timed.
#
# Engines: lmer, glmer (family = an R call, nAGQ), glmer_nb (glmer.nb) and glmmtmb (glmmTMB
# with family, ziformula, dispformula, REML), so that every row of the table is timed
# against its R counterpart by the same protocol.
suppressPackageStartupMessages(library(lme4))
library(jsonlite)

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) stop("usage: Rscript time_lme4.R JOB.json OUT.json")
job <- fromJSON(args[[1]], simplifyVector = FALSE)
engines <- c("lmer", "glmer", "glmer_nb", "glmmtmb")
if (!(job$engine %in% engines)) {
  stop(sprintf("engine '%s' is not wired in time_lme4.R (known: %s)", job$engine,
               paste(engines, collapse = ", ")))
}
if (job$engine == "glmmtmb") suppressPackageStartupMessages(library(glmmTMB))

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
fam <- if (is.null(job$family)) NULL else eval(parse(text = job$family))
nagq <- if (is.null(job$nAGQ)) 1L else as.integer(job$nAGQ)
fit_model <- switch(
  job$engine,
  lmer = function() lmer(form, data = data, REML = reml),
  glmer = function() glmer(form, data = data, family = fam, nAGQ = nagq),
  glmer_nb = function() glmer.nb(form, data = data, nAGQ = nagq),
  glmmtmb = function() glmmTMB(form, data = data, family = fam,
                                ziformula = as.formula(job$ziformula),
                                dispformula = as.formula(job$dispformula), REML = reml)
)

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
  c0 <- proc.time()
  fit <- fit_model()
  cpu <- proc.time() - c0
  list(fit = fit, seconds = now() - t0, cpu = cpu[["user.self"]] + cpu[["sys.self"]])
}
cold <- NA_real_
if (!isFALSE(job$warmup)) cold <- timed_fit()$seconds
times <- numeric(job$repeat_n)
cpus <- numeric(job$repeat_n)
for (i in seq_len(job$repeat_n)) {
  res <- timed_fit()
  times[i] <- res$seconds
  cpus[i] <- res$cpu
  m <- res$fit
}
if (is.na(cold)) cold <- times[[1]]
if (job$engine == "glmmtmb") {
  objective <- -2 * as.numeric(logLik(m))   # the REML criterion when REML
  n_evals <- unname(m$fit$evaluations[["function"]])
  optimizer <- "nlminb"
} else {
  cmp <- m@devcomp$cmp
  # the criterion each optimizer minimizes: REML or deviance for lmer; glmer's Laplace /
  # AGQ deviance (devcomp's dev, on the scale mixedmodels reports); -2 logLik for glmer.nb
  objective <- unname(if (job$engine == "lmer" && reml) cmp[["REML"]] else
    if (job$engine == "glmer_nb") -2 * as.numeric(logLik(m)) else cmp[["dev"]])
  n_evals <- m@optinfo$feval
  optimizer <- paste(m@optinfo$optimizer, collapse = "+")
}
out <- list(
  name = job$name,
  seconds = median(times),
  seconds_all = times,
  cpu_seconds = median(cpus),
  seconds_cold = cold,
  repeats = job$repeat_n,
  objective = objective,
  n_evals = n_evals,
  optimizer = optimizer,
  nobs = nobs(m),
  timer = if (requireNamespace("bench", quietly = TRUE)) "bench::hires_time" else
    "proc.time",
  versions = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    lme4 = as.character(packageVersion("lme4")),
    Matrix = as.character(packageVersion("Matrix")),
    glmmTMB = if (job$engine == "glmmtmb") as.character(packageVersion("glmmTMB")) else NA,
    blas = unname(extSoftVersion()[["BLAS"]])
  )
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA), args[[2]])
