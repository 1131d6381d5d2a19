# Parity sweep of INFERENCE on glmmTMB-class fits (lane tmbinfer) against glmmTMB 1.1.5:
# Wald and profile confint (random-effect sd / cor rows, dispersion and zi parameters),
# anova of nested fits, logLik / AIC / BIC / df.residual, vcov(full = TRUE), ranef with
# condVar, predict(se.fit, re.form = NA) on new data, simulate shapes.
#
#   Rscript tools/r/sweep/tmbinfer.R --out=/tmp/tmbinfer [--only=id1,id2]
#   python  tools/r/sweep/tmbinfer.py --out /tmp/tmbinfer
#
# Writes OUT/data/ti.csv, OUT/data/ti_new.csv and OUT/tmbinfer.json.
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
out <- opt("out", "/tmp/tmbinfer")
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)

set.seed(20261203)
n_g <- 20; per <- 8; n <- n_g * per
gi <- rep(seq_len(n_g), each = per)
d <- data.frame(g = factor(sprintf("g%02d", gi)))
d$f <- factor(sample(c("a", "b", "c"), n, TRUE))
d$x <- r6(rnorm(n)); d$z <- r6(runif(n, -1, 1))
d$tt <- factor(sprintf("t%d", rep(seq_len(per), n_g)))
b0 <- rnorm(n_g, 0, 0.5)[gi]; b1 <- rnorm(n_g, 0, 0.3)[gi]
bf <- matrix(rnorm(n_g * 3, 0, 0.4), n_g)[cbind(gi, as.integer(d$f))]
ar <- unlist(lapply(seq_len(n_g), function(i) as.numeric(arima.sim(list(ar = 0.6), per)) * 0.4))
eta <- 0.5 + 0.3 * d$x - 0.2 * d$z + b0 + b1 * d$x
mu <- exp(eta)
d$y_pois <- rpois(n, mu * exp(bf))
d$y_pois_ar <- rpois(n, exp(eta + ar))
d$y_nb <- rnbinom(n, mu = mu, size = 2 * exp(0.5 * d$z))
d$y_nb1 <- rnbinom(n, mu = mu * exp(bf), size = mu * exp(bf) / 1.5)
d$trials <- sample(4:15, n, TRUE)
d$succ <- rbinom(n, d$trials, plogis(eta - 0.5))
pr <- plogis(eta - 0.5)
d$y_beta <- r6(pmin(pmax(rbeta(n, pr * 8 * exp(0.4 * d$z), (1 - pr) * 8 * exp(0.4 * d$z)), 1e-4), 1 - 1e-4))
d$y_pos <- r6(rgamma(n, shape = 2 * exp(0.4 * d$z), scale = mu / (2 * exp(0.4 * d$z))))
d$y_tw <- r6(vapply(seq_len(n), function(i) sum(rgamma(rpois(1, mu[i] / 1.2), 1.5, scale = 0.8)), 1))
d$y_zip <- ifelse(runif(n) < plogis(-0.8 + 0.8 * d$z), 0L, rpois(n, mu))
d$y_gauss <- r6(eta + bf + rnorm(n, 0, 0.5 * exp(0.3 * d$z)))
write.csv(d, file.path(out, "data", "ti.csv"), row.names = FALSE)
nd <- data.frame(x = c(-1, 0, 0.5, 1.2), z = c(0.3, -0.5, 0, 0.9),
                 f = factor(c("a", "b", "c", "a"), levels = c("a", "b", "c")),
                 trials = c(5, 10, 8, 12), g = factor("g01", levels = levels(d$g)),
                 tt = factor("t1", levels = levels(d$tt)))
write.csv(nd, file.path(out, "data", "ti_new.csv"), row.names = FALSE)

specs <- list()
S <- function(id, formula, family, zi = "~0", disp = "~1", profile = FALSE, py = formula,
              nested = NULL) {
  specs[[id]] <<- list(id = id, formula = formula, family = family, zi = zi, disp = disp,
                       profile = profile, py = py, nested = nested)
}
S("pois_ri", "y_pois ~ x + (1 | g)", 'poisson()', profile = TRUE, nested = "y_pois ~ 1 + (1 | g)")
S("pois_ar1", "y_pois_ar ~ x + ar1(0 + tt | g)", 'poisson()')
S("nb2_disp", "y_nb ~ x + (1 | g)", 'nbinom2()', disp = "~z", profile = TRUE,
  nested = "y_nb ~ 1 + (1 | g)")
S("nb1_cs", "y_nb1 ~ x + cs(0 + f | g)", 'nbinom1()')
S("binom_us", "cbind(succ, trials - succ) ~ x + (x | g)", 'binomial()', profile = TRUE,
  nested = "cbind(succ, trials - succ) ~ x + (1 | g)")
