# Parity sweep of mm.lmer / mm.glmer / mm.glmer_nb against lme4 1.1.31, lmerTest and pbkrtest
# on model variants no committed fixture covers: prior weights, offsets (term and argument),
# factor-valued and uncorrelated random slopes, nested / interaction grouping factors,
# rank-deficient fixed effects, transformed predictors (I(), poly(), log(), scale(), bs()),
# shifted predictors, binomial / Poisson / Gamma / inverse Gaussian links, nAGQ 0/1/7/25,
# glmer.nb with an offset, anova of nested ML fits, profile / Wald intervals, Satterthwaite
# and Kenward-Roger df, prediction with new levels, singular fits, NA rows, unused levels,
# odd column names. Not a fixture script: it writes OUT/lme4_sweep.json, which
# tools/r/sweep/sweepl.py compares with our fits.
#
#   Rscript tools/r/sweep/sweepl_lme4.R --out=/tmp/sweepl [--only=id1,id2]
#
# Data are simulated with a fixed seed and written to OUT/data/*.csv (factor levels sorted,
# so R's and pandas' level orders agree); every fit reads the CSVs back. lme4 runs with tight
# settings (BOBYQA to rhoend 1e-9, tolPwrss 1e-12), which pin down its own optimum.
suppressPackageStartupMessages({library(jsonlite); library(lme4); library(splines)})
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^--", name, "="), args, value = TRUE)
  if (length(hit)) sub(paste0("^--", name, "="), "", hit[1]) else default
}
out <- opt("out", "/tmp/sweepl")
only <- opt("only", "")
only <- if (nzchar(only)) strsplit(only, ",")[[1]] else NULL
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)
r6 <- function(x) round(x, 6)

# ---------------------------------------------------------------- data
set.seed(20261203)
n_g <- 16; per <- 15; n <- n_g * per
g <- factor(sprintf("g%02d", rep(seq_len(n_g), each = per)))
h <- factor(sprintf("h%d", rep(rep(1:3, each = 5), n_g)))          # nested in g: g/h
cc <- factor(sprintf("c%d", sample(1:8, n, TRUE)))                  # crossed with g
f <- factor(sample(c("a", "b", "c"), n, TRUE))
f2 <- factor(sample(c("u", "v"), n, TRUE))
x <- r6(rnorm(n)); x2 <- r6(runif(n, -1, 1))
b_g <- rnorm(n_g, 0, 0.6)[as.integer(g)]
b_gx <- rnorm(n_g, 0, 0.3)[as.integer(g)]
b_gh <- rnorm(n_g * 3, 0, 0.4)[(as.integer(g) - 1) * 3 + as.integer(h)]
b_c <- rnorm(8, 0, 0.5)[as.integer(cc)]
b_f <- matrix(rnorm(n_g * 3, 0, 0.4), n_g)[cbind(as.integer(g), as.integer(f))]
eta <- 0.3 + 0.5 * x - 0.3 * x2 + b_g + b_gx * x + b_f + b_gh + b_c
d <- data.frame(g = g, h = h, cc = cc, f = f, f2 = f2, x = x, x2 = x2)
d$gi <- as.integer(g)                                    # integer-coded grouping column
d$xp <- r6(exp(x2) + 0.1)
d$xs <- r6(x * 1e4 + 1e5)                                # shifted and scaled
d$w <- r6(runif(n, 0.3, 2.5))                            # non-integer prior weights
d$off <- r6(runif(n, -0.5, 0.5))
d$expo <- r6(runif(n, 0.5, 3))
d$yn <- r6(2 + eta + rnorm(n, 0, 0.7) / sqrt(d$w))
d$yn_off <- r6(d$yn + d$off)
d$size <- sample(4:12, n, TRUE)
d$k <- rbinom(n, d$size, plogis(eta - 0.3))
d$prop <- d$k / d$size
d$yb <- rbinom(n, 1, plogis(eta))
d$yp <- rpois(n, exp(eta))
d$yp_e <- rpois(n, exp(eta) * d$expo)
mu_pos <- exp(0.5 + 0.5 * eta)
d$yg <- r6(rgamma(n, shape = 4, scale = mu_pos / 4))
d$yig <- r6(statmod_rinvgauss <- {
  # inverse Gaussian draws (Michael, Schucany and Haas), dispersion 0.2
  nu <- rnorm(n)^2; mu <- mu_pos; lam <- 1 / 0.2
  xx <- mu + mu^2 * nu / (2 * lam) - mu / (2 * lam) * sqrt(4 * mu * lam * nu + mu^2 * nu^2)
  ifelse(runif(n) <= mu / (mu + xx), xx, mu^2 / xx)
})
d$ynb <- rnbinom(n, mu = exp(eta) * d$expo, size = 2)
d$ysing <- r6(1 + 0.5 * x + rnorm(n, 0, 1))              # no group variation: singular
# drawn after the others so that adding them left the earlier columns unchanged
d$ysl <- r6(1 + 0.5 * x + rnorm(n_g, 0, 0.8)[as.integer(g)] +
            rnorm(n_g, 0, 0.6)[as.integer(g)] * x + rnorm(n, 0, 0.5))
