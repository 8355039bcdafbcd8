"""How a JSON reply is laid out: padding whitespace between tokens, raw control characters inside strings.

In-process decoding writes the compact layout (", " and ": " between tokens, nothing else) and never a raw
control character. A server whose grammar allows more gives the same model room to ramble: whitespace
eats the token budget (replies cut off) and raw control characters break strict parsers. `savi doctor`
measures both on real replies (pure functions: text in, counts out).
"""

from __future__ import annotations

from dataclasses import dataclass

_WHITESPACE = " \t\n\r"


@dataclass(frozen=True)
class JsonLayout:
    chars: int  # characters in the reply
    padding: int  # whitespace outside strings beyond the compact layout's one space after ',' and ':'
    control_in_strings: int  # raw characters 0x00-0x1F inside strings

    @property
    def padding_share(self) -> float:
        return self.padding / self.chars if self.chars else 0.0


def json_layout(text: str) -> JsonLayout:
    padding = control = 0
    in_string = escaped = False
    previous = ""  # the last character outside strings that was not whitespace
    run = 0  # whitespace characters since it
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                previous, run = '"', 0
            elif ord(ch) < 0x20:
                control += 1
            continue
        if ch in _WHITESPACE:
            run += 1
            allowed = 1 if previous in (",", ":") and ch == " " and run == 1 else 0
            padding += 1 - allowed
            continue
        if ch == '"':
            in_string = True
        previous, run = ch, 0
    return JsonLayout(chars=len(text), padding=padding, control_in_strings=control)
