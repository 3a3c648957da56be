"""Type codes of header values, shared by the Python side and the compiled kernels.

The numbers are part of the frame format (``docs/frame-format.md``): never renumber them.
"""

NONE = 0
BOOL = 1
INT = 2
FLOAT = 3
STR = 4
BYTES = 5
LIST = 6
DICT = 7

#: Nested values (inside a list or dict header) are encoded as a tag byte, then for the
#: fixed-size kinds 0 (None, False, True) or 8 bytes, and for the variable-size kinds a
#: little-endian u32 length and that many payload bytes. A list payload is a u32 count and
#: its items; a dict payload is a u32 count and, per entry, a u32 name length, the UTF-8 name
#: and the item. Every item can therefore be skipped without decoding it.
TAG_NONE = 0
TAG_FALSE = 1
TAG_TRUE = 2
TAG_INT = 3
TAG_FLOAT = 4
TAG_STR = 5
TAG_BYTES = 6
TAG_LIST = 7
TAG_DICT = 8
