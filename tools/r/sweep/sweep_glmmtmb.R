# Parity sweep of mm.glmmtmb against glmmTMB 1.1.5 on a broad grid of variants (families x
# links, zero-inflation with and without random effects and `~.`, dispersion formulas,
# offsets, weights, REML, factor-valued random slopes, nested and interaction grouping
# factors, odd column names, shifted/scaled predictors, missing values, covariance
# structures). Not a fixture script: it writes one JSON of R results, which
# tools/r/sweep/sweep.py compares with our fits (fixtures for the bugs it finds are made
# separately and committed under tests/fixtures/).
#
#   Rscript tools/r/sweep/sweep_glmmtmb.R --out=/tmp/sweep [--only=id1,id2]
#
# Data are simulated here with fixed seeds and written to OUT/data/*.csv (factor levels
# sorted, so R's and pandas' level orders agree); the fits read the CSVs back.
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
out <- opt("out", "/tmp/sweep")
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)

# ---------------------------------------------------------------- data
set.seed(20261201)
n_g <- 24; per <- 12; n <- n_g * per
g <- factor(sprintf("g%02d", rep(seq_len(n_g), each = per)))
h <- factor(sprintf("h%d", rep(rep(1:3, each = 4), n_g)))        # nested in g: g/h
f <- factor(sample(c("a", "b", "c"), n, TRUE))
x <- r6(rnorm(n)); z <- r6(runif(n, -1, 1))
b_g <- rnorm(n_g, 0, 0.6)[as.integer(g)]
b_gh <- rnorm(n_g * 3, 0, 0.3)[(as.integer(g) - 1) * 3 + as.integer(h)]
b_f <- matrix(rnorm(n_g * 3, 0, 0.4), n_g)[cbind(as.integer(g), as.integer(f))]
eta <- 0.5 + 0.4 * x + b_g + b_gh + b_f
mu <- exp(eta)
tt <- rep(seq_len(per), n_g)
d <- data.frame(g = g, h = h, f = f, x = x, z = z, tt = tt)
d$xbig <- r6(x * 1000 + 50000)
d$offs <- r6(log(runif(n, 0.5, 2)))
d$w <- sample(1:4, n, TRUE)
d$y_gauss <- r6(eta + rnorm(n, 0, exp(0.3 * z) * 0.5))
d$y_pos <- r6(rgamma(n, shape = 3, scale = mu / 3))
d$y_pois <- rpois(n, mu)
d$y_pois_off <- rpois(n, mu * exp(d$offs))
d$y_nb <- rnbinom(n, mu = mu, size = 1.5 * exp(0.5 * z))
zi_p <- plogis(-0.8 + 0.8 * z + rnorm(n_g, 0, 0.5)[as.integer(g)])
d$y_zip <- ifelse(runif(n) < zi_p, 0L, rpois(n, mu))
d$y_zinb <- ifelse(runif(n) < zi_p, 0L, rnbinom(n, mu = mu, size = 2))
rtr <- function(m, draw) { repeat { k <- draw(m); if (k > 0) return(k) } }
d$y_tpois <- vapply(mu, function(m) rtr(m, function(m) rpois(1, m)), 1)
d$y_tnb <- vapply(mu, function(m) rtr(m, function(m) rnbinom(1, mu = m, size = 2)), 1)
d$y_hurdle <- ifelse(runif(n) < zi_p, 0L, d$y_tnb)
d$trials <- sample(5:15, n, TRUE)
pr <- plogis(eta - 0.5)
d$succ <- rbinom(n, d$trials, pr)
d$prop <- r6(d$succ / d$trials)
d$y_bin <- rbinom(n, 1, pr)
d$succ_bb <- rbinom(n, d$trials, rbeta(n, pr * 5, (1 - pr) * 5))
d$y_beta <- r6(pmin(pmax(rbeta(n, pr * 8, (1 - pr) * 8), 1e-4), 1 - 1e-4))
d$y_beta0 <- ifelse(runif(n) < zi_p, 0, d$y_beta)
d$y_t <- r6(eta + rt(n, df = 4) * 0.5)
d$y_tw <- r6(vapply(seq_len(n), function(i) sum(rgamma(rpois(1, mu[i] / 1.5), 2, scale = 0.75)), 1))
d$y_zigamma <- ifelse(runif(n) < zi_p, 0, d$y_pos)
d$y_under <- pmax(0, round(mu + rnorm(n, 0, 0.4)))
# odd names: a dot, a space, unicode
d[["x.dot"]] <- r6(x + rnorm(n, 0, 0.1)); d[["x space"]] <- z; d[["grö"]] <- g
# missing values in a predictor and the response
d$x_na <- x; d$x_na[sample(n, 15)] <- NA
d$y_na <- d$y_pois; d$y_na[sample(n, 10)] <- NA
# an observation factor for structures
d$ftt <- factor(sprintf("t%02d", d$tt))
d$obs <- factor(sprintf("o%03d", seq_len(n)))
# spatial coordinates per observation (for exp/gau/mat one group)
d$cx <- r6(runif(n, 0, 10)); d$cy <- r6(runif(n, 0, 10))
d$one <- factor("a")
write.csv(d, file.path(out, "data", "sw.csv"), row.names = FALSE, fileEncoding = "UTF-8")
d <- read.csv(file.path(out, "data", "sw.csv"), check.names = FALSE, fileEncoding = "UTF-8",
              stringsAsFactors = TRUE)
