# Parity sweep, batch 3 (lane sweepg): mm.glmmtmb (and structured G-side terms in mm.lmer /
# mm.glmer) against glmmTMB 1.1.5 on variants that batches 1-2 (sweep_glmmtmb.R) do not
# cover: new seeds and sizes (n = 60, 300, 3000), family x link x component pairings not
# yet tried, two structured terms at once, structures on irregular times and shared sites,
# a 4 x 4 unstructured term, random effects in the zero-inflation model only, offsets of a
# transformed column, numeric-looking factor levels, character columns, missing values in
# both the conditional and the zi predictors, singleton groups, an observation-level term.
#
#   Rscript tools/r/sweep/sweepg_glmmtmb.R --out=/tmp/sweepg [--only=id1,id2]
#   python  tools/r/sweep/sweepg.py        --out /tmp/sweepg
#
# Writes OUT/data/sg_{m,s,l}.csv and OUT/glmmtmb_sweep.json (same record layout as batch 1,
# so sweep.py's comparison is reused).
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
out <- opt("out", "/tmp/sweepg")
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)

# ---------------------------------------------------------------- data
# one generator for the three sizes: n_g groups of `per` rows; `per` = 10 shared sites
# (coordinates) and 10 of 15 irregular times per group (the n = 3000 set repeats them)
simulate_set <- function(seed, n_g, per, n_h) {
  set.seed(seed)
  n <- n_g * per
  gi <- rep(seq_len(n_g), each = per)
  g <- factor(sprintf("g%03d", gi))
  h <- factor(sprintf("h%02d", sample(seq_len(n_h), n, TRUE)))     # crossed with g
  f <- factor(sample(c("a", "b", "c"), n, TRUE))
  f4 <- factor(sample(c("p", "q", "r", "s"), n, TRUE))
  x <- r6(rnorm(n)); z <- r6(runif(n, -1, 1)); u <- r6(rnorm(n, 0, 0.7))
  # correlated intercept + 3 slopes (4 x 4 us)
  L <- t(chol(matrix(c(0.5, 0.1, 0.05, 0, 0.1, 0.2, 0.05, 0.02, 0.05, 0.05, 0.15, 0.03,
                       0, 0.02, 0.03, 0.1), 4)))
  B <- t(L %*% matrix(rnorm(4 * n_g), 4))
  b0 <- B[gi, 1]
  b_h <- rnorm(n_h, 0, 0.3)[as.integer(h)]
  b_f4 <- matrix(rnorm(n_g * 4, 0, 0.4), n_g)[cbind(gi, as.integer(f4))]
  eta <- 0.4 + 0.3 * x - 0.2 * z + b0 + 0.5 * b_h
  mu <- exp(eta)
  d <- data.frame(g = g, h = h, f = f, f4 = f4, x = x, z = z, u = u)
  d$tt <- rep(seq_len(per), n_g)
  d$ftt <- factor(paste0("t", d$tt))         # unpadded: levels sort t1, t10, t2, ...
  d$ftt2 <- factor(sprintf("t%02d", d$tt))
  times <- c(0, 0.3, 1.1, 1.5, 2.8, 3.0, 4.4, 5.9, 6.1, 7.7, 8.0, 9.6, 10.2, 12.5, 13.1)
  d$tirr <- unlist(lapply(seq_len(n_g), function(i) sort(sample(times, per, replace = per > 15))))
  sites <- cbind(c(0.5, 2.1, 3.3, 1.2, 4.8, 0.9, 2.7, 4.1, 3.9, 1.8),
                 c(1.0, 0.4, 2.2, 3.5, 1.7, 4.6, 4.9, 3.1, 0.2, 2.8))
  st <- (d$tt - 1) %% 10 + 1
  d$sx <- sites[st, 1]; d$sy <- sites[st, 2]
  ar_e <- unlist(lapply(seq_len(n_g), function(i) as.numeric(arima.sim(list(ar = 0.5), per)) * 0.4))
  d$y_gauss <- r6(eta + 0.5 * b_f4 + ar_e + rnorm(n, 0, 0.4))
  d$y_gauss_het <- r6(eta + rnorm(n, 0, 0.5 * exp(0.4 * z)))
  d$y_gauss3 <- r6(1 + 0.3 * x - 0.2 * z + 0.1 * u + B[gi, 1] + B[gi, 2] * x + B[gi, 3] * z +
                   B[gi, 4] * u + rnorm(n, 0, 0.3))
  d$y_pos <- r6(rgamma(n, shape = 2 * exp(0.3 * z), scale = mu / (2 * exp(0.3 * z))))
  d$y_pos_inv <- r6(rgamma(n, shape = 3, scale = 1 / (1.5 + 0.2 * x + 0.1 * b0) / 3))
  d$y_pois <- rpois(n, mu * exp(0.5 * b_f4))
  d$trials <- sample(3:20, n, TRUE)
  d$y_rate <- rpois(n, d$trials * exp(eta - 2))
  d$y_nb <- rnbinom(n, mu = mu, size = 2)
  d$y_nb1 <- rnbinom(n, mu = mu, size = mu / 1.2)       # var = mu (1 + 1.2)
  zi_p <- plogis(-1 + 0.6 * z + rnorm(n_g, 0, 0.8)[gi])
  d$y_zinb1 <- ifelse(runif(n) < zi_p, 0L, d$y_nb1)
  d$y_zip <- ifelse(runif(n) < zi_p, 0L, rpois(n, mu))
  rtr <- function(m, draw) { repeat { k <- draw(m); if (k > 0) return(k) } }
  d$y_tnb1 <- vapply(mu, function(m) rtr(m, function(m) rnbinom(1, mu = m, size = m / exp(0.5))), 1)
  d$y_tnb2 <- vapply(mu * exp(0.5 * b_f4), function(m) rtr(m, function(m) rnbinom(1, mu = m, size = 1.5)), 1)
  d$y_cp <- pmax(0L, as.integer(round(mu + rnorm(n, 0, sqrt(mu) * 0.6))))  # under-dispersed
  d$y_tw <- r6(vapply(seq_len(n), function(i) sum(rgamma(rpois(1, mu[i] / 1.2), 1.5, scale = 0.8)), 1))
  d$y_t <- r6(eta + B[gi, 2] * x + rt(n, df = 3) * 0.4)
  pr <- plogis(eta - 0.6)
  d$succ <- rbinom(n, d$trials, pr)
  d$y_bin <- rbinom(n, 1, pr)
  d$y_beta <- r6(pmin(pmax(rbeta(n, pr * 6 * exp(0.5 * (f == "b")), (1 - pr) * 6 * exp(0.5 * (f == "b"))),
                          1e-4), 1 - 1e-4))
  # odd names, numeric-looking levels, characters, missing values, singletons
  d[["y gauss"]] <- d$y_gauss; d[["x 1"]] <- d$x; d[["Grüppe"]] <- d$g
  d$flev <- factor(sample(c("1", "2", "10"), n, TRUE))
  d$y_flev <- rpois(n, mu * c("1" = 1, "2" = 1.5, "10" = 0.7)[as.character(d$flev)])
  d$gnum <- gi
  d$fchr <- sample(c("lo", "mid", "hi"), n, TRUE)
  d$gchr <- sprintf("G%d", gi)
  d$x_na <- d$x; d$x_na[sample(n, max(3, n %/% 25))] <- NA
  d$z_na <- d$z; d$z_na[sample(n, max(3, n %/% 30))] <- NA
  g1 <- as.character(g)
  solo <- seq(per, n, by = per)[seq_len(min(5, n_g))]    # last row of five groups: alone
  g1[solo] <- sprintf("s%02d", seq_along(solo))
  d$g1 <- factor(g1)
  d$obs <- factor(sprintf("o%04d", seq_len(n)))
  # batch 3b (drawn after everything above, so the earlier columns are unchanged)
  d$w <- sample(1:3, n, TRUE)
  d$y_drop <- d$y_gauss; d$y_drop[sample(n, n %/% 5)] <- NA     # ar1 with missing times
  d$y_hurdle <- ifelse(runif(n) < zi_p, 0L, d$y_tnb2)
  d$y_zigamma <- ifelse(runif(n) < zi_p, 0, d$y_pos)
  d$succ_bb <- rbinom(n, d$trials, rbeta(n, pr * 4, (1 - pr) * 4))
  d$succ_bb[runif(n) < 0.15] <- 0L
  d$y_beta0 <- ifelse(runif(n) < zi_p, 0, d$y_beta)
  d
}
sets <- list(m = simulate_set(20261203, 30, 10, 8), s = simulate_set(7, 6, 10, 4),
             l = simulate_set(31337, 100, 30, 20))
