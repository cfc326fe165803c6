"""Python values <-> shard.wire.Value (netproto/proto/value.proto), for a
client that knows nothing of the server's code: only the class stock protoc
generated (value_pb2) and the rules docs/rpc.md states ("Values").

Plain data only, both ways: None, bool, int (64-bit), float, str, bytes,
list (a tuple goes as a list), dict with str keys. What the server sends is
hostile like any other bytes from the network: nesting and the number of
values one decode builds are bounded, a Value with no kind is refused.
"""

MAX_DEPTH = 30            # the server's bound: deeper is refused both ways
MAX_VALUES = 200_000      # values one decode may build
INT_MIN, INT_MAX = -(1 << 63), (1 << 63) - 1


class BadValue(ValueError):
    """A Value from the wire that is not plain data within the bounds."""


def fill(obj, out, depth=0):
    """Writes `obj` into `out` (a value_pb2.Value); TypeError for a type
    that has no Value, OverflowError past 64 bits, ValueError past MAX_DEPTH."""
    t = type(obj)
    if obj is None:
        out.null_value = True
    elif t is bool:
        out.bool_value = obj
    elif t is int:
        if not INT_MIN <= obj <= INT_MAX:
            raise OverflowError("int %d does not fit the 64 bits of a Value" % obj)
        out.int_value = obj
    elif t is float:
        out.double_value = obj
    elif t is str:
        out.string_value = obj
    elif t is bytes or t is bytearray:
        out.bytes_value = bytes(obj)
    elif t is list or t is tuple:
        _check_depth(depth, ValueError)
        out.list_value.SetInParent()  # an empty list is still a list
        for item in obj:
            fill(item, out.list_value.items.add(), depth + 1)
    elif t is dict:
        _check_depth(depth, ValueError)
        out.map_value.SetInParent()
        for key, item in obj.items():
            if type(key) is not str:
                raise TypeError("Value dict keys must be str, not %s" % type(key).__name__)
            fill(item, out.map_value.fields[key], depth + 1)
    else:
        raise TypeError("%s cannot be sent as a Value (plain data only: None, bool, int, float, str, bytes, "
                        "list, tuple, dict with str keys)" % t.__name__)


def _check_depth(depth, error):
    if depth >= MAX_DEPTH:
        raise error("Value nested deeper than %d levels" % MAX_DEPTH)


def read(value):
    """The Python value of a parsed Value; BadValue when it has no kind,
    nests past MAX_DEPTH or holds more than MAX_VALUES values."""
    return _read(value, 0, [MAX_VALUES])


def _read(value, depth, budget):
    budget[0] -= 1
    if budget[0] < 0:
        raise BadValue("Value holds more than %d values" % MAX_VALUES)
    kind = value.WhichOneof("kind")
    if kind == "int_value":
        return value.int_value
    if kind == "string_value":
        return value.string_value
    if kind == "double_value":
        return value.double_value
    if kind == "null_value":
        return None
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        return value.bytes_value
    if kind == "list_value":
        _check_depth(depth, BadValue)
        return [_read(item, depth + 1, budget) for item in value.list_value.items]
    if kind == "map_value":
        _check_depth(depth, BadValue)
        return {key: _read(item, depth + 1, budget) for key, item in value.map_value.fields.items()}
    raise BadValue("Value with no kind set")