d$ttpos <- numFactor(d$tt)
d$sp <- numFactor(d$cx, d$cy)
d$spg <- factor(rep(1, nrow(d)))
# small spatial set (one group, 60 sites) for the spatial structures
ds <- d[1:60, ]

# ---------------------------------------------------------------- specs
specs <- list()
S <- function(id, formula, family, zi = "~0", disp = "~1", REML = FALSE, weights = NULL,
              offset = NULL, data = "sw", py = formula, start = NULL, note = "") {
  specs[[id]] <<- list(id = id, formula = formula, family = family, zi = zi, disp = disp,
                       REML = REML, weights = weights, offset = offset, data = data,
                       py = py, start = start, note = note)
}
G <- "(1 | g)"
# families x links
S("gauss_log", "y_pos ~ x + (1 | g)", 'gaussian(link = "log")')
S("gauss_inverse", "y_pos ~ x + (1 | g)", 'gaussian(link = "inverse")')
S("gamma_inverse", "y_pos ~ x + (1 | g)", 'Gamma(link = "inverse")', start = "list(beta = c(0.5, -0.1))")
S("gamma_log_disp", "y_pos ~ x + f + (1 | g)", 'Gamma(link = "log")', disp = "~z")
S("gamma_identity", "y_pos ~ x + (1 | g)", 'Gamma(link = "identity")', start = "list(beta = c(2, 0.5))")
for (lk in c("logit", "probit", "cloglog")) {
  S(paste0("binom_cbind_", lk), "cbind(succ, trials - succ) ~ x + f + (1 | g)", sprintf('binomial(link = "%s")', lk))
  S(paste0("binom_prop_", lk), "prop ~ x + f + (1 | g)", sprintf('binomial(link = "%s")', lk), weights = "trials")
  S(paste0("binary_", lk), "y_bin ~ x + (1 | g)", sprintf('binomial(link = "%s")', lk))
}
S("pois_identity", "y_pois ~ x + (1 | g)", 'poisson(link = "identity")', start = "list(beta = c(2, 0.5))")
S("pois_sqrt", "y_pois ~ x + (1 | g)", 'poisson(link = "sqrt")')
S("pois_offset_formula", "y_pois_off ~ x + offset(offs) + (1 | g)", 'poisson(link = "log")')
S("pois_offset_arg", "y_pois_off ~ x + (1 | g)", 'poisson(link = "log")', offset = "offs")
S("pois_weights", "y_pois ~ x + (1 | g)", 'poisson(link = "log")', weights = "w")
S("nb1", "y_nb ~ x + (1 | g)", 'nbinom1(link = "log")')
S("nb2", "y_nb ~ x + (1 | g)", 'nbinom2(link = "log")')
S("nb2_disp_z", "y_nb ~ x + (1 | g)", 'nbinom2(link = "log")', disp = "~z")
S("nb1_disp_f", "y_nb ~ x + (1 | g)", 'nbinom1(link = "log")', disp = "~f")
S("genpois", "y_nb ~ x + (1 | g)", 'genpois(link = "log")')
S("genpois_under", "y_under ~ x + (1 | g)", 'genpois(link = "log")')
S("tpois", "y_tpois ~ x + (1 | g)", 'truncated_poisson(link = "log")')
S("tnb1", "y_tnb ~ x + (1 | g)", 'truncated_nbinom1(link = "log")')
S("tnb2", "y_tnb ~ x + (1 | g)", 'truncated_nbinom2(link = "log")')
S("tgenpois", "y_tnb ~ x + (1 | g)", 'truncated_genpois(link = "log")')
S("hurdle_nb2_zidot", "y_hurdle ~ x + (1 | g)", 'truncated_nbinom2(link = "log")', zi = "~.")
S("hurdle_pois_zi_re", "y_hurdle ~ x + (1 | g)", 'truncated_poisson(link = "log")', zi = "~z + (1 | g)")
S("beta_logit", "y_beta ~ x + (1 | g)", 'beta_family(link = "logit")')
S("beta_probit_disp", "y_beta ~ x + (1 | g)", 'beta_family(link = "probit")', disp = "~z")
S("beta_zi", "y_beta0 ~ x + (1 | g)", 'beta_family(link = "logit")', zi = "~z")
S("bb_cbind", "cbind(succ_bb, trials - succ_bb) ~ x + (1 | g)", 'betabinomial(link = "logit")')
S("bb_cloglog_disp", "cbind(succ_bb, trials - succ_bb) ~ x + (1 | g)", 'betabinomial(link = "cloglog")', disp = "~z")
S("tweedie", "y_tw ~ x + (1 | g)", 'tweedie(link = "log")')
S("tweedie_disp", "y_tw ~ x + (1 | g)", 'tweedie(link = "log")', disp = "~z")
S("t_family", "y_t ~ x + (1 | g)", 't_family(link = "identity")')
S("t_disp", "y_t ~ x + (1 | g)", 't_family(link = "identity")', disp = "~z")
S("zigamma_log", "y_zigamma ~ x + (1 | g)", 'ziGamma(link = "log")', zi = "~z")
S("zigamma_log_zidot", "y_zigamma ~ x + (1 | g)", 'ziGamma(link = "log")', zi = "~.")
# zero inflation
S("zip_1", "y_zip ~ x + (1 | g)", 'poisson(link = "log")', zi = "~1")
S("zip_dot", "y_zip ~ x + (1 | g)", 'poisson(link = "log")', zi = "~.")
S("zip_re", "y_zip ~ x + (1 | g)", 'poisson(link = "log")', zi = "~z + (1 | g)")
S("zinb2_re_disp", "y_zinb ~ x + (1 | g)", 'nbinom2(link = "log")', zi = "~z + (1 | g)", disp = "~z")
S("zinb1_1", "y_zinb ~ x + (1 | g)", 'nbinom1(link = "log")', zi = "~1")
S("zigenpois", "y_zinb ~ x + (1 | g)", 'genpois(link = "log")', zi = "~z")
S("zip_offset", "y_zip ~ x + offset(offs) + (1 | g)", 'poisson(link = "log")', zi = "~z")
# gaussian variants
S("gauss_disp_z", "y_gauss ~ x + (1 | g)", 'gaussian(link = "identity")', disp = "~z")
S("gauss_disp_z_reml", "y_gauss ~ x + (1 | g)", 'gaussian(link = "identity")', disp = "~z", REML = TRUE)
S("gauss_reml_slope", "y_gauss ~ x + (x | g)", 'gaussian(link = "identity")', REML = TRUE)
S("gauss_factor_slope", "y_gauss ~ x + f + (f | g)", 'gaussian(link = "identity")')
S("gauss_factor_slope0", "y_gauss ~ x + f + (0 + f | g)", 'gaussian(link = "identity")')
S("gauss_nested", "y_gauss ~ x + (1 | g/h)", 'gaussian(link = "identity")')
S("gauss_interaction", "y_gauss ~ x + (1 | g) + (1 | g:f)", 'gaussian(link = "identity")')
S("gauss_weights", "y_gauss ~ x + (1 | g)", 'gaussian(link = "identity")', weights = "w")
S("gauss_shift", "y_gauss ~ xbig + (1 | g)", 'gaussian(link = "identity")')
S("gauss_scale_fn", "y_gauss ~ scale(xbig) + (1 | g)", 'gaussian(link = "identity")')
S("gauss_poly", "y_gauss ~ x + I(x^2) + log(trials) + (1 | g)", 'gaussian(link = "identity")', py = "y_gauss ~ x + I(x**2) + log(trials) + (1 | g)")
S("gauss_names", "y_gauss ~ x.dot + `x space` + (1 | `grö`)", 'gaussian(link = "identity")')
S("gauss_na", "y_gauss ~ x_na + (1 | g)", 'gaussian(link = "identity")')
S("pois_na_resp", "y_na ~ x + (1 | g)", 'poisson(link = "log")')
S("pois_nested", "y_pois ~ x + (1 | g/h)", 'poisson(link = "log")')
S("pois_factor_slope", "y_pois ~ x + (0 + f | g)", 'poisson(link = "log")')
S("binom_interaction", "cbind(succ, trials - succ) ~ x + (1 | g:f)", 'binomial(link = "logit")')
S("nb2_zi_nested", "y_zinb ~ x + (1 | g/h)", 'nbinom2(link = "log")', zi = "~1")
S("gauss_nore_disp", "y_gauss ~ x + f", 'gaussian(link = "identity")', disp = "~z")
S("pois_nore_zi", "y_zip ~ x", 'poisson(link = "log")', zi = "~z")
# covariance structures (glmmTMB 1.1.5 has these ten)
S("cs_gauss", "y_gauss ~ x + cs(0 + f | g)", 'gaussian(link = "identity")')
S("diag_pois", "y_pois ~ x + diag(1 + x | g)", 'poisson(link = "log")')
S("us_nb2", "y_nb ~ x + us(1 + x | g)", 'nbinom2(link = "log")')
S("ar1_gauss", "y_gauss ~ x + ar1(0 + ftt | g)", 'gaussian(link = "identity")')
S("ar1_pois", "y_pois ~ x + (1 | g) + ar1(0 + ftt | g)", 'poisson(link = "log")')
S("toep_gauss_reml", "y_gauss ~ x + toep(0 + f | g)", 'gaussian(link = "identity")', REML = TRUE)
S("ou_pois", "y_pois ~ x + ou(0 + ttpos | g)", 'poisson(link = "log")', py = "y_pois ~ x + ou(0 + pos(tt) | g)")
S("exp_gauss", "y_gauss ~ x + exp(0 + sp | spg)", 'gaussian(link = "identity")', data = "sw60", py = "y_gauss ~ x + exp(0 + pos(cx, cy) | spg)")
S("gau_pois", "y_pois ~ x + gau(0 + sp | spg)", 'poisson(link = "log")', data = "sw60", py = "y_pois ~ x + gau(0 + pos(cx, cy) | spg)")
S("mat_gauss", "y_gauss ~ x + mat(0 + sp | spg)", 'gaussian(link = "identity")', data = "sw60", py = "y_gauss ~ x + mat(0 + pos(cx, cy) | spg)")
S("rr_gauss", "y_gauss ~ x + rr(0 + f | g, d = 1)", 'gaussian(link = "identity")')
S("ar1_zi", "y_zip ~ x + ar1(0 + ftt | g)", 'poisson(link = "log")', zi = "~1")
S("cs_binom_slope", "cbind(succ, trials - succ) ~ x + cs(0 + f | g)", 'binomial(link = "logit")')

