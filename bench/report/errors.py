"""The report's one error type: bad input a user can fix."""


class ReportInputError(Exception):
    """A problem with the results folder that the user can fix; the message is one line."""
