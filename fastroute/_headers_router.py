"""HeadersRouter: RabbitMQ's headers exchange, deciding a whole batch in one kernel call."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping

import numpy as np

from ._errors import BatchError, PatternError
from ._headers import ACCEPTED, encode_nested
from ._router import Router
from ._routes import Routes
from .kernels import _codes as C

#: compat value -> RabbitMQ versions it reproduces.
COMPATS = {"3.13": "RabbitMQ 3.13 and later (4.x): typed equality",
           "3.12": "RabbitMQ 3.12 and earlier: integers and floats compare numerically"}

MODES = ("all", "any", "all-with-x", "any-with-x")

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_DIALECT = "headers"


def _float_positions(blob: bytes) -> list:
    """Offsets of the 8-byte float payloads inside a nested encoding (kernels/_codes.py)."""
    out = []

    def item(pos: int) -> int:
        tag = blob[pos]
        pos += 1
        if tag in (C.TAG_NONE, C.TAG_FALSE, C.TAG_TRUE):
            return pos
        if tag == C.TAG_INT:
            return pos + 8
        if tag == C.TAG_FLOAT:
            out.append(pos)
            return pos + 8
        (ln,) = _U32.unpack_from(blob, pos)
        if tag in (C.TAG_STR, C.TAG_BYTES):
            return pos + 4 + ln
        (count,) = _U32.unpack_from(blob, pos + 4)
        p = pos + 8
        for _ in range(count):
            if tag == C.TAG_DICT:
                (nl,) = _U32.unpack_from(blob, p)
                p += 4 + nl
            p = item(p)
        return p

    item(0)
    return out


def _offsets(lengths) -> np.ndarray:
    """CSR offsets (int64, len+1) from a sequence of lengths."""
    out = np.zeros(len(lengths) + 1, np.int64)
    if len(lengths):
        np.cumsum(np.asarray(lengths, np.int64), out=out[1:])
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view (no copy). numba compiles read-only and writable arrays apart, and
    header columns come both ways (``np.frombuffer`` gives read-only ones): viewing them all
    read-only keeps the kernels to one compiled version."""
    v = a.view()
    v.flags.writeable = False
    return v


class _Check:
    """One non-ignored binding argument, encoded as the kernel compares it."""

    __slots__ = ("name", "code", "ival", "fval", "blob", "fpos")

    def __init__(self, name: int, code: int, ival: int = 0, fval: float = 0.0, blob: bytes = b"",
                 fpos: tuple = ()):
        self.name, self.code, self.ival, self.fval, self.blob, self.fpos = name, code, ival, fval, blob, fpos

    def signature(self) -> tuple:
        return (self.name, self.code, self.ival, _F64.pack(self.fval), self.blob)


def _name_text(name, args) -> str:
    if isinstance(name, str):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise PatternError(args, _DIALECT, f"argument name {name!r} is not encodable as UTF-8") from None
        return str(name)
    if isinstance(name, (bytes, bytearray)):
        try:
            return bytes(name).decode("utf-8")
        except UnicodeDecodeError:
            raise PatternError(args, _DIALECT, f"argument name {name!r} is not UTF-8") from None
    raise PatternError(args, _DIALECT, f"argument names must be str or bytes, got {type(name).__name__} {name!r}")


def _encode_value(name: str, value, args):
    """Return (type code, int, float, blob, float positions) of one binding argument value."""
    t = type(value)
    if value is None:
        return C.NONE, 0, 0.0, b"", ()
    if t is bool or isinstance(value, np.bool_):
        return C.BOOL, int(bool(value)), 0.0, b"", ()
    if isinstance(value, (int, np.integer)):
        v = int(value)
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise PatternError(args, _DIALECT, f"argument {name!r}: integer {v} does not fit in 64 bits")
        return C.INT, v, 0.0, b"", ()
    if isinstance(value, (float, np.floating)):
        return C.FLOAT, 0, float(value), b"", ()
    if t is str:
        try:
            return C.STR, 0, 0.0, value.encode("utf-8"), ()
        except UnicodeEncodeError:
            raise PatternError(args, _DIALECT, f"argument {name!r}: string is not encodable as UTF-8") from None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return C.BYTES, 0, 0.0, bytes(value), ()
    if isinstance(value, (list, tuple, dict)):
        try:
            blob = encode_nested(value)
        except BatchError as exc:
            raise PatternError(args, _DIALECT, f"argument {name!r}: {exc}") from None
        code = C.DICT if isinstance(value, dict) else C.LIST
        return code, 0, 0.0, blob, tuple(_float_positions(blob))
    raise PatternError(args, _DIALECT, f"argument {name!r}: expected {ACCEPTED}, got {type(value).__name__}")


