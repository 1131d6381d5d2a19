# Independent check of tools/r/GLMMTMB_CONVENTIONS.md: for every family, fit a model without
# random effects (so glmmTMB's objective is the exact log-likelihood, no Laplace step), then
# recompute -2 log-likelihood by hand from mu = linkinv(eta) and phi = exp(X_disp beta_disp)
# with the densities the conventions file states, and compare. Run from the repository root
# after tools/r/glmmtmb_fixtures.R (it reads the simulated CSVs):
#
#   Rscript tools/r/check_conventions.R                                   # glmmTMB 1.1.5
#   Rscript tools/r/check_conventions.R --lib=/work/rlib_glmmtmb_new      # a newer glmmTMB
#
# Prints one line per family with the absolute difference; stops if any exceeds tol.
args <- commandArgs(trailingOnly = TRUE)
lib <- sub("^--lib=", "", grep("^--lib=", args, value = TRUE))
if (length(lib)) .libPaths(c(lib, .libPaths()))
suppressPackageStartupMessages(library(glmmTMB))
v <- packageVersion("glmmTMB")
tol <- 1e-6
dd <- file.path("tests", "fixtures", "glmmtmb", "data")
rd <- function(name) read.csv(file.path(dd, paste0(name, ".csv")))
bundled <- function(name) read.csv(file.path("src", "mixedmodels", "datasets", "data",
                                             paste0(name, ".csv")))

# pieces of a fit: y, mu (untruncated mean), phi, zero-inflation probability, psi
parts <- function(fit, data, disp = ~1) {
  fam <- family(fit)
  eta <- predict(fit, type = "link")
  Xd <- model.matrix(disp, data)
  bd <- fixef(fit)$disp
  zi <- if (length(fixef(fit)$zi)) predict(fit, type = "zprob") else rep(0, nrow(data))
  psi <- fit$fit$par[names(fit$fit$par) == "psi"]
  list(mu = fam$linkinv(eta), phi = if (length(bd)) exp(drop(Xd %*% bd)) else NULL,
       pz = zi, psi = psi)
}

# mean-parameterized Conway-Maxwell-Poisson (Huang 2017): find lambda with E[Y] = mu
dcompois_mean <- function(y, mu, nu, ymax = 400) {
  k <- 0:ymax
  nu <- rep_len(nu, length(y))
  vapply(seq_along(y), function(i) {
    lz <- function(loglam) k * loglam - nu[i] * lgamma(k + 1)
    mean_at <- function(loglam) { w <- lz(loglam); w <- exp(w - max(w)); sum(k * w) / sum(w) }
    loglam <- uniroot(function(l) mean_at(l) - mu[i], c(-50, 50), tol = 1e-13)$root
    w <- lz(loglam)
    (y[i] * loglam - nu[i] * lgamma(y[i] + 1)) - (max(w) + log(sum(exp(w - max(w)))))
  }, 0)
}
# Tweedie 1 < p < 2 as compound Poisson-gamma, by its series
dtweedie_log <- function(y, mu, phi, p, jmax = 400) {
  lam <- mu^(2 - p) / (phi * (2 - p)); alpha <- (2 - p) / (p - 1); gam <- phi * (p - 1) * mu^(p - 1)
  vapply(seq_along(y), function(i) {
    if (y[i] == 0) return(-lam[i])
    j <- 1:jmax
    lt <- dpois(j, lam[i], log = TRUE) + dgamma(y[i], shape = j * alpha, scale = gam[i], log = TRUE)
    max(lt) + log(sum(exp(lt - max(lt))))
  }, 0)
}
dgenpois_log <- function(y, mu, phi) {
  th <- mu / sqrt(phi); la <- 1 - 1 / sqrt(phi)
  log(th) + (y - 1) * log(th + la * y) - th - la * y - lgamma(y + 1)
}
# add zero inflation / hurdle: hurdle = TRUE means f_cond(0) is replaced by 0
with_zi <- function(ll, y, pz, hurdle = FALSE) {
  f0 <- if (hurdle) 0 else exp(ll)
  ifelse(y == 0, log(pz + (1 - pz) * f0), log(1 - pz) + ll)
}
trunc <- function(ll, logp0) ll - log1p(-exp(logp0))

