# The simulated data of the "sweepr" batch (tools/r/sweep/sweepr_nlme.R and
# sweepr_fixtures.R source this; call set.seed(20261203) first for the same rows).
# sr: 30 groups of unbalanced size (3 singletons), a subgroup h within g, strata f, whole-
# number visits with gaps (t), irregular days in 1..1000 (day), coordinates, AR(1) errors
# and a random intercept; the rows are shuffled (no group is contiguous)
sim_sr <- function() {
  sizes <- c(1, 1, 1, sample(2:12, 27, replace = TRUE))
  rows <- list()
  for (i in seq_along(sizes)) {
    k <- sizes[i]
    t <- sort(sample(1:16, k))
    day <- round(sort(runif(k, 1, 1000)), 3)
    e <- as.numeric(arima.sim(list(ar = 0.6), n = 16))[t]
    f <- sample(c("a", "b", "c"), k, replace = TRUE)
    x <- rnorm(k)
    z <- runif(k, -1, 1)
    sdf <- c(a = 1, b = 1.6, c = 0.7)[f]
    y <- 2 + 0.5 * x - 0.3 * z + rnorm(1, 0, 0.8) + sdf * e * exp(0.3 * z)
    rows[[i]] <- data.frame(g = sprintf("G%02d", i), h = paste0("h", 1 + (seq_len(k) %% 2)),
                            f = f, t = t, day = day, x = round(x, 6), z = round(z, 6),
                            cx = round(runif(k, 0, 100), 4), cy = round(runif(k, 0, 100), 4),
                            y = round(y, 6))
  }
  d <- do.call(rbind, rows)
  d$xpos <- round(exp(d$x / 2), 6)
  d$yb <- round(d$y * 1e4 + 1e6, 3)             # large scale and shift
  d$ypos <- round(exp(d$y / 2), 6)
  # counts: Poisson with an exposure, binomial successes of trials
  eta <- -0.5 + 0.4 * d$x + rnorm(30, 0, 0.5)[as.integer(factor(d$g))]
  d$expo <- round(runif(nrow(d), 0.5, 4), 3)
  d$cnt <- rpois(nrow(d), d$expo * exp(eta))
  d$ntr <- sample(3:15, nrow(d), replace = TRUE)
  d$k <- rbinom(nrow(d), d$ntr, plogis(eta + 0.5))
  d[sample(nrow(d)), ]
}
