#!/usr/bin/env python3
"""Which B-trees a SQLite WAL's frames belong to: a profiling aid for docs/perf-history.md.

Usage: copy a running server's data directory (hookline.db and hookline.db-wal) and run
    scripts/wal_frames.py <copied data dir>
It reads each frame header's page number from the WAL, maps pages to tables and indexes
with SQLite's dbstat (opening the copy replays the WAL, and closing it checkpoints and
removes it: run once per copy), and prints frames per commit.
"""
import collections
import os
import sqlite3
import struct
import sys

d = sys.argv[1]
db = os.path.join(d, 'hookline.db')
wal = open(db + '-wal', 'rb').read()
magic, ver, psz, ckpt, s1, s2, c1, c2 = struct.unpack('>IIIIIIII', wal[:32])
frames = []
off = 32
while off + 24 + psz <= len(wal):
    pg, commit, fs1, fs2 = struct.unpack('>IIII', wal[off:off+16])
    if (fs1, fs2) != (s1, s2): break
    frames.append((pg, commit))
    off += 24 + psz
c = sqlite3.connect(db)
names = {}
for name, pageno in c.execute('select name, pageno from dbstat'):
    names[pageno] = name
commits = sum(1 for f in frames if f[1])
cnt = collections.Counter(names.get(pg, '?') for pg, _ in frames)
print('frames', len(frames), 'commits', commits, 'frames/commit', len(frames)/max(commits,1))
for n, k in cnt.most_common(): print(f'{n:35} {k:7} {k/max(commits,1):6.2f}/commit')
