# The committed fixture of lane bayessweep: a few cases of tools/r/sweep/bayessweep.R's grid
# (3x3 and singular-prone slopes, crossed terms, a residual gamma prior on the variance, a
# Poisson bglmer with a random slope) plus blme's handling of a normal() prior given more
# sds than fixed effects (blme warns and drops the extra ones). Run from the repository root:
#
#   Rscript tools/r/sweep/bayessweep_fixtures.R
#
# writes tests/fixtures/sweep/bayessweep_parity.json (tests/test_sweep_bayessweep.py).
only <- c("s3_default_reml", "s3_t_fixef_resid_invgamma", "sl_resid_gamma_var_ml",
          "cr_by_group_ml", "orth_invwishart_full_scale", "pg_poisson_invwishart_t",
          "sleep_normal_sd_too_long")
status <- system2("Rscript", c("tools/r/sweep/bayessweep.R", "--out=tests/fixtures/sweep",
                               "--file=bayessweep_parity.json",
                               paste0("--only=", paste(only, collapse = ","))))
stopifnot(status == 0)
