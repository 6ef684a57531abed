"""Parser for the Falco condition language (libsinsp filter grammar) into ``garrison.rules.ast``.

Precedence is ``not`` > ``and`` > ``or``. A bare identifier without a dot is a macro; a name
with a dot is a field, optionally with ``[argument]`` and under a transformer. Values are
quoted or bare strings; list operators take ``( item, ... )`` or a list name.
"""

from __future__ import annotations

import re

from garrison.rules.ast import (
    And,
    Compare,
    FieldRef,
    FieldValue,
    ListLiteral,
    MacroRef,
    Node,
    Not,
    Operand,
    Or,
    Transformed,
    Value,
)
from garrison.rules.errors import ConditionSyntaxError

UNARY_OPS = frozenset({"exists"})
LIST_OPS = frozenset({"in", "intersects", "pmatch"})
NUMERIC_OPS = frozenset({"<", "<=", ">", ">="})
STRING_OPS = frozenset(
    {
        "=",
        "==",
        "!=",
        "contains",
        "icontains",
        "bcontains",
        "startswith",
        "bstartswith",
        "endswith",
        "glob",
        "iglob",
        "regex",
    }
)
ALL_OPS = UNARY_OPS | LIST_OPS | NUMERIC_OPS | STRING_OPS
QUANTIFIERS = ("oneof", "anyof", "allof")
TRANSFORMERS = frozenset({"tolower", "toupper", "b64", "basename", "len"})

