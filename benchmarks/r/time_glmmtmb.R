# Time glmmTMB on a list of models: Rscript time_glmmtmb.R MODELS.(json|toml) [OUT.json]
#
# The companion of time_lme4.R for the glmmTMB model class, so that a benchmark can time
# glmmTMB in the same run as mixedmodels. Prints the JSON result (or writes it to OUT.json).
#
# MODELS is a JSON object (or a TOML file, read with RcppTOML) with optional defaults and a
# list of models:
#
#   {"repeat_n": 3, "warmup": true,
#    "models": [
#      {"name": "sal_zinb2", "csv": "src/mixedmodels/datasets/data/Salamanders.csv",
#       "factor_levels": {"site": [...], "mined": ["yes", "no"], "spp": [...]},
#       "formula": "count ~ spp + mined + (1 | site)", "ziformula": "~spp + mined",
#       "dispformula": "~1", "family": "nbinom2(link = \"log\")", "REML": false,
#       "weights": null, "offset": null, "start": null, "repeat_n": 5},
#      {"fixture": "gammasim_log"}
#    ]}
#
# A model with "fixture": ID takes every field from tests/fixtures/glmmtmb/ID.json (or
# newer/ID.json) -- data file, level orders, formula, ziformula, dispformula, family, REML,
# weights, offset, start -- and any field given beside it overrides the fixture's. formula,
# ziformula and dispformula are in glmmTMB's syntax; family is an R call; weights and offset
# name columns of the CSV; start is an R expression (text). factor_levels absent: the CSV's
# folder factor_levels.json is used (as for the bundled and fixture data), else factor().
#
# As in time_lme4.R: reading the data and building factors are not timed; one untimed warm-up
# fit comes first (unless warmup is false), then repeat_n timed fits; the median elapsed time
# is reported with every timing, the median CPU time (user + system: what a loaded machine
# distorts least), the objective (-2 logLik, or the REML criterion), the
# optimizer's evaluations and the convergence code. Relative paths are taken from the
# current directory (run from the repository root).
suppressPackageStartupMessages({
  library(glmmTMB)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) < 1 || length(args) > 2) {
  stop("usage: Rscript time_glmmtmb.R MODELS.(json|toml) [OUT.json]")
}
spec_path <- args[[1]]
if (grepl("\\.toml$", spec_path)) {
  if (!requireNamespace("RcppTOML", quietly = TRUE)) {
    stop("reading ", spec_path, " needs the R package RcppTOML (Debian: r-cran-rcpptoml); ",
         "or give the models as JSON")
  }
  job <- RcppTOML::parseTOML(spec_path)
} else {
  job <- fromJSON(spec_path, simplifyVector = FALSE)
}
models <- job$models
if (is.null(models) || length(models) == 0) stop(spec_path, " lists no models ('models')")

fixture_dir <- file.path("tests", "fixtures", "glmmtmb")
fixture_fields <- c("formula", "ziformula", "dispformula", "REML", "weights", "offset", "start")

from_fixture <- function(id) {
  for (p in file.path(c(fixture_dir, file.path(fixture_dir, "newer"),
                        file.path(fixture_dir, "awkward")), paste0(id, ".json"))) {
    if (file.exists(p)) {
      fx <- fromJSON(p, simplifyVector = FALSE)
      out <- fx[fixture_fields]
      out$family <- fx$family_r
      out$csv <- fx$data_file
      out$name <- id
      return(out)
    }
  }
  stop("no glmmTMB fixture '", id, "' under ", fixture_dir)
}

levels_for <- function(csv) {
  lf <- file.path(dirname(csv), "factor_levels.json")
  if (!file.exists(lf)) return(list())
  all <- fromJSON(lf, simplifyVector = FALSE)
  key <- sub("\\.csv(\\.gz)?$", "", basename(csv))
  if (is.null(all[[key]])) list() else all[[key]]
}

read_data <- function(csv, factor_levels) {
  factor_cols <- names(factor_levels)
  col_classes <- setNames(rep("character", length(factor_cols)), factor_cols)
  data <- read.csv(csv, colClasses = col_classes, check.names = FALSE)
  for (col in factor_cols) {
    if (!col %in% names(data)) stop("factor column '", col, "' is not in ", csv)
    lev <- factor_levels[[col]]
    data[[col]] <- if (is.null(lev)) factor(data[[col]]) else factor(data[[col]],
                                                                    levels = unlist(lev))
  }
  data
}

