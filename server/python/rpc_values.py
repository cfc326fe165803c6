"""Python values <-> shard.wire.Value (netproto/proto/value.proto): the only
form RPC arguments, results and notification bodies take on the wire.

Plain data only, both ways: None, bool, int (64-bit), float, str, bytes, list
(a tuple goes as a list), dict with str keys. Anything else is refused with a
TypeError naming its type; nothing is ever pickled or evaluated, so a peer can
make us build nothing but these. Nesting is bounded (MAX_DEPTH) on both sides,
below the protobuf parser's own recursion limit (100 messages: a list level
costs 2, a dict level 3), and so is the number of values one decode builds
(MAX_VALUES); a payload's byte size is bounded by the link's frame limit.
"""

import value_pb2

Value = value_pb2.Value

MAX_DEPTH = 30
MAX_VALUES = 200_000
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


class WireValueError(ValueError):
    """A Value from the wire that is not plain data within the bounds."""


def to_wire(obj, out=None):
    """Returns (or fills `out`, a Value) the Value of `obj`; TypeError for a
    type that has none, OverflowError for an int beyond 64 bits, ValueError
    past MAX_DEPTH."""
    out = Value() if out is None else out
    _encode(obj, out, 0)
    return out


def _encode(obj, out, depth):
    # Exact type checks: a subclass (an IntEnum, a str subclass with a
    # __reduce__) would not come back as itself, so it is refused, not changed.
    t = type(obj)
    if obj is None:
        out.null_value = True
    elif t is bool:
        out.bool_value = obj
    elif t is int:
        if not INT_MIN <= obj <= INT_MAX:
            raise OverflowError("int %d is out of the 64-bit range of an RPC value" % obj)
        out.int_value = obj
    elif t is float:
        out.double_value = obj
    elif t is str:
        out.string_value = obj
    elif t is bytes or t is bytearray:
        out.bytes_value = bytes(obj)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise ValueError("RPC value nested deeper than %d levels" % MAX_DEPTH)
        items = out.list_value.items
        out.list_value.SetInParent()  # an empty list is still a list
        for item in obj:
            _encode(item, items.add(), depth + 1)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise ValueError("RPC value nested deeper than %d levels" % MAX_DEPTH)
        fields = out.map_value.fields
        out.map_value.SetInParent()
        for key, item in obj.items():
            if type(key) is not str:
                raise TypeError("RPC dict keys must be str, not %s" % type(key).__name__)
            _encode(item, fields[key], depth + 1)
    else:
        raise TypeError("%s cannot be an RPC value (plain data only: None, bool, int, float, str, bytes, "
                        "list, tuple, dict with str keys)" % t.__name__)


def from_wire(value):
    """The Python value of a Value (parsed from the wire); WireValueError for a
    Value with no kind, nested past MAX_DEPTH or holding more than MAX_VALUES."""
    budget = [MAX_VALUES]
    return _decode(value, 0, budget)


def _decode(value, depth, budget):
    budget[0] -= 1
    if budget[0] < 0:
        raise WireValueError("RPC value holds more than %d values" % MAX_VALUES)
    kind = value.WhichOneof("kind")
    if kind == "int_value":
        return value.int_value
    if kind == "string_value":
        return value.string_value
    if kind == "null_value":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "list_value":
        if depth >= MAX_DEPTH:
            raise WireValueError("RPC value nested deeper than %d levels" % MAX_DEPTH)
        return [_decode(item, depth + 1, budget) for item in value.list_value.items]
    if kind == "map_value":
        if depth >= MAX_DEPTH:
            raise WireValueError("RPC value nested deeper than %d levels" % MAX_DEPTH)
        return {key: _decode(item, depth + 1, budget) for key, item in value.map_value.fields.items()}
    raise WireValueError("RPC value with no kind set")
