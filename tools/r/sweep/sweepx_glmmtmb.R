# Parity sweep, lane sweepx: COMBINATIONS of features that the earlier sweeps
# (sweep_glmmtmb.R, sweepg_glmmtmb.R, sweepl_lme4.R, sweepr_*.R) tried one at a time:
# covariance structures (ar1, cs, diag, us with 3 terms, rr(d = 1), exp / ou on pos(), toep)
# x families (gaussian, poisson, nbinom1, nbinom2, binomial cbind / weights, Gamma(log),
# beta, tweedie, truncated_poisson, truncated_nbinom2, genpois) x extras (zi ~ 1 / ~ x,
# disp ~ x, offset(), weights, crossed terms, nested a/b, factor random slopes, missing
# values in a predictor, shifted / scaled covariates, names with dots and spaces), on a
# simulated set and on the bundled data sets.
#
#   Rscript tools/r/sweep/sweepx_glmmtmb.R [--out=tests/fixtures/sweepx] [--only=id1,id2]
#   python  tools/r/sweep/sweepx.py                 # ours vs these records, every check
#   pytest  tests/test_sweepx_parity.py             # the committed fixture (-m slow: all)
#
# Writes OUT/data/sx.csv (simulated, seed below) and OUT/sweepx_glmmtmb.json (one record per
# model, the layout of tools/r/sweep/sweep_fit.R). The bundled sets are read from
# src/mixedmodels/datasets/data with the package's factor level orders.
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)))
source(file.path(here, "sweep_fit.R"))
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
out <- opt("out", file.path("tests", "fixtures", "sweepx"))
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
dir.create(out, recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)

