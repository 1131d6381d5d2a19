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

# Type III F tests (lmerTest) with sum, Helmert and polynomial (ordered factor) codings, and
# drop1 of terms whose formula text is not formulaic's (I(x^2), a column named `x 1`)
suppressPackageStartupMessages(library(lmerTest))
set.seed(6061)
n_g <- 15; per <- 10; n <- n_g * per
t3 <- data.frame(g = factor(sprintf("g%02d", rep(seq_len(n_g), each = per))))
t3$f <- factor(sample(c("a", "b", "c"), n, TRUE))
t3$f2 <- factor(sample(c("u", "v"), n, TRUE))
t3$x <- round(rnorm(n), 6)
t3$fo <- c("lo", "mid", "hi")[sample(1:3, n, TRUE)]
t3$y <- round(1 + 0.4 * t3$x + 0.3 * t3$x^2 + c(a = 0, b = 0.5, c = -0.3)[as.character(t3$f)] +
              0.3 * (t3$f2 == "v") * (t3$f == "b") + c(lo = 0, mid = 0.3, hi = 0.5)[t3$fo] +
              rnorm(n_g, 0, 0.6)[as.integer(t3$g)] + rnorm(n, 0, 0.8), 6)
write.csv(t3, file.path(out_dir, "sweepl_terms.csv"), row.names = FALSE)
t3 <- read.csv(file.path(out_dir, "sweepl_terms.csv"), stringsAsFactors = TRUE)
t3$fo <- factor(as.character(t3$fo), levels = c("lo", "mid", "hi"), ordered = TRUE)
t3$`x 1` <- t3$x
aov_rec <- function(a) list(terms = I(rownames(a)), NumDF = I(a$NumDF), DenDF = I(a$DenDF),
                            F = I(a[["F value"]]), p = I(a[["Pr(>F)"]]))
lctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-9))
m_sum <- lmer(y ~ f * f2 + x + (1 | g), t3, contrasts = list(f = "contr.sum", f2 = "contr.sum"),
              control = lctl)
m_hel <- lmer(y ~ f * f2 + x + (1 | g), t3, contrasts = list(f = "contr.helmert"), control = lctl)
m_ord <- lmer(y ~ fo + x * f + (1 | g), t3, control = lctl)
dr_sq <- drop1(lme4::lmer(y ~ x + I(x^2) + f + (1 | g), t3, control = lctl), test = "Chisq")
dr_sp <- suppressMessages(drop1(lme4::lmer(y ~ `x 1` + f + (1 | g), t3, REML = FALSE, control = lctl),
                                test = "Chisq"))
drop_rec <- function(a) list(terms = I(rownames(a)), AIC = I(a$AIC), LRT = I(a$LRT),
                             p = I(a[["Pr(Chi)"]]))
write_json(list(
  lmerTest = as.character(packageVersion("lmerTest")), lme4 = as.character(packageVersion("lme4")),
  note = "fo is an ordered factor (levels lo < mid < hi: polynomial contrasts)",
  sum = c(list(formula = "y ~ f * f2 + x + (1 | g)", contrasts = list(f = "sum", f2 = "sum"),
               kr = aov_rec(anova(m_sum, ddf = "Kenward-Roger"))), aov_rec(anova(m_sum))),
  helmert = c(list(formula = "y ~ f * f2 + x + (1 | g)", contrasts = list(f = "helmert")),
              aov_rec(anova(m_hel))),
  ordered = c(list(formula = "y ~ fo + x * f + (1 | g)",
                   kr = aov_rec(anova(m_ord, ddf = "Kenward-Roger"))), aov_rec(anova(m_ord))),
  drop1_power = c(list(formula = "y ~ x + I(x^2) + f + (1 | g)"), drop_rec(dr_sq)),
  drop1_spaced = c(list(formula = "y ~ `x 1` + f + (1 | g)", REML = FALSE), drop_rec(dr_sp))),
  file.path(out_dir, "sweepl_terms.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE,
  na = "null")
cat("wrote", file.path(out_dir, "sweepl_terms.json"), "\n")

# profile intervals of a glmer.nb fit (the shape held at its estimate, as lme4 does); ours
# refused them ("lme4 does not profile them either")
set.seed(7071)
n_g <- 15; per <- 10
nbd <- data.frame(g = factor(sprintf("g%02d", rep(seq_len(n_g), each = per))))
nbd$x <- round(rnorm(nrow(nbd)), 6)
nbd$y <- rnbinom(nrow(nbd), mu = exp(0.8 + 0.4 * nbd$x + rnorm(n_g, 0, 0.5)[as.integer(nbd$g)]),
                 size = 2)
write.csv(nbd, file.path(out_dir, "sweepl_nb_profile.csv"), row.names = FALSE)
nbd <- read.csv(file.path(out_dir, "sweepl_nb_profile.csv"), stringsAsFactors = TRUE)
nb <- glmer.nb(y ~ x + (1 | g), nbd, control = tight)
ci <- confint(nb, method = "profile", oldNames = FALSE)
write_json(list(lme4 = as.character(packageVersion("lme4")), formula = "y ~ x + (1 | g)",
                objective = -2 * as.numeric(logLik(nb)), nb_theta = getME(nb, "glmer.nb.theta"),
                names = I(rownames(ci)), lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2]))),
           file.path(out_dir, "sweepl_nb_profile.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE)
cat("wrote", file.path(out_dir, "sweepl_nb_profile.json"), "\n")
