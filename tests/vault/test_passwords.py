"""T-ENC-7 (parameters half): argon2id with m >= 19456 KiB and t >= 2."""

from __future__ import annotations

import re

from healthspace.vault import hash_password, verify_password


def test_argon2id_parameters_meet_the_floor() -> None:
    stored = hash_password("correct horse battery staple")
    m = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", stored)
    assert m is not None
    assert int(m.group(1)) >= 19456
    assert int(m.group(2)) >= 2
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "wrong")
    assert not verify_password("garbage", "wrong")
