"""RPC values (server/python/rpc_values.py): plain data round trips through
shard.wire.Value; everything else is refused on the way out, and a hostile
Value from the wire builds nothing but bounded plain data."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "engine", "tests", "python"))

import google.protobuf.message  # noqa: E402
import rpc_values  # noqa: E402
import support  # noqa: E402
import value_pb2  # noqa: E402
from rpc_values import WireValueError, from_wire, to_wire  # noqa: E402


def setUpModule():
    support.setUpModule()


def tearDownModule():
    support.tearDownModule()


def round_trip(obj):
    return from_wire(value_pb2.Value.FromString(to_wire(obj).SerializeToString()))


def nested_list_bytes(depth):
    """The bytes of a Value that is a list in a list ... `depth` deep, built
    by hand as a hostile peer would (to_wire refuses it)."""
    data = value_pb2.Value(null_value=True).SerializeToString()
    for _ in range(depth):
        items = b"\x0a" + _varint(len(data)) + data            # ListValue.items = 1
        data = b"\x3a" + _varint(len(items)) + items           # Value.list_value = 7
    return data


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


class RoundTripTest(unittest.TestCase):

    def test_plain_data_comes_back_equal(self):
        for obj in [None, True, False, 0, 1, -1, 2**63 - 1, -2**63, 0.0, -2.5, float("inf"), "", "été ✓", b"",
                    b"\x00\xff", [], {}, [1, "a", None, [2.5, b"x"]], {"a": {"b": [1, {"c": None}]}, "": 0}]:
            with self.subTest(obj=obj):
                back = round_trip(obj)
                self.assertEqual(back, obj)
                self.assertIs(type(back), type(obj))

    def test_bool_stays_bool_and_int_stays_int(self):
        self.assertIs(round_trip(True), True)
        self.assertIs(type(round_trip(1)), int)

    def test_tuple_goes_as_list_and_bytearray_as_bytes(self):
        self.assertEqual(round_trip((1, (2, 3))), [1, [2, 3]])
        self.assertEqual(round_trip(bytearray(b"ab")), b"ab")

    def test_nan_round_trips(self):
        back = round_trip(float("nan"))
        self.assertNotEqual(back, back)


class RefusalTest(unittest.TestCase):

    def test_int_beyond_64_bits_is_an_overflow_error(self):
        for n in (2**63, -2**63 - 1, 10**30):
            with self.assertRaisesRegex(OverflowError, "out of the 64-bit range"):
                to_wire([n])

    def test_other_types_are_a_type_error_naming_them(self):
        class Evil:
            def __reduce__(self):
                raise AssertionError("never pickled")
        for obj in (object(), Evil(), {1, 2}, 1j, len, type, Exception("x")):
            with self.subTest(obj=obj):
                with self.assertRaisesRegex(TypeError, "cannot be an RPC value"):
                    to_wire({"k": obj})

    def test_subclasses_of_plain_types_are_refused(self):
        class MyStr(str):
            pass
        with self.assertRaises(TypeError):
            to_wire(MyStr("x"))

    def test_dict_keys_must_be_str(self):
        with self.assertRaisesRegex(TypeError, "keys must be str, not int"):
            to_wire({1: "a"})

    def test_nesting_past_the_bound_is_refused_on_the_way_out(self):
        obj = []
        for _ in range(rpc_values.MAX_DEPTH + 1):
            obj = [obj]
        with self.assertRaisesRegex(ValueError, "nested deeper than"):
            to_wire(obj)
        ok = []
        for _ in range(rpc_values.MAX_DEPTH - 1):
            ok = [ok]
        self.assertEqual(round_trip(ok), ok)

    def test_self_containing_list_is_refused_not_looped(self):
        loop = []
        loop.append(loop)
        with self.assertRaisesRegex(ValueError, "nested deeper than"):
            to_wire(loop)


class HostileWireTest(unittest.TestCase):

    def test_a_value_with_no_kind_is_a_wire_value_error(self):
        with self.assertRaisesRegex(WireValueError, "no kind"):
            from_wire(value_pb2.Value())
        with self.assertRaisesRegex(WireValueError, "no kind"):
            from_wire(value_pb2.Value.FromString(b"\x3a\x02\x0a\x00"))  # [<empty Value>]

    def test_deep_nesting_past_our_bound_but_under_the_parsers_is_refused(self):
        value = value_pb2.Value.FromString(nested_list_bytes(rpc_values.MAX_DEPTH + 5))
        with self.assertRaisesRegex(WireValueError, "nested deeper than"):
            from_wire(value)

    def test_deep_nesting_past_the_parsers_limit_does_not_parse(self):
        with self.assertRaises(google.protobuf.message.DecodeError):
            value_pb2.Value.FromString(nested_list_bytes(10_000))

    def test_too_many_values_are_refused(self):
        empty = b"\x0a\x02\x08\x01"  # items: Value{null_value: true}
        data = empty * (rpc_values.MAX_VALUES + 1)
        value = value_pb2.Value.FromString(b"\x3a" + _varint(len(data)) + data)
        with self.assertRaisesRegex(WireValueError, "more than %d values" % rpc_values.MAX_VALUES):
            from_wire(value)

    def test_a_wrong_wire_type_does_not_parse(self):
        with self.assertRaises(google.protobuf.message.DecodeError):
            value_pb2.Value.FromString(b"\x2a\xff\xff\xff\xff\x0f")  # a string longer than the payload
        with self.assertRaises(google.protobuf.message.DecodeError):
            value_pb2.Value.FromString(b"\x2a\x02\xff\xfe")  # a string that is not UTF-8


if __name__ == "__main__":
    unittest.main()