# ---------------------------------------------------------------- simulated set
SEED <- 14031203
simulate_sx <- function(seed = SEED, n_g = 25, per = 12, n_h = 8) {
  set.seed(seed)
  n <- n_g * per
  gi <- rep(seq_len(n_g), each = per)
  tt <- rep(seq_len(per), n_g)
  d <- data.frame(g = sprintf("g%02d", gi), tt = tt, ftt = sprintf("t%02d", tt))
  # irregular times: each group is seen at 12 of 16 shared irregular times (glmmTMB's
  # numFactor term has one column per distinct time over all groups)
  grid <- r6(cumsum(runif(16, 0.5, 1.5)))
  d$tirr <- unlist(lapply(seq_len(n_g), function(i) sort(sample(grid, per))))
  d$h <- sprintf("h%d", sample(seq_len(n_h), n, TRUE))          # crossed with g
  d$b <- sprintf("b%d", rep(rep(1:3, each = per / 3), n_g))     # nested in g: g/b
  d$f <- sample(c("a", "b", "c"), n, TRUE)
  d$f4 <- sample(c("p", "q", "r", "s"), n, TRUE)
  x <- r6(rnorm(n)); z <- r6(runif(n, -1, 1))
  d$x <- x; d$z <- z
  B <- cbind(rnorm(n_g, 0, 0.5), rnorm(n_g, 0, 0.25), rnorm(n_g, 0, 0.2))
  ar <- unlist(lapply(seq_len(n_g), function(i) 0.4 * as.numeric(arima.sim(list(ar = 0.6), per))))
  bh <- rnorm(n_h, 0, 0.3)[as.integer(factor(d$h))]
  bf <- matrix(rnorm(n_g * 3, 0, 0.3), n_g)[cbind(gi, as.integer(factor(d$f)))]
  bb <- rnorm(n_g * 3, 0, 0.3)[(gi - 1) * 3 + as.integer(factor(d$b))]
  eta <- 0.3 + 0.4 * x - 0.3 * z + B[gi, 1] + B[gi, 2] * x + B[gi, 3] * z + ar + bh + bf + bb
  mu <- exp(eta)
  d$offs <- r6(log(runif(n, 0.5, 2)))
  d$w <- sample(1:3, n, TRUE)
  d$trials <- sample(5:15, n, TRUE)
  d$xbig <- r6(x * 1000 + 50000)                 # shifted and scaled
  d$xsmall <- r6(x * 1e-3)
  d[["x.dot"]] <- r6(x + rnorm(n, 0, 0.2)); d[["x space"]] <- z
  d$x_na <- x; d$x_na[sample(n, 12)] <- NA
  d$y_gauss <- r6(eta + rnorm(n, 0, 0.5 * exp(0.2 * x)))
  d$y_pois <- rpois(n, mu)
  d$y_pois_off <- rpois(n, mu * exp(d$offs))
  d$y_nb <- rnbinom(n, mu = mu, size = 1.5 * exp(0.3 * x))
  d$y_nb1 <- rnbinom(n, mu = mu, size = mu / 0.8)
  d$y_nb_off <- rnbinom(n, mu = mu * exp(d$offs), size = 2)
  zi_p <- plogis(-1 + 0.8 * x)
  d$y_zip <- ifelse(runif(n) < zi_p, 0L, rpois(n, mu))
  d$y_zinb <- ifelse(runif(n) < zi_p, 0L, rnbinom(n, mu = mu, size = 2))
  pr <- plogis(eta - 0.3)
  d$y_bin <- rbinom(n, 1, pr)
  d$succ <- rbinom(n, d$trials, pr)
  d$prop <- d$succ / d$trials            # unrounded: prop * trials is a whole count
  shape <- 3 * exp(0.3 * x)
  d$y_pos <- r6(rgamma(n, shape = shape, scale = mu / shape))
  phi <- 8 * exp(0.3 * x)
  d$y_beta <- r6(pmin(pmax(rbeta(n, pr * phi, (1 - pr) * phi), 1e-4), 1 - 1e-4))
  d$y_beta0 <- ifelse(runif(n) < zi_p, 0, d$y_beta)
  d$y_tw <- r6(vapply(seq_len(n), function(i) sum(rgamma(rpois(1, mu[i] / 1.5), 2, scale = 0.75)), 1))
  rtr <- function(m, draw) { repeat { k <- draw(m); if (k > 0) return(k) } }
  d$y_tpois <- vapply(mu, function(m) rtr(m, function(m) rpois(1, m)), 1)
  d$y_tnb <- vapply(mu, function(m) rtr(m, function(m) rnbinom(1, mu = m, size = 2)), 1)
  d$y_hurdle <- ifelse(runif(n) < zi_p, 0L, d$y_tpois)
  d
}
dir.create(file.path(out, "data"), showWarnings = FALSE)
write.csv(simulate_sx(), file.path(out, "data", "sx.csv"), row.names = FALSE, fileEncoding = "UTF-8")
sx <- read.csv(file.path(out, "data", "sx.csv"), check.names = FALSE, fileEncoding = "UTF-8",
               stringsAsFactors = TRUE)
sx$tpos <- numFactor(sx$tirr)

# ---------------------------------------------------------------- bundled sets
data_dir <- file.path("src", "mixedmodels", "datasets", "data")
levels_of <- fromJSON(file.path(data_dir, "factor_levels.json"))
bundled <- function(name) {
  lev <- levels_of[[name]]
  cc <- setNames(rep("character", length(lev)), names(lev))
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), colClasses = cc, check.names = FALSE)
  for (col in names(lev)) d[[col]] <- factor(d[[col]], levels = lev[[col]])
  d
}
sets <- list(sx = sx)
for (nm in c("Salamanders", "Owls", "grouseticks", "cbpp", "sleepstudy", "Orthodont", "ar1sim",
             "gammasim", "Contraception", "VerbAgg", "Pastes", "Penicillin", "cake")) {
  sets[[nm]] <- bundled(nm)
}
sets$ar1sim$tpos <- numFactor(sets$ar1sim$time)

