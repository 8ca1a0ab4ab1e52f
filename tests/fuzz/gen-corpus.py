#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of the fuzz targets into tests/corpus/<target>/.

The seeds are committed; this script documents how they were made and
regenerates them (run from the repository root). Layouts: see the header
comment of each tests/fuzz/fuzz-*.c.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- SMMUv3 commands (facts section 5) --------------------------------------
def cmd(d0, d1=0):
    return struct.pack("<QQ", d0 & (2**64 - 1), d1 & (2**64 - 1))


def tlbi_va(asid, addr, tg=1, num=0, scale=0, ttl=3, leaf=1, op=0x12):
    d0 = op | num << 12 | scale << 20 | asid << 48
    d1 = leaf | ttl << 8 | tg << 10 | (addr & ~0xFFF)
    return cmd(d0, d1)


def tlbi_asid(asid):
    return cmd(0x11 | asid << 48)


def cfgi_cd(sid, ssid=0, leaf=1):
    return cmd(0x05 | ssid << 12 | sid << 32, leaf)


def cfgi_cd_all(sid):
    return cmd(0x06 | sid << 32)


def atc_inv(sid, addr, size=0, ssid=0, ssv=0, glob=0):
    return cmd(0x40 | glob << 9 | ssv << 11 | ssid << 12 | sid << 32,
               size | (addr & ~0xFFF))


SYNC = cmd(0x46 | 2 << 12 | 3 << 22 | 0xF << 24)
NH_ALL = cmd(0x10)
NSNH_ALL = cmd(0x30)

# cmdq: caps byte, then commands.
put("cmdq", "strict-unmap", b"\x00" + b"".join(
    tlbi_va(1, 0xFFFF6000 + 0x1000 * i) + SYNC for i in range(4)))
put("cmdq", "adjacent-ranges", b"\x01" + b"".join(
    tlbi_va(3, 0x40000 + 0x1000 * i) for i in range(8)) +
    tlbi_va(3, 0x80000, num=1, scale=2) + tlbi_va(3, 0x88000, num=3) + SYNC)
put("cmdq", "supersede", b"\x01" + tlbi_va(2, 0x1000) + tlbi_asid(2) +
    cfgi_cd(0x8, 1) + cfgi_cd(0x8, 2) + cfgi_cd_all(0x8) +
    atc_inv(0x8, 0x2000, 0) + atc_inv(0x8, 0x2000, 0) + tlbi_va(5, 0x3000) +
    NH_ALL + tlbi_va(5, 0x3000) + SYNC)
put("cmdq", "illegal", b"\x02\x55\x20\x3f" + cmd(0x03 | 8 << 32, 1) +
    cmd(0x04 | 8 << 32, 31) + cmd(0x20) + cmd(0x28) + cmd(0x99) +
    cmd(0x12 | 1 << 10) + cmd(0x46 | 3 << 12) + cmd(0x01) + cmd(0) + NSNH_ALL)
put("cmdq", "vaa-and-64k", b"\x03\x00\x10\x28" +
    tlbi_va(0, 0x10000, tg=3, op=0x13) + tlbi_va(0, 0x20000, tg=3, op=0x13) +
    tlbi_va(7, 0x100000, tg=3, num=31, scale=1, ttl=0, leaf=0) + SYNC)
# 16K and 64K granules, SCALE > 2 and SCALE >= 32 (DS: full caps), a
# by-VA TLBI followed by a by-ASID one of the same ASID (must stay).
put("cmdq", "granules", b"\x01" +
    tlbi_va(4, 0x0, tg=2, num=1, scale=3, ttl=2) +
    tlbi_va(4, 0x40000, tg=2, num=1, scale=3, ttl=2) +
    tlbi_va(4, 0x0, tg=3, num=0, scale=5, ttl=3, leaf=0) +
    tlbi_va(4, 0x200000, tg=3, num=0, scale=5, ttl=3) +
    tlbi_va(4, 0x0, tg=1, num=3, scale=17) +
    tlbi_va(4, 0x0, tg=1, num=0, scale=33, op=0x13) +
    tlbi_va(4, 0x8000, tg=2, num=0, scale=0, ttl=1) +
    tlbi_asid(4) + SYNC)