# Wall clock in seconds: bench's high-resolution timer where installed
now <- if (requireNamespace("bench", quietly = TRUE)) {
  function() as.numeric(bench::hires_time())
} else {
  function() proc.time()[["elapsed"]]
}

time_one <- function(m) {
  if (!is.null(m$fixture)) m <- modifyList(from_fixture(m$fixture), m[names(m) != "fixture"])
  for (req in c("name", "csv", "formula")) {
    if (is.null(m[[req]])) stop("a model lacks '", req, "': ", toJSON(m, auto_unbox = TRUE))
  }
  lev <- if (is.null(m$factor_levels)) levels_for(m$csv) else m$factor_levels
  data <- read_data(m$csv, lev)
  fam <- eval(parse(text = if (is.null(m$family)) "gaussian()" else m$family))
  zi <- as.formula(if (is.null(m$ziformula)) "~0" else m$ziformula)
  disp <- as.formula(if (is.null(m$dispformula)) "~1" else m$dispformula)
  form <- as.formula(m$formula)
  reml <- isTRUE(m$REML)
  w <- if (is.null(m$weights)) NULL else data[[m$weights]]
  off <- if (is.null(m$offset)) NULL else data[[m$offset]]
  start <- if (is.null(m$start)) NULL else eval(parse(text = m$start))
  repeat_n <- as.integer(if (!is.null(m$repeat_n)) m$repeat_n else if (!is.null(job$repeat_n))
                           job$repeat_n else 3)
  warmup <- if (!is.null(m$warmup)) m$warmup else !isFALSE(job$warmup)
  warnings_seen <- character()
  fit_it <- function() {
    withCallingHandlers(
      glmmTMB(form, data = data, family = fam, ziformula = zi, dispformula = disp,
              REML = reml, weights = w, offset = off, start = start),
      warning = function(cond) {
        warnings_seen <<- unique(c(warnings_seen, conditionMessage(cond)))
        invokeRestart("muffleWarning")
      })
  }
  timed_fit <- function() {
    invisible(gc())
    c0 <- proc.time()
    t0 <- now()
    fit <- fit_it()
    elapsed <- now() - t0
    used <- proc.time() - c0
    list(fit = fit, seconds = elapsed,
         cpu = sum(used[c("user.self", "sys.self")], na.rm = TRUE))
  }
  cold <- NA_real_
  if (isTRUE(warmup)) cold <- timed_fit()$seconds
  times <- numeric(repeat_n)
  cpus <- numeric(repeat_n)
  for (i in seq_len(repeat_n)) {
    res <- timed_fit()
    times[i] <- res$seconds
    cpus[i] <- res$cpu
    fit <- res$fit
  }
  if (is.na(cold)) cold <- times[[1]]
  list(
    name = m$name,
    seconds = median(times),
    seconds_all = I(times),
    seconds_cold = cold,
    cpu_seconds = median(cpus),
    repeats = repeat_n,
    objective = 2 * fit$fit$objective,
    n_evals = fit$fit$evaluations[["function"]],
    n_gradient_evals = fit$fit$evaluations[["gradient"]],
    convergence = fit$fit$convergence,
    pdHess = isTRUE(fit$sdr$pdHess),
    warnings = I(warnings_seen),
    nobs = nobs(fit),
    family = fam$family, link = fam$link
  )
}

results <- lapply(models, function(m) {
  r <- tryCatch(time_one(m), error = function(e) {
    list(name = if (is.null(m$name)) m$fixture else m$name, error = conditionMessage(e))
  })
  message(sprintf("%-28s %s", r$name, if (is.null(r$error)) sprintf("%.4f s", r$seconds) else
    paste("ERROR:", r$error)))
  r
})

out <- list(
  results = results,
  timer = if (requireNamespace("bench", quietly = TRUE)) "bench::hires_time" else "proc.time",
  versions = list(
    R = paste(R.version$major, R.version$minor, sep = "."),
    glmmTMB = as.character(packageVersion("glmmTMB")),
    TMB = as.character(packageVersion("TMB")),
    Matrix = as.character(packageVersion("Matrix")),
    blas = unname(extSoftVersion()[["BLAS"]]),
    omp_threads = Sys.getenv("OMP_NUM_THREADS", "")
  )
)
text <- toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE)
if (length(args) == 2) writeLines(text, args[[2]]) else cat(text, "\n")
