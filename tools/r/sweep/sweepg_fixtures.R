# glmmTMB 1.1.5 fixtures for what the batch-3 parity sweep (tools/r/sweep/sweepg_glmmtmb.R)
# found, written to tests/fixtures/sweep/sweepg_*.{csv,json}. Run from the repository root:
#   Rscript tools/r/sweep/sweepg_fixtures.R
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
out_dir <- file.path("tests", "fixtures", "sweep")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
named <- function(x) as.list(setNames(as.numeric(x), names(x)))
put <- function(rec, id) write_json(c(list(id = id, glmmTMB = as.character(packageVersion("glmmTMB"))), rec),
                                    file.path(out_dir, paste0(id, ".json")), digits = NA,
                                    auto_unbox = TRUE, pretty = TRUE)
fit_record <- function(fit) {
  list(objective = 2 * fit$fit$objective, convergence = fit$fit$convergence,
       pdHess = isTRUE(fit$sdr$pdHess), beta = named(fixef(fit)$cond),
       beta_zi = named(fixef(fit)$zi), se = named(sqrt(diag(vcov(fit)$cond))))
}

# 1. zero-inflated nbinom2 with 4% excess zeros: without random effects the negative
#    binomial absorbs the zeros and the zero-inflation logit runs to about -27, where the
#    full model's gradient in it vanishes; we stayed there, 3.18 above glmmTMB's optimum
set.seed(1)
n_g <- 30; per <- 20; n <- n_g * per; gi <- rep(seq_len(n_g), each = per)
x <- round(rnorm(n), 6)
b0 <- rnorm(n_g, 0, 0.7); b1 <- rnorm(n_g, 0, 0.05)   # b1: kept for the seed's stream
mu <- exp(0.4 + 0.3 * x + b0[gi])
y <- rnbinom(n, mu = mu, size = 2); y[runif(n) < 0.04] <- 0L
zi <- data.frame(g = factor(sprintf("g%02d", gi)), x = x, y = y)
write.csv(zi, file.path(out_dir, "sweepg_zinb2_restart.csv"), row.names = FALSE)
zi <- read.csv(file.path(out_dir, "sweepg_zinb2_restart.csv"), stringsAsFactors = TRUE)
fit <- glmmTMB(y ~ x + (1 | g), zi, family = nbinom2, ziformula = ~1)
put(c(list(formula = "y ~ x + (1 | g)", family = "nbinom2", ziformula = "~1"), fit_record(fit)),
    "sweepg_zinb2_restart")

# 2. predict(se.fit = TRUE) for crossed terms (our blocked Laplace Hessian had no inverse
#    for new rows: AttributeError), on the fitting rows and on new data with a new level
set.seed(2)
n <- 240
cr <- data.frame(g = factor(sprintf("g%02d", sample(1:15, n, TRUE))),
                 h = factor(sprintf("h%d", sample(1:6, n, TRUE))),
                 t = factor(sprintf("t%d", rep(1:4, n / 4))),
                 s = factor(sprintf("s%02d", rep(1:(n / 4), each = 4))))