# --- batch 2: bundled data sets (R's level orders from factor_levels.json)
bundled_dir <- file.path("src", "mixedmodels", "datasets", "data")
blev <- fromJSON(file.path(bundled_dir, "factor_levels.json"))
bundled <- function(name) {
  x <- read.csv(file.path(bundled_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  for (col in names(blev[[name]])) x[[col]] <- factor(as.character(x[[col]]), levels = blev[[name]][[col]])
  x
}
B <- list(Salamanders = bundled("Salamanders"), Owls = bundled("Owls"),
          grouseticks = bundled("grouseticks"), Orthodont = bundled("Orthodont"),
          cake = bundled("cake"), Contraception = bundled("Contraception"),
          sleepstudy = bundled("sleepstudy"), cbpp = bundled("cbpp"))
B$Orthodont$fage <- factor(B$Orthodont$age)
B$cbpp$obs <- factor(seq_len(nrow(B$cbpp)))
S("sal_zinb1_re_zi", "count ~ spp + mined + (1 | site)", 'nbinom1(link = "log")', zi = "~mined + (1 | site)", data = "Salamanders")
S("sal_tnb1_zidot", "count ~ spp + mined + (1 | site)", 'truncated_nbinom1(link = "log")', zi = "~.", data = "Salamanders")
S("sal_zigenpois", "count ~ mined + cover + (1 | site)", 'genpois(link = "log")', zi = "~mined", data = "Salamanders")
S("sal_pois_disp_err", "count ~ spp + cover + (1 | site)", 'poisson(link = "log")', data = "Salamanders")
S("owls_zinb2_re_zi_disp", "SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)", 'nbinom2(link = "log")', zi = "~FoodTreatment + (1 | Nest)", disp = "~SexParent", data = "Owls")
S("owls_nb1_slope", "SiblingNegotiation ~ FoodTreatment + offset(logBroodSize) + (FoodTreatment | Nest)", 'nbinom1(link = "log")', data = "Owls")
S("grouse_nested", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", 'poisson(link = "log")', data = "grouseticks")
S("grouse_nb2_zi", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", 'nbinom2(link = "log")', zi = "~YEAR", data = "grouseticks")
S("orth_ar1_disp0", "distance ~ age * Sex + ar1(0 + fage | Subject)", 'gaussian(link = "identity")', disp = "~0", data = "Orthodont")
S("orth_t_disp", "distance ~ age + Sex + (1 | Subject)", 't_family(link = "identity")', disp = "~Sex", data = "Orthodont")
S("orth_cs_reml", "distance ~ age + Sex + cs(0 + fage | Subject)", 'gaussian(link = "identity")', REML = TRUE, data = "Orthodont")
S("cake_gamma_nested", "angle ~ recipe + temp + (1 | replicate/recipe)", 'Gamma(link = "log")', data = "cake")
S("cake_lognormal_like", "log(angle) ~ recipe * temp + (1 | replicate)", 'gaussian(link = "identity")', REML = TRUE, data = "cake")
S("contra_inter", "use ~ age + urban + livch + (1 | district:urban)", 'binomial(link = "probit")', data = "Contraception")
S("contra_diag", "use ~ age + urban + diag(urban | district)", 'binomial(link = "logit")', data = "Contraception")
S("sleep_diag", "Reaction ~ Days + diag(Days | Subject)", 'gaussian(link = "identity")', data = "sleepstudy")
S("sleep_disp_days_reml", "Reaction ~ Days + (1 | Subject)", 'gaussian(link = "identity")', disp = "~Days", REML = TRUE, data = "sleepstudy")
S("sleep_gamma_slope", "Reaction ~ Days + (Days | Subject)", 'Gamma(link = "log")', data = "sleepstudy")
S("cbpp_bb_disp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", 'betabinomial(link = "logit")', disp = "~period", data = "cbpp")
S("cbpp_obs_re", "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs)", 'binomial(link = "logit")', data = "cbpp")

# ---------------------------------------------------------------- fitting
capture <- function(fun) {
  w <- character()
  v <- withCallingHandlers(tryCatch(fun(), error = function(e) e),
                           warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") })
  list(value = v, warnings = unique(w))
}
num <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }
named <- function(x) if (length(x) == 0) NULL else as.list(setNames(num(x), names(x)))
sdcomp <- function(vc) {
  if (is.null(vc) || length(vc) == 0) return(list())
  lapply(names(vc), function(gr) {
    v <- vc[[gr]]
    list(group = gr, terms = I(colnames(v)), sd = I(num(attr(v, "stddev"))),
         cov = lapply(seq_len(nrow(v)), function(i) I(num(v[i, ]))))
  })
}
results <- list()
for (s in specs) {
  if (!is.null(only) && !(s$id %in% only)) next
  data <- if (s$data == "sw60") ds else if (s$data == "sw") d else B[[s$data]]
  a <- list(formula = as.formula(s$formula), data = data, family = eval(parse(text = s$family)),
            ziformula = as.formula(s$zi), dispformula = as.formula(s$disp), REML = s$REML)
  if (!is.null(s$weights)) a$weights <- data[[s$weights]]
  if (!is.null(s$offset)) a$offset <- data[[s$offset]]
  if (!is.null(s$start)) a$start <- eval(parse(text = s$start))
  t0 <- proc.time()[["elapsed"]]
  r <- capture(function() do.call(glmmTMB, a))
  secs <- proc.time()[["elapsed"]] - t0
  fam <- eval(parse(text = s$family))
  rec <- list(id = s$id, formula = s$py, start = s$start, family = sub("_family$", "", fam$family),
              link = fam$link, ziformula = s$zi, dispformula = s$disp, REML = s$REML,
              weights = s$weights, offset = s$offset, data = s$data, seconds = secs,
              warnings = I(r$warnings))
  if (rec$family == "beta") rec$family <- "beta"
  if (inherits(r$value, "error")) {
    rec$error <- conditionMessage(r$value)
  } else {
    fit <- r$value
    vc <- tryCatch(vcov(fit), error = function(e) NULL)
    # vcov() prefixes the zi and disp names ("zi~x", "d~x"): strip them to fixef()'s
    se <- function(comp) if (is.null(vc) || is.null(vc[[comp]])) NULL else {
      v <- sqrt(diag(as.matrix(vc[[comp]])))
      names(v) <- sub("^(zi|d)~", "", names(v))
      named(v)
    }
    fe <- fixef(fit)
    rec$objective <- 2 * fit$fit$objective   # -2 logLik (REML criterion); logLik() is NA without a pd Hessian
    rec$convergence <- fit$fit$convergence
    rec$pdHess <- isTRUE(fit$sdr$pdHess)
    rec$beta <- named(fe$cond); rec$beta_zi <- named(fe$zi); rec$beta_disp <- named(fe$disp)
    rec$se <- se("cond"); rec$se_zi <- se("zi"); rec$se_disp <- se("disp")
    vcr <- VarCorr(fit)
    rec$varcorr <- list(cond = sdcomp(vcr$cond), zi = sdcomp(vcr$zi))
    rec$sigma <- num(sigma(fit))
    rec$par <- list(names = I(names(fit$fit$par)), values = I(num(fit$fit$par)))
    rec$nobs <- nobs(fit)
  }
  results[[s$id]] <- rec
  cat(sprintf("%-22s %6.2fs %s\n", s$id, secs, if (is.null(rec$error)) sprintf("%.4f", rec$objective) else paste("ERROR", rec$error)))
}
write_json(results, file.path(out, "glmmtmb_sweep.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
