"""Which parts of ``input`` a Rego template's violations can depend on, from its syntax tree.

A template's result is a function of the parts of ``input`` its evaluation reaches, of
``data.inventory`` and of nothing else — unless it calls a builtin whose answer changes
between calls (time, randomness, the network), rewrites input with ``with``, or hands
``input`` itself around. This module finds those parts by a small abstract evaluation of the
``violation`` rule (regorus's AST), so identical-enough reviews can share one evaluation
(:mod:`garrison.admission.result_cache`): a ReplicaSet's pods, which differ only in name, uid
and creation time; running replicas on different nodes; and rollouts that change only an
image tag, for templates that do not read the image.

Every expression evaluates to a ``Val``: the parts of input it *is* (``paths``: it is the
subtree at one of them; ``elems``: it is a collection whose elements are such subtrees), or a
constant known now (the constraint's parameters, literals), or nothing tracked. A value that
is only stepped into (``container.resources.limits``), iterated (``containers[_]``, ``some c in
...``), bound to a variable, passed to one of the template's functions, or returned by a rule
keeps its paths; every other use reads them whole (a comparison, a builtin's argument, a
message). So ``container := input.review.object.spec[field][_]`` then ``container.name`` reads
``review.object.spec.*.*.name`` and, for the iteration, which keys and elements exist
(``PRESENT``). Path steps may be ``WILD`` (every key or element); ``WITHOUT`` and
``PRESENT`` end a path with a narrower read. A value no rule tracks has had its reads
recorded where it was computed, so nothing escapes the key.

With the parameters known, a body that iterates a parameter that is empty (``exemption :=
exempt_images[_]`` with no ``exemptImages``) or reads one that is absent can never succeed,
and is not evaluated: a template that reads ``container.image`` only to compare it with
exempted images does not read it for a constraint that exempts none.

``object.remove(x, {"nodeName"})`` reads ``x`` less those keys (``WITHOUT``). Anything the
evaluation does not know is read whole, so an unfamiliar construct costs sharing, never
correctness; an ``input`` it cannot place makes the template unbounded.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

Prefix = tuple[str, ...]
# markers (never a JSON key: they start with a NUL)
WITHOUT = "\0without"  # the subtree less the keys after the marker
PRESENT = "\0present"  # only whether the node is there, and its JSON type
WILD = "\0*"  # a step: every key of an object, every element of an array

# builtins whose answer is not a function of their arguments
NONDETERMINISTIC = frozenset(
    {
        "time.now_ns",
        "rand.intn",
        "uuid.rfc4122",
        "http.send",
        "opa.runtime",
        "net.lookup_ip_addr",
        "io.jwt.decode_verify",
        "crypto.x509.parse_and_verify_certificates",
        "crypto.x509.parse_and_verify_certificates_with_options",
    }
)
MAX_DEPTH = 24  # nested rule and function evaluations followed before giving up (unbounded)
_UNKNOWN = "\0unknown"  # Val.known: no constant known
_UNDEFINED = "\0undefined"  # Val.known: the expression is undefined whatever the input
_ANY_STRING = "\0string"  # Val.known: one of some constant strings (a member of a known list)


class _Unbounded(Exception):
    pass


class _Reordered(Exception):
    """A variable was used before the statement that binds it (Rego reorders ``some x in``)."""

    def __init__(self, name: str) -> None:
        self.name = name


@dataclass(frozen=True)
class Val:
    paths: frozenset[Prefix] = frozenset()
    elems: frozenset[Prefix] = frozenset()
    known: str = _UNKNOWN  # the constant's JSON, or _UNKNOWN / _UNDEFINED
    # with ``outputs``: parts of input whose values reach this one only through ``%v``
    # formatting (a message); any use but building the violation reads them whole
    output: frozenset[Prefix] = frozenset()
    choices: frozenset[str] | None = None  # with _ANY_STRING: the strings it is one of

    def value(self) -> Any:
        return json.loads(self.known)

    @property
    def is_known(self) -> bool:
        return self.known not in (_UNKNOWN, _UNDEFINED, _ANY_STRING)


OTHER = Val()
UNDEFINED = Val(known=_UNDEFINED)


def _const(value: Any) -> Val:
    try:
        return Val(known=json.dumps(value, sort_keys=True))
    except (TypeError, ValueError):
        return OTHER


def _single(node: Any) -> tuple[str, Any] | None:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if isinstance(body, dict):
            return kind, body
    return None


def _dotted(node: Any) -> list[str] | None:
    """``data.lib.x.f`` as its names, for a chain of static fields on a variable."""
    single = _single(node)
    if single is None:
        return None
    kind, body = single
    if kind == "Var":
        return [str(body.get("value"))]
    if kind == "RefDot":
        base = _dotted(body.get("refr"))
        return None if base is None else [*base, str(body["field"][1])]
    if kind == "RefBrack":
        index = _single(body.get("index"))
        base = _dotted(body.get("refr"))
        if base is None or index is None or index[0] != "String":
            return None
        return [*base, str(index[1]["value"])]
    return None


def _var(node: Any) -> str | None:
    single = _single(node)
    return str(single[1].get("value")) if single and single[0] == "Var" else None


def _only_v(value: Val) -> bool:
    """A constant format string whose every verb is ``%v`` (total on any defined value)."""
    if not value.is_known or not isinstance(value.value(), str):
        return False
    verbs = value.value().replace("%%", "").split("%")[1:]
    return all(verb.startswith("v") for verb in verbs)


@dataclass
class _Module:
    package: tuple[str, ...]
    imports: dict[str, list[str]]  # alias -> the imported path (data.* or input.*)


@dataclass
class _Definition:
    module: _Module
    rule: dict[str, Any]  # {"Spec": ...} or {"Default": ...}


@dataclass
class _Analysis:
    parameters: Mapping[str, Any] | None
    outputs: bool = False  # keep what only reaches messages apart (``Val.output``)
    rules: dict[tuple[tuple[str, ...], str], list[_Definition]] = field(default_factory=dict)
    out: set[Prefix] = field(default_factory=set)
    _rule_values: dict[tuple[tuple[str, ...], str], Val] = field(default_factory=dict)
    _calls: dict[tuple[Any, ...], Val] = field(default_factory=dict)
    _active: list[Any] = field(default_factory=list)
    _pending: list[set[str]] = field(default_factory=list)

    # -- recording --------------------------------------------------------------------
    def use(self, value: Val) -> None:
        """``value`` is read whole."""
        for path in value.paths | value.elems | value.output:
            if not path:
                raise _Unbounded("input used whole")
            self.out.add(path)

    def beyond_messages(self, value: Val) -> Val:
        """``value`` less its message-only parts, which are read whole from here on."""
        if not value.output:
            return value
        self.use(Val(output=value.output))
        return replace(value, output=frozenset())

    def present(self, value: Val) -> None:
        """Only whether each part of input ``value`` is, is there (and its JSON type)."""
        for path in value.paths:
            if path:
                base = path[: path.index(WITHOUT)] if WITHOUT in path else path
                self.out.add((*base, PRESENT))

    # -- names -------------------------------------------------------------------------
    def resolve(self, name: str, env: Mapping[str, Val], module: _Module) -> Val:
        if name in env:
            return env[name]
        for pending in self._pending:
            if name in pending:
                raise _Reordered(name)
        if name == "input":
            return Val(paths=frozenset({()}))
        if name == "data":
            raise _Unbounded("data used whole")
        if name in module.imports:
            return self.path_value(module.imports[name], module)
        if (module.package, name) in self.rules:
            return self.rule_value(module.package, name)
        return OTHER

    def path_value(self, names: list[str], module: _Module) -> Val:
        """An imported or ``data.``-rooted path of static names."""
        if names[0] == "input":
            value = Val(paths=frozenset({()}))
            for name in names[1:]:
                value = self.step(value, name)
            return value
        if names[0] != "data":
            return OTHER
        for cut in range(len(names) - 1, 0, -1):
            package, name = tuple(names[1:cut]), names[cut]
            if (package, name) in self.rules:
                value = self.rule_value(package, name)
                for rest in names[cut + 1 :]:
                    value = self.step(value, rest)
                return value
        if names[1:2] == ["inventory"]:
            return OTHER  # data.inventory: the cache is cleared whenever it changes
        raise _Unbounded("data beyond its rules")

    def _functions(self, fcn: Any, env: Mapping[str, Val], module: _Module) -> list[_Definition]:
        names = _dotted(fcn)
        if names is None or names[0] in env:
            return []
        explicit = names[0] == "data" or names[0] in module.imports
        if names[0] in module.imports:
            names = [*module.imports[names[0]], *names[1:]]
        elif names[0] != "data":
            names = ["data", *module.package, *names]  # the package's own, or a builtin
        if names[0] != "data" or len(names) < 2:
            return []
        found = [d for d in self.rules.get((tuple(names[1:-1]), names[-1]), []) if _is_function(d)]
        if found or not explicit:
            return found
        # a data reference this analysis did not place: any function of that name, so that
        # what the function reads is never missed
        return [
            d
            for (_, name), definitions in self.rules.items()
            if name == names[-1]
            for d in definitions
            if _is_function(d)
        ]

    # -- rules and functions -------------------------------------------------------------
    def rule_value(self, package: tuple[str, ...], name: str) -> Val:
        key = (package, name)
        if key in self._rule_values:
            return self._rule_values[key]
        if key in self._active or len(self._active) >= MAX_DEPTH:
            raise _Unbounded("recursion")
        self._active.append(key)
        pending, self._pending = self._pending, []
        try:
            definitions = self.rules[key]
            values = [self._definition_value(d, {}) for d in definitions]
            self._conflicts(definitions, values)
            value = self._union(values)
        finally:
            self._active.pop()
            self._pending = pending
        self._rule_values[key] = value
        return value

    def close_packages(self) -> None:
        """Every rule of the template's modules, for what it reads: regorus evaluates a
        referenced package whole, so an error in a rule nothing uses (``some c in x`` over a
        string) still ends the evaluation, and depends on what that rule reads."""
        for (owner, name), definitions in list(self.rules.items()):
            if not any(_is_function(d) for d in definitions):
                self.rule_value(owner, name)

    def call(self, definitions: list[_Definition], args: list[Val]) -> Val:
        key = (id(definitions[0]), tuple(args))
        if key in self._calls:
            return self._calls[key]
        if key in self._active or len(self._active) >= MAX_DEPTH:
            raise _Unbounded("recursion")
        self._active.append(key)
        pending, self._pending = self._pending, []
        try:
            for arg in args:
                self.present(arg)  # an undefined argument: the call is undefined
            values = []
            for definition in definitions:
                head = definition.rule["Spec"]["head"]["Func"]
                params = head.get("args") or []
                env: dict[str, Val] = {}
                for at, arg in enumerate(args):
                    name = _var(params[at]) if at < len(params) else None
                    if name is None or name == "_":
                        self.use(arg)  # matched against a pattern (or not taken): read whole
                        if at < len(params):
                            self.use(self.eval(params[at], {}, definition.module))
                    else:
                        env[name] = arg
                values.append(self._definition_value(definition, env))
            self._conflicts(definitions, values)
            value = self._union(values)
        finally:
            self._active.pop()
            self._pending = pending
        self._calls[key] = value
        return value

    def _conflicts(self, definitions: list[_Definition], values: list[Val]) -> None:
        """Definitions of one complete rule, function or object that give different values
        are an evaluation error: with more than one, what each gives is read whole."""
        producing = [d for d in definitions if "Default" not in d.rule]
        if len(producing) < 2:
            return
        if all("Set" in ((d.rule.get("Spec") or {}).get("head") or {}) for d in producing):
            return  # partial sets are unions
        for value in values:
            self.use(value)

    def _definition_value(self, definition: _Definition, env: dict[str, Val]) -> Val:
        module, rule = definition.module, definition.rule
        if "Default" in rule:
            return self.eval(rule["Default"].get("value"), {}, module)
        spec = rule["Spec"]
        ((kind, head),) = spec["head"].items()
        bodies = spec.get("bodies") or [{"query": {"stmts": []}, "assign": None}]
        values = []
        for body in bodies:
            local, alive = self.query(body["query"]["stmts"], env, module)
            if not alive:
                continue
            assign = body.get("assign") or head.get("assign")
            if kind == "Set":
                key = self.eval(head.get("key"), local, module)
                self.use(Val(elems=key.elems))
                member = Val(elems=key.paths) if key.paths else _member(key)
                values.append(replace(member, output=key.output))  # a message stays one
                continue
            refr = _single(head.get("refr"))
            if refr is not None and refr[0] == "RefBrack":  # a partial object: obj[k] = v
                self.use(self.eval(refr[1].get("index"), local, module))
                value = self.eval(assign["value"], local, module) if assign else _const(True)
                value = self.beyond_messages(value)
                self.use(Val(elems=value.elems))
                values.append(Val(elems=value.paths))
                continue
            if assign is None:
                values.append(_const(True))
                continue
            values.append(self.eval(assign.get("value"), local, module))
        return self._union(values) if values else UNDEFINED

    @staticmethod
    def _union(values: Any) -> Val:
        values = list(values)
        if not values:
            return UNDEFINED
        knowns = {v.known for v in values}
        known = knowns.pop() if len(knowns) == 1 else _UNKNOWN
        choices = None
        if known == _ANY_STRING and all(v.choices is not None for v in values):
            choices = frozenset().union(*(v.choices or () for v in values))
        return Val(
            choices=choices,
            paths=frozenset().union(*(v.paths for v in values)),
            elems=frozenset().union(*(v.elems for v in values)),
            known=known,
            output=frozenset().union(*(v.output for v in values)),
        )

    # -- queries -----------------------------------------------------------------------
    def query(
        self, statements: list[Any], env: Mapping[str, Val], module: _Module
    ) -> tuple[dict[str, Val], bool]:
        """A body's statements in order; False when it can never succeed (parameters)."""
        names = set(_bound_names(statements))
        self._pending.append(names)
        try:
            return self._statements(statements, env, module, names, precise=True)
        except _Reordered as reordered:
            if reordered.name not in names:
                raise
        finally:
            self._pending.pop()
        return self._statements(statements, env, module, set(), precise=False)

    def _statements(
        self,
        statements: list[Any],
        env: Mapping[str, Val],
        module: _Module,
        pending: set[str],
        *,
        precise: bool,
    ) -> tuple[dict[str, Val], bool]:
        local = dict(env)
        for statement in statements:
            if not isinstance(statement, dict) or statement.get("with_mods"):
                raise _Unbounded("with")
            literal = _single(statement.get("literal"))
            if literal is None:
                self.use(self.generic(statement, local, module))
                continue
            kind, body = literal
            if kind == "SomeVars":
                continue
            if kind == "SomeIn":
                if not self._some_in(body, local, module, pending, precise=precise):
                    return local, False
                continue
            if kind == "NotExpr":
                self.use(self.eval(body.get("expr"), local, module))
                continue
            if kind != "Expr":
                self.use(self.generic(body, local, module))
                continue
            expr = body.get("expr")
            assign = _single(expr)
            if assign is not None and assign[0] == "AssignExpr":
                if not self._assign(assign[1], local, module, pending, precise=precise):
                    return local, False
                continue
            value = self.eval(expr, local, module)
            if value.known in (_UNDEFINED, "false"):
                return local, False
            self.use(value)
        return local, True

    def _some_in(
        self,
        body: Mapping[str, Any],
        local: dict[str, Val],
        module: _Module,
        pending: set[str],
        *,
        precise: bool,
    ) -> bool:
        """``some [key,] value in collection``; False when the collection is empty for sure."""
        collection = self.eval(body.get("collection"), local, module)
        if _empty(collection):
            return False
        element = self.step(collection, None)
        for part, bound in (("value", element), ("key", OTHER)):
            name = _var(body.get(part))
            if name is not None and name != "_":
                if precise:
                    local[name] = bound
                else:
                    self.use(bound)
                    local[name] = OTHER
                pending.discard(name)
            elif body.get(part) is not None:
                self.use(bound)
                self.use(self.eval(body.get(part), local, module))
        return True

    def _assign(
        self,
        assign: Mapping[str, Any],
        local: dict[str, Val],
        module: _Module,
        pending: set[str],
        *,
        precise: bool,
    ) -> bool:
        """``x := value`` binds (False: value is undefined for sure); ``=`` unifies, read whole."""
        target = _var(assign.get("lhs"))
        value = self.eval(assign.get("rhs"), local, module)
        if assign.get("op") == "ColEq" and target is not None and target != "_":
            if value.known == _UNDEFINED:
                return False
            if not precise:
                self.use(value)
                value = Val(known=value.known)
            self.present(value)  # the body goes on only where the value is defined
            local[target] = value
            pending.discard(target)
            return True
        self.use(value)
        self.use(self.eval(assign.get("lhs"), local, module))
        return True

    # -- expressions ---------------------------------------------------------------------
    def eval(self, node: Any, env: Mapping[str, Val], module: _Module) -> Val:
        single = _single(node)
        if single is None:
            return self.generic(node, env, module)
        kind, body = single
        if kind == "Var":
            return self.resolve(str(body.get("value")), env, module)
        if kind in ("RefDot", "RefBrack"):
            return self.chain(node, env, module)
        if kind in ("String", "Number", "Bool"):
            return _const(body.get("value"))
        if kind == "Null":
            return _const(None)
        if kind in ("Array", "Set", "Object"):
            return self.literal(kind, body, env, module)
        if kind == "Call":
            return self.call_expr(body, env, module)
        if kind in ("ArrayCompr", "SetCompr", "ObjectCompr"):
            return self.comprehension(kind, body, env, module)
        return self.generic(node, env, module)

    def literal(
        self, kind: str, body: Mapping[str, Any], env: Mapping[str, Val], module: _Module
    ) -> Val:
        if kind == "Object":
            pairs = [
                (self.eval(k, env, module), self.eval(v, env, module))
                for _, k, v in body.get("fields") or []
            ]
            if all(k.is_known and v.is_known for k, v in pairs):
                known = {k.value(): v.value() for k, v in pairs}
                if all(isinstance(k, str) for k in known):
                    return _const(known)
            output: frozenset[Prefix] = frozenset()
            for k, v in pairs:
                self.use(k)
                output |= v.output  # a message in an object (``{"msg": msg}``) stays one
                self.use(replace(v, output=frozenset()))
            return Val(output=output)
        items = [self.eval(item, env, module) for item in body.get("items") or []]
        if all(item.is_known for item in items):
            values = [item.value() for item in items]
            return _const(values if kind == "Array" else sorted(values, key=json.dumps))
        for item in items:
            self.use(Val(elems=item.elems))
        return Val(
            elems=frozenset().union(*(item.paths for item in items)),
            output=frozenset().union(*(item.output for item in items)),
        )

    def comprehension(
        self, kind: str, body: Mapping[str, Any], env: Mapping[str, Val], module: _Module
    ) -> Val:
        local, alive = self.query(body["query"]["stmts"], env, module)
        if not alive:
            return _const({} if kind == "ObjectCompr" else [])
        if kind == "ObjectCompr":
            self.use(self.eval(body.get("key"), local, module))
            self.use(self.eval(body.get("value"), local, module))
            return OTHER
        term = self.beyond_messages(self.eval(body.get("term"), local, module))
        self.use(Val(elems=term.elems))
        if not term.paths:
            self.use(term)
            return OTHER
        return Val(elems=term.paths)

    def generic(self, node: Any, env: Mapping[str, Val], module: _Module) -> Val:
        """A construct this evaluation does not model: everything in it is read whole."""
        single = _single(node)
        self._read_all(single[1] if single is not None else node, env, module)
        return OTHER

    def _read_all(self, node: Any, env: Mapping[str, Val], module: _Module) -> None:
        if isinstance(node, list):
            for item in node:
                self._read_all(item, env, module)
            return
        if not isinstance(node, dict):
            return
        if isinstance(node.get("stmts"), list):
            self._statements(node["stmts"], env, module, set(), precise=False)
        elif _single(node) is not None:
            self.use(self.eval(node, env, module))
        else:
            for value in node.values():
                self._read_all(value, env, module)

    def call_expr(self, body: Mapping[str, Any], env: Mapping[str, Val], module: _Module) -> Val:
        names = _dotted(body.get("fcn"))
        name = ".".join(names) if names else None
        if name in NONDETERMINISTIC:
            raise _Unbounded(str(name))
        params = body.get("params") or []
        definitions = self._functions(body.get("fcn"), env, module)
        args = [self.eval(p, env, module) for p in params]
        if definitions:
            return self.call(definitions, args)
        if self.outputs and name == "sprintf" and len(args) == 2 and _only_v(args[0]):
            return self._format(args[1])
        args = [self.beyond_messages(arg) for arg in args]
        if name in ("object.get", "object.remove") and args:
            self.present(args[0])  # not an object: an error, not undefined
        if name == "object.get" and len(args) == 3:
            paths = self._key_paths(params[1], args[1], env, module)
            if paths is None and args[1].known == _ANY_STRING:  # one key of some: any child
                found = self.step(args[0], None)
                return self._union([found, args[2]])
            if paths is not None:
                return self._union([self._get(args[0], keys, args[2]) for keys in paths])
        if name == "object.remove" and len(args) == 2 and args[0].paths and not args[0].elems:
            keys = _static_keys(args[1], sets=True)
            if keys is not None and all(WITHOUT not in p for p in args[0].paths):
                removed = tuple(sorted(set(keys)))
                return Val(paths=frozenset((*p, WITHOUT, *removed) for p in args[0].paths))
        for arg in args:
            self.use(arg)
        return OTHER

    def _key_paths(
        self, node: Any, value: Val, env: Mapping[str, Val], module: _Module
    ) -> list[tuple[str, ...]] | None:
        """The key paths ``object.get``'s second argument can be: a constant, one of some
        strings (``some field in [...]``), or an array of those (at most 64 paths)."""
        keys = _static_keys(value)
        if keys is not None:
            return [tuple(keys)]
        if value.known == _ANY_STRING and value.choices is not None:
            return [(choice,) for choice in sorted(value.choices)]
        single = _single(node)
        if single is None or single[0] != "Array":
            return None
        steps: list[list[str]] = []
        for item in single[1].get("items") or []:
            part = self.eval(item, env, module)
            if part.is_known and isinstance(part.value(), str):
                steps.append([part.value()])
            elif part.known == _ANY_STRING and part.choices is not None:
                steps.append(sorted(part.choices))
            else:
                return None
        paths = list(itertools.product(*steps))
        return paths if 0 < len(paths) <= 64 else None

    def _get(self, value: Val, keys: tuple[str, ...], default: Val) -> Val:
        """``object.get(value, keys, default)`` for one key path."""
        found = value
        for key in keys:
            found = self.step(found, key)
        for path in found.paths:
            self.out.add((*path, PRESENT))  # which of value and default it is
        if found.is_known or found.known == _UNDEFINED:
            return default if found.known == _UNDEFINED else found
        return self._union([Val(paths=found.paths, elems=found.elems), default])

    def _format(self, values: Val) -> Val:
        """``sprintf`` with only ``%v``: defined wherever its values are (their presence is
        read), whatever they hold; the message carries them as its output."""
        self.present(values)
        for path in values.elems:
            base = path[: path.index(WITHOUT)] if WITHOUT in path else path
            self.out.add((*base, PRESENT))
        return Val(output=values.paths | values.elems | values.output)

    def chain(self, node: Any, env: Mapping[str, Val], module: _Module) -> Val:
        steps: list[Any] = []
        current = node
        while (single := _single(current)) is not None and single[0] in ("RefDot", "RefBrack"):
            kind, body = single
            if kind == "RefDot":
                steps.append(str(body["field"][1]))
            else:
                index = _single(body.get("index"))
                if index is not None and index[0] == "String":
                    steps.append(str(index[1]["value"]))
                else:
                    steps.append(body.get("index"))
            current = body.get("refr")
        ordered = steps[::-1]
        root = _var(current)
        if root is not None and root not in env and (root == "data" or root in module.imports):
            names = ["data"] if root == "data" else list(module.imports[root])
            while ordered and isinstance(ordered[0], str):
                names.append(ordered.pop(0))
            value = self.path_value(names, module)
        else:
            value = self.eval(current, env, module)
        for step in ordered:
            if isinstance(step, str):
                value = self.step(value, step)
                continue
            position = self.eval(step, env, module)
            if position.is_known and isinstance(position.value(), str):
                value = self.step(value, position.value())
                continue
            if position.known == _ANY_STRING and position.choices is not None:
                value = self._union([self.step(value, c) for c in sorted(position.choices)])
                continue
            self.use(position)
            value = self.step(value, None)
        return value

    def step(self, value: Val, key: str | None) -> Val:
        """``value[key]`` (a static key) or, with None, any of its keys or elements."""
        if value.known == _UNDEFINED:
            return UNDEFINED
        value = self.beyond_messages(value)
        if value.is_known:
            constant = _step_known(value.value(), key)
            if constant is not None:
                return constant
        paths: set[Prefix] = set()
        for path in value.paths:
            if key is None:
                base = path[: path.index(WITHOUT)] if WITHOUT in path else path
                self.out.add((*base, WILD, PRESENT))  # which keys or elements there are
                paths.add((*base, WILD))
            elif path == () and key == "parameters" and self.parameters is not None:
                if value.paths == frozenset({()}) and not value.elems:
                    return _const(dict(self.parameters))
                paths.add((key,))
            elif WITHOUT in path:
                cut = path.index(WITHOUT)
                if key not in path[cut + 1 :]:
                    paths.add((*path[:cut], key))
            else:
                paths.add((*path, key))
        if key is None:
            paths |= value.elems
        elif value.elems:
            self.use(Val(elems=value.elems))  # a set indexed by a member: read whole
        return Val(paths=frozenset(paths))


