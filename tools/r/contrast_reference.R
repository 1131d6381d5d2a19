# lme4's fits with R's polynomial and sum contrasts, for tests/test_design_fast.py
# (test_ordered_and_contrast_fits_match_r). Rscript tools/r/contrast_reference.R
suppressMessages(library(lme4))
m <- lmer(angle ~ recipe * temperature + (1 | recipe:replicate), cake)   # ordered temperature
print(head(fixef(m), 8), digits = 8); print(logLik(m), digits = 8)
o <- read.csv("src/mixedmodels/datasets/data/Orthodont.csv", stringsAsFactors = TRUE)
o$Sex <- factor(o$Sex, levels = c("Male", "Female"))
m <- lmer(distance ~ age * Sex + (1 | Subject), o, contrasts = list(Sex = "contr.sum"))
print(fixef(m), digits = 8); print(logLik(m), digits = 8)