_WORD_OPS = sorted((op for op in ALL_OPS if op.isalpha()), key=len, reverse=True)
_SYMBOL_OPS = ("==", "!=", "<=", ">=", "=", "<", ">")
_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.\-]*")
_FIELD_NAME = re.compile(r"[a-zA-Z]+[a-zA-Z0-9_]*(\.[a-zA-Z_]+[a-zA-Z0-9_]*)+")
_NUMBER = re.compile(r"[+-]?(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)")
_BARE = re.compile(r"[^ \b\t\n\r(),=\"']+")
_KEYWORDS = frozenset({"and", "or", "not"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- scanning -------------------------------------------------------------------------
    def error(self, message: str) -> ConditionSyntaxError:
        return ConditionSyntaxError(message, self.text, self.pos)

    def skip_ws(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in " \t\r\n\b":
            pos += 1
        self.pos = pos

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def peek(self, literal: str) -> bool:
        self.skip_ws()
        return self.text.startswith(literal, self.pos)

    def expect(self, literal: str) -> None:
        if not self.peek(literal):
            raise self.error(f"expected '{literal}'")
        self.pos += len(literal)

    def keyword(self, word: str) -> bool:
        """Consume ``word`` if it stands here as a whole word (``not(`` counts)."""
        self.skip_ws()
        end = self.pos + len(word)
        if not self.text.startswith(word, self.pos):
            return False
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] in "_.-[:/"):
            return False
        self.pos = end
        return True

    # -- grammar --------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.at_end():
            raise self.error("empty condition")
        node = self.parse_or()
        if not self.at_end():
            raise self.error("unexpected text")
        return node

    def parse_or(self) -> Node:
        terms = [self.parse_and()]
        while self.keyword("or"):
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def parse_and(self) -> Node:
        terms = [self.parse_not()]
        while self.keyword("and"):
            terms.append(self.parse_not())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def parse_not(self) -> Node:
        if self.keyword("not"):
            return Not(self.parse_not())
        return self.parse_check()

    def parse_check(self) -> Node:
        self.skip_ws()
        if self.peek("("):
            self.pos += 1
            node = self.parse_or()
            self.expect(")")
            return node
        start = self.pos
        match = _IDENT.match(self.text, self.pos)
        if not match:
            raise self.error("expected a field, a macro or '('")
        name = match.group(0)
        if name in _KEYWORDS:
            raise self.error(f"unexpected '{name}'")
        after = match.end()
        if name in TRANSFORMERS and self.text.startswith("(", after):
            operand: Operand = self.parse_operand()
            return self.parse_comparison(operand, start)
        if _FIELD_NAME.fullmatch(name) or self.text.startswith("[", after):
            operand = self.parse_operand()
            return self.parse_comparison(operand, start)
        self.pos = after
        return MacroRef(name, start)

    def parse_operand(self) -> Operand:
        self.skip_ws()
        match = _IDENT.match(self.text, self.pos)
        if not match:
            raise self.error("expected a field")
        name = match.group(0)
        after = match.end()
        if name in TRANSFORMERS and self.text.startswith("(", after):
            self.pos = after + 1
            inner = self.parse_operand()
            self.expect(")")
            return Transformed(name, inner)
        if not _FIELD_NAME.fullmatch(name):
            raise self.error(f"'{name}' is not a field name")
        self.pos = after
        arg: str | None = None
        if self.text.startswith("[", self.pos):
            close = self._matching_bracket(self.pos)
            arg = self.text[self.pos + 1 : close]
            self.pos = close + 1
        return FieldRef(name, arg)

    def _matching_bracket(self, open_pos: int) -> int:
        depth = 0
        for i in range(open_pos, len(self.text)):
            if self.text[i] == "[":
                depth += 1
            elif self.text[i] == "]":
                depth -= 1
                if depth == 0:
                    return i
        raise self.error("unclosed '[' in field argument")

    def parse_operator(self) -> str:
        self.skip_ws()
        for op in _SYMBOL_OPS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        for op in _WORD_OPS:
            if self.keyword(op):
                return op
        raise self.error("expected an operator")

    def parse_comparison(self, operand: Operand, start: int) -> Compare:
        op = self.parse_operator()
        value: Value
        if op in UNARY_OPS:
            value = None
        elif op in LIST_OPS:
            value = self.parse_list_value()
        else:
            for quantifier in QUANTIFIERS:
                if self.keyword(quantifier):
                    return Compare(operand, op, self.parse_list_value(), start, quantifier)
            value = self.parse_scalar_value()
        return Compare(operand, op, value, start)

    def parse_list_value(self) -> ListLiteral | FieldValue:
        self.skip_ws()
        if self.peek("val(") or self.peek("("):
            if self.text.startswith("val(", self.pos):
                return self.parse_field_value()
            self.pos += 1
            items: list[str] = []
            if self.peek(")"):
                self.pos += 1
                return ListLiteral(())
            while True:
                items.append(self.parse_string())
                if self.peek(","):
                    self.pos += 1
                    continue
                self.expect(")")
                return ListLiteral(tuple(items))
        match = _IDENT.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            return ListLiteral((match.group(0),))
        raise self.error("expected a list '(...)'")

    def parse_field_value(self) -> FieldValue:
        self.pos += len("val(")
        operand = self.parse_operand()
        self.expect(")")
        return FieldValue(operand)

    def parse_scalar_value(self) -> str | FieldValue:
        self.skip_ws()
        if self.text.startswith("val(", self.pos):
            return self.parse_field_value()
        return self.parse_string()

    def parse_string(self) -> str:
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.error("expected a value")
        quote = self.text[self.pos]
        if quote in "\"'":
            out: list[str] = []
            i = self.pos + 1
            while i < len(self.text):
                ch = self.text[i]
                if ch == "\\" and i + 1 < len(self.text):
                    nxt = self.text[i + 1]
                    out.append(nxt if nxt in "\"'\\" else ch + nxt)
                    i += 2
                    continue
                if ch == quote:
                    self.pos = i + 1
                    return "".join(out)
                out.append(ch)
                i += 1
            raise self.error("unterminated string")
        number = _NUMBER.match(self.text, self.pos)
        bare = _BARE.match(self.text, self.pos)
        if bare:
            self.pos = bare.end()
            return bare.group(0)
        if number:  # pragma: no cover - every number is also a bare string
            self.pos = number.end()
            return number.group(0)
        raise self.error("expected a value")


def parse_condition(text: str) -> Node:
    """Parse a condition; raises ``ConditionSyntaxError`` with the column on failure."""
    return _Parser(text).parse()
