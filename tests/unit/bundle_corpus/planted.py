"""The redaction corpus: secrets planted in a XenStore tree and in console text.

Self-contained (no import of the other corpus modules) so the real-Xen tier can plant the same
nodes into a real XenStore (tests/xen/test_bundle_redaction.py).  Every planted secret is a
string that occurs nowhere else by chance; :func:`forms` gives every way it could leak into an
archive: raw, hex (both cases), and base64 at each of the three byte alignments.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


@dataclass(frozen=True)
class Plant:
    """One planted XenStore node (path relative to the corpus base), and what must vanish."""

    rel: str
    value: bytes
    secrets: tuple[str, ...]
    rule_class: str  # which class of rule must catch it (documentation for the reader)


CEPH_KEY = "AQBzM6dSAAAAABAAnKNsVZNNvnqIfjsSP6kz9Q=="
AWS_ID = "AKIAQWERTYUIOPASDFGH"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
USER_DATA = (
    "#cloud-config\nwrite_files:\n- path: /etc/aws.env\n  content: |\n"
    f"    AWS_ACCESS_KEY_ID={AWS_ID}\n    AWS_SECRET_ACCESS_KEY={AWS_SECRET}\n"
)
USER_DATA_B64_SECRET = "B64pw-Xy42zz"
USER_DATA_B64 = base64.b64encode(
    f"#cloud-config\nruncmd:\n - echo DB_PASSWORD={USER_DATA_B64_SECRET} >> /etc/env\n".encode()
)
NAMED_B64_SECRET = "Nm-b64-Secret-01"
OPENSSH_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQGsTest"
RSA_BODY = "MIIEpQIBAAKCAQEAq7ZfakeBodyGs99"

PLANTS: tuple[Plant, ...] = (
    # known secret nodes
    Plant("vm/vncpasswd", b"Vn7!pw", ("Vn7!pw",), "known node, short"),
    Plant("backend/vfb/0/vncpasswd", b"Qz7#", ("Qz7#",), "known node, 4 characters"),
    Plant("data/set_clipboard", b"clip-Wq82-mynotes", ("clip-Wq82-mynotes",), "known node"),
    # nodes whose name says secret
    Plant("data/password", b"pw-Hx93kLm", ("pw-Hx93kLm",), "name"),
    Plant("data/pass", b"Ps#41q", ("Ps#41q",), "name, short"),
    Plant("data/api_token", b"tkn_9f8e7d6c5b4a", ("tkn_9f8e7d6c5b4a",), "name"),
    Plant("attr/db_secret", b"sec-Zr55-aa", ("sec-Zr55-aa",), "name"),
    Plant("data/wifi/psk", b"wifi-Psk-3321", ("wifi-Psk-3321",), "name (key material)"),
    Plant(
        "data/secret-b64",
        base64.b64encode(NAMED_B64_SECRET.encode()),
        (NAMED_B64_SECRET, base64.b64encode(NAMED_B64_SECRET.encode()).decode()),
        "name, base64 value",
    ),
    Plant(
        "data/ssh/host_key",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{OPENSSH_BODY}\n"
        "-----END OPENSSH PRIVATE KEY-----\n".encode(),
        (OPENSSH_BODY,),
        "name (key material), PEM",
    ),
    # key=/password=/passwd=/secret=/token= pairs inside longer values
    Plant(
        "data/login",
        b"user=root password=Lg#pw2291 shell=/bin/sh",
        ("Lg#pw2291",),
        "value password=",
    ),
    Plant("data/opts", b"mode=fast passwd=Pd$88x9 retries=3", ("Pd$88x9",), "value passwd="),
    Plant("data/svc", b"endpoint secret=Sk-71qq-zz", ("Sk-71qq-zz",), "value secret="),
    Plant("data/agent", b"token: Tk.44.zz.99", ("Tk.44.zz.99",), "value token:"),
    Plant("data/k", b"cfg key=Ky_5521_q more", ("Ky_5521_q",), "value key="),
    Plant("data/conf", b"pwd=Ab1!", ("Ab1!",), "value pwd=, 4 characters"),
    Plant(
        "data/json",
        b'{"user": "x", "password": "Js0nPw#7"}',
        ("Js0nPw#7",),
        "value, quoted JSON",
    ),
    Plant(
        "data/api-url",
        b"https://api.test/v1?token=Qt-8812-ab&x=1",
        ("Qt-8812-ab",),
        "value token= in a URL query",
    ),
    # Ceph key in a disk backend's params
    Plant(
        "backend/vbd/51712/params",
        f"rbd:pool/img:id=admin:key={CEPH_KEY}:mon_host=10.0.0.1".encode(),
        (CEPH_KEY,),
        "value key= (Ceph)",
    ),
    # user:password in URLs and iSCSI targets
    Plant(
        "data/cmdline",
        b"root=/dev/sda netroot=iscsi:chapuser:Ch4pS3cr3t@192.0.2.10::3260::iqn.2026-01.t:d ro",
        ("Ch4pS3cr3t",),
        "iSCSI CHAP",
    ),
    Plant(
        "data/repo",
        b"https://builder:Ur1Pw-77x@repo.example.test/path",
        ("Ur1Pw-77x",),
        "URL credentials",
    ),
    # bearer tokens
    Plant(
        "data/http",
        b"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.Zm9vYmFyYmF6",
        ("eyJhbGciOiJIUzI1NiJ9.e30.Zm9vYmFyYmF6",),
        "bearer",
    ),
    # cloud-init user-data, plain and base64
    Plant("data/user-data", USER_DATA.encode(), (AWS_ID, AWS_SECRET), "cloud-init"),
    Plant(
        "data/user-data-b64",
        USER_DATA_B64,
        (USER_DATA_B64_SECRET, USER_DATA_B64.decode()),
        "cloud-init, base64",
    ),
    # PEM inside a value whose name says nothing
    Plant(
        "data/blob",
        (
            f"pre -----BEGIN RSA PRIVATE KEY-----\n{RSA_BODY}\n"
            "-----END RSA PRIVATE KEY----- post"
        ).encode(),
        (RSA_BODY,),
        "PEM inside a value",
    ),
    # copies of values a rule redacted elsewhere (short ones as whole words)
    Plant("data/note", b"the vnc password is Vn7!pw ok", ("Vn7!pw",), "copy, short"),
    Plant("data/motd", b"cached:pw-Hx93kLm;", ("pw-Hx93kLm",), "copy, inside a longer value"),
)

# Console text (hvdump.txt / xl-dmesg.txt): guest lines and hypervisor lines.
CONSOLE_SECRETS: tuple[str, ...] = (
    "Cn5ole-Pw",
    "C0ns-Chap",
    "c0nsT0ken.abc.def",
    "C0nsAwsSecretKey/Example+123",
    "Qz7#",
    "clip-Wq82-mynotes",
)
CONSOLE_TEXT = (
    "(d1) login: root password=Cn5ole-Pw\n"
    "(XEN) Command line: dom0_mem=1G netroot=iscsi:u2:C0ns-Chap@10.0.0.2::3260::iqn.x:y\n"
    "(d2) curl -H 'Authorization: Bearer c0nsT0ken.abc.def' https://x.test/\n"
    "(d1) export AWS_SECRET_ACCESS_KEY=C0nsAwsSecretKey/Example+123\n"
    "(d1) vnc set to Qz7# now\n"
    "(d3) clipboard: clip-Wq82-mynotes\n"
    "(XEN) pid 12345 at 1234 true false\n"
)

# Ordinary values that must come through unchanged (the old byte scrub corrupted such things).
ORDINARY: dict[str, bytes] = {
    "data/pid": b"12345",
    "data/flag": b"true",
    "data/keymap": b"en-us",
    "data/ring-ref": b"8",
}


def all_secrets() -> list[str]:
    """Every planted secret (XenStore and console), each once."""
    seen: dict[str, None] = {}
    for plant in PLANTS:
        for secret in plant.secrets:
            seen.setdefault(secret, None)
    for secret in CONSOLE_SECRETS:
        seen.setdefault(secret, None)
    return list(seen)


def forms(secret: str) -> list[bytes]:
    """Every form in which ``secret`` could leak: raw, hex, and base64 at every alignment.

    For base64 only the characters fully determined by the secret's own bytes are kept (the
    ones at either end depend on the neighbouring bytes), so any alignment is found.
    """
    raw = secret.encode()
    out = [raw, raw.hex().encode(), raw.hex().upper().encode()]
    for pad in range(3):
        encoded = base64.b64encode(b"\x00" * pad + raw + b"\x00\x00\x00")
        # Characters wholly inside the secret: start after the padding's, stop before the tail.
        first = (pad * 8 + 5) // 6
        last = ((pad + len(raw)) * 8) // 6
        core = encoded[first:last]
        if len(core) >= 4:
            out.append(core)
    return out
