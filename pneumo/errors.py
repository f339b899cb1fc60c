"""Typed errors. Every error the library raises on bad input is a PneumoError, whose
message is one readable line (the CLI and app print it as it is)."""


class PneumoError(ValueError):
    """Base class: bad input or state the user can fix; str(err) is one line."""


class ImageError(PneumoError):
    """An image that cannot be read (corrupt, truncated, empty, not an image)."""


class UnsupportedImageError(ImageError):
    """A readable image this tool must not interpret (CT/MR, colour, multi-frame, too small/large)."""


class LabError(PneumoError):
    """Lab values that cannot be parsed or are implausible."""


class CohortError(PneumoError):
    """A data source that is missing or malformed."""


class ManifestError(CohortError):
    """A manifest row or file that is unusable (missing column, path outside root)."""


class BundleError(PneumoError):
    """A model bundle that is missing, corrupted or inconsistent."""


class NothingToReadError(PneumoError):
    """A case with neither a film nor a usable lab value: there is nothing to score."""


def one_line(text, limit: int | None = 300) -> str:
    """Any text as one line of at most `limit` characters (None: any length): white space folded,
    a longer one cut with '...'."""
    text = " ".join(str(text).split())
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