checks <- list()
check <- function(label, fit, manual_ll) {
  d <- abs(2 * fit$fit$objective - (-2 * sum(manual_ll)))
  checks[[label]] <<- d
  cat(sprintf("%-34s glmmTMB %14.8f  by hand %14.8f  |diff| %.2e\n", label,
              2 * fit$fit$objective, -2 * sum(manual_ll), d))
}

g <- rd("sim_gauss")
m <- glmmTMB(y ~ x, dispformula = ~f, data = g)
p <- parts(m, g, ~f)
sd_g <- if (v < "1.1.9") sqrt(p$phi) else p$phi
check(if (v < "1.1.9") "gaussian, phi = sigma^2" else "gaussian, phi = sigma", m, dnorm(g$y, p$mu, sd_g, log = TRUE))
m <- glmmTMB(y_w ~ x, weights = w, data = g)
p <- parts(m, g); sd_g <- if (v < "1.1.9") sqrt(p$phi) else p$phi
check("gaussian weights multiply loglik", m, g$w * dnorm(g$y_w, p$mu, sd_g, log = TRUE))

b <- rd("sim_betabinom")
m <- glmmTMB(cbind(succ, n_trials - succ) ~ x, data = b, family = betabinomial())
p <- parts(m, b)
check("betabinomial, phi = precision", m,
      lchoose(b$n_trials, b$succ) + lbeta(b$succ + p$mu * p$phi, b$n_trials - b$succ +
        (1 - p$mu) * p$phi) - lbeta(p$mu * p$phi, (1 - p$mu) * p$phi))
m <- glmmTMB(prop ~ x, weights = n_trials, data = b, family = binomial())
p <- parts(m, b)
check("binomial proportion, weights=trials", m, dbinom(b$succ, b$n_trials, p$mu, log = TRUE))

cnt <- rd("sim_counts")
m <- glmmTMB(y_under ~ x, data = cnt, family = genpois())
p <- parts(m, cnt)
check("genpois under, phi = Var/mean", m, dgenpois_log(cnt$y_under, p$mu, p$phi))
m <- glmmTMB(y_over ~ x, data = cnt, family = genpois())
p <- parts(m, cnt)
check("genpois over", m, dgenpois_log(cnt$y_over, p$mu, p$phi))
m <- glmmTMB(y_under ~ x, data = cnt, family = compois())
p <- parts(m, cnt)
check("compois, phi = 1/nu, mean mu", m, dcompois_mean(cnt$y_under, p$mu, 1 / p$phi))
m <- glmmTMB(y_over ~ x, data = cnt, family = nbinom1())
p <- parts(m, cnt)
check("nbinom1, Var = mu(1+phi)", m, dnbinom(cnt$y_over, size = p$mu / p$phi, mu = p$mu, log = TRUE))
m <- glmmTMB(y_over ~ x, dispformula = ~x, data = cnt, family = nbinom2())
p <- parts(m, cnt, ~x)
check("nbinom2, phi = size (disp ~x)", m, dnbinom(cnt$y_over, size = p$phi, mu = p$mu, log = TRUE))

tr <- rd("sim_trunc")
m <- glmmTMB(y_tpois ~ x, data = tr, family = truncated_poisson())
p <- parts(m, tr)
check("truncated_poisson", m, trunc(dpois(tr$y_tpois, p$mu, log = TRUE), -p$mu))
m <- glmmTMB(y.tnb ~ x, data = tr, family = truncated_nbinom2())
p <- parts(m, tr)
check("truncated_nbinom2", m, trunc(dnbinom(tr$y.tnb, size = p$phi, mu = p$mu, log = TRUE),
                                    dnbinom(0, size = p$phi, mu = p$mu, log = TRUE)))
m <- glmmTMB(y.tnb ~ x, data = tr, family = truncated_nbinom1())
p <- parts(m, tr)
check("truncated_nbinom1", m, trunc(dnbinom(tr$y.tnb, size = p$mu / p$phi, mu = p$mu, log = TRUE),
                                    dnbinom(0, size = p$mu / p$phi, mu = p$mu, log = TRUE)))
