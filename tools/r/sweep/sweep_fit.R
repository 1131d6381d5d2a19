# Shared fitting loop of the glmmTMB parity sweeps (sweepg_glmmtmb.R, sweepx_glmmtmb.R):
# fits every spec with glmmTMB and returns one record per spec in the layout that
# tools/r/sweep/sweep.py / sweepg.py compare with our fits (objective, fixed effects and SEs
# of every component, VarCorr sds and correlations, the first link/response predictions and
# link SEs, response predictions and SEs on four rows with new grouping levels).
#
#   source(file.path(<this folder>, "sweep_fit.R"))
#   results <- fit_specs(specs, sets, only, label = function(s) paste0("sg_", s$data))
#
# A spec is a list(id, formula, family (R code), zi, disp, REML, weights, offset, data
# (a name in `sets`), py (our formula), start (R code or NULL), engine, ...); any further
# fields (note, slow, ...) are copied into the record.
suppressPackageStartupMessages({library(jsonlite); library(glmmTMB)})

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
         cor = I(num(attr(v, "correlation")[lower.tri(attr(v, "correlation"))])),
         cov = lapply(seq_len(nrow(v)), function(i) I(num(v[i, ]))))
  })
}
#: grouping columns given a new level in new_level_rows (when the data have them)
NEW_LEVEL_COLUMNS <- c("g", "g1", "gnum", "gchr", "Grüppe", "h")
# the first four rows with a new level of every grouping column in the first two
new_level_rows <- function(data, cols = NEW_LEVEL_COLUMNS) {
  nd <- data[1:4, ]
  for (col in intersect(cols, names(nd))) {
    if (is.factor(nd[[col]])) {
      v <- as.character(nd[[col]]); v[1:2] <- "NEWLEVEL"; nd[[col]] <- factor(v)
    } else if (is.numeric(nd[[col]])) nd[[col]][1:2] <- 10^6
  }
  nd
}

# one spec -> one record
fit_spec <- function(s, data, label, new_level_cols = NEW_LEVEL_COLUMNS) {
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
              weights = s$weights, offset = s$offset, data = label,
              engine = s$engine, seconds = secs, warnings = I(r$warnings))
  extra <- setdiff(names(s), c(names(rec), "py", "zi", "disp"))
  rec[extra] <- s[extra]
  if (inherits(r$value, "error")) {
    rec$error <- conditionMessage(r$value)
    return(rec)
  }
  fit <- r$value
  vc <- tryCatch(vcov(fit), error = function(e) NULL)
  se <- function(comp) if (is.null(vc) || is.null(vc[[comp]])) NULL else {
    v <- sqrt(diag(as.matrix(vc[[comp]])))
    names(v) <- sub("^(zi|d)~", "", names(v))
    named(v)
  }
  fe <- fixef(fit)
  rec$objective <- 2 * fit$fit$objective
  rec$convergence <- fit$fit$convergence
  rec$pdHess <- isTRUE(fit$sdr$pdHess)
  rec$beta <- named(fe$cond); rec$beta_zi <- named(fe$zi); rec$beta_disp <- named(fe$disp)
  rec$se <- se("cond"); rec$se_zi <- se("zi"); rec$se_disp <- se("disp")
  vcr <- VarCorr(fit)
  rec$varcorr <- list(cond = sdcomp(vcr$cond), zi = sdcomp(vcr$zi))
  rec$sigma <- num(sigma(fit))
  rec$par <- list(names = I(names(fit$fit$par)), values = I(num(fit$fit$par)))
  rec$nobs <- nobs(fit)
  rec$pred_link_head <- I(num(head(predict(fit, type = "link"), 5)))
  rec$pred_resp_head <- I(num(head(predict(fit, type = "response"), 5)))
  pse <- tryCatch(predict(fit, type = "link", se.fit = TRUE), error = function(e) NULL)
  if (!is.null(pse)) rec$pred_link_se_head <- I(num(head(pse$se.fit, 5)))
  nd <- new_level_rows(data, new_level_cols)
  pn <- tryCatch(predict(fit, newdata = nd, type = "response", se.fit = TRUE,
                         allow.new.levels = TRUE), error = function(e) conditionMessage(e))
  if (is.character(pn)) rec$pred_new_error <- pn else {
    rec$pred_new_fit <- I(num(pn$fit)); rec$pred_new_se <- I(num(pn$se.fit))
  }
  rec
}

# every spec (or those in `only`), printing one line each; returns the named list of records
fit_specs <- function(specs, sets, only = NULL, label = function(s) s$data,
                      new_level_cols = NEW_LEVEL_COLUMNS) {
  results <- list()
  for (s in specs) {
    if (!is.null(only) && !(s$id %in% only)) next
    rec <- fit_spec(s, sets[[s$data]], label(s), new_level_cols)
    results[[s$id]] <- rec
    cat(sprintf("%-26s %6.2fs %s\n", s$id, rec$seconds,
                if (is.null(rec$error)) sprintf("%.4f conv=%d pd=%s", rec$objective, rec$convergence, rec$pdHess)
                else paste("ERROR", rec$error)))
    flush(stdout())
  }
  results
}

write_records <- function(results, path) {
  write_json(results, path, digits = NA, auto_unbox = TRUE, pretty = TRUE, na = "null")
}