def _step_known(data: Any, key: str | None) -> Val | None:
    """A step into a constant: the constant found, UNDEFINED, or None (not known)."""
    if key is None:
        items = list(data.values()) if isinstance(data, dict) else data
        if not isinstance(items, list):
            return None
        if not items:
            return UNDEFINED
        if all(isinstance(i, str) for i in items):
            return Val(known=_ANY_STRING, choices=frozenset(items))
        return None
    if isinstance(data, dict):
        return _const(data[key]) if key in data else UNDEFINED
    return None if isinstance(data, list) else UNDEFINED


def _is_function(definition: _Definition) -> bool:
    return "Func" in ((definition.rule.get("Spec") or {}).get("head") or {})


def _member(key: Val) -> Val:
    """The value of a partial set whose key is not a part of input."""
    return Val() if not key.is_known else _const([key.value()])


def _empty(value: Val) -> bool:
    if value.known == _UNDEFINED:
        return True
    if not value.is_known:
        return False
    data = value.value()
    return isinstance(data, (list, dict)) and not data


def _static_keys(value: Val, *, sets: bool = False) -> list[str] | None:
    if not value.is_known:
        return None
    data = value.value()
    if isinstance(data, str):
        return [data]
    if isinstance(data, list) and all(isinstance(k, str) for k in data):
        return data
    return None


