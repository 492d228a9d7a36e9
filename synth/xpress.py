"""A greedy LZ77 "Xpress" encoder (plain LZ77, MS-XCA section 2.3), the format of compressed ETW
buffers (etw-formats.md 1.3). Written from the specification's description of the bit stream:

* 32-bit little-endian flag words, each announcing the next 32 items, most significant bit first:
  0 = one literal byte, 1 = a match;
* a match is a 16-bit token ((offset - 1) << 3 | min(length - 3, 7)); longer lengths continue in a
  shared nibble (two matches share one byte), then a byte, then a 16-bit or 32-bit count;
* the last flag word is padded with 1 bits (a decoder stops at a match with no input left).

Greedy, one hash candidate per 3-byte prefix plus a short chain: it trades ratio for speed, which
is the right trade for a writer of many 64 KiB buffers in pure Python.
"""

from __future__ import annotations

import struct

MAX_OFFSET = 8192
MIN_MATCH = 3
_CHAIN = 4  # candidates tried per position; more costs time for little gain on ETW data
# The format allows 32-bit lengths, but libfwnt (the project's reader) reads the 16-bit count as
# signed, so longer matches are split: (length - 3) stays below 0x8000.
MAX_MATCH = 0x7FFF + MIN_MATCH - 1


def compress(data: bytes) -> bytes:
    n = len(data)
    out = bytearray(4)          # room for the first flag word
    flag_pos = 0
    flags = 0
    flag_count = 0
    nibble_pos = -1             # output byte whose high nibble is still free
    heads: dict[bytes, list[int]] = {}
    i = 0
    pack_into = struct.pack_into

    while i < n:
        best_len = 0
        if i + MIN_MATCH <= n:
            key = data[i:i + MIN_MATCH]
            chain = heads.get(key)
            if chain:
                best_len, best_off = _longest_match(data, i, chain, min(n - i, MAX_MATCH))
                chain.append(i)
                if len(chain) > _CHAIN:
                    del chain[0]
            else:
                heads[key] = [i]
        if best_len >= MIN_MATCH:
            flags = (flags << 1) | 1
            nibble_pos = _put_match(out, best_len - MIN_MATCH, best_off, nibble_pos)
            end = i + best_len
            _index_inside(heads, data, i + 1, min(end, n - MIN_MATCH + 1))
            i = end
        else:
            flags <<= 1
            out.append(data[i])
            i += 1
        flag_count += 1
        if flag_count == 32:
            # The word is full: the next one goes after the data of the 32 items it announced
            # (also after the last item, where it announces only the terminator).
            pack_into("<I", out, flag_pos, flags)
            flag_pos = len(out)
            out.extend(b"\0\0\0\0")
            flags = 0
            flag_count = 0
    # Pad the last flag word with 1 bits (the spec's terminator).
    pad = 32 - flag_count
    flags = ((flags << pad) | ((1 << pad) - 1)) & 0xFFFFFFFF
    pack_into("<I", out, flag_pos, flags)
    return bytes(out)


def _longest_match(data: bytes, i: int, chain: list[int], limit: int) -> tuple[int, int]:
    """The longest earlier occurrence of what starts at `i` among the chain's candidates (newest
    first, within MAX_OFFSET), at most `limit` long: (length, offset), length 0 if none."""
    best_len = best_off = 0
    for cand in reversed(chain):
        off = i - cand
        if off > MAX_OFFSET:
            break
        # Grow the match by doubling, then bisect: slice compares run in C.
        length = MIN_MATCH
        step = 16
        while length < limit:
            probe = min(limit, length + step)
            if data[cand:cand + probe] == data[i:i + probe]:
                length = probe
                step *= 2
            elif step > 1:
                step //= 2
            else:
                break
        if length > best_len:
            best_len, best_off = length, off
            if length == limit:
                break
    return best_len, best_off


def _put_match(out: bytearray, length: int, offset: int, nibble_pos: int) -> int:
    """Append a match of (length - MIN_MATCH) = `length`; returns the output byte whose high
    nibble is still free for the next long match (-1 if none)."""
    token_off = (offset - 1) << 3
    if length < 7:
        out += struct.pack("<H", token_off | length)
        return nibble_pos
    out += struct.pack("<H", token_off | 7)
    rest = length - 7
    nib = min(rest, 15)
    if nibble_pos < 0:
        nibble_pos = len(out)
        out.append(nib)
    else:
        out[nibble_pos] |= nib << 4
        nibble_pos = -1
    if rest >= 15:
        rest -= 15
        if rest < 255:
            out.append(rest)
        else:
            out.append(255)
            # the count after 255 is the whole (length - 3)
            out += struct.pack("<H", length) if length < 1 << 16 else struct.pack("<HI", 0, length)
    return nibble_pos


def _index_inside(heads: dict[bytes, list[int]], data: bytes, start: int, stop: int) -> None:
    """Index the positions inside a match too, cheaply (every 4th byte from `start`, below
    `stop`)."""
    for j in range(start, stop, 4):
        k = data[j:j + MIN_MATCH]
        c = heads.get(k)
        if c is None:
            heads[k] = [j]
        else:
            c.append(j)
            if len(c) > _CHAIN:
                del c[0]
