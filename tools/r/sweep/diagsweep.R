# Parity sweep of the diagnostics and prediction toolbox (lane diagsweep) on models no
# existing fixture covers: performance 0.10.2 (r2_nakagawa, icc, check_overdispersion,
# check_zeroinflation, check_singularity), lme4 1.1-31 (isSingular, predict with re.form /
# allow.new.levels), glmmTMB 1.1.5 (predict(se.fit = TRUE), residuals). Not part of the test
# suite; tools/r/sweep/diagsweep.py compares. Run from the repository root:
#
#   Rscript tools/r/sweep/diagsweep.R --out=/tmp/diagsweep
#   python  tools/r/sweep/diagsweep.py --out /tmp/diagsweep
#
# Data modifications (both sides apply them to the package's CSV data sets):
#   na = c(i, ...)   response set to NA in these 1-based rows
#   w3               prior weights 1 + (row - 1) %% 3 (column "w3")

suppressPackageStartupMessages({
  library(lme4)
  library(glmmTMB)
  library(performance)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out <- sub("^--out=", "", grep("^--out=", args, value = TRUE))
if (!length(out)) out <- "/tmp/diagsweep"
dir.create(out, showWarnings = FALSE, recursive = TRUE)
data_dir <- "src/mixedmodels/datasets/data"
out_dir <- out
source("tools/r/fixture_io.R")

prep <- function(spec) {
  d <- if (isTRUE(spec$csv)) {
    x <- read.csv(file.path(out, "data", paste0(spec$data, ".csv")))
    x$g <- factor(x$g)
    x
  } else load_data(spec$data)
  d$w3 <- 1 + (seq_len(nrow(d)) - 1) %% 3
  if (!is.null(spec$na)) d[[spec$response]][spec$na] <- NA
  d
}

fit_spec <- function(spec, d) {
  # the call names global objects so that insight / update can refit the null model
  assign(".d", d, envir = globalenv())
  assign(".w", if (isTRUE(spec$weights)) d$w3 else NULL, envir = globalenv())
  f <- as.formula(spec$formula)
  tight <- quote(glmerControl(optimizer = "bobyqa", tolPwrss = 1e-12,
                              optCtrl = list(rhoend = 1e-9, maxfun = 1e5)))
  cl <- switch(spec$fitter,
    lmer = bquote(lmer(.(f), data = .d, REML = .(isTRUE(spec$REML)), weights = .w)),
    glmer = bquote(glmer(.(f), data = .d, family = .(as.name(spec$family))(link = .(spec$link)),
                         weights = .w, control = .(tight))),
    glmer.nb = bquote(glmer.nb(.(f), data = .d)),
    glmmTMB = bquote(glmmTMB(.(f), data = .d,
                             family = .(as.name(spec$family))(link = .(spec$link)),
                             weights = .w,
                             ziformula = .(as.formula(if (is.null(spec$zi)) "~0" else spec$zi)),
                             REML = .(isTRUE(spec$REML)))))
  eval(cl, globalenv())
}

safe <- function(expr) tryCatch(suppressWarnings(expr), error = function(e) paste("ERROR:", conditionMessage(e)))

variants <- list(
  lmer_weights_slope = list(fitter = "lmer", data = "sleepstudy", REML = TRUE,
                            response = "Reaction", weights = TRUE,
                            formula = "Reaction ~ Days + (Days | Subject)"),
  lmer_na_rows = list(fitter = "lmer", data = "sleepstudy", REML = TRUE, response = "Reaction",
                      na = c(3, 17, 40, 41, 150), formula = "Reaction ~ Days + (Days | Subject)"),
  lmer_crossed_inter = list(fitter = "lmer", data = "Contraception", REML = FALSE,
                            response = "age",
                            formula = "age ~ livch + (1 | district) + (1 | urban:livch)"),
  lmer_singular_crossed = list(fitter = "lmer", data = "Pastes", REML = TRUE,
                               response = "strength",
                               formula = "strength ~ 1 + (1 | batch) + (1 | cask)"),
  glmer_pois_offset_slope = list(fitter = "glmer", data = "Owls", family = "poisson",
                                 link = "log", response = "SiblingNegotiation",
                                 formula = paste("SiblingNegotiation ~ FoodTreatment +",
                                                 "ArrivalTime + offset(logBroodSize) +",
                                                 "(FoodTreatment | Nest)")),
  glmer_pois_na = list(fitter = "glmer", data = "grouseticks", family = "poisson",
                       link = "log", response = "TICKS", na = c(2, 50, 51, 300),
                       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"),
  glmer_nb_offset = list(fitter = "glmer.nb", data = "Owls", response = "SiblingNegotiation",
                         formula = paste("SiblingNegotiation ~ FoodTreatment + ArrivalTime +",
                                         "offset(logBroodSize) + (1 | Nest)")),
  glmer_cbind_weights = list(fitter = "glmer", data = "cbpp", family = "binomial",
                             link = "logit", response = "incidence",
                             formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                             weights = TRUE),
  glmer_gamma_log = list(fitter = "glmer", data = "gammasim", family = "Gamma", link = "log",
                         response = "y", formula = "y ~ x + (1 | g)"),
  glmer_bern_slope = list(fitter = "glmer", data = "Contraception", family = "binomial",
                          link = "logit", response = "use",
                          formula = "use ~ age + urban + (age | district)"),
  tmb_nb2_slope = list(fitter = "glmmTMB", data = "Owls", family = "nbinom2", link = "log",
                       response = "SiblingNegotiation",
                       formula = paste("SiblingNegotiation ~ FoodTreatment + ArrivalTime +",
                                       "offset(logBroodSize) + (FoodTreatment | Nest)")),
  tmb_pois_crossed = list(fitter = "glmmTMB", data = "grouseticks", family = "poisson",
                          link = "log", response = "TICKS",
                          formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"),
  tmb_gamma_na = list(fitter = "glmmTMB", data = "gammasim", family = "Gamma", link = "log",
                      response = "y", na = c(1, 10, 99), formula = "y ~ x + (1 | g)"),
  tmb_binom_weights = list(fitter = "glmmTMB", data = "cbpp", family = "binomial",
                           link = "logit", response = "incidence", weights = TRUE,
                           formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  lmer_sim_singular = list(fitter = "lmer", data = "simsing", csv = TRUE, REML = TRUE,
                           response = "y", formula = "y ~ x + (1 | g)"),
  glmer_sim_singular = list(fitter = "glmer", data = "simsing", csv = TRUE, family = "poisson",
                            link = "log", response = "c", formula = "c ~ x + (1 | g)"),
  tmb_sim_singular = list(fitter = "glmmTMB", data = "simsing", csv = TRUE, family = "poisson",
                          link = "log", response = "c", formula = "c ~ x + (1 | g)"),
  tmb_gauss_reml_slope = list(fitter = "glmmTMB", data = "Orthodont", family = "gaussian",
                              link = "identity", response = "distance", REML = TRUE,
                              formula = "distance ~ age + Sex + (age | Subject)")
)

newdata_for <- function(name, d) {
  # first 4 complete rows, the grouping factors of the last row set to a level not in data
  cc <- d[stats::complete.cases(d[, intersect(names(d), all.vars(as.formula(variants[[name]]$formula)))]), ]
  nd <- cc[c(1, 2, 5, 9), ]
  rownames(nd) <- NULL
  nd
}

res <- list()
for (name in names(variants)) {
  spec <- variants[[name]]
  cat(name, "\n")
  d <- prep(spec)
  m <- tryCatch(suppressWarnings(fit_spec(spec, d)), error = function(e) e)
  if (inherits(m, "error")) {
    res[[name]] <- list(spec = spec, error = conditionMessage(m))
    next
  }
  rec <- list(spec = spec, logLik = as.numeric(logLik(m)),
              beta = unname(if (inherits(m, "glmmTMB")) fixef(m)$cond else fixef(m)))
  if (inherits(m, "glmmTMB")) rec$vc <- lapply(VarCorr(m)$cond, function(v) as.vector(v)) else
    rec$theta <- unname(getME(m, "theta"))
  r2 <- safe(r2_nakagawa(m, tolerance = 1e-5))
  # a singular fit: r2 has only the marginal R2 (conditional NA), icc is NA
  pick <- function(x, k) if (is.list(x) && !is.null(x[[k]])) unname(x[[k]]) else NA
  rec$r2 <- if (is.character(r2)) r2 else
    list(conditional = pick(r2, "R2_conditional"), marginal = pick(r2, "R2_marginal"))
  ic <- safe(icc(m))
  rec$icc <- if (is.character(ic)) ic else if (is.null(ic)) "NULL" else
    list(adjusted = pick(ic, "ICC_adjusted"), unadjusted = pick(ic, "ICC_unadjusted"))
  vv <- safe(insight::get_variance(m, tolerance = 1e-5))
  rec$variance <- if (is.character(vv)) vv else lapply(vv, function(v) unname(unlist(v)))
  od <- safe(check_overdispersion(m))
  rec$overdispersion <- if (is.character(od)) od else
    list(chisq = od$chisq_statistic, ratio = od$dispersion_ratio, rdf = od$residual_df,
         p = od$p_value)
  zi <- safe(check_zeroinflation(m))
  rec$zeroinflation <- if (is.character(zi) || is.null(zi)) zi else
    list(predicted = zi$predicted.zeros, observed = zi$observed.zeros)
  rec$singular_perf <- safe(as.logical(check_singularity(m)))
  rec$convergence <- safe(as.logical(check_convergence(m)))
  if (!inherits(m, "glmmTMB")) rec$isSingular <- isSingular(m)
  nd <- newdata_for(name, d)
  if (inherits(m, "glmmTMB")) {
    for (tp in c("link", "response")) {
      p <- safe(predict(m, newdata = nd, type = tp, se.fit = TRUE))
      rec[[paste0("pred_", tp)]] <- if (is.character(p)) p else
        list(fit = as.vector(p$fit), se = as.vector(p$se.fit))
      p0 <- safe(predict(m, newdata = nd, type = tp, se.fit = TRUE, re.form = NA))
      rec[[paste0("pred0_", tp)]] <- if (is.character(p0)) p0 else
        list(fit = as.vector(p0$fit), se = as.vector(p0$se.fit))
    }
    fl <- names(m$modelInfo$reTrms$cond$flist)
    if (length(fl) > 1) {
      bars <- findbars(formula(m))
      keep <- bars[vapply(bars, function(b) deparse(b[[3]]) == fl[1], logical(1))]
      rf <- as.formula(paste("~", paste0("(", vapply(keep, deparse, ""), ")", collapse = "+")))
      rec$re_form_partial <- deparse(rf)
      p <- safe(predict(m, newdata = nd, re.form = rf, se.fit = TRUE))
      rec$pred_partial <- if (is.character(p)) p else
        list(fit = as.vector(p$fit), se = as.vector(p$se.fit))
    }
    nd2 <- nd
    for (g in fl) if (!grepl(":", g)) {
      nd2[[g]] <- as.character(nd2[[g]])
      nd2[[g]][4] <- "zz_new"
    }
    p <- safe(predict(m, newdata = nd2, se.fit = TRUE, allow.new.levels = TRUE))
    rec$pred_newlev <- if (is.character(p)) p else
      list(fit = as.vector(p$fit), se = as.vector(p$se.fit))
    rec$resid_response <- as.vector(residuals(m, type = "response"))
    rec$resid_pearson <- as.vector(residuals(m, type = "pearson"))
  } else {
    rec$pred <- as.vector(predict(m, newdata = nd))
    rec$pred0 <- as.vector(predict(m, newdata = nd, re.form = NA))
    if (length(getME(m, "flist")) > 1) {
      g1 <- names(getME(m, "flist"))[1]
      bars <- findbars(formula(m))
      keep <- bars[vapply(bars, function(b) deparse(b[[3]]) == g1, logical(1))]
      rf <- as.formula(paste("~", paste0("(", vapply(keep, deparse, ""), ")", collapse = "+")))
      rec$re_form_partial <- deparse(rf)
      rec$pred_partial <- as.vector(predict(m, newdata = nd, re.form = rf))
    }
    nd2 <- nd
    for (g in names(getME(m, "flist"))) {
      if (!grepl(":", g)) {
        nd2[[g]] <- as.character(nd2[[g]])
        nd2[[g]][4] <- "zz_new"
      }
    }
    rec$pred_newlev <- safe(as.vector(predict(m, newdata = nd2, allow.new.levels = TRUE)))
    rec$pred_resp <- as.vector(predict(m, newdata = nd, type = "response"))
    for (tp in c("deviance", "pearson", "response", "working"))
      rec[[paste0("resid_", tp)]] <- as.vector(residuals(m, type = tp))
  }
  rec$newdata <- nd
  res[[name]] <- rec
}
write_fixture(res, "ref.json")
cat("wrote", file.path(out, "ref.json"), "\n")