def _bound_names(statements: list[Any]) -> Iterator[str]:
    """The variables a body's statements bind (``:=``, ``some ... in``)."""
    for statement in statements:
        literal = _single(statement.get("literal")) if isinstance(statement, dict) else None
        if literal is None:
            continue
        kind, body = literal
        if kind == "SomeIn":
            for part in ("key", "value"):
                name = _var(body.get(part))
                if name is not None and name != "_":
                    yield name
        elif kind == "Expr":
            assign = _single(body.get("expr"))
            if assign is not None and assign[0] == "AssignExpr":
                name = _var(assign[1].get("lhs"))
                if name is not None and assign[1].get("op") == "ColEq":
                    yield name


def _modules(ast_json: str) -> list[tuple[_Module, list[Any]]]:
    out = []
    for module in json.loads(ast_json):
        ast = module.get("ast") or {}
        source = str((module.get("source") or {}).get("contents") or "").encode()
        package = _dotted((ast.get("package") or {}).get("refr")) or []
        imports: dict[str, list[str]] = {}
        for entry in ast.get("imports") or []:
            path = _dotted(entry.get("refr"))
            if path is None or path[0] not in ("data", "input"):
                continue
            alias = entry.get("as")  # the alias's place in the source
            name = path[-1]
            if isinstance(alias, dict):
                name = source[int(alias["start"]) : int(alias["end"])].decode()
                if not name.isidentifier():
                    raise _Unbounded("an import alias this analysis cannot read")
            imports[name] = path
        out.append((_Module(tuple(package), imports), ast.get("rules") or []))
    return out


