# Wall time of rstanarm's stan_lmer (Stan's NUTS, precompiled models) on the models the
# sampler is checked on, for benchmarks/bayes_bench.py:
#   Rscript benchmarks/r/time_rstanarm.R out.json
# 4 chains x 1000 draws after 1000 warmup, one after the other (cores = 1), as m.sample()
# runs them. rstanarm's default (weakly informative) priors: the timing, not the posterior,
# is compared. (brms needs to compile a Stan program per model, which fails on this
# machine: rstan cannot find Boost; rstanarm's models are compiled at install time.)
suppressPackageStartupMessages({library(rstanarm); library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "rstanarm_timing.json"
models <- list(
  list(name = "Dyestuff", formula = Yield ~ 1 + (1 | Batch), data = lme4::Dyestuff),
  list(name = "Dyestuff2", formula = Yield ~ 1 + (1 | Batch), data = lme4::Dyestuff2),
  list(name = "sleepstudy", formula = Reaction ~ Days + (Days | Subject),
       data = lme4::sleepstudy)
)
res <- list()
for (m in models) {
  t0 <- proc.time()
  fit <- stan_lmer(m$formula, data = m$data, chains = 4, cores = 1, iter = 2000,
                   warmup = 1000, seed = 1, refresh = 0)
  el <- proc.time() - t0
  s <- summary(fit)
  keep <- !grepl("^b\\[|mean_PPD|log-posterior", rownames(s))
  res[[m$name]] <- list(wall_s = el[["elapsed"]], cpu_s = el[["user.self"]] + el[["sys.self"]],
                        min_n_eff = min(s[keep, "n_eff"]),
                        rstanarm = as.character(packageVersion("rstanarm")))
  cat(m$name, el[["elapsed"]], min(s[keep, "n_eff"]), "\n")
}
write_json(res, out, auto_unbox = TRUE, digits = 6, pretty = TRUE)
