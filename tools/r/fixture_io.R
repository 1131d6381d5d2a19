# Shared by the fixture scripts (source it after setting data_dir and out_dir): the
# package's CSV data sets with R's factor level orders (unordered factors), so that R and
# Python fit the same data, and the JSON writer of the fixtures.

dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
levels_json <- jsonlite::fromJSON(file.path(data_dir, "factor_levels.json"))

load_data <- function(name) {
  d <- read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE)
  lv <- levels_json[[name]]
  for (col in names(lv)) d[[col]] <- factor(as.character(d[[col]]), levels = lv[[col]])
  d
}

write_fixture <- function(x, file) {
  jsonlite::write_json(x, file.path(out_dir, file), digits = NA, auto_unbox = TRUE,
                       pretty = TRUE, na = "string")
}