def _parse_mode(args) -> str:
    mode = args.get("x-match", "all")
    if type(mode) is not str or mode not in MODES:
        raise PatternError(args, _DIALECT, f"x-match must be one of {', '.join(map(repr, MODES))} "
                                           f"(a str), got {type(mode).__name__} {mode!r}")
    return mode


class HeadersRouter(Router):
    """RabbitMQ's headers exchange: route on message headers matched against binding arguments.

    Args:
        bindings: (arguments, destination) pairs. ``arguments`` is a dict of header name to
            value (str, bytes, int, float, bool, None, list or dict). ``"x-match"`` is
            ``"all"`` (the default), ``"any"``, ``"all-with-x"`` or ``"any-with-x"``; other
            ``x-`` arguments are ignored under all/any and compared under the ``-with-x`` modes.
            A None value is a presence test. With nothing left to compare, ``all`` matches every
            message (headers or not) and ``any`` matches none.
        compat: ``"3.13"`` (default; RabbitMQ 3.13 and 4.x): integers equal across widths, an
            integer never equals a float, str equals bytes with the same UTF-8 bytes.
            ``"3.12"`` (RabbitMQ up to 3.12): integers and floats compare numerically (1 == 1.0).
            In both, bool never equals an integer, nested lists and dicts compare exactly
            (types and order), a message header of None is present but equals nothing, and a
            repeated header name keeps its last value.
        alternate: where messages that match nothing go (see :class:`~fastroute.Router`).

    A destination bound several times receives a message once. Destination ids follow the
    order of first appearance in ``bindings``.

    Raises:
        PatternError: a binding RabbitMQ would refuse (a bad ``x-match``, an unsupported value
            type, an integer outside 64 bits); names the arguments and the rule.
        ValueError: an unknown ``compat``.
        TypeError: a binding that is not an (arguments, destination) pair.

    Cost: compiling is one Python pass over the arguments. Routing is one parallel kernel
    over the messages; a message evaluates only the bindings posted under the header values
    it carries (an ``all`` binding under its argument shared by the fewest other bindings,
    an ``any`` binding under each argument), so its cost follows how many bindings share
    its values and how many destinations it reaches, not how many bindings there are.
    Per batch, Python touches each distinct header name once.
    """

    def __init__(self, bindings, compat: str = "3.13", alternate=None):
        super().__init__(alternate)
        if not isinstance(compat, str) or compat not in COMPATS:
            raise ValueError(f"compat must be one of {', '.join(map(repr, COMPATS))}, got {compat!r}")
        self.compat = compat
        self._name_index: dict = {}
        dest_index: dict = {}
        rules: dict = {}  # (is_all, check signatures) -> [checks, destination ids]
        always: set = set()
        count = 0
        for binding in bindings:
            count += 1
            try:
                args, dest = binding
            except (TypeError, ValueError):
                raise TypeError(f"each binding must be an (arguments, destination) pair, got {binding!r}") from None
            if not isinstance(args, Mapping):
                raise PatternError(args, _DIALECT, f"binding arguments must be a dict, got {type(args).__name__}")
            try:
                d = dest_index.setdefault(dest, len(dest_index))
            except TypeError:
                raise TypeError(f"a destination must be hashable, got {type(dest).__name__}") from None
            is_all, checks = self._compile_args(args)
            if checks is None:
                continue  # can never match
            if not checks:
                if is_all:
                    always.add(d)
                continue
            sig = (is_all, tuple(sorted(c.signature() for c in checks)))
            rule = rules.get(sig)
            if rule is None:
                rules[sig] = [checks, {d}]
            else:
                rule[1].add(d)
        self._names = list(dest_index)
        self._binding_count = count
        self._always = np.array(sorted(always), np.int32)
        self._tables = self._build_tables(list(rules.items()))
        # expected destinations per message, sizing the parallel driver's output regions
        self._fanout_hint = float(len(always)) + 1.0

    def _compile_args(self, args):
        """Return (is_all, checks) for one binding, checks None when it can never match."""
        mode = _parse_mode(args)
        with_x = mode.endswith("-with-x")
        is_all = mode.startswith("all")
        checks = []
        for raw_name, value in args.items():
            name = _name_text(raw_name, args)
            if name == "x-match" or (not with_x and name.startswith("x-")):
                continue
            code, ival, fval, blob, fpos = _encode_value(name, value, args)
            if code == C.FLOAT and math.isnan(fval):
                # NaN equals nothing, so the argument is false: an all binding never matches,
                # an any binding does without it
                if is_all:
                    return is_all, None
                continue
            nid = self._name_index.setdefault(name, len(self._name_index))
            checks.append(_Check(nid, code, ival, fval, blob, fpos))
        return is_all, checks

    def _build_tables(self, rules: list):
        from .kernels import headers as K

        rule_checks = [checks for _, (checks, _) in rules]
        dest_lists = [sorted(dests) for _, (_, dests) in rules]
        checks = [c for cs in rule_checks for c in cs]
        k = len(checks)
        check_rule = np.repeat(np.arange(len(rules), dtype=np.int32), [len(cs) for cs in rule_checks])
        rule_check_offsets = _offsets([len(cs) for cs in rule_checks])
        rule_all = np.array([1 if is_all else 0 for (is_all, _), _ in rules], np.uint8)
        rule_dest_offsets = _offsets([len(ds) for ds in dest_lists])
        rule_dests = np.array([d for ds in dest_lists for d in ds], np.int32)

        check_name = np.array([c.name for c in checks], np.int32)
        check_type = np.array([c.code for c in checks], np.uint8)
        check_int = np.array([c.ival for c in checks], np.int64)
        check_float = np.array([c.fval for c in checks], np.float64)
        check_blob_offsets = _offsets([len(c.blob) for c in checks])
        check_blob_data = np.frombuffer(b"".join(c.blob for c in checks), np.uint8).copy()
        check_fpos_offsets = _offsets([len(c.fpos) for c in checks])
        check_fpos = np.array([p for c in checks for p in c.fpos], np.int64)
        compat = K.COMPAT_312 if self.compat == "3.12" else K.COMPAT_313
        hashable, keys = K.check_keys(check_name, check_type, check_int, check_float, check_blob_offsets,
                                      check_blob_data, check_fpos_offsets, compat)

        # Post every check of an `any` rule, and one anchor per `all` rule: its argument
        # shared with the fewest other checks, so few messages get past the lookup.
        m = len(self._name_index)
        key_list = keys.tolist()
        hashed_list = hashable.tolist()
        key_uses: dict = {}
        name_uses = np.bincount(check_name, minlength=m).tolist()
        for c in range(k):
            if hashed_list[c]:
                key_uses[key_list[c]] = key_uses.get(key_list[c], 0) + 1
        posted = []
        for r, (sig, _) in enumerate(rules):
            lo, hi = int(rule_check_offsets[r]), int(rule_check_offsets[r + 1])
            if not sig[0]:
                posted.extend(range(lo, hi))
                continue
            best, best_cost = lo, None
            for c in range(lo, hi):
                cost = key_uses[key_list[c]] if hashed_list[c] else k + name_uses[checks[c].name]
                if best_cost is None or cost < best_cost:
                    best, best_cost = c, cost
            posted.append(best)
        posted = np.array(posted, np.int32)
        by_name = posted[~hashable[posted]]
        by_name = by_name[np.argsort(check_name[by_name], kind="stable")]
        name_post_offsets = _offsets(np.bincount(check_name[by_name], minlength=m))
        by_key = posted[hashable[posted]]
        bucket_keys, bucket_of = np.unique(keys[by_key], return_inverse=True)
        by_key = by_key[np.argsort(bucket_of, kind="stable")]
        bucket_offsets = _offsets(np.bincount(bucket_of, minlength=bucket_keys.shape[0]))
        cap = 1 << max(1, int(2 * bucket_keys.shape[0]).bit_length())
        slot_key, slot_bucket = K.build_slots(bucket_keys.astype(np.int64), cap)
        name_hashed = np.zeros(m, np.uint8)
        name_hashed[check_name[by_key]] = 1
        postings = np.concatenate([by_name, by_key]).astype(np.int32)
        bucket_offsets += by_name.shape[0]
        return K.HeadersTables(
            compat=compat, n_names=m, n_dest=len(self._names),
            check_name=check_name, check_type=check_type, check_int=check_int, check_float=check_float,
            check_blob_offsets=check_blob_offsets, check_blob_data=check_blob_data,
            check_fpos_offsets=check_fpos_offsets, check_fpos=check_fpos, check_rule=check_rule,
            name_hashed=name_hashed, name_post_offsets=name_post_offsets, slot_key=slot_key,
            slot_bucket=slot_bucket, bucket_offsets=bucket_offsets, postings=postings, rule_all=rule_all,
            rule_check_offsets=rule_check_offsets,
            rule_dest_offsets=rule_dest_offsets, rule_dests=rule_dests, always=self._always)

    def _constant(self, n: int) -> Routes:
        """Every message goes to the always-matching destinations only."""
        a = self._always.shape[0]
        return Routes(np.arange(n + 1, dtype=np.int64) * a, np.tile(self._always, n), self._names, check=False)

    def _route_cpu(self, batch) -> Routes:
        n = len(batch)
        table = batch.headers
        if n == 0 or table is None or table.entry_count == 0 or self._tables.postings.shape[0] == 0:
            return self._constant(n)
        index = self._name_index
        name_map = np.fromiter((index.get(nm, -1) for nm in table.names), np.int32, len(table.names))
        if not (name_map >= 0).any():
            return self._constant(n)
        offsets, dest = self._run(table, name_map)
        return Routes(offsets, dest, self._names, check=False)

    def _route_gpu(self, batch) -> Routes:
        """The CUDA twin of :meth:`_route_cpu` (kernels/cuda_headers.py), giving the same Routes.

        A device batch gives device Routes; a host batch is uploaded (its headers only) and
        gets host Routes. The tables are uploaded once per device.
        """
        from ._device import gpu_routes

        return gpu_routes(batch, self._route_on_device, ("headers",))

    def _route_on_device(self, batch) -> Routes:
        """Route a device batch; return device Routes."""
        from ._device import device_routes, to_device_array, upload_cached
        from .kernels import cuda_headers as G
        from .kernels import headers as K
        from .kernels.cuda_topic import upload_table

        tab = upload_table(self._tables, lambda arrays: upload_cached(self, "headers", arrays))
        table = batch.headers
        name_map = None
        if table is not None and self._tables.postings.shape[0] > 0:
            index = self._name_index
            name_map = np.fromiter((index.get(nm, -1) for nm in table.names), np.int32, len(table.names))
        if name_map is None or not (name_map >= 0).any():
            offsets, dest = G.constant(len(batch), tab.always)
        else:
            cols = K.HeaderColumns(table.offsets, to_device_array(name_map), table.name_ids, table.types,
                                   table.ints, table.floats, table.blob_offsets, table.blob_data)
            offsets, dest = G.route(cols, tab)
        return device_routes(offsets, dest, self._names)

    def _run(self, table, name_map, n_chunks: int | None = None, cap: int | None = None):
        """Run the kernel; ``n_chunks``/``cap`` force the parallel driver's shape (tests)."""
        from .kernels import headers as K
        from .kernels._config import PARALLEL_MIN_ITEMS

        cols = K.HeaderColumns(*map(_readonly, (table.offsets, name_map, table.name_ids, table.types, table.ints,
                                                table.floats, table.blob_offsets, table.blob_data)))
        n = len(table)
        if n_chunks is None and n < PARALLEL_MIN_ITEMS:
            cap = int(n * self._fanout_hint) + 16 if cap is None else cap
            offsets, dest = K.route_serial(cols, self._tables, K.make_scratch(self._tables, 1), cap)
        else:
            if n_chunks is None:
                import numba

                n_chunks = max(1, min(4 * numba.get_num_threads(), n // 1024))
            if cap is None:
                cap = int(-(-n // n_chunks) * self._fanout_hint) + 16
            offsets, dest = K.route_parallel(cols, self._tables, K.make_scratch(self._tables, n_chunks), cap)
        # only a sizing guess for the next batch; the answer never depends on it
        self._fanout_hint = 1.2 * dest.shape[0] / n + 1.0
        return offsets, dest

    def __repr__(self) -> str:
        alt = f", alternate={self.alternate!r}" if self.alternate is not None else ""
        return (f"HeadersRouter(bindings={self._binding_count}, destinations={len(self._names)}, "
                f"compat={self.compat!r}{alt})")