# ATC_INV: Global with PASID, without PASID, size 52 (all) and 53 (bad).
put("cmdq", "atc-global", b"\x01" +
    atc_inv(3, 0x0, 52, ssid=5, ssv=1, glob=1) + atc_inv(3, 0x0, 52) +
    atc_inv(3, 0x4000, 2, ssid=5, ssv=1) + atc_inv(3, 0x4000, 2, ssid=5, ssv=1) +
    atc_inv(3, 0x4000, 53) + SYNC)
put("cmdq", "window", b"\x01" + b"".join(
    tlbi_va(i % 7, 0x1000 * (i % 13)) for i in range(600)))

# ---- trace text ----------------------------------------------------------------
put("trace", "strict", b"""# smmuv3-cmdq-trace v1
BATCH n=2 t_us=471 cpu=0 cons=0 prod=2
CFGI_ALL start=0x0 end=0xffffffff
SYNC
BATCH n=2 t_us=697 cpu=0 cons=2 prod=4
TLBI_NSNH_ALL
SYNC
BATCH n=2 t_us=894269 cpu=1 cons=6 prod=8
CFGI_STE sid=0x8
SYNC
BATCH n=1 t_us=894354 cpu=1 cons=10 prod=11
PREFETCH_CFG
BATCH n=2 t_us=950882 cpu=1 cons=22 prod=24
TLBI_NH_VA asid=1 vmid=0 addr=0xffff6000 tg=1 num=0 scale=0 ttl=3 leaf=1 pages=1
SYNC
""")
put("trace", "marks", b"""# MARK init-start (modules not yet loaded)
# free comment
\r
TLBI_NH_ASID asid=2
TLBI_NH_ALL
# MARK WORKLOAD-BEGIN wl=blk uptime=3.24
""")
put("trace", "every-form", b"""TLBI_NH_VAA vmid=0 addr=0x20000 tg=3 num=1 scale=0 ttl=0 leaf=0
ATC_INV sid=0x10 ssv=1 ssid=0x5 global=0 addr=0x40000 size=4
CFGI_CD sid=0x18
CFGI_CD_ALL sid=0x18
RAW d0=0x99 d1=0x1
RAW d0=0x3 d1=0x0
TLBI_NH_VA asid=3 vmid=0 addr=0x0 tg=0 num=0 scale=0 ttl=0 leaf=0
""")
put("trace", "bad-batch", b"BATCH n=3 t_us=1 cpu=0 cons=0 prod=3\nSYNC\n")
put("trace", "garbage", b"TLBI_NH_VA asid=70000\nSYNC extra=1\n")

# ---- ring consumer -------------------------------------------------------------
# Built header: mode, log2, then prod, cons, svc_flags, halt_seq, resume_seq.
def ring_built(mode, log2, prod, cons, flags=0, halt_seq=0, resume=0,
               entries=b"", script=b""):
    n = 1 << (2 + log2 % 9)
    hdr_size = (256, 320, 1024, 4096)[(mode >> 2) & 3]
    ent = entries.ljust(16 * n + hdr_size - 256, b"\x00")
    return (bytes([mode, log2]) +
            struct.pack("<5I", prod, cons, flags, halt_seq, resume) +
            ent + script)


OP = dict(PROD_ABS=0, PROD_REL=1, ENTRY=2, POLL=3, FETCH=4, COMPLETE=5,
          HALT=6, ACK=7, RESUME_SEQ=8, RESUME=9, NEED_WAKEUP=10,
          CLEAR_WAKEUP=11, WANT_SIGNAL=12, SCRIBBLE=13, REMAP=14)


def ops(*steps):
    out = b""
    for s in steps:
        if isinstance(s, str):
            out += bytes([OP[s]])
        else:
            out += bytes([OP[s[0]]]) + s[1]
    return out


flow = ops(("PROD_REL", b"\x05"), "POLL", ("FETCH", b"\x03"),
           ("COMPLETE", b"\x02"), "POLL", ("FETCH", b"\x08"),
           ("COMPLETE", b"\xff"), "NEED_WAKEUP", ("PROD_REL", b"\x02"),
           "NEED_WAKEUP", "POLL", ("FETCH", b"\x02"), ("WANT_SIGNAL", b"\x01"),
           ("COMPLETE", b"\x01"), "REMAP", "POLL", ("FETCH", b"\x04"))
