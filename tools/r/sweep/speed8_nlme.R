# R side of the speed8 sweep (issue 8: R-side models at least 5x faster than nlme, on
# models nobody tuned for); tools/r/sweep/speed8.py drives it.
#
#   Rscript tools/r/sweep/speed8_nlme.R export DIR
#     writes DIR/<name>.csv for the data sets of the sweep: the bundled ones (read from
#     /work/shared/data or src/mixedmodels/datasets/data) and nlme's own, as plain data
#     frames, with every transformed column the models use computed here (so that both
#     sides read the same numbers).
#   nlme is timed by benchmarks/r/time_nlme.R (the R-side benchmark's protocol, with the
#   job's "dir" pointing at DIR).
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

if (length(args) == 2 && args[[1]] == "export") {
  export(args[[2]])
} else {
  stop("usage: speed8_nlme.R export DIR (timing: benchmarks/r/time_nlme.R)")
}