# ---------------------------------------------------------------- specs
specs <- list()
S <- function(id, formula, family, zi = "~0", disp = "~1", REML = FALSE, weights = NULL,
              offset = NULL, data = "sx", py = formula, start = NULL, engine = NULL,
              slow = FALSE, note = "") {
  specs[[id]] <<- list(id = id, formula = formula, family = family, zi = zi, disp = disp,
                       REML = REML, weights = weights, offset = offset, data = data,
                       py = py, start = start, engine = engine, slow = slow, note = note)
}
GA <- 'gaussian(link = "identity")'; PO <- 'poisson(link = "log")'; BI <- 'binomial(link = "logit")'
NB1 <- 'nbinom1(link = "log")'; NB2 <- 'nbinom2(link = "log")'; GAM <- 'Gamma(link = "log")'
BETA <- 'beta_family(link = "logit")'; TW <- 'tweedie(link = "log")'
TP <- 'truncated_poisson(link = "log")'; TNB2 <- 'truncated_nbinom2(link = "log")'
GP <- 'genpois(link = "log")'
CB <- "cbind(succ, trials - succ)"
AR <- "ar1(0 + ftt | g)"
# ar1 x families x extras
S("ar1_pois_zi1", "y_zip ~ x + ar1(0 + ftt | g)", PO, zi = "~1")
S("ar1_nb2_dispx", "y_nb ~ x + ar1(0 + ftt | g)", NB2, disp = "~x")
S("ar1_nb1_offset", "y_nb_off ~ x + offset(offs) + ar1(0 + ftt | g)", NB1)
S("ar1_binom_cbind_h", paste(CB, "~ x + ar1(0 + ftt | g) + (1 | h)"), BI, engine = "glmer")
# (ar1(0 + ftt | g) has one row per cell, an observation-level term: with Gamma and
# weights = w the Laplace objective is unbounded below, in glmmTMB (-11623, code 1) and here
# alike; ar1(0 + ftt | h) repeats times within a group: a replicated design, fitted
# with the rows of a cell sharing one effect, as glmmTMB does)
S("ar1_gamma_dispx", "y_pos ~ x + ar1(0 + ftt | g)", GAM, disp = "~x")
S("ar1_beta_dispx", "y_beta ~ x + ar1(0 + ftt | g)", BETA, disp = "~x")
S("ar1_tweedie", "y_tw ~ x + ar1(0 + ftt | g)", TW, slow = TRUE)
S("ar1_gauss_xna_h", "y_gauss ~ x_na + ar1(0 + ftt | g) + (1 | h)", GA, engine = "lmer")
S("ar1_tpois_zix", "y_hurdle ~ x + ar1(0 + ftt | g)", TP, zi = "~x")
# cs
S("cs_pois_offset", "y_pois_off ~ x + offset(offs) + cs(0 + f | g)", PO)
S("cs_nb2_zix", "y_zinb ~ x + cs(0 + f | g)", NB2, zi = "~x")
S("cs_gauss_dispx", "y_gauss ~ x + cs(0 + f | g)", GA, disp = "~x")
S("cs_tpois", "y_tpois ~ x + cs(0 + f | g)", TP)
S("cs_binom_prop_weights", "prop ~ x + cs(0 + f | g)", BI, weights = "trials")
S("cs_gamma_h_weights", "y_pos ~ x + cs(0 + f | g) + (1 | h)", GAM, weights = "w")
# diag
S("diag_nb1_zix", "y_zinb ~ x + z + diag(x + z | g)", NB1, zi = "~x")
S("diag_gamma_dispx", "y_pos ~ x + diag(x | g)", GAM, disp = "~x")
S("diag_genpois", "y_nb1 ~ x + diag(x | g)", GP)
S("diag_beta_crossed", "y_beta ~ x + diag(x | g) + (1 | h)", BETA)
S("diag_tnb2", "y_tnb ~ x + diag(x | g)", TNB2)
S("diag_factor_bernoulli", "y_bin ~ x + diag(0 + f | g)", BI, engine = "glmer")
# us with 3 terms
S("us3_pois_offset", "y_pois_off ~ x + z + offset(offs) + (x + z | g)", PO, engine = "glmer")
S("us3_gauss_dispx", "y_gauss ~ x + z + (x + z | g)", GA, disp = "~x")
S("us3_binom_cbind_weights", paste(CB, "~ x + z + (x + z | g)"), BI, weights = "w", engine = "glmer")
S("us3_nb2_zi1", "y_zinb ~ x + z + (x + z | g)", NB2, zi = "~1")
S("us3_gamma_crossed", "y_pos ~ x + z + (x + z | g) + (1 | h)", GAM)
S("us3_tweedie", "y_tw ~ x + z + (x + z | g)", TW, slow = TRUE)
S("us3_factor_pois", "y_pois ~ f + (0 + f | g)", PO, engine = "glmer")
# rr(d = 1)
S("rr_pois_zi1", "y_zip ~ x + rr(0 + f4 | g, d = 1)", PO, zi = "~1")
S("rr_nb2_dispx", "y_nb ~ x + rr(0 + f4 | g, d = 1)", NB2, disp = "~x")
S("rr_binom_prop_weights", "prop ~ x + rr(0 + f4 | g, d = 1)", BI, weights = "trials")
S("rr_gauss_h", "y_gauss ~ x + rr(0 + f4 | g, d = 1) + (1 | h)", GA)
# ou / exp on irregular times
S("ou_pois_offset", "y_pois_off ~ x + offset(offs) + ou(0 + tpos | g)", PO,
  py = "y_pois_off ~ x + offset(offs) + ou(0 + pos(tirr) | g)")
