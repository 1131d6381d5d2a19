# lme4's polynomial fits on sleepstudy for tests/test_design_fast.py (LME4_POLY).
# Rscript tools/r/poly_reference.R
suppressMessages(library(lme4))
s <- read.csv("src/mixedmodels/datasets/data/sleepstudy.csv")
for (f in c("Reaction ~ poly(Days, 2, raw = TRUE) + (1 | Subject)",
            "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)")) {
  m <- lmer(as.formula(f), s)
  cat(f, "\n"); print(fixef(m), digits = 8); print(logLik(m), digits = 8)
}
