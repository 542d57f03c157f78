"""Plain-language reasons and fix hints for every rejection code, for district IT staff (not engineers).

``hint_for`` first recognises common export accidents from the message or the rejected value (a PowerSchool
table prefix in the header, a file saved by Excel in Windows-1252, dates written with slashes, a grade list
written without quotes, a grade that lost its leading zero), then falls back to the code's own reason and
fix. Slashed dates are described only as far as they are certain (a part above 12 is the day; otherwise the
order is ambiguous and no rewrite is proposed). A file's cut-off last line gets :data:`TRUNCATED` (the report
knows which line is last; a message saying so is recognised too). Codes are the ones ``etl_project.oneroster``
writes to ``oneroster.rejects``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Hint:
    reason: str  # what is wrong, in plain words
    fix: str  # what to change in the SIS or the export


# One entry per code written by etl_project/oneroster (validate.py, load.py, header.py, read.py).
CODES: dict[str, Hint] = {
    # whole-file problems
    "manifest_mismatch": Hint(
        "manifest.csv and the files in the drop disagree (a file is listed but missing, present but marked "
        "absent, or has an unknown mode).",
        "Re-run the OneRoster export so that manifest.csv is written together with the files; every file "
        "listed as bulk or delta must be in the drop, and files marked absent must not be.",
    ),
    "missing_column": Hint(
        "A column OneRoster requires is missing from the file's header, so the whole file was not loaded.",
        "Add the missing column to the export template (the column name is in the message) and export again.",
    ),
    "unknown_header": Hint(
        "The header row does not use OneRoster column names, so the file cannot be read.",
        "Export with the OneRoster CSV template of your SIS, not a custom report; the first row must be the "
        "OneRoster column names such as sourcedId, status, dateLastModified.",
    ),
    "duplicate_header": Hint(
        "Two columns in the header have the same meaning, so we cannot tell which one to use.",
        "Remove the duplicate column from the export template.",
    ),
    "not_utf8": Hint(
        "The file contains characters that are not UTF-8 text (often names with accents).",
        "Export or save the file as UTF-8 ('CSV UTF-8' in Excel), then send it again.",
    ),
    "empty_file": Hint(
        "The file is completely empty, not even a header row. We did not treat this as 'everyone left'.",
        "Check that the export finished; an empty file usually means the export job failed or was cut off.",
    ),
    "header_too_long": Hint(
        "The file's first line is far longer than any real header (over 1 MiB), so the file was not read.",
        "Make sure the first line holds only the OneRoster column names; the export may have written data "
        "or a whole file onto one line.",
    ),
    "too_many_columns": Hint(
        "The header names more columns than any OneRoster file has (the limit is 256), so the file was not "
        "read.",
        "Remove the extra columns from the export template; OneRoster files have about 30 columns plus "
        "metadata.* extensions.",
    ),
    "rows_unaccounted": Hint(
        "Some lines of the file were neither read as rows nor rejected, so the whole file was held back "
        "rather than lose a row without saying so.",
        "Look for an unbalanced double quote or a damaged line in the file (the message gives the counts) "
        "and send the export again.",
    ),
    "unreadable_csv": Hint(
        "The file cannot be read as CSV at all.",
        "Check that the file is a comma-separated export and was copied completely.",
    ),
    # row problems
    "required_missing": Hint(
        "A value OneRoster requires is empty on this row.",
        "Fill in the field in the SIS for this record (the column is named), then let tonight's export run.",
    ),
    "invalid_enum": Hint(
        "The value is not one of the words OneRoster allows for this column.",
        "Map the value to one of the allowed OneRoster values in your SIS's OneRoster settings (the allowed "
        "values are listed in the message).",
    ),
    "bad_date": Hint(
        "The date is not written as YYYY-MM-DD.",
        "Set the export's date format to YYYY-MM-DD (for example 2026-09-01).",
    ),
    "bad_datetime": Hint(
        "The date and time is not in the ISO 8601 format OneRoster requires.",
        "Set the export to write dateLastModified like 2026-09-01T18:25:43Z.",
    ),
    "bad_boolean": Hint(
        "The value must be true or false.",
        "Use true or false in the export (not yes/no, 1/0 or Y/N).",
    ),
    "bad_year": Hint(
        "The school year must be a four-digit year.",
        "Write the year the school year ends, e.g. 2027 for 2026-2027.",
    ),
    "duplicate_sourced_id": Hint(
        "The same sourcedId appears on more than one row, so we cannot tell which row is right; all of them "
        "were set aside.",
        "Make the ids unique in the SIS (often the same person or section was entered twice); the message "
        "names the other lines.",
    ),
    "unknown_reference": Hint(
        "The row points at a record that is not in the drop (for example an enrollment in a class that "
        "does not exist).",
        "Check that the referenced class, user, school or term is exported too (and is not filtered out of "
        "the export), or remove the stale row in the SIS.",
    ),
    "parent_rejected": Hint(
        "The row points at a record that was itself rejected, or into a file that was rejected as a whole or "
        "is missing, so it was set aside too.",
        "Fix the referenced row or file first (the message names it); this row will load once that one does.",
    ),
    "wrong_field_count": Hint(
        "The row has a different number of fields than the header, so the columns do not line up.",
        "Values that contain commas must be inside double quotes; check this line in a text editor.",
    ),
    "line_too_long": Hint(
        "The line is longer than the limit of 4 MiB, far beyond any real roster row: usually a missing "
        "closing quote or a damaged export.",
        "Look for an unbalanced double quote on this line or just before it, or for a value filled with "
        "pasted data, and fix it in the SIS.",
    ),
    "field_too_long": Hint(
        "One value on this row is longer than the limit of 1 MiB, far beyond any real roster value.",
        "Find the column named in the message in the SIS record and remove whatever was pasted into it.",
    ),
    "cut_off": Hint(
        "The file's last row is incomplete (it has fewer fields than the header or no line ending): the "
        "export or the copy stopped early, so the whole night is held back.",
        "Check that the export job finished and the file was copied completely, then send it again.",
    ),
    "csv_syntax": Hint(
        "The row is not valid CSV (for example a stray double quote).",
        'Double quotes inside a value must be doubled (""), and the value must be quoted.',
    ),
}

# A file's last line that stops mid-row: the export (or the copy) was cut off, not a quoting problem.
TRUNCATED = Hint(
    "The file ends mid-line: the export was cut off, so its last row is incomplete.",
    "Re-export the whole file (and check the export job finished and the copy completed) and send it again.",
)
CODES["truncated_line"] = TRUNCATED

UNKNOWN = Hint(
    "The row could not be accepted (the message gives the details).",
    "Correct the value named in the message in the SIS and export again.",
)

_POWERSCHOOL = Hint(
    "The PowerSchool export added a table prefix to the header (for example Students.First_Name), so "
    "the columns are not OneRoster column names.",
    "In PowerSchool, export with the OneRoster CSV template (or untick 'include table name in column "
    "headers'), so the header reads sourcedId, status, ...",
)
_CP1252 = Hint(
    "The file was saved by Excel in Windows-1252, not UTF-8, so accented names cannot be read.",
    "Open the file and 'Save As' > 'CSV UTF-8 (Comma delimited)', or export directly from the SIS "
    "without opening it in Excel.",
)
_SLASH_FIX = (
    "Set the export's date format to YYYY-MM-DD, and do not open and re-save the export in a spreadsheet; "
    "if you must, format the date columns as text or as yyyy-mm-dd before saving."
)
_DMY = Hint(
    "The date is written day/month/year (its first part is above 12, so it can only be a day); "
    "OneRoster needs YYYY-MM-DD.",
    _SLASH_FIX,
)
_MDY = Hint(
    "The date is written month/day/year, the common US form (its second part is above 12, so it can only "
    "be a day); OneRoster needs YYYY-MM-DD.",
    _SLASH_FIX,
)
_SLASHED_AMBIGUOUS = Hint(
    "The date is written with slashes and is ambiguous: 1/7/2019 could be January 7 or 1 July. OneRoster "
    "needs YYYY-MM-DD.",
    "Take the date from the SIS, do not rewrite it by guessing the order. " + _SLASH_FIX,
)
_UNQUOTED_LIST = Hint(
    "A list such as grades 09,10 was written without quotes, so the row has extra fields.",
    'Lists must be quoted: "09,10". Fix the export setting that quotes text fields.',
)
_LEADING_ZERO = Hint(
    "Excel dropped the leading zero of the grade (9 instead of 09).",
    "OneRoster grades are two characters (KG, 01 ... 12): format the grades column as text before saving, "
    "or export without opening the file in Excel.",
)

_CUT_OFF = re.compile(r"cut off|ends mid-line|truncated|last line", re.IGNORECASE)
_SLASHED_VALUE = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}")
_GRADE_NO_ZERO = re.compile(r"(^|[,\s\"])[1-9]($|[,\s\"])")


def hint_for(
    code: str, column: str | None = None, message: str | None = None, value: str | None = None
) -> Hint:
    """The reason and fix for one rejection (``value`` is the rejected value or raw line, when known)."""
    msg = message or ""
    if code in ("wrong_field_count", "csv_syntax", "truncated_line") and _CUT_OFF.search(msg):
        return TRUNCATED
    if code == "unknown_header" and "table prefix" in msg:
        return _POWERSCHOOL
    if code == "not_utf8" and "Windows-1252" in msg:
        return _CP1252
    if code in ("bad_date", "bad_datetime"):
        slashed = _slashed_hint(msg, value)
        if slashed is not None:
            return slashed
    if code == "wrong_field_count" and value and re.search(r",\s*\d{2},\d{2}\s*,", value):
        return _UNQUOTED_LIST
    if column == "grades" and value and _GRADE_NO_ZERO.search(value):
        return _LEADING_ZERO
    return CODES.get(code, UNKNOWN)


def _slashed_hint(message: str, value: str | None) -> Hint | None:
    """What a slashed date certainly is, from the value (or the message's own verdict): never a guess."""
    found = _SLASHED_VALUE.match(value or "")
    if found:
        first, second = int(found.group(1)), int(found.group(2))
        if first > 12 >= second:
            return _DMY
        if second > 12 >= first:
            return _MDY
        return _SLASHED_AMBIGUOUS if first <= 12 and second <= 12 else None
    if "(day/month/year:" in message:
        return _DMY
    if "(month/day/year:" in message:
        return _MDY
    if "(ambiguous:" in message:
        return _SLASHED_AMBIGUOUS
    return None


_FIELDS = re.compile(r"has (\d+) fields but the header has (\d+)")


def is_cut_off(code: str, message: str | None) -> bool:
    """Whether a reject on a file's last line reads as the file stopping mid-line: too few fields or an
    unterminated quote (too many fields is a quoting problem, wherever the line is)."""
    if code in ("csv_syntax", "truncated_line"):
        return True
    found = _FIELDS.search(message or "") if code == "wrong_field_count" else None
    return bool(found) and int(found.group(1)) < int(found.group(2))


def is_file_level(line: int | None) -> bool:
    """File problems have no line (or the header line): they reject the whole file and are shown first."""
    return line is None or line <= 1
