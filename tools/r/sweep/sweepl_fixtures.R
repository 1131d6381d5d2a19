# lme4 1.1.31 fixtures for what the lme4-class sweep (tools/r/sweep/sweepl_lme4.R,
# sweepl_bad_inputs.py) found, written to tests/fixtures/sweep/sweepl_*.{csv,json}. Run from
# the repository root:
#   Rscript tools/r/sweep/sweepl_fixtures.R
suppressPackageStartupMessages({library(jsonlite); library(lme4)})
out_dir <- file.path("tests", "fixtures", "sweep")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
set.seed(5150)
n_g <- 12; per <- 6
d <- data.frame(g = factor(sprintf("g%02d", rep(seq_len(n_g), each = per))))
d$x <- round(rnorm(nrow(d)), 6)
d$y <- rpois(nrow(d), exp(0.4 + 0.3 * d$x + rnorm(n_g, 0, 0.5)[as.integer(d$g)]))
d$yn <- round(1 + 0.5 * d$x + rnorm(n_g, 0, 0.7)[as.integer(d$g)] + rnorm(nrow(d)), 6)
d$zero <- 0L
write.csv(d, file.path(out_dir, "sweepl_start.csv"), row.names = FALSE)
d <- read.csv(file.path(out_dir, "sweepl_start.csv"), stringsAsFactors = TRUE)
tight <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                      optCtrl = list(rhoend = 1e-9, maxfun = 1e5))
err <- function(expr) tryCatch({force(expr); "no error"}, error = function(e) conditionMessage(e))
named <- function(x) as.list(setNames(as.numeric(x), names(x)))

# glmer with lme4's named start list(theta, fixef): the fixef block is used
start <- list(theta = 0.3, fixef = c(1.5, -0.4))
g1 <- glmer(y ~ x + (1 | g), d, family = poisson, start = start, control = tight)
# lmer with start = list(theta = ...)
l1 <- lmer(yn ~ x + (1 | g), d, start = list(theta = 2),
           control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-9)))
d$yc <- complex(real = d$yn, imaginary = 1)
rec <- list(
  lme4 = as.character(packageVersion("lme4")),
  glmer_start = list(formula = "y ~ x + (1 | g)", family = "poisson",
                     start = list(theta = I(start$theta), fixef = I(start$fixef)),
                     objective = -2 * as.numeric(logLik(g1)), beta = named(fixef(g1)),
                     theta = I(unname(getME(g1, "theta")))),
  lmer_start = list(formula = "yn ~ x + (1 | g)", start = list(theta = I(2)),
                    objective = -2 * as.numeric(logLik(l1)), beta = named(fixef(l1)),
                    theta = I(unname(getME(l1, "theta")))),
  r_errors = list(
    glmer_start_unknown_block = err(glmer(y ~ x + (1 | g), d, family = poisson,
                                          start = list(nope = 1))),
    cbind_zero_trials = err(glmer(cbind(zero, zero) ~ x + (1 | g), d, family = binomial)),
    complex_response = err(lmer(yc ~ x + (1 | g), d))))
write_json(rec, file.path(out_dir, "sweepl_start.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
cat("wrote", file.path(out_dir, "sweepl_start.json"), "\n")