m <- glmmTMB(y.tnb ~ x, data = tr, family = truncated_genpois())
p <- parts(m, tr)
check("truncated_genpois", m, trunc(dgenpois_log(tr$y.tnb, p$mu, p$phi), -p$mu / sqrt(p$phi)))
m <- glmmTMB(y_hurdle ~ x, ziformula = ~x, data = tr, family = truncated_nbinom2())
p <- parts(m, tr)
ll <- trunc(dnbinom(tr$y_hurdle, size = p$phi, mu = p$mu, log = TRUE),
            dnbinom(0, size = p$phi, mu = p$mu, log = TRUE))
check("hurdle truncated_nbinom2", m, with_zi(ll, tr$y_hurdle, p$pz, hurdle = TRUE))

gs <- bundled("gammasim")
m <- glmmTMB(y ~ x, dispformula = ~x, data = gs, family = Gamma(link = "log"))
p <- parts(m, gs, ~x)
check("Gamma, phi = shape (disp ~x)", m, dgamma(gs$y, shape = p$phi, scale = p$mu / p$phi, log = TRUE))
zg <- rd("sim_zigamma")
m <- glmmTMB(y ~ x, ziformula = ~x, data = zg, family = ziGamma(link = "log"))
p <- parts(m, zg)
check("ziGamma hurdle", m, with_zi(dgamma(pmax(zg$y, 1e-300), shape = p$phi, scale = p$mu / p$phi,
                                          log = TRUE), zg$y, p$pz, hurdle = TRUE))

be <- rd("sim_beta")
m <- glmmTMB(y ~ x.1, dispformula = ~z_d, data = be, family = beta_family())
p <- parts(m, be, ~z_d)
check("beta, phi = precision (disp ~z_d)", m, dbeta(be$y, p$mu * p$phi, (1 - p$mu) * p$phi, log = TRUE))

tw <- rd("sim_tweedie")
m <- glmmTMB(y ~ x, data = tw, family = tweedie())
p <- parts(m, tw)
check("tweedie, p = 1 + plogis(psi)", m, dtweedie_log(tw$y, p$mu, p$phi, 1 + plogis(p$psi)))

tt <- rd("sim_t")
m <- glmmTMB(y ~ x, data = tt, family = t_family())
p <- parts(m, tt)
check("t, phi = scale, df = exp(psi)", m, dt((tt$y - p$mu) / p$phi, exp(p$psi), log = TRUE) - log(p$phi))

zr <- rd("sim_zi_re")
m <- glmmTMB(y ~ x, ziformula = ~x, data = zr, family = poisson())
p <- parts(m, zr)
check("zero-inflated poisson", m, with_zi(dpois(zr$y, p$mu, log = TRUE), zr$y, p$pz))

bin <- rd("sim_binary")
m <- glmmTMB(y ~ x1 + x2, weights = w, data = bin, family = binomial(link = "cloglog"))
p <- parts(m, bin)
check("binary cloglog with weights", m, bin$w * dbinom(bin$y, 1, p$mu, log = TRUE))

if (v >= "1.1.10") {
  ln <- rd("sim_lognormal")
  m <- glmmTMB(y ~ x, data = ln, family = lognormal())
  p <- parts(m, ln)
  s2 <- log1p((p$phi / p$mu)^2)
  check("lognormal, phi = SD on data scale", m, dlnorm(ln$y, log(p$mu) - s2 / 2, sqrt(s2), log = TRUE))
  nb <- rd("sim_nb12")
  m <- glmmTMB(y ~ x, data = nb, family = nbinom12())
  p <- parts(m, nb)
  check("nbinom12, Var = mu(1+phi+mu/exp(psi))", m,
        dnbinom(nb$y, size = p$mu / (p$phi + p$mu / exp(p$psi)), mu = p$mu, log = TRUE))
}

worst <- max(unlist(checks))
cat(sprintf("glmmTMB %s: %d checks, largest |diff| %.2e (tol %.0e)\n", v, length(checks), worst, tol))
if (worst > tol) stop("a family's likelihood does not match GLMMTMB_CONVENTIONS.md")