put("ring-cons", "flow", ring_built(0, 2, 0, 0, entries=SYNC * 16,
                                    script=flow))
halt = ops(("PROD_REL", b"\x04"), "POLL", ("FETCH", b"\x04"),
           ("HALT", b"\x02\x01"), "POLL", "RESUME", "ACK", "RESUME", "POLL",
           ("FETCH", b"\x04"), ("COMPLETE", b"\x04"))
put("ring-cons", "halt-resume", ring_built(4, 1, 0, 0, entries=SYNC * 8,
                                           script=halt))
hostile = ops(("PROD_ABS", struct.pack("<I", 1000)), "POLL", "ACK", "RESUME",
              ("PROD_REL", b"\xfe"), "POLL", ("SCRIBBLE", b"\x04" +
                                              struct.pack("<I", 7)),
              "REMAP", ("ENTRY", b"\x01\x00" + NH_ALL), "POLL")
put("ring-cons", "hostile", ring_built(8, 0, 0xfffffffe, 0xfffffffc,
                                       script=hostile))
put("ring-cons", "resume-after-restart",
    ring_built(12, 3, 10, 6, flags=2, halt_seq=3, resume=3,
               script=ops("RESUME", "POLL", ("FETCH", b"\x10"))))
put("ring-cons", "unsealed", ring_built(2, 0, 0, 0))
raw = struct.pack("<IHHIIII", 0x474E5253, 1, 0, 256, 16, 2, 0).ljust(256, b"\0")
put("ring-cons", "raw-header", bytes([1, 1]) + raw + SYNC * 4 +
    ops(("PROD_REL", b"\x03"), "POLL", ("FETCH", b"\x03")))

# ---- rpc -----------------------------------------------------------------------
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fld(num, val):
    if isinstance(val, int):
        return varint(num << 3) + varint(val)
    return varint(num << 3 | 2) + varint(len(val)) + val


def request(rid, body_num, body=b""):
    return fld(1, rid) + fld(body_num, body)


def frame(data, fds=0):
    return bytes([fds]) + struct.pack("<H", len(data)) + data


create = request(2, 4, fld(1, b"smmu0"))
attach_dev = request(3, 6, fld(1, 1) + fld(2, 0x100) + fld(3, 8))
attach_ring = request(4, 8, fld(1, 1))
stats = request(5, 11, fld(1, 3) + fld(2, 1))
listing = request(6, 12, b"")
put("rpc", "session", b"\x00" + frame(create) + frame(attach_dev) +
    frame(attach_ring, 2) + frame(stats) + frame(listing) +
    frame(request(7, 10, fld(1, 1))) + frame(request(8, 9, fld(1, 1))) +
    frame(request(9, 7, fld(1, 1) + fld(2, 8))) +
    frame(request(10, 5, fld(1, 1))))
put("rpc", "no-hello", b"\x01" + frame(listing) +
    frame(request(1, 2, fld(1, 99))) + frame(request(2, 2, fld(1, 1))))
put("rpc", "garbage", b"\x00" + frame(b"\xff\xff\xff\xff") + frame(b"") +
    frame(request(3, 3), 3) + frame(request(4, 9, fld(1, 12345))) +
    frame(request(5, 4, fld(1, b"nosuch")), 1))
put("rpc", "limits", b"\x00" + b"".join(frame(create) for _ in range(6)) +
    b"".join(frame(request(20 + i, 6, fld(1, 1) + fld(2, i) + fld(3, i)))
             for i in range(10)) +
    frame(request(40, 11, fld(1, 0))) + frame(request(41, 11, fld(1, 2))))

# ---- vcmdq: nq byte, then ops (enum op in tests/fuzz/fuzz-vcmdq.c) ----------
(V_REG, V_PROD_REL, V_CONFIG, V_ACK, V_ENTRY, V_BASE, V_READY, V_POLL,
 V_FETCH, V_COMPLETE, V_HALT, V_PASS, V_REMAP) = range(13)


def v_base(q, log2, off32=0):
    """VMM forwards BASE = GPA + off32 * 32 | log2."""
    return bytes([V_BASE, q, 1 | log2 << 1]) + struct.pack("<H", off32)


