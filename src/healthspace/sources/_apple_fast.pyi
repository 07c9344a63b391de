# The native scanner (_apple_fast.c); see its header comment.

def scan(
    data: bytes, pos: int, /
) -> tuple[
    int,
    int,
    list[tuple[bytes, bytes, bytes, bytes]],
    bytes,
    bytes,
    bytes,
    bytes,
    bytes,
    bytes,
    list[tuple[int, bytes, bytes, bytes, bytes, bytes, bytes, bytes]],
]: ...
