# Wall time of brms (Stan's NUTS) on the models the sampler is checked on, for
# benchmarks/bayes_bench.py: Rscript benchmarks/r/time_brms.R out.json
# 4 chains x 1000 draws after 1000 warmup, run one after the other (cores = 1), as
# m.sample() runs them. Compilation is timed apart from sampling (brms compiles a Stan
# program per model). brms's default priors (half student-t on the sds, flat on the fixed
# effects): the timing, not the posterior, is compared.
suppressPackageStartupMessages({library(brms); library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "brms_timing.json"
models <- list(
  list(name = "Dyestuff", formula = Yield ~ 1 + (1 | Batch), data = lme4::Dyestuff),
  list(name = "Dyestuff2", formula = Yield ~ 1 + (1 | Batch), data = lme4::Dyestuff2),
  list(name = "sleepstudy", formula = Reaction ~ Days + (Days | Subject),
       data = lme4::sleepstudy)
)
res <- list()
for (m in models) {
  t0 <- proc.time()[["elapsed"]]
  fit0 <- brm(m$formula, data = m$data, chains = 0, silent = 2, refresh = 0)
  t_compile <- proc.time()[["elapsed"]] - t0
  t1 <- proc.time()[["elapsed"]]
  fit <- update(fit0, recompile = FALSE, chains = 4, cores = 1, iter = 2000,
                warmup = 1000, seed = 1, silent = 2, refresh = 0)
  t_sample <- proc.time()[["elapsed"]] - t1
  s <- summary(fit)
  ess <- min(c(s$fixed$Bulk_ESS, unlist(lapply(s$random, function(r) r$Bulk_ESS)),
               s$spec_pars$Bulk_ESS))
  res[[m$name]] <- list(compile_s = t_compile, sample_s = t_sample, min_ess_bulk = ess,
                        brms = as.character(packageVersion("brms")))
  cat(m$name, t_compile, t_sample, ess, "\n")
}
write_json(res, out, auto_unbox = TRUE, digits = 6, pretty = TRUE)
