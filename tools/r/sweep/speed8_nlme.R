# R side of the speed8 sweep (issue 8: R-side models at least 5x faster than nlme, on
# models nobody tuned for); tools/r/sweep/speed8.py drives it.
#
#   Rscript tools/r/sweep/speed8_nlme.R export DIR
#     writes DIR/<name>.csv for the data sets of the sweep: the bundled ones (read from
#     /work/shared/data or src/mixedmodels/datasets/data) and nlme's own, as plain data
#     frames, with every transformed column the models use computed here (so that both
#     sides read the same numbers).
#   Rscript tools/r/sweep/speed8_nlme.R time JOB.json OUT.json
#     JOB.json: {"dir": DIR, "repeat_n": 5, "min_batch_s": 0.05, "models": [{"name": ...,
#     "data": ..., "factors": [...], "r_call": "lme(...)"}]}. The timing protocol of
#     benchmarks/r/time_nlme.R: data read once (untimed, factor columns as factors), one
#     untimed warm-up fit sizes a batch of k fits of >= min_batch_s CPU seconds, the
#     fastest of repeat_n batches (user + system seconds per fit) is reported with the
#     log-likelihood and nlme's count of iterations.
suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)

bundled <- function(name) {
  for (dir in c("/work/shared/data", "src/mixedmodels/datasets/data")) {
    f <- file.path(dir, paste0(name, ".csv"))
    if (file.exists(f)) return(read.csv(f, stringsAsFactors = FALSE))
  }
  stop("no bundled data set ", name)
}

export <- function(dir) {
  dir.create(dir, showWarnings = FALSE, recursive = TRUE)
  put <- function(d, name) write.csv(d, file.path(dir, paste0(name, ".csv")), row.names = FALSE)
  s <- bundled("sleepstudy")
  s$Days1 <- s$Days + 1                         # positive covariate for varPower
  put(s, "sleepstudy")
  put(bundled("Orthodont"), "Orthodont")
  put(bundled("cake"), "cake")
  put(bundled("Dyestuff"), "Dyestuff")
  put(bundled("Pastes"), "Pastes")
  put(bundled("ar1sim"), "ar1sim")
  for (n in c("Machines", "Oats", "Rail", "BodyWeight", "Pixel", "Orange")) {
    d <- as.data.frame(get(n, envir = asNamespace("nlme")))
    for (v in names(d)) if (is.factor(d[[v]])) d[[v]] <- as.character(d[[v]])
    if (n == "Pixel") d$day2 <- d$day^2
    if (n == "Orange") d$age1 <- d$age / 100    # hundreds of days
    put(d, n)
  }
  o <- as.data.frame(Ovary)
  o$Mare <- as.character(o$Mare)
  o$sin2pi <- sin(2 * pi * o$Time)
  o$cos2pi <- cos(2 * pi * o$Time)
  put(o, "Ovary")
}

iterations <- function(m) {
  # nlme's outer iterations (lme) or the optimizer's count (gls), where recorded
  it <- tryCatch(attr(m$apVar, "iterations"), error = function(e) NULL)
  if (is.null(it)) it <- tryCatch(m$numIter, error = function(e) NULL)
  if (is.null(it)) NA_integer_ else as.integer(it)
}

time_job <- function(job_file, out_file) {
  job <- fromJSON(job_file, simplifyVector = FALSE)
  results <- lapply(job$models, function(spec) {
    d <- read.csv(file.path(job$dir, paste0(spec$data, ".csv")), stringsAsFactors = FALSE)
    for (f in unlist(spec$factors)) d[[f]] <- factor(d[[f]])
    env <- list2env(list(d = d), parent = globalenv())
    fit <- function() eval(parse(text = spec$r_call), env)
    cpu <- function(expr) {
      t <- system.time(expr)
      t[["user.self"]] + t[["sys.self"]]
    }
    m <- NULL
    first <- cpu(m <- tryCatch(fit(), error = function(e) e))
    if (inherits(m, "error")) {
      return(list(name = spec$name, error = conditionMessage(m)))
    }
    k <- max(1L, as.integer(ceiling(job$min_batch_s / max(first, 1e-3))))
    times <- replicate(job$repeat_n, cpu(for (i in seq_len(k)) fit()) / k)
    list(name = spec$name, seconds = min(times), batch = k,
         logLik = as.numeric(logLik(m)), iterations = iterations(m))
  })
  write_json(list(results = results), out_file, auto_unbox = TRUE, digits = NA)
}

if (length(args) == 2 && args[[1]] == "export") {
  export(args[[2]])
} else if (length(args) == 3 && args[[1]] == "time") {
  time_job(args[[2]], args[[3]])
} else {
  stop("usage: speed8_nlme.R export DIR | time JOB.json OUT.json")
}