for (nm in names(sets)) {
  write.csv(sets[[nm]], file.path(out, "data", paste0("sg_", nm, ".csv")), row.names = FALSE,
            fileEncoding = "UTF-8")
  x <- read.csv(file.path(out, "data", paste0("sg_", nm, ".csv")), check.names = FALSE,
                fileEncoding = "UTF-8", stringsAsFactors = TRUE)
  x$flev <- factor(as.character(x$flev))        # "1" "10" "2" (sorted as strings, as pandas)
  x$tpos <- numFactor(x$tirr)
  x$sp <- numFactor(x$sx, x$sy)
  sets[[nm]] <- x
}

# ---------------------------------------------------------------- specs
specs <- list()
S <- function(id, formula, family, zi = "~0", disp = "~1", REML = FALSE, weights = NULL,
              offset = NULL, data = "m", py = formula, start = NULL, note = "", engine = NULL) {
  specs[[id]] <<- list(id = id, formula = formula, family = family, zi = zi, disp = disp,
                       REML = REML, weights = weights, offset = offset, data = data,
                       py = py, start = start, note = note, engine = engine)
}
GA <- 'gaussian(link = "identity")'; PO <- 'poisson(link = "log")'; BI <- 'binomial(link = "logit")'
# families x links x components not paired before
S("gamma_log_slope", "y_pos ~ x + (x | g)", 'Gamma(link = "log")')
S("gamma_log_disp_re", "y_pos ~ x + z + (1 | g) + (1 | h)", 'Gamma(link = "log")', disp = "~z")
S("gamma_inverse_disp", "y_pos_inv ~ x + (1 | g)", 'Gamma(link = "inverse")', disp = "~z",
  start = "list(beta = c(1.5, 0.2))")