d$lb <- x2 > 0.2                                         # logical predictor
d$fo <- c("lo", "mid", "hi")[1 + (x2 > -0.3) + (x2 > 0.4)]  # becomes an ordered factor
d$size0 <- ifelse(seq_len(n) %% 17 == 0, 0L, d$size)    # some rows with no trials
d$k0 <- ifelse(d$size0 == 0, 0L, d$k)
d$w0 <- ifelse(seq_len(n) %% 13 == 0, 0, d$w)             # some zero prior weights
d$wi <- sample(1:3, n, TRUE)                              # integer prior weights
d$ypos <- r6(exp(0.5 + 0.3 * eta) + rnorm(n, 0, 0.3))     # gaussian, log link
write.csv(d, file.path(out, "data", "d.csv"), row.names = FALSE)
dna <- d; dna$yn[c(3, 17, 40, 41, 99, 200)] <- NA; dna$x[c(5, 120)] <- NA
write.csv(dna, file.path(out, "data", "dna.csv"), row.names = FALSE)
drank <- d[!(d$f == "c" & d$f2 == "v"), ]                 # f:f2 cell c:v empty
write.csv(drank, file.path(out, "data", "drank.csv"), row.names = FALSE)
dn <- data.frame(`y.val` = d$yn, `x 1` = d$x, `grp.a` = d$g, `my g` = d$cc, check.names = FALSE)
write.csv(dn, file.path(out, "data", "dnames.csv"), row.names = FALSE)
newd <- d[c(1, 2, 16, 31, 200), ]
newd$g <- as.character(newd$g); newd$g[c(2, 4)] <- "gNEW"
write.csv(newd, file.path(out, "data", "newd.csv"), row.names = FALSE)
# one level of f only, and of fo (predictions must keep the fit's factor coding)
newd2 <- d[which(d$f == "b" & d$fo == "mid")[1:6], ]
write.csv(newd2, file.path(out, "data", "newd2.csv"), row.names = FALSE)

load <- function(name) {
  x <- read.csv(file.path(out, "data", paste0(name, ".csv")), check.names = FALSE,
                stringsAsFactors = FALSE)
  for (col in names(x)) if (is.character(x[[col]])) x[[col]] <- factor(x[[col]])
  x
}

# ---------------------------------------------------------------- variants
V <- list()
add <- function(id, formula, data = "d", fn = "lmer", family = "gaussian", link = NULL,
                nAGQ = 1, REML = TRUE, weights = NULL, offset = NULL, extra = list()) {
  V[[id]] <<- c(list(id = id, formula = formula, data = data, fn = fn, family = family,
                     link = link, nAGQ = nAGQ, REML = REML, weights = weights,
                     offset = offset), extra)
}
add("l_wts", "yn ~ x + x2 + (1 | g)", weights = "w")
add("l_wts_ml", "yn ~ x + (x | g)", weights = "w", REML = FALSE)
add("l_off_term", "yn_off ~ x + offset(off) + (1 | g)")
add("l_off_arg", "yn_off ~ x + (1 | g)", offset = "off")
add("l_fslope0", "yn ~ x + (0 + f | g)")
add("l_int_sep", "yn ~ x + (1 | g) + (0 + x | g)")
add("l_dbar_num", "yn ~ x + (x || g)")
add("l_dbar_fac", "yn ~ x + (f || g)")
add("l_nest", "yn ~ x + (1 | g/h)")
add("l_inter", "yn ~ x + (1 | g:h)")
add("l_crossed", "yn ~ x + f + (1 | g) + (1 | cc)")
add("l_rankdef", "yn ~ f * f2 + (1 | g)", data = "drank")
add("l_Isq", "yn ~ x + I(x^2) + (1 | g)")
add("l_poly", "yn ~ poly(x, 2) + (1 | g)")
add("l_log", "yn ~ log(xp) + (1 | g)")
add("l_scale", "yn ~ scale(x) + (1 | g)")
add("l_bs", "yn ~ bs(x, df = 4) + (1 | g)")
add("l_ns", "yn ~ ns(x, df = 3) + (1 | g)")
add("l_shift", "yn ~ xs + (xs | g)")
add("l_sing", "ysing ~ x + (x | g)")
add("l_na", "yn ~ x + (x | g)", data = "dna")
add("l_unused", "yn ~ x + (1 | g)", extra = list(unused = "g"))
add("l_intcode", "yn ~ x + (1 | gi)")
add("l_string", "yn ~ x + (1 | g)", extra = list(as_string = "g"))
add("l_names", "y.val ~ `x 1` + (1 | grp.a) + (1 | `my g`)", data = "dnames")
add("l_ddf2", "yn ~ x + f + (1 | g) + (1 | cc)", extra = list(ddf = TRUE))
add("l_ddf_slope", "yn ~ x + f + (x | g) + (1 | cc)", extra = list(ddf = TRUE))
add("l_prof", "yn ~ x + (1 | g) + (1 | cc)", extra = list(profile = TRUE))
add("l_predict", "yn ~ x + (x | g)", extra = list(predict = TRUE, simulate = TRUE))
add("l_anova", "yn ~ x + f + (1 | g)", REML = FALSE,
    extra = list(anova = "yn ~ x + (1 | g)"))
