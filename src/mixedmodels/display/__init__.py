"""Display of results: tables rendered as text, HTML, Markdown and LaTeX, and progress bars.

Everything here is formatting only -- no statistics -- and needs no package beyond the core
dependencies (HTML, Markdown and LaTeX are generated directly; ``tqdm`` is used for
progress when installed).
"""

from .progress import Progress, progress_bar
from .tables import Report, ReportDisplay, Table, frame_table

__all__ = ["Progress", "Report", "ReportDisplay", "Table", "frame_table", "progress_bar"]
