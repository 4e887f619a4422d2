"""The report's one error type: bad input a user can fix, and how its messages quote CSV text."""


class ReportInputError(Exception):
    """A problem with the results folder that the user can fix; the message is one line."""


def quoted(value: object, limit: int = 60) -> str:
    """`value` as a message quotes it: repr (control characters escaped, so the message stays
    one line), cut to about `limit` characters (a CSV field may be megabytes long)."""
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else f"{text[: limit - 4]}...{text[-1]}"


def quoted_path(path: object) -> str:
    """A path as a message quotes it: repr, long enough for any sensible path."""
    return quoted(str(path), 400)