add("l_anova_reml", "yn ~ x + x2 + (x | g)", extra = list(anova = "yn ~ x + (x | g)"))
add("b_probit", "cbind(k, size - k) ~ x + x2 + (1 | g)", fn = "glmer", family = "binomial", link = "probit")
add("b_cloglog", "cbind(k, size - k) ~ x + x2 + (1 | g)", fn = "glmer", family = "binomial", link = "cloglog")
add("b_cauchit", "cbind(k, size - k) ~ x + (1 | g)", fn = "glmer", family = "binomial", link = "cauchit")
add("b_prop_w", "prop ~ x + x2 + (1 | g)", fn = "glmer", family = "binomial", weights = "size")
add("b_bern_fs", "yb ~ x + (1 | g) + (1 | cc)", fn = "glmer", family = "binomial")
add("b_off", "cbind(k, size - k) ~ x + offset(off) + (1 | g)", fn = "glmer", family = "binomial")
for (q in c(0, 1, 7, 25)) {
  add(paste0("b_agq", q), "cbind(k, size - k) ~ x + f + (1 | g)", fn = "glmer",
      family = "binomial", nAGQ = q)
  add(paste0("p_agq", q), "yp ~ x + (1 | g)", fn = "glmer", family = "poisson", nAGQ = q)
}
add("p_sqrt", "yp ~ x + (1 | g)", fn = "glmer", family = "poisson", link = "sqrt")
add("p_off_term", "yp_e ~ x + offset(log(expo)) + (1 | g)", fn = "glmer", family = "poisson")
add("p_off_arg", "yp_e ~ x + (1 | g)", fn = "glmer", family = "poisson", offset = "log(expo)")
add("p_slope", "yp ~ x + (x | g)", fn = "glmer", family = "poisson")
add("p_nest", "yp ~ x + (1 | g/h)", fn = "glmer", family = "poisson")
add("G_log", "yg ~ x + (1 | g)", fn = "glmer", family = "Gamma", link = "log")
add("G_inv", "yg ~ x + (1 | g)", fn = "glmer", family = "Gamma", link = "inverse")
add("ig_inv", "yig ~ x + (1 | g)", fn = "glmer", family = "inverse.gaussian", link = "inverse")
add("ig_log", "yig ~ x + (1 | g)", fn = "glmer", family = "inverse.gaussian", link = "log")
add("nb_off", "ynb ~ x + offset(log(expo)) + (1 | g)", fn = "glmer.nb")
add("nb_offarg", "ynb ~ x + (1 | g)", fn = "glmer.nb", offset = "log(expo)")
add("b_anova", "cbind(k, size - k) ~ x + f + (1 | g)", fn = "glmer", family = "binomial",
    extra = list(anova = "cbind(k, size - k) ~ x + (1 | g)"))
add("b_prof", "cbind(k, size - k) ~ x + (1 | g)", fn = "glmer", family = "binomial",
    extra = list(profile = TRUE, predict = TRUE, simulate = TRUE))