def _rule_name(rule: Mapping[str, Any]) -> str | None:
    if "Default" in rule:
        names = _dotted(rule["Default"].get("refr"))
    else:
        head = (rule.get("Spec") or {}).get("head") or {}
        if len(head) != 1:
            return None
        ((_, body),) = head.items()
        refr = body.get("refr")
        single = _single(refr)
        if single is not None and single[0] == "RefBrack":  # obj[k] = v
            refr = single[1].get("refr")
        names = _dotted(refr)
    # one name: a rule at a longer path (v1's ``a.b := ...``) is not modelled, so such a
    # template is not keyed at all
    return names[0] if names and len(names) == 1 else None


def input_prefixes(
    ast_json: str,
    parameters: Mapping[str, Any] | None = None,
    entry: str = "violation",
    *,
    outputs: bool = False,
) -> frozenset[Prefix] | None:
    """The smallest set of ``input`` paths the template's ``violation`` can depend on, for a
    constraint with these ``parameters`` (None: any); None when it cannot be bounded.

    With ``outputs``, the paths whether there is any violation at all depends on: a part of
    input that only reaches messages through ``sprintf`` with ``%v`` (the object's name in
    "Container <%v> in your <%v> <%v> has no <%v>") counts by its presence and JSON type
    alone, since formatting it cannot fail and the message is all it changes."""
    try:
        modules = _modules(ast_json)
    except _Unbounded:
        return None
    if not modules:
        return frozenset()
    analysis = _Analysis(parameters, outputs)
    for module, rules in modules:
        for rule in rules:
            name = _rule_name(rule) if isinstance(rule, dict) else None
            if name is None:
                return None  # a rule this analysis cannot name: do not guess
            analysis.rules.setdefault((module.package, name), []).append(_Definition(module, rule))
    main = modules[0][0].package
    try:
        if (main, entry) in analysis.rules:
            value = analysis.rule_value(main, entry)
            analysis.use(replace(value, output=frozenset()))  # messages end here
        analysis.close_packages()
    except (_Unbounded, _Reordered, RecursionError):
        return None
    found = analysis.out
    return frozenset(p for p in found if not any(_covers(q, p) for q in found))


def _covers(whole: Prefix, part: Prefix) -> bool:
    """``whole`` is a plain path (a subtree read in full) above or at ``part``."""
    if whole == part or len(part) < len(whole):
        return False
    if WITHOUT in whole or PRESENT in whole:
        return False
    return all(w in (p, WILD) for w, p in zip(whole, part, strict=False))
