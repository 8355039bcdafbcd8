"""JSON-Schema-constrained decoding for transformers models, through xgrammar.

A weak model (and a random tiny one above all) cannot be trusted to write valid JSON; masking the
logits with the schema's grammar makes every completed output parse. Compiling a schema costs far
more than one decoding step, so each distinct schema is compiled once per backend and cached.
"""

from __future__ import annotations

import functools
import json
import threading
from typing import Any

# xgrammar's string rule for a schema string with a length bound: any character but a quote, a backslash, CR
# and LF. So a tab or 0x1a may stand raw inside a JSON string, which JSON forbids.
_LOOSE_STRING_CHAR = '[^\\"\\\\\\r\\n]'
# ... and the rule JSON asks for: no control character at all (0x00-0x1F), as in-process decoding bans them.
_JSON_STRING_CHAR = '[^\\"\\\\\\0-\\x1f]'


class GrammarCache:
    """Compiled grammars by schema, for one tokenizer + vocabulary size."""

    def __init__(self, tokenizer: Any, vocab_size: int, stop_token_ids: list[int]) -> None:
        import xgrammar as xgr

        self._xgr = xgr
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._compiler = xgr.GrammarCompiler(info)
        self.control_char_tokens = control_char_token_ids(info.decoded_vocab)
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def compiled(self, schema: dict[str, Any]) -> Any:
        # Not canonical_json: key order is the order the model writes the properties in.
        key = json.dumps(schema, ensure_ascii=False)
        with self._lock:
            if key not in self._compiled:
                # Compact separators: a fixed layout leaves the model no whitespace to ramble in.
                self._compiled[key] = self._compiler.compile_json_schema(key, any_whitespace=False, strict_mode=True)
            return self._compiled[key]

    def matcher(self, schema: dict[str, Any]) -> Any:
        """A fresh matcher: matchers are stateful, one per request per `generate` call."""
        return self._xgr.GrammarMatcher(self.compiled(schema))

    def __len__(self) -> int:
        return len(self._compiled)


def control_char_token_ids(decoded_vocab: list[bytes]) -> list[int]:
    """Tokens holding a raw control character (bytes 0x00-0x1F).

    JSON forbids them unescaped inside strings, yet xgrammar's JSON-Schema grammar lets them through
    (seen with 0.2.8: a raw 0x1a inside a string), and strict parsers then reject the whole reply.
    Compact JSON never needs them between tokens either, so constrained rows ban them outright.
    """
    return [i for i, tok in enumerate(decoded_vocab) if any(b < 0x20 for b in tok)]


@functools.lru_cache(maxsize=64)
def _schema_ebnf(schema_json: str) -> str:
    import xgrammar as xgr

    ebnf = str(xgr.Grammar.from_json_schema(schema_json, any_whitespace=False, strict_mode=True))
    return ebnf.replace(_LOOSE_STRING_CHAR, _JSON_STRING_CHAR)


def json_schema_ebnf(schema: dict[str, Any]) -> str:
    """The grammar in-process decoding uses for `schema` (compact layout, strict), as xgrammar EBNF text, with
    control characters banned from strings as `control_char_token_ids` bans them here.

    A server that takes a grammar per request (vLLM: `structured_outputs.grammar`) then decodes under the very
    rules this process does, whatever its own JSON-Schema defaults are (vLLM's allow padding whitespace and
    raw control characters, and its per-request `disable_any_whitespace` is not read by 0.32's backends).
    """
    return _schema_ebnf(json.dumps(schema, ensure_ascii=False))