add("l_prof_slope", "ysl ~ x + (x | g)", extra = list(profile = TRUE, ddf = TRUE))
add("l_prof_ml", "ysl ~ x + (1 | g) + (0 + x | g)", REML = FALSE, extra = list(profile = TRUE))
add("l_ddf_nest", "yn ~ x + f + (1 | g/h)", extra = list(ddf = TRUE))
add("l_ddf_rank", "yn ~ f * f2 + (1 | g) + (1 | cc)", data = "drank", extra = list(ddf = TRUE))
add("l_ddf_wts", "yn ~ x + f + (1 | g) + (1 | cc)", weights = "w", extra = list(ddf = TRUE))
add("l_na_sim", "yn ~ x + (1 | g)", data = "dna", extra = list(simulate = TRUE, predict = TRUE))
add("l_ordered", "yn ~ fo + x + (1 | g)", extra = list(ordered = "fo"))
add("l_logical", "yn ~ lb + x + (1 | g)")
add("l_wts_off", "yn_off ~ x + (1 | g)", weights = "w", offset = "off")
add("b_fslope", "cbind(k, size - k) ~ x + (0 + f2 | g)", fn = "glmer", family = "binomial")
add("b_na_str", "yb ~ x + (1 | g)", data = "dna", fn = "glmer", family = "binomial",
    extra = list(as_string = "g"))
add("b_prof2", "cbind(k, size - k) ~ x + (1 | g) + (1 | cc)", fn = "glmer", family = "binomial",
    extra = list(profile = TRUE))
add("p_shift", "yp ~ xs + (1 | g)", fn = "glmer", family = "poisson")
add("p_intcode", "yp ~ x + (1 | gi)", fn = "glmer", family = "poisson",
    extra = list(predict = TRUE))
add("p_off_pred", "yp_e ~ x + offset(log(expo)) + (1 | g)", fn = "glmer", family = "poisson",
    extra = list(predict = TRUE, simulate = TRUE))
add("nb_anova", "ynb ~ x + f + offset(log(expo)) + (1 | g)", fn = "glmer.nb",
    extra = list(anova = "ynb ~ x + offset(log(expo)) + (1 | g)", predict = TRUE,
                 simulate = TRUE))
add("b_zero_trials", "cbind(k0, size0 - k0) ~ x + (1 | g)", fn = "glmer", family = "binomial",
    extra = list(predict = TRUE))
add("l_wts_zero", "yn ~ x + (1 | g)", weights = "w0", extra = list(ddf = TRUE))
add("b_prop_wnonint", "prop ~ x + (1 | g)", fn = "glmer", family = "binomial", weights = "w")
add("p_wts", "yp ~ x + (1 | g)", fn = "glmer", family = "poisson", weights = "w")
add("l_ddf_dbar", "ysl ~ x + f + (x || g)", extra = list(ddf = TRUE))
add("l_ddf_fslope", "ysl ~ x + f2 + (0 + f2 | g)", extra = list(ddf = TRUE))
add("l_anova3", "ysl ~ x + x2 + (x | g)", REML = FALSE,
    extra = list(anova = "ysl ~ x + (x | g)"))
add("l_slope_only", "ysl ~ x + (0 + x | g)")
add("l_3x3", "ysl ~ x + x2 + (1 + x + x2 | g)")
add("l_gh_slope", "ysl ~ x + (x | g:h)")
add("l_unused_fixed", "yn ~ f + x + (1 | g)", extra = list(unused = "f"))
add("b_cbind_wi", "cbind(k, size - k) ~ x + (1 | g)", fn = "glmer", family = "binomial",
    weights = "wi")
add("b_factor_resp", "f2 ~ x + (1 | g)", fn = "glmer", family = "binomial")
add("b_logical_resp", "lb ~ x + (1 | g)", fn = "glmer", family = "binomial")
add("p_agq25_off", "yp_e ~ x + offset(log(expo)) + (1 | g)", fn = "glmer", family = "poisson",
    nAGQ = 25)
add("l_anova_norefit", "ysl ~ x + (x | g)",
    extra = list(anova = "ysl ~ x + (1 | g)", anova_refit = FALSE))
add("b_agq0_crossed", "yb ~ x + (1 | g) + (1 | cc)", fn = "glmer", family = "binomial",
    nAGQ = 0)
add("gau_log", "ypos ~ x + (1 | g)", fn = "glmer", family = "gaussian", link = "log")
add("l_sing_prof", "ysing ~ x + (1 | g)", extra = list(profile = TRUE))
add("b_agq7_prof", "cbind(k, size - k) ~ x + (1 | g)", fn = "glmer", family = "binomial",
    nAGQ = 7, extra = list(profile = TRUE))
