# lme4's printed summaries for the lmer models of tests/reference/visible.json, saved as
# text fixtures (tests/fixtures/summary/<id>.txt). Run from the repository root:
#   Rscript tools/r/summary_fixtures.R
suppressMessages(library(lme4))
suppressMessages(library(jsonlite))
levels_json <- fromJSON("src/mixedmodels/datasets/data/factor_levels.json")
load_data <- function(name) {
  path <- file.path("src/mixedmodels/datasets/data", paste0(name, ".csv"))
  if (!file.exists(path)) path <- paste0(path, ".gz")
  d <- read.csv(path)
  lv <- levels_json[[name]]
  for (col in names(lv)) d[[col]] <- factor(as.character(d[[col]]), levels = lv[[col]])
  d
}
models <- list(
  sleepstudy_reml = list("sleepstudy", Reaction ~ Days + (Days | Subject), TRUE),
  sleepstudy_ml = list("sleepstudy", Reaction ~ Days + (Days | Subject), FALSE),
  sleepstudy_uncorr = list("sleepstudy", Reaction ~ Days + (Days || Subject), TRUE),
  dyestuff = list("Dyestuff", Yield ~ 1 + (1 | Batch), TRUE),
  penicillin_crossed = list("Penicillin", diameter ~ 1 + (1 | plate) + (1 | sample), TRUE),
  pastes_nested = list("Pastes", strength ~ 1 + (1 | batch/cask), TRUE),
  orthodont = list("Orthodont", distance ~ age * Sex + (age | Subject), TRUE),
  cake_interaction = list("cake", angle ~ recipe * temperature + (1 | recipe:replicate), TRUE)
)
for (id in names(models)) {
  spec <- models[[id]]
  d <- load_data(spec[[1]])
  m <- lmer(spec[[2]], d, REML = spec[[3]])
  out <- capture.output(print(summary(m)))
  writeLines(out, file.path("tests/fixtures/summary", paste0(id, ".txt")))
}
