"""JSON as the tools read it: strict (RFC 8259), with errors that point at the offending
character: its line and column, the line itself and a caret under it.

The board reads config.json with MicroPython's json.loads, which is more lenient: it takes a
trailing comma (`[1, 2,]`, `{"a": 1,}`) and a missing comma between items (`[1 2]`). The tools
refuse both, as every other JSON reader does, and say so: a file they accept loads on the board
and anywhere else.
"""

import json

STRICTER = ("the board's json.loads (MicroPython) would take this, but JSON does not: check is "
            "stricter than the board, so that every JSON reader can read the file")
_WIDTH = 76  # the longest piece of a line shown under an error


def loads(text, label):
    """(obj, None), or (None, message): "LABEL: not valid JSON: line L, column C: what", then
    the line and a caret (lines of their own in the message)."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        pos, what, lenient = _offending(text, e)
    line_no = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    line = text[start:end if end >= 0 else len(text)]
    col = pos - start
    shown, caret = _window(line, col)
    gutter = "%5d | " % line_no
    out = ["%s: not valid JSON: line %d, column %d: %s" % (label, line_no, col + 1, what),
           gutter + shown, " " * (len(gutter) - 2) + "| " + " " * caret + "^"]
    if lenient:
        out.append(STRICTER)
    return None, "\n".join(out)


def _offending(text, e):
    """(position, what is wrong, would MicroPython take it) for a decode error. Python reports
    a trailing comma where the value it expected is missing, often on the next line: the comma
    is the offending character."""
    if e.msg.startswith(("Expecting value", "Expecting property name", "Illegal trailing comma")):
        i = e.pos - 1
        while i >= 0 and text[i] in " \t\r\n":
            i -= 1
        if i >= 0 and text[i] == "," and text[e.pos:e.pos + 1] == ",":
            return e.pos, "a second comma (JSON allows one between items)", False
        if i >= 0 and text[i] == ",":
            after = text[e.pos:e.pos + 1] or "the end"
            return i, "a trailing comma before %s (JSON allows none)" % (
                "'%s'" % after if after != "the end" else after), True
    if e.msg == "Expecting ',' delimiter":
        return e.pos, "a missing comma before this (JSON needs one between items)", True
    return e.pos, e.msg[:1].lower() + e.msg[1:], False


def _window(line, col):
    """The part of a long line around `col`, and where the caret goes in it."""
    line = line.replace("\t", " ")
    if len(line) <= _WIDTH:
        return line, col
    start = max(0, min(col - _WIDTH // 2, len(line) - _WIDTH))
    return line[start:start + _WIDTH], col - start
