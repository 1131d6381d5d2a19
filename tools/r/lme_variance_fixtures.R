# nlme lme fits with a variance function (varConstPower, varPower, varExp) on BodyWeight,
# Orthodont and simulated heteroscedastic data: the reference that our lmer(variance=) is
# never worse than nlme (its log-likelihood or higher) whatever the start's basin. Run from
# the repository root:
#
#   Rscript tools/r/lme_variance_fixtures.R
#
# Writes tests/fixtures/lme_variance/<data>.csv and fixtures.json: per model the R call, the
# Python call (tests evaluate it with `mm` and the data as `d`), nlme's logLik, fixed
# effects, their standard errors, sigma, the random-intercept sd and the variance
# parameters (natural scale), and nlme's CPU time of one fit.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
out_dir <- file.path("tests", "fixtures", "lme_variance")
dir.create(out_dir, recursive = TRUE, showWarnings = FALSE)
write_data <- function(df, name) write.csv(df, file.path(out_dir, paste0(name, ".csv")),
                                           row.names = FALSE)

# -- data ------------------------------------------------------------------------------------
bw <- as.data.frame(BodyWeight)
bw <- data.frame(weight = bw$weight, Time = bw$Time, Rat = sprintf("R%02d", as.integer(as.character(bw$Rat))),
                 Diet = paste0("D", bw$Diet))
write_data(bw, "bodyweight")
orth <- as.data.frame(Orthodont)
orth <- data.frame(distance = orth$distance, age = orth$age, Subject = as.character(orth$Subject),
                   Sex = as.character(orth$Sex))
write_data(orth, "orthodont")
# simulated: a random intercept (sd 1) and residual sd  s * (c + v^delta)  or  s * exp(delta v)
sim <- function(seed, n_g, n_i, c0, delta, kind) {
  set.seed(seed)
  d <- data.frame(g = sprintf("g%02d", rep(seq_len(n_g), each = n_i)))
  d$v <- round(runif(nrow(d), 0.5, 6), 4)
  d$x <- round(rnorm(nrow(d)), 4)
  sdv <- switch(kind, constpower = c0 + d$v^delta, power = d$v^delta, exp = exp(delta * d$v))
  b <- rnorm(n_g)[as.integer(factor(d$g))]
  d$y <- round(1 + 0.5 * d$x + b + rnorm(nrow(d)) * 0.7 * sdv, 6)
  d
}
sims <- list(sim_cp1 = sim(9101, 25, 6, 1.0, 0.8, "constpower"),
             sim_cp2 = sim(9102, 40, 4, 0.2, 1.3, "constpower"),
             sim_cp3 = sim(9103, 15, 10, 3.0, -0.5, "constpower"),
             sim_pw = sim(9104, 30, 5, 0, 0.6, "power"),
             sim_ex = sim(9105, 30, 5, 0, -0.25, "exp"))
for (nm in names(sims)) write_data(sims[[nm]], nm)
read_data <- function(name) read.csv(file.path(out_dir, paste0(name, ".csv")),
                                     stringsAsFactors = TRUE)
datasets <- c(list(bodyweight = read_data("bodyweight"), orthodont = read_data("orthodont")),
              lapply(setNames(names(sims), names(sims)), read_data))

# -- records ---------------------------------------------------------------------------------
record <- function(m) {
  vs <- coef(m$modelStruct$varStruct, unconstrained = FALSE)
  cf <- fixef(m)
  list(logLik = as.numeric(logLik(m)), coef = as.numeric(cf), coef_names = names(cf),
       se = as.numeric(sqrt(diag(vcov(m)))), sigma = m$sigma,
       re_sd = as.numeric(VarCorr(m)[1, "StdDev"]),
       var_params = as.list(setNames(as.numeric(vs), names(vs))))
}
models <- list()
# R's variance functions and ours
VF <- list(constpower = c("varConstPower(form = ~ %s)", "mm.var_const_power(form='~ %s')"),
           power = c("varPower(form = ~ %s)", "mm.var_power(form='~ %s')"),
           exp = c("varExp(form = ~ %s)", "mm.var_exp(form='~ %s')"))
add <- function(data, fixed, group, cov, vf, ml = FALSE) {
  name <- paste(data, vf, if (ml) "ml" else "reml", sep = "_")
  r_call <- sprintf("lme(%s, d, random = ~ 1 | %s, weights = %s%s)", fixed, group,
                    sprintf(VF[[vf]][1], cov), if (ml) ", method = 'ML'" else "")
  py_call <- sprintf("mm.lmer('%s + (1 | %s)', d, variance=%s%s)", fixed, group,
                     sprintf(VF[[vf]][2], cov), if (ml) ", REML=False" else "")
  env <- list2env(list(d = datasets[[data]]), parent = globalenv())
  m <- tryCatch(eval(parse(text = r_call), env), error = function(e) e)
  if (inherits(m, "error")) {     # nlme's own failures (nlminb's false convergence): no reference
    cat(sprintf("%-28s nlme failed: %s\n", name, conditionMessage(m)))
    return(invisible())
  }
  reps <- 20
  t0 <- proc.time()
  for (i in seq_len(reps)) eval(parse(text = r_call), env)
  el <- proc.time() - t0
  rec <- c(list(name = name, data = data, r_call = r_call, py_call = py_call,
                nlme_s = as.numeric(el[1] + el[2]) / reps), record(m))
  models[[length(models) + 1]] <<- rec
  cat(sprintf("%-28s logLik %.6f  %s\n", name, rec$logLik,
              paste(sprintf("%.4g", unlist(rec$var_params)), collapse = " ")))
}
for (vf in names(VF)) for (ml in c(FALSE, TRUE)) {
  add("bodyweight", "weight ~ Time", "Rat", "Time", vf, ml)
  add("orthodont", "distance ~ age", "Subject", "age", vf, ml)
}
for (vf in names(VF)) for (nm in names(sims)) add(nm, "y ~ x", "g", "v", vf)
write_json(list(versions = list(R = R.version.string,
                                nlme = as.character(packageVersion("nlme"))),
                models = models),
           file.path(out_dir, "fixtures.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "string")