S("ou_gamma_dispx", "y_pos ~ x + ou(0 + tpos | g)", GAM, disp = "~x",
  py = "y_pos ~ x + ou(0 + pos(tirr) | g)")
S("exp_nb2_zi1", "y_zinb ~ x + exp(0 + tpos | g)", NB2, zi = "~1",
  py = "y_zinb ~ x + exp(0 + pos(tirr) | g)")
S("exp_gauss_h", "y_gauss ~ x + exp(0 + tpos | g) + (1 | h)", GA,
  py = "y_gauss ~ x + exp(0 + pos(tirr) | g) + (1 | h)")
# toep
S("toep_pois_offset", "y_pois_off ~ x + offset(offs) + toep(0 + f4 | g)", PO)
S("toep_gauss_weights", "y_gauss ~ x + toep(0 + f4 | g)", GA, weights = "w")
S("toep_beta", "y_beta ~ x + toep(0 + f4 | g)", BETA)
# nested, crossed, factor slopes with families and extras
S("nested_pois_offset", "y_pois_off ~ x + offset(offs) + (1 | g/b)", PO, engine = "glmer")
S("nested_nb2_zix", "y_zinb ~ x + (1 | g/b)", NB2, zi = "~x")
S("nested_binom_cbind_weights", paste(CB, "~ x + (1 | g/b)"), BI, weights = "w", engine = "glmer")
S("crossed_gamma_dispx", "y_pos ~ x + (1 | g) + (1 | h)", GAM, disp = "~x")
S("crossed_tnb2_xbig", "y_tnb ~ xbig + (1 | g) + (1 | h)", TNB2)
S("crossed_genpois_zi1", "y_zinb ~ x + (1 | g) + (1 | h)", GP, zi = "~1")
S("fslope_nb1_dispf", "y_nb1 ~ x + (1 | g) + (0 + f | h)", NB1, disp = "~f")
# names, missing values, scaling
S("qnames_pois", "y_pois ~ x.dot + `x space` + (1 | g)", PO,
  py = 'y_pois ~ Q("x.dot") + Q("x space") + (1 | g)', engine = "glmer")
S("qnames_nb2_disp", "y_nb ~ x.dot + (1 | g)", NB2, disp = "~`x space`",
  py = 'y_nb ~ Q("x.dot") + (1 | g)')