S("beta_disp_f", "y_beta ~ x + (1 | g)", 'beta_family(link = "logit")', disp = "~f")
S("beta_cloglog_slope", "y_beta ~ x + (x | g)", 'beta_family(link = "cloglog")')
S("nb1_zi_re_only", "y_zinb1 ~ x + (1 | g)", 'nbinom1(link = "log")', zi = "~(1 | g)")
S("nb1_zi_disp_f", "y_zinb1 ~ x + z + (1 | g)", 'nbinom1(link = "log")', zi = "~z", disp = "~f")
S("tnb1_disp_z", "y_tnb1 ~ x + (1 | g)", 'truncated_nbinom1(link = "log")', disp = "~z")
S("tnb2_cs", "y_tnb2 ~ x + cs(0 + f4 | g)", 'truncated_nbinom2(link = "log")')
S("tweedie_disp_f", "y_tw ~ x + (1 | g)", 'tweedie(link = "log")', disp = "~f")
S("genpois_disp_z", "y_cp ~ x + (1 | g)", 'genpois(link = "log")', disp = "~z")
S("compois", "y_cp ~ x + (1 | g)", 'compois(link = "log")')
S("t_slope", "y_t ~ x + (x | g)", 't_family(link = "identity")')
S("binom_cloglog_zi", "cbind(succ, trials - succ) ~ x + (1 | g)", 'binomial(link = "cloglog")', zi = "~1")
# structures, two terms at once, irregular times, shared sites
S("ar1_plus_h", "y_gauss ~ x + ar1(0 + ftt2 | g) + (1 | h)", GA, engine = "lmer")
S("ar1_unpadded_pois", "y_pois ~ x + ar1(0 + ftt | g)", PO, engine = "glmer")
S("diag_xz_binom", "cbind(succ, trials - succ) ~ x + z + diag(x + z | g)", BI, engine = "glmer")
S("cs_intercept_f4", "y_pois ~ x + cs(f4 | g)", PO)
S("toep_nb2", "y_nb ~ x + toep(0 + f4 | g)", 'nbinom2(link = "log")')
S("rr_pois_d1", "y_pois ~ x + rr(0 + f4 | g, d = 1)", PO)
S("rr_gauss_d2", "y_gauss ~ x + rr(0 + f4 | g, d = 2)", GA)
S("ou_irregular", "y_gauss ~ x + ou(0 + tpos | g)", GA, py = "y_gauss ~ x + ou(0 + pos(tirr) | g)",
  engine = "lmer")