add("l_boot", "yn ~ x + (1 | g)", extra = list(boot = TRUE))

# predictions from newdata for the transformed predictors, factors and offsets
for (id in c("l_Isq", "l_poly", "l_log", "l_scale", "l_bs", "l_ns", "l_rankdef", "l_nest",
             "l_crossed", "l_ordered", "l_logical", "l_off_term", "l_shift", "b_probit",
             "p_off_term", "G_log", "l_dbar_fac", "l_fslope0"))
  V[[id]]$predict <- TRUE
# profile intervals on correlated, nested, weighted, singular and link variants
for (id in c("l_fslope0", "l_3x3", "l_nest", "l_int_sep", "l_wts", "l_gh_slope", "p_slope",
             "b_cloglog", "p_off_term", "nb_off", "p_agq25"))
  V[[id]]$profile <- TRUE

# ---------------------------------------------------------------- fitting
lctl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-9, maxfun = 1e5))
gctl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                     optCtrl = list(rhoend = 1e-9, maxfun = 1e5))
named <- function(x) as.list(setNames(as.numeric(x), names(x)))
saturated_m2ll <- function(m) {
  fam <- family(m)$family; y <- getME(m, "y"); w <- weights(m)
  if (fam == "binomial") return(-2 * sum(dbinom(round(y * w), round(w), y, log = TRUE)))
  if (fam == "poisson") return(-2 * sum(w * dpois(y, y, log = TRUE)))
  0
}
fam_of <- function(v) {
  fam <- get(v$family)
  if (is.null(v$link)) fam() else fam(link = v$link)
}
fit_one <- function(v, formula = v$formula, REML = v$REML, data = NULL) {
  data <- if (is.null(data)) load(v$data) else data
  if (!is.null(v$unused)) data[[v$unused]] <- factor(data[[v$unused]],
                                                      levels = c(levels(data[[v$unused]]), "zz_unused"))
  if (!is.null(v$ordered)) data[[v$ordered]] <- factor(data[[v$ordered]],
                                                        levels = c("lo", "mid", "hi"), ordered = TRUE)
  if (!is.null(v$as_string)) data[[v$as_string]] <- as.character(data[[v$as_string]])
  f <- as.formula(formula)
  env <- list2env(list(data = data, w_ = if (!is.null(v$weights)) data[[v$weights]],
                       o_ = if (!is.null(v$offset)) eval(parse(text = v$offset), data)))
  call <- switch(v$fn,
    lmer = quote(lmer(f, data = data, REML = REML, control = lctl)),
    glmer = quote(glmer(f, data = data, family = fam_of(v), nAGQ = v$nAGQ, control = gctl)),
    glmer.nb = quote(glmer.nb(f, data = data, control = gctl)))
  if (!is.null(v$weights)) call$weights <- quote(w_)
  if (!is.null(v$offset)) call$offset <- quote(o_)
  environment(f) <- env
  for (nm in ls(env)) assign(nm, get(nm, env), environment())
  eval(call)
}
summ <- function(m, v) {
  nagq <- if (isGLMM(m)) m@devcomp$dims[["nAGQ"]] else 1
  obj <- -2 * as.numeric(logLik(m))
  if (isGLMM(m) && nagq > 1) obj <- obj + saturated_m2ll(m)
  vc <- as.data.frame(VarCorr(m))
  rec <- list(objective = obj, beta = named(fixef(m)), se = named(sqrt(diag(vcov(m)))),
              theta = I(unname(getME(m, "theta"))), sigma = sigma(m), nobs = nobs(m),
              ngroups = as.list(ngrps(m)), singular = isSingular(m),
              vc_sd = I(vc$sdcor), vc_grp = I(vc$grp), loglik_df = attr(logLik(m), "df"),
              dropped = I(as.character(names(attr(getME(m, "X"), "col.dropped")))))
  if (v$fn == "glmer.nb") rec$nb_theta <- getME(m, "glmer.nb.theta")
  # conditional modes and sds of the first three levels of the first grouping factor, when
  # one term is on it (postVar an array; a list when several terms share the factor)
  re <- ranef(m, condVar = TRUE)
  g1 <- names(re)[1]
  pv <- attr(re[[g1]], "postVar")
  if (is.array(pv)) {
    k <- min(3, nrow(re[[g1]]))
    rec$ranef <- list(group = g1, levels = I(rownames(re[[g1]])[1:k]),
                      value = I(as.vector(t(as.matrix(re[[g1]][1:k, , drop = FALSE])))),
                      condsd = I(as.vector(sapply(1:k, function(i)
                        sqrt(diag(as.matrix(pv[, , i])))))))
  }
  rec
}
res <- list()
for (v in V) {
  if (!is.null(only) && !(v$id %in% only)) next
  cat(v$id, "\n")
  rec <- v
  r <- tryCatch({
    m <- withCallingHandlers(fit_one(v), warning = function(w) {
      rec$r_warnings <<- c(rec$r_warnings, conditionMessage(w)); invokeRestart("muffleWarning")
    }, message = function(w) {
      rec$r_messages <<- c(rec$r_messages, conditionMessage(w)); invokeRestart("muffleMessage")
    })
    rec <- c(rec, summ(m, v))
    if (isTRUE(v$simulate)) {
      s <- simulate(m, nsim = 3, seed = 1)
      rec$simulate_dim <- I(dim(s))
    }
    if (isTRUE(v$predict)) {
      nd <- load("newd")
      nd$g <- as.character(nd$g)
      rec$pred_new <- I(unname(predict(m, newdata = nd, allow.new.levels = TRUE)))
      rec$pred_new_resp <- I(unname(predict(m, newdata = nd, allow.new.levels = TRUE,
                                            type = "response")))
      rec$pred_na <- I(unname(predict(m, newdata = nd, re.form = NA)))
      rec$fitted_head <- I(unname(head(fitted(m), 5)))
      nd2 <- load("newd2")
      nd2$f <- as.character(nd2$f); nd2$fo <- as.character(nd2$fo)
      rec$pred_new2 <- I(unname(predict(m, newdata = nd2, allow.new.levels = TRUE)))
    }
    if (isTRUE(v$profile)) {
      ci <- suppressWarnings(confint(m, method = "profile", oldNames = FALSE))
      rec$ci_profile <- list(names = I(rownames(ci)), lower = I(unname(ci[, 1])),
                             upper = I(unname(ci[, 2])))
      ci <- confint(m, method = "Wald", oldNames = FALSE)
      keep <- !is.na(ci[, 1])
      rec$ci_wald <- list(names = I(rownames(ci)[keep]), lower = I(unname(ci[keep, 1])),
                          upper = I(unname(ci[keep, 2])))
    }
    if (isTRUE(v$boot)) {
      b <- bootMer(m, fixef, nsim = 20, seed = 1)
      rec$boot_dim <- I(dim(b$t))
    }
    if (!is.null(v$anova)) {
      m0 <- fit_one(v, formula = v$anova)
      a <- suppressMessages(anova(m0, m, refit = !isFALSE(v$anova_refit)))
      rec$anova_formula <- v$anova
      rec$anova <- list(Chisq = a$Chisq[2], Df = a$Df[2], p = a[["Pr(>Chisq)"]][2],
                        deviance = I(a$deviance), AIC = I(a$AIC), BIC = I(a$BIC),
                        npar = I(a$npar))
    }
    if (isTRUE(v$ddf)) {
      suppressPackageStartupMessages(library(lmerTest))
      ml <- lmerTest::as_lmerModLmerTest(m)
      s1 <- summary(ml, ddf = "Satterthwaite")$coefficients
      s2 <- summary(ml, ddf = "Kenward-Roger")$coefficients
      a1 <- anova(ml, ddf = "Satterthwaite"); a2 <- anova(ml, ddf = "Kenward-Roger")
      rec$satt <- list(df = named(s1[, "df"]), p = named(s1[, "Pr(>|t|)"]))
      rec$kr <- list(df = named(s2[, "df"]), se = named(s2[, "Std. Error"]),
                     p = named(s2[, "Pr(>|t|)"]))
      rec$anova_satt <- list(terms = I(rownames(a1)), DenDF = I(a1$DenDF), F = I(a1[["F value"]]),
                             p = I(a1[["Pr(>F)"]]))
      rec$anova_kr <- list(terms = I(rownames(a2)), DenDF = I(a2$DenDF), F = I(a2[["F value"]]),
                           p = I(a2[["Pr(>F)"]]))
    }
    NULL
  }, error = function(e) conditionMessage(e))
  if (!is.null(r)) rec$error <- r
  res[[v$id]] <- rec
}
write_json(res, file.path(out, "lme4_sweep.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, null = "null", na = "null")
cat("wrote", length(res), "variants\n")