S("beta_diag", "y_beta ~ x + diag(1 + x | g)", 'beta_family()', disp = "~z")
S("gamma_disp", "y_pos ~ x + (1 | g)", 'Gamma(link = "log")', disp = "~z")
S("tweedie_ri", "y_tw ~ x + (1 | g)", 'tweedie()')
S("zip_z", "y_zip ~ x + (1 | g)", 'poisson()', zi = "~z", profile = TRUE,
  nested = "y_zip ~ x + (1 | g)")
S("pois_rr", "y_pois ~ x + rr(0 + f | g, d = 1)", 'poisson()')
S("gauss_us_disp", "y_gauss ~ x + (x | g)", 'gaussian()', disp = "~z")
S("nb2_us", "y_nb ~ x + us(1 + x | g)", 'nbinom2()')
S("zinb2_zi_re", "y_zip ~ x + (1 | g)", 'nbinom2()', zi = "~(1 | g)")
S("hurdle_tnb2", "y_zip ~ x + (1 | g)", 'truncated_nbinom2()', zi = "~z")
S("zip_ar1", "y_zip ~ x + ar1(0 + tt | g)", 'poisson()', zi = "~1")

res <- list()
for (s in specs) {
  if (!is.null(only) && !(s$id %in% only)) next
  cat(s$id, "\n")
  fam <- eval(parse(text = s$family))
  rec <- tryCatch({
    w <- character(0)
    fit <- withCallingHandlers(
      glmmTMB(as.formula(s$formula), data = d, family = fam, ziformula = as.formula(s$zi),
              dispformula = as.formula(s$disp)),
      warning = function(e) { w <<- c(w, conditionMessage(e)); invokeRestart("muffleWarning") })
    ll <- logLik(fit)
    ci <- confint(fit, method = "wald")
    vf <- vcov(fit, full = TRUE)
    re <- ranef(fit, condVar = TRUE)
    rrz <- lapply(re$zi, function(fr) {
      cv <- attr(fr, "condVar")
      list(levels = rownames(fr), names = colnames(fr), values = unname(as.matrix(fr)),
           condvar = unname(cv))
    })
    rr <- lapply(re$cond, function(fr) {
      cv <- attr(fr, "condVar")
      list(levels = rownames(fr), names = colnames(fr), values = unname(as.matrix(fr)),
           condvar = if (is.list(cv)) lapply(cv, function(a) unname(a)) else unname(cv))
    })
    pl <- predict(fit, newdata = nd, re.form = NA, se.fit = TRUE, type = "link")
    pr <- predict(fit, newdata = nd, re.form = NA, se.fit = TRUE, type = "response")
    sim <- simulate(fit, nsim = 3, seed = 1)
    r <- list(id = s$id, formula = s$formula, py = s$py, family = s$family, zi = s$zi,
              disp = s$disp, warnings = w, pdHess = fit$sdr$pdHess,
              convergence = fit$fit$convergence,
              loglik = as.numeric(ll), df = attr(ll, "df"), nobs = nobs(fit),
              aic = AIC(fit), bic = BIC(fit), df_residual = df.residual(fit),
              fixef = as.list(fixef(fit)$cond), fixef_zi = as.list(fixef(fit)$zi),
              fixef_disp = as.list(fixef(fit)$disp),
              wald_rows = rownames(ci), wald_lower = unname(ci[, 1]), wald_upper = unname(ci[, 2]),
              wald_est = unname(ci[, 3]),
              vcov_full_names = colnames(vf), vcov_full = unname(vf), ranef = rr, ranef_zi = rrz,
              pred_link = unname(pl$fit), pred_link_se = unname(pl$se.fit),
              pred_resp = unname(pr$fit), pred_resp_se = unname(pr$se.fit),
              sim_dim = dim(sim))
    if (s$profile) {
      cp <- tryCatch(confint(fit, method = "profile"), error = function(e) NULL)
      if (!is.null(cp)) {
        r$prof_rows <- rownames(cp); r$prof_lower <- unname(cp[, 1]); r$prof_upper <- unname(cp[, 2])
      }
    }
    if (!is.null(s$nested)) {
      f0 <- if (s$id == "zip_z") glmmTMB(as.formula(s$nested), data = d, family = fam, ziformula = ~1)
            else if (s$id == "nb2_disp") glmmTMB(as.formula(s$formula), data = d, family = fam)
            else glmmTMB(as.formula(s$nested), data = d, family = fam, ziformula = as.formula(s$zi),
                         dispformula = as.formula(s$disp))
      a <- anova(f0, fit)
      r$anova <- list(chisq = a$Chisq[2], df = a$`Chi Df`[2], p = a$`Pr(>Chisq)`[2],
                      loglik = a$logLik, aic = a$AIC, bic = a$BIC, npar = a$Df)
    }
    r
  }, error = function(e) list(id = s$id, error = conditionMessage(e)))
  res[[s$id]] <- rec
}
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, null = "null", na = "null"),
           file.path(out, "tmbinfer.json"))