S("exp_sites_pois", "y_pois ~ x + exp(0 + sp | g)", PO, py = "y_pois ~ x + exp(0 + pos(sx, sy) | g)")
S("mat_sites_gauss", "y_gauss ~ x + mat(0 + sp | g)", GA, py = "y_gauss ~ x + mat(0 + pos(sx, sy) | g)")
S("gau_sites_binom", "cbind(succ, trials - succ) ~ x + gau(0 + sp | g)", BI,
  py = "cbind(succ, trials - succ) ~ x + gau(0 + pos(sx, sy) | g)")
S("us4_gauss", "y_gauss3 ~ x + z + u + (x + z + u | g)", GA, engine = "lmer")
S("diag_plus_us_pois", "y_pois ~ x + diag(0 + f4 | g) + (1 | h)", PO, engine = "glmer")
# random effects in zi only / other grouping
S("zip_zi_re_only", "y_zip ~ x + (1 | g)", PO, zi = "~(1 | g)")
S("zip_zi_re_h", "y_zip ~ x + (1 | g)", PO, zi = "~z + (1 | h)")
# offsets, weights, REML
S("pois_offset_log", "y_rate ~ x + offset(log(trials)) + (1 | g)", PO, engine = "glmer")
S("gauss_weights_reml", "y_gauss ~ x + (1 | g)", GA, weights = "trials", REML = TRUE, engine = "lmer")
S("gauss_reml_slope_disp", "y_gauss_het ~ x + (x | g)", GA, disp = "~z", REML = TRUE)
S("gauss_reml_cs", "y_gauss ~ x + cs(0 + f | g)", GA, REML = TRUE, engine = "lmer")
# names, levels, characters, NAs, singletons, observation-level
S("odd_names", "`y gauss` ~ `x 1` + (1 | `Grüppe`)", GA)
S("numeric_levels", "y_flev ~ flev + (1 | gnum)", PO)
S("character_cols", "y_gauss ~ fchr + x + (1 | gchr)", GA)
S("na_cond_and_zi", "y_zip ~ x_na + (1 | g)", PO, zi = "~z_na")
S("singleton_groups", "y_nb ~ x + (1 | g1)", 'nbinom2(link = "log")')
S("obs_level_pois", "y_pois ~ x + (1 | g) + (1 | obs)", PO, engine = "glmer")
# sizes: n = 60 and n = 3000
S("s_binom", "cbind(succ, trials - succ) ~ x + (1 | g)", BI, data = "s", engine = "glmer")
S("s_gamma", "y_pos ~ x + (1 | g)", 'Gamma(link = "log")', data = "s")
S("s_ar1", "y_gauss ~ x + ar1(0 + ftt2 | g)", GA, data = "s", engine = "lmer")
S("l_crossed_pois", "y_pois ~ x + (1 | g) + (1 | h)", PO, data = "l", engine = "glmer")
S("l_zinb2_slope", "y_nb ~ x + (x | g)", 'nbinom2(link = "log")', zi = "~1", data = "l")
S("l_beta_disp", "y_beta ~ x + (1 | g)", 'beta_family(link = "logit")', disp = "~f", data = "l")
# --- batch 3b
S("pois_reml", "y_pois ~ x + (1 | g)", PO, REML = TRUE)
S("nb2_reml_disp", "y_nb ~ x + (1 | g)", 'nbinom2(link = "log")', disp = "~z", REML = TRUE)
S("ar1_missing_times", "y_drop ~ x + ar1(0 + ftt2 | g)", GA, engine = "lmer")
S("hurdle_tnb2_disp", "y_hurdle ~ x + (1 | g)", 'truncated_nbinom2(link = "log")', zi = "~x", disp = "~z")
S("zigamma_zi_re", "y_zigamma ~ x + (1 | g)", 'ziGamma(link = "log")', zi = "~(1 | g)")
S("bb_zi", "cbind(succ_bb, trials - succ_bb) ~ x + (1 | g)", 'betabinomial(link = "logit")', zi = "~1")
S("tgenpois_disp", "y_tnb1 ~ x + (1 | g)", 'truncated_genpois(link = "log")', disp = "~z")
S("factor_by_x_slope", "y_gauss ~ x + (0 + f:x | g)", GA, engine = "lmer")
S("poly_fixed", "y_pois ~ poly(x, 2) + (1 | g)", PO)
S("exp_1d_times", "y_gauss ~ x + exp(0 + tpos | g)", GA, py = "y_gauss ~ x + exp(0 + pos(tirr) | g)")
S("diag_plus_ar1_same_g", "y_gauss ~ x + diag(0 + f | g) + ar1(0 + ftt2 | g)", GA, engine = "lmer")
S("disp0_obs_re", "y_gauss ~ x + (1 | g) + (1 | obs)", GA, disp = "~0")
S("offset_formula_and_arg", "y_rate ~ x + offset(log(trials)) + (1 | g)", PO, offset = "z")
S("binom_cbind_weights", "cbind(succ, trials - succ) ~ x + (1 | g)", BI, weights = "w", engine = "glmer")
S("t_disp_crossed", "y_t ~ x + (1 | g) + (1 | h)", 't_family(link = "identity")', disp = "~f")
S("beta_zi_re", "y_beta0 ~ x + (1 | g)", 'beta_family(link = "logit")', zi = "~(1 | g)")
S("us_factor_probit", "y_bin ~ x + (f | g)", 'binomial(link = "probit")', engine = "glmer")
S("toep_10_gauss", "y_gauss ~ x + toep(0 + ftt2 | g)", GA, engine = "lmer")
S("rr_binom_d1", "cbind(succ, trials - succ) ~ x + rr(0 + f4 | g, d = 1)", BI)
S("ou_pois_plus_h", "y_pois ~ x + ou(0 + tpos | g) + (1 | h)", PO, py = "y_pois ~ x + ou(0 + pos(tirr) | g) + (1 | h)")
S("nested_interaction", "y_pois ~ x + (1 | g/f) + (1 | h)", PO, engine = "glmer")
S("gau_reml", "y_gauss ~ x + gau(0 + sp | g)", GA, REML = TRUE, py = "y_gauss ~ x + gau(0 + pos(sx, sy) | g)")
S("s_nb1", "y_nb1 ~ x + (1 | g)", 'nbinom1(link = "log")', data = "s")
S("s_zip", "y_zip ~ x + (1 | g)", PO, zi = "~1", data = "s")
S("l_obs_pois", "y_pois ~ x + (1 | g) + (1 | obs)", PO, data = "l", engine = "glmer")
# --- batch 3c
S("zip_zidot_ar1", "y_zip ~ x + ar1(0 + ftt2 | g)", PO, zi = "~.")
S("gauss_disp_na", "y_gauss ~ x + (1 | g)", GA, disp = "~z_na")
S("tweedie_zi", "y_tw ~ x + (1 | g)", 'tweedie(link = "log")', zi = "~1")
S("binom_cauchit", "cbind(succ, trials - succ) ~ x + (1 | g)", 'binomial(link = "cauchit")', engine = "glmer")
S("pois_sqrt_slope", "y_pois ~ x + (x | g)", 'poisson(link = "sqrt")')
S("binom_weights_ar1", "cbind(succ, trials - succ) ~ x + ar1(0 + ftt2 | g)", BI, weights = "w", engine = "glmer")
S("zip_ar1_zi_h", "y_zip ~ x + ar1(0 + ftt2 | g)", PO, zi = "~(1 | h)")
S("beta_probit_zi_x", "y_beta0 ~ x + (1 | g)", 'beta_family(link = "probit")', zi = "~x")
S("s_rr_pois", "y_pois ~ x + rr(0 + f4 | g, d = 1)", PO, data = "s")
S("l_ar1_gamma", "y_pos ~ x + ar1(0 + ftt2 | g)", 'Gamma(link = "log")', data = "l")
# --- batch 3d: offsets and no-intercept forms in the zi and disp models
S("zi_offset", "y_zip ~ x + (1 | g)", PO, zi = "~z + offset(log(trials))")
S("disp_offset_gauss", "y_gauss_het ~ x + (1 | g)", GA, disp = "~z + offset(log(trials))")
S("disp_no_intercept", "y_nb ~ x + (1 | g)", 'nbinom2(link = "log")', disp = "~0 + f")
S("zi_no_intercept", "y_zinb1 ~ x + (1 | g)", 'nbinom1(link = "log")', zi = "~0 + f")

# ---------------------------------------------------------------- fitting
# the shared loop (tools/r/sweep/sweep_fit.R)
source(file.path(dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))),
                 "sweep_fit.R"))
results <- fit_specs(specs, sets, only, label = function(s) paste0("sg_", s$data))
write_records(results, file.path(out, "glmmtmb_sweep.json"))
