# Helpers shared by tools/r/blme_fixtures.R and tools/r/sweep/bayessweep.R (source() it from
# the repository root): blme's fit at the minimum of blme's own objective.

num <- function(x) as.numeric(unname(x))

vcov_se <- function(m) sqrt(diag(as.matrix(vcov(m))))

perturbed <- function(par, lower) {
  out <- par * 1.15 + 0.07
  out[is.finite(lower) & out < lower] <- lower[is.finite(lower) & out < lower] + 0.05
  out
}

# blme's optimizers can stop far from the optimum of blme's own objective: BOBYQA evaluates
# at theta = 0, where the default Wishart prior is infinite, and that value wrecks its
# quadratic model (sleepstudy's default fit stops ~4 deviance units high); bglmer's first
# stage ignores the fixed-effect prior and starts a separated fit at huge coefficients. So
# each case is minimized again on blme's deviance function (devFunOnly = TRUE) -- with the
# Cholesky diagonals on the log scale where the function is infinite at zero -- from several
# starts, by Nelder-Mead then BOBYQA, and refitted by blme from the best point. What is
# recorded is blme's fit at the minimum of blme's objective.
multistart <- function(devfun0, par0, lower, extra_starts) {
  devfun <- function(p) tryCatch(devfun0(p), error = function(e) Inf)
  diag0 <- which(is.finite(lower) & lower == 0)
  test <- par0; test[diag0] <- 0
  logscale <- diag0[rep(!is.finite(devfun(test)), length(diag0))]
  to_par <- function(z) { p <- z; p[logscale] <- exp(z[logscale]); p }
  to_z <- function(p) { z <- p; z[logscale] <- log(pmax(p[logscale], 1e-8)); z }
  zlower <- lower; zlower[logscale] <- -Inf
  g <- function(z) { p <- to_par(z); if (any(p < lower)) return(Inf); v <- devfun(p); if (is.finite(v)) v else 1e10 }
  best <- list(par = par0, value = devfun(par0))
  for (s in c(list(par0), extra_starts)) {
    if (!is.finite(devfun(s))) next
    r1 <- optim(to_z(s), g, method = "Nelder-Mead", control = list(maxit = 20000, reltol = 1e-14))
    r2 <- minqa::bobyqa(r1$par, g, lower = zlower, control = list(rhobeg = 0.05, rhoend = 1e-11, maxfun = 1e5))
    for (r in list(r1, list(par = r2$par, value = r2$fval))) {
      p <- to_par(r$par)
      v <- devfun(p)
      if (is.finite(v) && v < best$value) best <- list(par = p, value = v)
    }
  }
  best
}

refit_call <- function(r_call, start) sub("\\)\\s*$", paste0(", start = ", start, ")"), r_call)