def v_entry(slot, kind, lo=0, hi=0):
    """kind 0..3: TLBI_NH_ASID, TLBI_NH_VA, ATC_INV, CMD_SYNC."""
    return bytes([V_ENTRY]) + struct.pack("<HBHH", slot, kind, lo, hi)


def v_raw(slot, w0, w1=0):
    return bytes([V_ENTRY]) + struct.pack("<HBQQ", slot, 4, w0, w1)


def v_reg(q, word, val):
    return bytes([V_REG, q, word]) + struct.pack("<I", val & 0xFFFFFFFF)


def v_enable(q, log2, off32=0):
    return bytes([V_READY, q, 1]) + v_base(q, log2, off32) + \
        bytes([V_CONFIG, q, 1, V_PASS])


PASS = bytes([V_PASS])
put("vcmdq", "linux-flow", b"\x01" + v_enable(0, 4) + v_enable(1, 3, 64) +
    v_entry(0, 1, 5, 7) + v_entry(1, 0, 5) + v_entry(2, 3) +
    v_reg(0, 1, 3) + PASS + PASS +
    b"".join(v_entry(64 + i, i % 4, i) for i in range(8)) +
    v_reg(1, 1, 8) + PASS + bytes([V_PROD_REL, 1, 3]) + PASS + PASS)
put("vcmdq", "ill-skip", b"\x00" + v_enable(0, 2) + v_entry(0, 1) +
    v_raw(1, 0x03 | 8 << 32, 1) + v_entry(2, 3) + v_reg(0, 1, 3) + PASS +
    PASS + v_entry(1, 3) + bytes([V_ACK, 0]) + PASS + PASS +
    v_raw(3, 0x46 | 1 << 12) + v_reg(0, 1, 4) + PASS + bytes([V_ACK, 0]) +
    PASS)
put("vcmdq", "bad-base", b"\x01" + v_enable(0, 19) + v_enable(1, 5, 3) +
    bytes([V_BASE, 0, 0]) + struct.pack("<Q", 0xFFFF_0000_8000_0004) +
    bytes([V_CONFIG, 0, 0, V_POLL, 0, V_CONFIG, 0, 1, V_POLL, 0,
           V_ACK, 0, V_CONFIG, 0, 0, V_POLL, 0]) + v_enable(0, 4, 2048) +
    v_enable(0, 11) + v_enable(1, 12) + PASS)
put("vcmdq", "prod-games", b"\x00" + v_enable(0, 3) +
    b"".join(v_entry(i, i % 4) for i in range(8)) +
    v_reg(0, 1, 0x20) + PASS + bytes([V_ACK, 0]) + v_reg(0, 1, 5) + PASS +
    bytes([V_PROD_REL, 0, 0xFF]) + PASS + bytes([V_ACK, 0]) +
    v_reg(0, 1, 0x0A00_0005) + PASS + bytes([V_ACK, 0]) +
    bytes([V_PROD_REL, 0, 9]) + PASS + bytes([V_ACK, 0]) +
    v_reg(0, 5, 1) + PASS + v_reg(0, 5, 0) + PASS)
put("vcmdq", "drain-halt", b"\x02" + v_enable(0, 3) + v_enable(2, 4, 8) +
    b"".join(v_entry(i, 1, i) for i in range(6)) + v_reg(0, 1, 6) +
    bytes([V_POLL, 0, V_FETCH, 0, 4, V_CONFIG, 0, 0, V_POLL, 0, V_POLL, 0,
           V_CONFIG, 0, 1, V_POLL, 0, V_CONFIG, 0, 0, V_POLL, 0,
           V_COMPLETE, 0, 2, 0, V_HALT, 0, 3, 1, 0, V_COMPLETE, 0, 9, 0,
           V_HALT, 0, 1, 3, 0, V_COMPLETE, 0, 1, 1, V_POLL, 0]) +
    bytes([V_REMAP, V_READY, 2, 1, V_POLL, 2, V_ACK, 0, V_POLL, 0,
           V_READY, 0, 1]) + v_base(0, 3) + bytes([V_CONFIG, 0, 1]) + PASS +
    bytes([V_READY, 2, 0, V_POLL, 2]) + PASS)
