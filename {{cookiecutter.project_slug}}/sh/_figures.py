"""The figures of sh/report.py and sh/analyze.py: one style, sized for one column of a paper, and each figure
written three ways: PNG (screens, report.html), PDF and SVG (vector, for the paper: the PDF embeds its fonts as
TrueType, the SVG draws its text as paths, so neither needs a font on the reader's machine).

    \\includegraphics{res/<exp>/report/curves.pdf}     % one column wide, no scaling needed
"""
from pathlib import Path

from runtime.run_folder import atomic_file

COLUMN_WIDTH = 3.5  # inches: one column of a two-column paper (IEEE 3.5 in, ACM 3.33 in)
FORMATS = ("png", "pdf", "svg")
PNG_DPI = 200  # 700 pixels across
PAPER_STYLE = {
    "figure.figsize": (COLUMN_WIDTH, 2.6),
    "figure.constrained_layout.use": True,
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 6, "figure.titlesize": 8,
    "lines.linewidth": 1.0, "lines.markersize": 3, "axes.linewidth": 0.6,
    "pdf.fonttype": 42,  # TrueType, embedded: publishers refuse Type 3 fonts
    "svg.fonttype": "path",
}


def use_paper_style() -> None:
    """Files only (no window), in the paper's sizes; call before any figure is made."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(PAPER_STYLE)


def figure(height: float = 2.6):
    """A new figure one column wide and ``height`` inches high."""
    from matplotlib.figure import Figure

    use_paper_style()
    return Figure(figsize=(COLUMN_WIDTH, height), layout="constrained")


def save(fig, folder: Path, stem: str) -> Path:
    """Write ``fig`` as ``<stem>.png``, ``.pdf`` and ``.svg`` in ``folder``, each whole (a script stopped midway keeps
    the previous file); return the PNG's path (the vector files lie beside it)."""
    for extension in FORMATS:
        with atomic_file(Path(folder) / f"{stem}.{extension}", "wb") as f:
            fig.savefig(f, format=extension, dpi=PNG_DPI)
    return Path(folder) / f"{stem}.png"
