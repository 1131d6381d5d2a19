# Profile-likelihood intervals of glmmTMB 1.1.5 for tests/test_glmmtmb_profile.py:
#   Rscript tools/r/glmmtmb_profile_fixtures.R  (from the repository root)
suppressPackageStartupMessages({library(glmmTMB); library(jsonlite)})
lev <- fromJSON("src/mixedmodels/datasets/data/factor_levels.json")
load <- function(name) {
  l <- lev[[name]]
  df <- read.csv(file.path("src/mixedmodels/datasets/data", paste0(name, ".csv")),
                 colClasses = setNames(rep("character", length(l)), names(l)))
  for (col in names(l)) df[[col]] <- factor(df[[col]], levels = l[[col]])
  df
}
models <- list(
  gammasim = list(data = "gammasim", formula = y ~ x + (1 | g), zi = ~0, disp = ~1,
                  family = Gamma(link = "log")),
  owls_nb1 = list(data = "Owls",
                  formula = SiblingNegotiation ~ FoodTreatment + offset(log(BroodSize)) +
                    (1 | Nest), zi = ~0, disp = ~1, family = nbinom1())
)
out <- lapply(models, function(m) {
  fit <- glmmTMB(m$formula, data = load(m$data), family = m$family, ziformula = m$zi,
                 dispformula = m$disp)
  ci <- confint(fit, method = "profile")
  list(formula = deparse(m$formula), family = m$family$family, link = m$family$link,
       objective = -2 * as.numeric(logLik(fit)),
       rows = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
       glmmTMB = as.character(packageVersion("glmmTMB")))
})
dir.create("tests/fixtures/glmmtmb_profile", showWarnings = FALSE)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/fixtures/glmmtmb_profile/profiles.json")