cr$x <- round(rnorm(n), 6)
eta <- 0.5 + 0.3 * cr$x + rnorm(15, 0, 0.5)[as.integer(cr$g)] + rnorm(6, 0, 0.4)[as.integer(cr$h)]
cr$y <- rpois(n, exp(eta))
e <- as.numeric(unlist(lapply(1:(n / 4), function(i) arima.sim(list(ar = 0.6), 4))))
cr$yg <- round(eta + rnorm(n / 4, 0, 0.3)[as.integer(cr$s)] + 0.5 * e, 6)
write.csv(cr, file.path(out_dir, "sweepg_crossed_sefit.csv"), row.names = FALSE)
cr <- read.csv(file.path(out_dir, "sweepg_crossed_sefit.csv"), stringsAsFactors = TRUE)
nd <- cr[1:6, ]
nd$g <- factor(c("NEW", "NEW", as.character(nd$g[3:6])))
pfit <- glmmTMB(y ~ x + (1 | g) + (1 | h), cr, family = poisson)
p_fit <- predict(pfit, se.fit = TRUE, type = "link")
p_new <- predict(pfit, newdata = nd, se.fit = TRUE, type = "response", allow.new.levels = TRUE)
# one grouping factor (block-diagonal Hessian): a new level's effect has its prior variance
# in se.fit (we had left it out), for the conditional mean and through a structured term
p1fit <- glmmTMB(y ~ x + (1 | g), cr, family = poisson)
p1_new <- predict(p1fit, newdata = nd, se.fit = TRUE, type = "link", allow.new.levels = TRUE)
nd_s <- cr[1:8, ]
nd_s$s <- factor(c(rep("NEW", 4), as.character(nd_s$s[5:8])))
gfit <- glmmTMB(yg ~ x + ar1(0 + t | s) + (1 | h), cr, family = gaussian)
g_new <- predict(gfit, newdata = nd_s, se.fit = TRUE, allow.new.levels = TRUE)
g_fit <- predict(gfit, se.fit = TRUE)
put(list(poisson = c(list(formula = "y ~ x + (1 | g) + (1 | h)"), fit_record(pfit),
                     list(link_fit = I(as.numeric(p_fit$fit[1:12])),
                          link_se = I(as.numeric(p_fit$se.fit[1:12])),
                          new_rows = I(1:6 - 1), new_g = I(as.character(nd$g)),
                          new_response_fit = I(as.numeric(p_new$fit)),
                          new_response_se = I(as.numeric(p_new$se.fit)))),
         poisson_one = c(list(formula = "y ~ x + (1 | g)"), fit_record(p1fit),
                         list(new_link_fit = I(as.numeric(p1_new$fit)),
                              new_link_se = I(as.numeric(p1_new$se.fit)))),
         gaussian = c(list(formula = "yg ~ x + ar1(0 + t | s) + (1 | h)"), fit_record(gfit),
                      list(link_fit = I(as.numeric(g_fit$fit[1:12])),
                           link_se = I(as.numeric(g_fit$se.fit[1:12])),
                           new_rows = I(1:8 - 1), new_s = I(as.character(nd_s$s)),
                           new_fit = I(as.numeric(g_new$fit)),
                           new_se = I(as.numeric(g_new$se.fit))))),
    "sweepg_crossed_sefit")

# 3. lme4 (and glmmTMB) weight the binomial log-density of a cbind response by the prior
#    weights, p log dbinom(k; n, mu); we had the coefficients of p k successes in p n trials
#    (logLik -859.43 for lme4's -1151.50 on this set; the estimates agreed)
suppressPackageStartupMessages(library(lme4))
set.seed(3)
n_g <- 20; per <- 8; n <- n_g * per; gi <- rep(seq_len(n_g), each = per)
bw <- data.frame(g = factor(sprintf("g%02d", gi)), x = round(rnorm(n), 6),
                 trials = sample(3:15, n, TRUE), w = sample(1:3, n, TRUE))
bw$succ <- rbinom(n, bw$trials, plogis(-0.3 + 0.4 * bw$x + rnorm(n_g, 0, 0.6)[gi]))
write.csv(bw, file.path(out_dir, "sweepg_cbind_weights.csv"), row.names = FALSE)
bw <- read.csv(file.path(out_dir, "sweepg_cbind_weights.csv"), stringsAsFactors = TRUE)
f <- cbind(succ, trials - succ) ~ x + (1 | g)
lap <- glmer(f, bw, family = binomial, weights = w)
agq <- glmer(f, bw, family = binomial, weights = w, nAGQ = 7)
tmb <- glmmTMB(f, bw, family = binomial, weights = w)
put(list(formula = "cbind(succ, trials - succ) ~ x + (1 | g)", weights = "w",
         laplace = list(logLik = as.numeric(logLik(lap)), AIC = AIC(lap), beta = named(fixef(lap))),
         agq7 = list(logLik = as.numeric(logLik(agq)), beta = named(fixef(agq))),
         glmmTMB_objective = 2 * tmb$fit$objective),
    "sweepg_cbind_weights")