S("xna_nb2_zixna", "y_zinb ~ x_na + (1 | g)", NB2, zi = "~x_na")
S("xna_gamma_disp", "y_pos ~ x_na + (1 | g)", GAM, disp = "~x_na")
S("xbig_pois_slope_zi", "y_zip ~ xbig + (1 | g)", PO, zi = "~xbig")
S("xsmall_gauss_slope", "y_gauss ~ xsmall + (xsmall | g)", GA, engine = "lmer")
S("scale_pois_slope", "y_pois ~ scale(xbig) + (scale(xbig) | g)", PO, engine = "glmer")
S("tpois_weights_offset", "y_tpois ~ x + offset(offs) + (1 | g)", TP, weights = "w")
S("beta_zi_crossed", "y_beta0 ~ x + (1 | g) + (1 | h)", BETA, zi = "~x")
S("tweedie_dispx_offset", "y_tw ~ x + offset(offs) + (1 | g)", TW, disp = "~x")
S("gauss_offset_weights_reml", "y_gauss ~ x + offset(offs) + (1 | g)", GA, weights = "w", REML = TRUE)
# bundled data sets
S("sal_nb2_zi_disp", "count ~ spp + mined + (1 | site)", NB2, zi = "~mined", disp = "~mined",
  data = "Salamanders")
S("sal_tpois_hurdle_cover", "count ~ spp + cover + (1 | site)", TP, zi = "~mined + cover",
  data = "Salamanders")
S("owls_nb1_offset_fslope", "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize) + (FoodTreatment | Nest)",
  NB1, zi = "~1", data = "Owls")
S("owls_genpois_offset", "SiblingNegotiation ~ FoodTreatment + ArrivalTime + offset(logBroodSize) + (1 | Nest)",
  GP, data = "Owls")
S("grouse_nested_nb2", "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)", NB2, data = "grouseticks")
S("grouse_pois_crossed_obs", "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION) + (1 | INDEX)", PO,
  data = "grouseticks", engine = "glmer")
S("cbpp_binom_zi1", "cbind(incidence, size - incidence) ~ period + (1 | herd)", BI, zi = "~1",
  data = "cbpp")
S("cbpp_ar1_cbind", "cbind(incidence, size - incidence) ~ 1 + ar1(0 + period | herd)", BI,
  data = "cbpp", engine = "glmer")
S("sleep_gauss_dispdays", "Reaction ~ Days + (Days | Subject)", GA, disp = "~Days", data = "sleepstudy")
S("sleep_gamma_diag", "Reaction ~ Days + diag(Days | Subject)", GAM, data = "sleepstudy")
S("orth_gamma_disp_sex", "distance ~ age * Sex + (age | Subject)", GAM, disp = "~Sex", data = "Orthodont")
S("ar1sim_ou_reml", "y ~ time + ou(0 + tpos | subject)", GA, REML = TRUE, data = "ar1sim",
  py = "y ~ time + ou(0 + pos(time) | subject)", engine = "lmer")
S("gammasim_slope_disp", "y ~ x + (x | g)", GAM, disp = "~x", data = "gammasim")
S("contra_fslope", "use ~ age + I(age^2) + urban + livch + (urban | district)", BI,
  data = "Contraception", engine = "glmer", slow = TRUE)
S("verbagg_crossed", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", BI,
  data = "VerbAgg", engine = "glmer", slow = TRUE)
S("pastes_gamma_nested", "strength ~ 1 + (1 | batch/cask)", GAM, data = "Pastes")
S("penicillin_pois_crossed", "diameter ~ 1 + (1 | plate) + (1 | sample)", PO, data = "Penicillin",
  engine = "glmer")
S("cake_gamma_disp_recipe", "angle ~ recipe * temperature + (1 | recipe:replicate)", GAM,
  disp = "~recipe", data = "cake")

# ---------------------------------------------------------------- fitting
results <- fit_specs(specs, sets, only)
# --only writes OUT/sweepx_only.json (the committed fixture is always the whole grid)
write_records(results, file.path(out, if (is.null(only)) "sweepx_glmmtmb.json" else "sweepx_only.json"))
